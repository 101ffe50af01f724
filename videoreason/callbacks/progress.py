"""``StepProgressBar``: training progress in optimizer steps out of ``max_steps``, drawn with tqdm."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class StepProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, counting optimizer steps out of ``trainer.max_steps`` across epochs (when
    ``max_steps`` is set) instead of the batches of one epoch; a default of every ``fit``.

    Step-limited runs (every shipped config) have no meaningful epoch count (``max_epochs`` -1), so the bar reads
    ``Epoch 3: 45%| 270/600 [..., train/loss=0.031]``. tqdm redraws with carriage returns that also read well in a
    log file, which is what ``videoreason recipe`` shows live.
    """

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        """The progress-bar metrics without the logger's version (an MLflow run id prefix: noise here)."""
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics

    def on_train_epoch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.max_steps <= 0:
            return super().on_train_epoch_start(trainer, *args)
        bar = self.train_progress_bar
        bar.set_description(f"Epoch {trainer.current_epoch}", refresh=False)
        if bar.total != trainer.max_steps:  # the first epoch (or a resumed run): one bar for the whole run
            bar.reset(total=trainer.max_steps)
            bar.n = bar.last_print_n = trainer.global_step
        bar.refresh()
        return None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: object, batch: object,
                           batch_idx: int) -> None:
        if trainer.max_steps <= 0:
            return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        bar, step = self.train_progress_bar, trainer.global_step
        if step != bar.n and (step % self.refresh_rate == 0 or step >= trainer.max_steps):
            bar.n = step
            bar.set_postfix(self.get_metrics(trainer, pl_module))  # refreshes
        return None
