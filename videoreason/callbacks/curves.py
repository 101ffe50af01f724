"""``PlotCurves``: training curves (e.g. mean reward per GRPO step) as a PNG plot and a CSV, for people to look at."""

from __future__ import annotations

import csv
import fnmatch
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from videoreason.tracking import log_artifact

DEFAULT_KEYS = ("train/loss", "reward", "success_rate", "frac_reward_zero_std", "kl", "clip_ratio", "val/reward",
                "val/*/success", "val/*/f1")
"""What ``PlotCurves`` draws by default: the SFT loss; GRPO's mean reward, success rate, share of all-tied groups, KL
to the reference and clipped share of ratios; and every validation's reward, success rate and F1 per task (whichever
of them a run logs)."""


class PlotCurves(L.Callback):
    """Record logged metrics after every training batch (``val/`` metrics after every validation); after every
    validation and at the end of training write ``curves.png`` (one panel per metric, raw with markers and a moving
    average) and ``curves.csv`` into the run directory and upload them to MLflow. A default of every ``fit``.

    Args:
        keys: Logged metric names to plot; ``*`` matches any part of a name (``val/*/success``).
        smoothing: Moving-average window in steps.
        dirpath: Output folder (default ``<trainer.default_root_dir>``).
    """

    def __init__(self, keys: list[str] | None = None, smoothing: int = 10, dirpath: str | None = None) -> None:
        if smoothing < 1:
            raise ValueError(f"`smoothing` must be >= 1, got {smoothing}")
        self.keys = list(keys) if keys is not None else list(DEFAULT_KEYS)
        self.smoothing = smoothing
        self.dirpath = dirpath
        self.history: dict[str, list[tuple[int, float]]] = {}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        self._record(trainer, validation=False)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._record(trainer, validation=True)
            self._write(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer)

    def _record(self, trainer: L.Trainer, validation: bool) -> None:
        """Append the current value of each metric a key matches: ``val/`` ones after a validation, the others
        after a batch."""
        for name, value in trainer.callback_metrics.items():
            if name.startswith("val/") == validation and any(fnmatch.fnmatchcase(name, k) for k in self.keys):
                self.history.setdefault(name, []).append((trainer.global_step, float(value)))

    def state_dict(self) -> dict:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = {k: [tuple(p) for p in v] for k, v in state_dict["history"].items()}

    @rank_zero_only
    def _write(self, trainer: L.Trainer) -> None:
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
            ax.plot(steps, values, alpha=0.35, label="logged", marker="o" if len(values) <= 50 else None, ms=3)
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
