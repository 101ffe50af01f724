"""Checkpoint files written atomically: the ``CheckpointIO`` that ``RunCheckpoint`` gives every trainer."""

from __future__ import annotations

from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from videoreason.atomic import atomic_file


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local saves stream ``torch.save`` into a temp file beside the checkpoint, fsync
    it, rename it over the old one and fsync the folder. (Lightning's own buffers the whole checkpoint in memory,
    writes it to the system temp folder and ``shutil.move``s it: a copy, not a rename, when that folder is on
    another filesystem, and nothing is fsynced.) Remote URLs go to Lightning's ``TorchCheckpointIO``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no `storage_options`")
        with atomic_file(path) as handle:
            torch.save(checkpoint, handle)
