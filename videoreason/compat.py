"""Every use of another library's private API, in one place.

Each entry names what it reaches into and why no public API does the job; ``tests/test_compat.py`` holds one contract
test per entry, so an upgrade that moves one fails there by name instead of deep inside a run. The versions they were
checked against are the upper bounds in ``pyproject.toml`` (lightning < 2.7, torchmetrics < 1.10, torch < 2.14).

Subclass overrides of private hooks stay in their subclass (``RunCheckpoint``, ``Reward._wrap_compute``,
``PlainHelp``); their names are listed here (``CHECKPOINT_OVERRIDES``, ``METRIC_HOOKS``, ``FORMATTER_HOOKS``) and
checked by the same tests. Every other private name is reached through a function of this module:
``tests/test_compat.py`` fails on a private name of another library used anywhere else in the package, and on a
private override not listed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

# --- Lightning ---------------------------------------------------------------------------------------------------

# ModelCheckpoint internals RunCheckpoint overrides or calls (callbacks/checkpoint.py): saving at the step
# boundary on SIGTERM and counting an untracked save point need the save path Lightning itself uses
CHECKPOINT_OVERRIDES = ("_save_topk_checkpoint", "_find_last_checkpoints")
CHECKPOINT_HOOKS = (*CHECKPOINT_OVERRIDES, "_should_skip_saving_checkpoint", "_save_last_checkpoint",
                    "_monitor_candidates")
CHECKPOINT_ATTRIBUTES = ("_last_global_step_saved",)


def skips_saving(callback: Any, trainer: Any) -> bool:
    """Whether ``ModelCheckpoint`` would save nothing now (fast dev run, sanity check, not fitting)."""
    return callback._should_skip_saving_checkpoint(trainer)


def save_last_checkpoint(callback: Any, trainer: Any) -> None:
    """Write ``last.ckpt`` the way ``ModelCheckpoint`` does after a top-k save."""
    callback._save_last_checkpoint(trainer, callback._monitor_candidates(trainer))


def last_saved_step(callback: Any) -> int:
    """The global step of ``ModelCheckpoint``'s latest save."""
    return callback._last_global_step_saved


def note_saved_step(callback: Any, step: int) -> None:
    """Count ``step`` as a save point (Lightning writes ``last.ckpt`` only after a top-k save otherwise)."""
    callback._last_global_step_saved = step

# ModelParallelStrategy attributes FSDP2Strategy sets before Lightning builds its mesh (parallel.py): the data
# parallel size across nodes and a hybrid (replicate x shard) mesh have no constructor argument
STRATEGY_ATTRIBUTES = ("_data_parallel_size", "_device_mesh")


def set_data_parallel_size(strategy: Any, size: int) -> None:
    """Make ``ModelParallelStrategy`` shard over ``size`` processes (all nodes), before it builds its mesh."""
    strategy._data_parallel_size = size


def use_device_mesh(strategy: Any, mesh: Any) -> None:
    """Give ``ModelParallelStrategy`` and its module ``mesh`` instead of the one it builds."""
    strategy._device_mesh = strategy.lightning_module._device_mesh = mesh


def launcher_rank() -> int:
    """This process's global rank as the launcher set it in the environment (Lightning's reading of it)."""
    from lightning.fabric.utilities.rank_zero import _get_rank

    return _get_rank() or 0


def forget_given_hyperparameters() -> None:
    """Clear Lightning's context variable of the hyperparameters LightningCLI is instantiating a module with, so a
    module built inside that one (GRPO loading its start) does not save the outer one's as its own; call it in a
    copied context."""
    from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters

    _given_hyperparameters.set(None)


def cli_section(cli: Any, config: Any, key: str, default: Any) -> Any:
    """``LightningCLI``'s view of ``config[key]`` for the subcommand it runs (no public accessor)."""
    return cli._get(config, key, default=default)

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


def count_update(metric: Any) -> None:
    """Count one ``update`` on a metric whose ``forward`` updates its children instead of itself, so ``compute``
    does not warn that it was never updated."""
    metric._update_count += 1


# --- argparse -----------------------------------------------------------------------------------------------------

# HelpFormatter hooks PlainHelp overrides (help_format.py) to rewrite the docstrings' literals in help text
FORMATTER_HOOKS = ("_expand_help", "_format_text")

# --- diffusers ----------------------------------------------------------------------------------------------------


def fp32_module_names(model: Any) -> set[str]:
    """The module names a diffusers model keeps in float32 when cast (``_keep_in_fp32_modules``; none if unset)."""
    return set(getattr(model, "_keep_in_fp32_modules", None) or [])


# --- torch --------------------------------------------------------------------------------------------------------


def non_persistent_buffers(module: torch.nn.Module) -> set[str]:
    """Names of the module's own buffers registered with ``persistent=False`` (no public accessor)."""
    return module._non_persistent_buffers_set
