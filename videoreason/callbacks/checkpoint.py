"""``RunCheckpoint``: Lightning's ``ModelCheckpoint`` for a run directory, safe to pre-empt.

- Saves to ``<trainer.default_root_dir>/checkpoints`` and keeps ``last.ckpt`` by default, so ``--ckpt_path last``
  resumes a run in place. With no ``monitor`` it keeps only ``last.ckpt`` (``save_top_k=0``, not a second copy).
- Every checkpoint file of the trainer is written atomically (``AtomicCheckpointIO``): a crash or a full disk during
  a save leaves the previous checkpoint whole; temp files of a killed save are removed at the next start.
- SIGTERM (a scheduler's pre-emption, ``kill``, torchrun forwarding one): the step in flight finishes, ``last.ckpt``
  is written at that step boundary on every rank, and the run stops (``SIGTERMException``; ``videoreason fit`` exits
  143). Resuming it continues exactly.
- SLURM auto-requeue (``SLURMEnvironment``, ``#SBATCH --signal=SIGUSR1@90``): Lightning's handler (``hpc_ckpt_N.ckpt``
  + ``scontrol requeue``) is deferred from the moment the signal lands, possibly mid-update, to the end of the step,
  so the HPC checkpoint is consistent; the requeued job resumes from it by itself.
- Signals are acted on at the end of a training step on all ranks together (one all-reduce of two flags per step),
  whichever ranks received them; a signal during validation takes effect after the next training step.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from videoreason.atomic import remove_stale_temps
from videoreason.checkpoint_io import AtomicCheckpointIO
from videoreason.compat import (
    last_saved_step,
    lightning_requeue,
    note_saved_step,
    replace_signal_notifiers,
    save_last_checkpoint,
    skips_saving,
)
from videoreason.parallel import on_any_rank


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` (same arguments; ``save_last`` defaults to ``True``) for a run directory that saves at
    the step boundary on SIGTERM and defers SLURM's requeue checkpoint to it (module docstring)."""

    def __init__(self, *args: Any, save_last: bool | None = True, save_top_k: int | None = None, **kwargs: Any
                 ) -> None:
        if save_top_k is None:  # a top-k of unmonitored checkpoints would only duplicate last.ckpt
            save_top_k = 1 if kwargs.get("monitor") else 0
        super().__init__(*args, save_last=save_last, save_top_k=save_top_k, **kwargs)
        self._noted = {"stop": False, "requeue": False}  # signals received, acted on at the next step boundary

    def _resolve_dirpath(self, trainer: L.Trainer) -> None:
        if self.dirpath is None:
            self.dirpath = str(Path(trainer.default_root_dir) / "checkpoints")

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._resolve_dirpath(trainer)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # not one the user chose
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        if trainer.is_global_zero and Path(self.dirpath).is_dir():
            remove_stale_temps(self.dirpath)
        if stage == "fit":
            self._install_signal_notes(trainer)
        super().setup(trainer, pl_module, stage)

    def _save_topk_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict[str, Any]) -> None:
        super()._save_topk_checkpoint(trainer, monitor_candidates)
        if self.save_top_k == 0:  # Lightning writes last.ckpt only after a top-k save: count this save point as one
            note_saved_step(self, trainer.global_step)

    def _find_last_checkpoints(self, trainer: L.Trainer) -> set[str]:
        # `--ckpt_path last` looks for checkpoints before `setup`: resolve the run's folder first
        self._resolve_dirpath(trainer)
        return super()._find_last_checkpoints(trainer)

    def _install_signal_notes(self, trainer: L.Trainer) -> None:
        """Swap Lightning's SIGTERM notifier and SLURM requeue handler, before it registers them, for ones that only
        note the signal. Lightning's notifier broadcasts from inside the handler (on whichever rank got the signal,
        unmatched on the others) and sets a flag its loops act on per rank; its requeue handler saves a checkpoint
        from wherever the signal landed. ``on_train_batch_end`` acts on the notes on every rank at once instead."""
        self._noted = {"stop": False, "requeue": False}

        def note_sigterm(signum: int, frame: Any) -> None:
            launcher = trainer.strategy.launcher
            if not self._noted["stop"] and launcher is not None:  # forward to processes Lightning launched
                launcher.kill(signum)
            self._noted["stop"] = True

        def note_requeue(signum: int, frame: Any) -> None:
            self._noted["requeue"] = True

        replace_signal_notifiers(trainer, note_sigterm, note_requeue)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any
                           ) -> None:
        super().on_train_batch_end(trainer, pl_module, *args, **kwargs)
        noted = torch.tensor([float(self._noted["stop"]), float(self._noted["requeue"])],
                             device=trainer.strategy.root_device)
        stop, requeue = (bool(v) for v in on_any_rank(noted, trainer.world_size).tolist())
        if requeue:  # Lightning's own handler (HPC checkpoint + scontrol requeue), now at a step boundary
            self._noted["requeue"] = False
            lightning_requeue(trainer, signal.SIGUSR1)
        if stop:
            self._save_last_unless_saved(trainer)
            raise SIGTERMException()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        if not skips_saving(self, trainer):  # the final step, also when not a multiple of the period
            self._save_last_unless_saved(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        super().on_exception(trainer, pl_module, exception)
        if isinstance(exception, SIGTERMException):
            rank_zero_info(f"stopped by SIGTERM at step {trainer.global_step}; resume it with `--ckpt_path last` "
                           f"({self.last_model_path})")

    def _save_last_unless_saved(self, trainer: L.Trainer) -> None:
        if self.save_last and last_saved_step(self) != trainer.global_step:
            save_last_checkpoint(self, trainer)

