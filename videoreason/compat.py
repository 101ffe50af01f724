"""Every use of another library's private API, in one place.

Each entry names what it reaches into and why no public API does the job; ``tests/test_compat.py`` holds one contract
test per entry, so an upgrade that moves one fails there by name instead of deep inside a run. The versions they were
checked against are the upper bounds in ``pyproject.toml`` (lightning < 2.7, torchmetrics < 1.10, torch < 2.14).

Subclass overrides of private hooks stay in their subclass (``RunCheckpoint``, ``Reward._wrap_compute``,
``FSDP2Strategy.setup_environment``); their names are listed here (``CHECKPOINT_HOOKS``, ``METRIC_HOOKS``,
``STRATEGY_ATTRIBUTES``) and checked by the same tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

# --- Lightning ---------------------------------------------------------------------------------------------------

# ModelCheckpoint internals RunCheckpoint overrides or calls (callbacks/checkpoint.py): saving at the step
# boundary on SIGTERM and counting an untracked save point need the save path Lightning itself uses
CHECKPOINT_HOOKS = ("_save_topk_checkpoint", "_find_last_checkpoints", "_should_skip_saving_checkpoint",
                    "_save_last_checkpoint", "_monitor_candidates")
CHECKPOINT_ATTRIBUTES = ("_last_global_step_saved",)

# ModelParallelStrategy attributes FSDP2Strategy sets before Lightning builds its mesh (parallel.py): the data
# parallel size across nodes and a hybrid (replicate x shard) mesh have no constructor argument
STRATEGY_ATTRIBUTES = ("_data_parallel_size", "_device_mesh")

# keys LightningCLI adds to a module's hparams (the class it instantiated and its instantiator); exports record
# ``_class_path`` to rebuild the module without pickle and drop both from what they show (models/export.py)
CLI_PRIVATE_KEYS = ("_class_path", "_instantiator")


def attached_trainer(module: Any) -> Any | None:
    """The module's trainer, or ``None`` when it is not attached (Lightning's ``trainer`` property raises then)."""
    return module._trainer


def replace_signal_notifiers(trainer: Any, sigterm: Callable[[int, Any], None],
                             requeue: Callable[[int, Any], None]) -> None:
    """Make the handlers Lightning registers for SIGTERM and SLURM's requeue signal call ``sigterm`` / ``requeue``
    instead of its own notifier and requeue function (set before ``register_signal_handlers`` runs in ``fit``)."""
    connector = trainer._signal_connector
    connector._sigterm_notifier_fn = sigterm
    connector._slurm_sigusr_handler_fn = requeue


def lightning_requeue(trainer: Any, signum: int) -> None:
    """Run Lightning's own SLURM requeue handler (HPC checkpoint, then ``scontrol requeue``) for ``signum``."""
    connector = trainer._signal_connector
    type(connector)._slurm_sigusr_handler_fn(connector, signum, None)


# --- torchmetrics -------------------------------------------------------------------------------------------------

# Metric hooks Reward overrides (rewards/base.py): torchmetrics squeezes a one-element compute result to a scalar
METRIC_HOOKS = ("_wrap_compute",)


def never_sync(metric: Any) -> None:
    """Stop a metric from syncing across ranks in ``compute``: torchmetrics reads ``_to_sync``, which it sets from
    ``sync_on_compute`` only in ``__init__``. GRPO gathers group rewards itself."""
    metric.sync_on_compute = metric._to_sync = False


def accepted_inputs(metric: Any, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword inputs ``metric.update`` accepts (torchmetrics' own filter, as ``MetricCollection`` uses it)."""
    return metric._filter_kwargs(**inputs)


def count_update(metric: Any) -> None:
    """Count one ``update`` on a metric whose ``forward`` updates its children instead of itself, so ``compute``
    does not warn that it was never updated."""
    metric._update_count += 1


# --- torch --------------------------------------------------------------------------------------------------------


def non_persistent_buffers(module: torch.nn.Module) -> set[str]:
    """Names of the module's own buffers registered with ``persistent=False`` (no public accessor)."""
    return module._non_persistent_buffers_set
