"""``PlotCurves``: training curves (e.g. mean reward per GRPO step) as a PNG plot and a CSV, for people to look at."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from videoreason.tracking import log_artifact


class PlotCurves(L.Callback):
    """Record logged metrics after every training batch (``val/`` metrics after every validation); at the end of
    training write ``curves.png`` (one panel per metric, raw and moving average) and ``curves.csv`` into the run
    directory and upload them to MLflow.

    Args:
        keys: Logged metric names to plot.
        smoothing: Moving-average window in steps.
        dirpath: Output folder (default ``<trainer.default_root_dir>``).
    """

    def __init__(self, keys: list[str] | None = None, smoothing: int = 10, dirpath: str | None = None) -> None:
        if smoothing < 1:
            raise ValueError(f"`smoothing` must be >= 1, got {smoothing}")
        self.keys = list(keys) if keys is not None else ["reward/total_mean", "reward/success_rate", "val/reward"]
        self.smoothing = smoothing
        self.dirpath = dirpath
        self.history: dict[str, list[tuple[int, float]]] = {k: [] for k in self.keys}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        self._record(trainer, validation=False)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._record(trainer, validation=True)

    def _record(self, trainer: L.Trainer, validation: bool) -> None:
        """Append the current value of each key: ``val/`` keys after a validation, the others after a batch."""
        for key in self.keys:
            if key.startswith("val/") == validation and key in trainer.callback_metrics:
                self.history[key].append((trainer.global_step, float(trainer.callback_metrics[key])))

    def state_dict(self) -> dict:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = {k: [tuple(p) for p in v] for k, v in state_dict["history"].items()}

    @rank_zero_only
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        series = {k: v for k, v in self.history.items() if v}
        if not series:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        out = Path(self.dirpath or trainer.default_root_dir)
        out.mkdir(parents=True, exist_ok=True)
        fig, axes = plt.subplots(len(series), 1, figsize=(7, 2.6 * len(series)), squeeze=False)
        for ax, (key, points) in zip(axes[:, 0], series.items(), strict=True):
            steps, values = np.array([p[0] for p in points]), np.array([p[1] for p in points])
            window = min(self.smoothing, len(values))
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            ax.plot(steps, values, alpha=0.35, label="per step")
            ax.plot(steps[window - 1:], smooth, label=f"mean of {window}")
            ax.set_title(key)
            ax.set_xlabel("optimizer step")
            ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "curves.png", dpi=100)
        plt.close(fig)
        with open(out / "curves.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["metric", "step", "value"])
            writer.writerows((key, s, v) for key, points in series.items() for s, v in points)
        for name in ("curves.png", "curves.csv"):
            log_artifact(trainer, out / name)
