"""``LogSampleVideos``: the module's latest generated videos as an mp4 grid and a PNG contact sheet."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from videoreason.media import Tile, write_samples
from videoreason.tasks.render import RenderSpec
from videoreason.tracking import log_artifact


@runtime_checkable
class ShowsSamples(Protocol):
    """What ``LogSampleVideos`` reads from the module (``VideoModule`` is one)."""

    spec: RenderSpec | None
    samples: list[Tile]
    rollouts: list[Tile]

    def validate_batch(self, batch: dict[str, Any], log: bool = True) -> Any: ...


class LogSampleVideos(L.Callback):
    """Save generated videos under ``<run dir>/samples`` (mp4 grid + PNG contact sheet) and upload them to MLflow:
    ``pl_module.samples`` after each validation (with verdicts and ground truths), and ``pl_module.rollouts``
    (GRPO's latest rollouts, with rewards) every ``every_n_train_steps`` optimizer steps. A run that ended before
    writing any leaves one at the end: its latest rollouts, or (one process) the videos of one validation batch.

    Args:
        dirpath: Output folder (default ``<trainer.default_root_dir>/samples``).
        fps: Frame rate of the grid video (default: the dataset's).
        every_n_train_steps: Rollout-video period in optimizer steps (0: never).
    """

    def __init__(self, dirpath: str | None = None, fps: int | None = None, every_n_train_steps: int = 50) -> None:
        if every_n_train_steps < 0:
            raise ValueError(f"`every_n_train_steps` must be >= 0, got {every_n_train_steps}")
        self.dirpath = dirpath
        self.fps = fps
        self.every_n_train_steps = every_n_train_steps
        self.written = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not isinstance(pl_module, ShowsSamples):
            raise TypeError(f"LogSampleVideos needs a module with `spec`, `samples`, `rollouts` and `validate_batch` "
                            f"(a videoreason phase module); {type(pl_module).__name__} is not one")

    def _write(self, trainer: L.Trainer, pl_module: L.LightningModule, videos: list[Tile], name: str) -> None:
        self.written += 1
        spec = pl_module.spec
        fps = self.fps or (spec.fps if spec is not None else 4)
        out = Path(self.dirpath or Path(trainer.default_root_dir) / "samples")
        for path in write_samples(videos, out, name, fps):
            log_artifact(trainer, path, "samples")

    @rank_zero_only
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        videos = list(pl_module.rollouts)
        step = trainer.global_step
        if videos and self.every_n_train_steps and step % self.every_n_train_steps == 0:
            self._write(trainer, pl_module, videos, f"rollout_step{step:06d}")

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        videos = list(pl_module.samples)
        if videos and not trainer.sanity_checking:
            self._write(trainer, pl_module, videos, f"val_step{trainer.global_step:06d}")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.written or not trainer.is_global_zero:
            return
        step = trainer.global_step
        if rollouts := list(pl_module.rollouts):
            self._write(trainer, pl_module, rollouts, f"rollout_step{step:06d}")
            return
        loader = trainer.datamodule.val_dataloader() if trainer.datamodule is not None else []
        if trainer.world_size > 1 or not loader:  # sharded generation needs every rank
            return
        pl_module.eval()
        pl_module.samples = []
        batch = trainer.strategy.batch_to_device(next(iter(loader)))
        with torch.no_grad():
            pl_module.validate_batch(batch, log=False)
        self._write(trainer, pl_module, list(pl_module.samples), f"end_step{step:06d}")
