"""Contract tests: one per private API of another library that ``videoreason.compat`` reaches into. If a dependency
upgrade moves one, the test of that entry fails by name."""

from __future__ import annotations

import inspect
import signal
import warnings

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.strategies import ModelParallelStrategy
from torchmetrics import Metric

from videoreason import compat


class Count(Metric):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("n", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, verdicts: list) -> None:
        self.n += len(verdicts)

    def compute(self) -> torch.Tensor:
        return self.n


def test_attached_trainer_is_none_until_a_trainer_is_set():
    module = L.LightningModule()
    assert compat.attached_trainer(module) is None
    with pytest.raises(RuntimeError):
        module.trainer  # noqa: B018 - the public property raises, which is why the private one is read
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    module.trainer = trainer
    assert compat.attached_trainer(module) is trainer


def test_replaced_signal_notifiers_are_what_lightning_registers_for_sigterm():
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    noted = []
    compat.replace_signal_notifiers(trainer, lambda s, f: noted.append(("term", s)), lambda s, f: noted.append(s))
    connector = trainer._signal_connector
    connector.register_signal_handlers()
    try:
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)
    finally:
        connector.teardown()
    assert noted == [("term", signal.SIGTERM)]
    assert not connector.received_sigterm  # Lightning's own notifier did not run


def test_lightning_requeue_handler_takes_the_connector_a_signal_and_a_frame():
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    handler = type(trainer._signal_connector)._slurm_sigusr_handler_fn
    assert len(inspect.signature(handler).parameters) == 3  # (self, signum, frame)


def test_model_checkpoint_still_has_the_hooks_run_checkpoint_uses():
    checkpoint = ModelCheckpoint()
    for name in compat.CHECKPOINT_HOOKS:
        assert callable(getattr(ModelCheckpoint, name, None)), name
    for name in compat.CHECKPOINT_ATTRIBUTES:
        assert hasattr(checkpoint, name), name
    assert list(inspect.signature(ModelCheckpoint._save_topk_checkpoint).parameters) == [
        "self", "trainer", "monitor_candidates"]


def test_model_parallel_strategy_still_has_the_attributes_fsdp2_sets():
    strategy = ModelParallelStrategy()
    for name in compat.STRATEGY_ATTRIBUTES:
        assert hasattr(strategy, name), name


def test_lightning_cli_records_the_private_keys_exports_drop(tmp_path):
    from lightning.pytorch.cli import LightningCLI

    class Module(L.LightningModule):
        def __init__(self, width: int = 2) -> None:
            super().__init__()
            self.save_hyperparameters()

    cli = LightningCLI(Module, run=False, args=["--trainer.logger", "false"], save_config_callback=None)
    assert "_instantiator" in cli.model.hparams
    # a checkpoint's `_class_path` hparam is how LightningCLI and `load_from_checkpoint` find the module's class
    assert '"_class_path"' in inspect.getsource(LightningCLI._parse_ckpt_path)


def test_never_sync_stops_compute_from_syncing():
    def calls(metric: Metric) -> list:
        seen = []
        metric.sync = lambda *a, should_sync=True, **k: seen.append(should_sync)
        metric.update([1])
        metric.compute()
        return seen

    assert calls(Count()) == [True]
    metric = Count()
    compat.never_sync(metric)
    assert calls(metric) == [False]


def test_accepted_inputs_keeps_what_update_takes():
    assert compat.accepted_inputs(Count(), {"verdicts": [1], "ids": ["a"]}) == {"verdicts": [1]}


def test_count_update_counts_and_silences_the_never_updated_warning():
    metric = Count()
    compat.count_update(metric)
    assert metric.update_count == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metric.compute()


def test_metric_still_wraps_compute_through_the_hook_rewards_override():
    for name in compat.METRIC_HOOKS:
        assert callable(getattr(Metric, name, None)), name

    class Half(Count):
        def _wrap_compute(self, compute):
            wrapped = super()._wrap_compute(compute)
            return lambda: wrapped() / 2

    metric = Half()
    metric.update([1, 2])
    assert float(metric.compute()) == 1.0


def test_non_persistent_buffers_lists_them():
    module = torch.nn.Module()
    module.register_buffer("kept", torch.zeros(1))
    module.register_buffer("table", torch.zeros(1), persistent=False)
    assert compat.non_persistent_buffers(module) == {"table"}
