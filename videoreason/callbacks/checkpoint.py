"""``RunCheckpoint``: Lightning's ``ModelCheckpoint`` that defaults to ``<run dir>/checkpoints``."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` (same arguments) whose default folder is ``<trainer.default_root_dir>/checkpoints``,
    not a path inside the logger's store, and that keeps ``last.ckpt`` by default."""

    def __init__(self, *args, save_last: bool | None = True, **kwargs) -> None:
        super().__init__(*args, save_last=save_last, **kwargs)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = str(Path(trainer.default_root_dir) / "checkpoints")
        super().setup(trainer, pl_module, stage)
