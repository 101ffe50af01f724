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


def test_checkpoint_save_point_accessors_read_and_write_what_model_checkpoint_uses():
    checkpoint = ModelCheckpoint()
    compat.note_saved_step(checkpoint, 7)
    assert compat.last_saved_step(checkpoint) == 7
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    assert compat.skips_saving(checkpoint, trainer)  # not fitting: Lightning would save nothing
    assert list(inspect.signature(ModelCheckpoint._save_last_checkpoint).parameters) == [
        "self", "trainer", "monitor_candidates"]


def test_launcher_rank_reads_the_rank_the_launcher_set(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert compat.launcher_rank() == 0
    monkeypatch.setenv("RANK", "3")
    assert compat.launcher_rank() == 3


def test_forget_given_hyperparameters_clears_what_a_module_would_save():
    import contextvars

    from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters

    def inner() -> object:
        _given_hyperparameters.set({"outer": 1})
        compat.forget_given_hyperparameters()
        return _given_hyperparameters.get()

    assert contextvars.copy_context().run(inner) is None


def test_cli_section_is_lightning_clis_config_accessor():
    from lightning.pytorch.cli import LightningCLI

    assert list(inspect.signature(LightningCLI._get).parameters) == ["self", "config", "key", "default"]


def test_fp32_module_names_are_the_diffusers_models_own():
    from diffusers import WanTransformer3DModel

    assert "scale_shift_table" in compat.fp32_module_names(WanTransformer3DModel)
    assert compat.fp32_module_names(torch.nn.Linear(2, 2)) == set()


def test_help_formatter_still_has_the_hooks_plain_help_overrides():
    import argparse

    for name in compat.FORMATTER_HOOKS:
        assert callable(getattr(argparse.HelpFormatter, name, None)), name


# ------------------------------------------------------------------------------------------------ the rule itself
THIRD_PARTY = ("lightning", "torch", "torchmetrics", "diffusers", "peft", "argparse", "jsonargparse", "mlflow",
               "transformers")
PYTHON_MACHINERY = {"_abc_impl", "_is_protocol", "_is_runtime_protocol"}


def private_uses(package):
    """``file:line name`` for each private name of another library the package's modules (but ``compat.py``) use:
    ``from lib import _x``, ``getattr(obj, "_x")`` and ``obj._x`` where the package itself defines no ``_x``."""
    import ast

    files = sorted(package.rglob("*.py"))
    defined, uses = set(), []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                defined.add(node.attr)
    for path in files:
        if path.name == "compat.py":
            continue
        where = path.relative_to(package.parent)
        for node in ast.walk(ast.parse(path.read_text())):
            name = None
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in THIRD_PARTY:
                name = next((a.name for a in node.names if a.name.startswith("_")), None)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) > 1
                  and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
                name = node.args[1].value if node.args[1].value not in defined else None
            elif isinstance(node, ast.Attribute) and node.attr not in defined:
                name = node.attr
            if name and name.startswith("_") and not name.startswith("__"):
                uses.append(f"{where}:{node.lineno} {name}")
    return uses


def private_overrides():
    """``module.Class._x`` for each private attribute a package class overrides from another library's class."""
    import importlib
    import pkgutil

    import videoreason

    found = []
    for info in pkgutil.walk_packages(videoreason.__path__, "videoreason."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for cls in (v for v in vars(module).values() if inspect.isclass(v) and v.__module__ == module.__name__):
            theirs = [base for base in cls.__mro__[1:] if not base.__module__.startswith("videoreason")]
            for name in vars(cls):
                if (name.startswith("_") and not name.startswith("__") and name not in PYTHON_MACHINERY
                        and any(name in vars(base) for base in theirs)):
                    found.append(f"{module.__name__}.{cls.__name__}.{name}")
    return found


def test_private_names_of_other_libraries_are_used_only_in_compat():
    from pathlib import Path

    assert private_uses(Path(compat.__file__).parent) == []


def test_every_private_override_is_listed_in_compat():
    listed = {*compat.CHECKPOINT_OVERRIDES, *compat.METRIC_HOOKS, *compat.FORMATTER_HOOKS}
    assert [o for o in private_overrides() if o.rsplit(".", 1)[1] not in listed] == []


def test_the_rule_finds_private_imports_attributes_and_getattrs(tmp_path):
    package = tmp_path / "videoreason"
    package.mkdir()
    (package / "compat.py").write_text("from lightning.fabric.utilities.rank_zero import _get_rank\n")
    (package / "a.py").write_text(
        "from lightning.fabric.utilities.rank_zero import _get_rank\n"
        "def f(trainer, model):\n"
        "    trainer._signal_connector\n"
        "    getattr(model, '_keep_in_fp32_modules')\n"
        "    self._mine = 1\n"
        "    return self._mine\n")
    assert private_uses(package) == ["videoreason/a.py:1 _get_rank", "videoreason/a.py:3 _signal_connector",
                                     "videoreason/a.py:4 _keep_in_fp32_modules"]
