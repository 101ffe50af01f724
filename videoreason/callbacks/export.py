"""``ExportAdapter``: write the trained adapter (diffusers LoRA safetensors) and the module config for eval/serving."""

from __future__ import annotations

from pathlib import Path

import lightning as L

from videoreason.models.export import export_module
from videoreason.tracking import log_artifact


class ExportAdapter(L.Callback):
    """Export ``pl_module``'s adapter (or full transformer) with its config at the end of training (the averaged
    weights when a weight-averaging callback such as ``EMAWeightAveraging`` is used).

    The folder is what ``videoreason eval --ckpt`` and ``load_module`` read, and diffusers'
    ``pipe.load_lora_weights(folder)`` accepts; it is also uploaded to the MLflow run. Rank 0 writes it; when the
    transformer is sharded (FSDP2) every rank first takes part in gathering the full tensors, so the export is one
    safetensors file whatever the number of processes.

    Args:
        dirpath: Export folder (default ``<trainer.default_root_dir>/adapter``).
        every_n_train_steps: Also export every N optimizer steps (0: only at the end).
    """

    def __init__(self, dirpath: str | None = None, every_n_train_steps: int = 0) -> None:
        if every_n_train_steps < 0:
            raise ValueError(f"`every_n_train_steps` must be >= 0, got {every_n_train_steps}")
        self.dirpath = dirpath
        self.every_n_train_steps = every_n_train_steps
        self.last_export: Path | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Move behind any weight-averaging callback (``EMAWeightAveraging``): its ``on_train_end`` puts the
        averaged weights into the model, and those are what the final export must hold. A new list is assigned,
        since Lightning is iterating the old one."""
        from lightning.pytorch.callbacks import WeightAveraging

        callbacks = list(trainer.callbacks)
        last = max((i for i, c in enumerate(callbacks) if isinstance(c, WeightAveraging)), default=-1)
        if callbacks.index(self) < last:
            callbacks.remove(self)
            callbacks.insert(last, self)
            trainer.callbacks = callbacks

    def _export(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from videoreason.models.export import export_writes_base
        from videoreason.parallel import gather_state, is_sharded

        transformer = pl_module.transformer
        state = None
        if is_sharded(transformer):  # a collective: all ranks gather
            state = gather_state(transformer, trainable_only=not export_writes_base(pl_module))
        if trainer.is_global_zero:
            target = Path(self.dirpath or Path(trainer.default_root_dir) / "adapter")
            self.last_export = export_module(pl_module, target, state)
            log_artifact(trainer, self.last_export, "adapter")
        trainer.strategy.barrier("export")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        step = trainer.global_step
        if self.every_n_train_steps and step and step % self.every_n_train_steps == 0:
            self._export(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._export(trainer, pl_module)
