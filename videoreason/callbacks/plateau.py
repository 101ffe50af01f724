"""``StopAtPlateau``: train until the held-out validation success rate stops improving.

A validation improves on the best so far only when its success rate lies above the best one's 95% Wilson interval
(over the validation puzzles), so noise on a few dozen puzzles does not count as progress. After ``patience``
validations in a row without such a gain the run stops, and ``RUN/plateau.json`` records where: the best
validation's step and rate, the step it stopped at, the samples seen and every validation. Save checkpoints at the
validations (``callbacks/checkpoint_every_250.yaml`` with ``val_check_interval: 250``) to keep the best model; which
one, raw or EMA weights, is then chosen on validation as well, never on test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from videoreason.atomic import write_atomic
from videoreason.stats import proportion_interval

PLATEAU_FILE = "plateau.json"


class StopAtPlateau(L.Callback):
    """Stop when validation success has not risen beyond the best rate's interval for ``patience`` validations.

    Args:
        patience: Validations in a row without a gain before the run stops (>= 1).
        monitor: The logged rate to watch; default the mean of every ``val/<task>/success``.
        confidence: Level of the Wilson interval around the best rate.
    """

    def __init__(self, patience: int = 3, monitor: str | None = None, confidence: float = 0.95) -> None:
        if patience < 1:
            raise ValueError(f"`patience` must be >= 1, got {patience}")
        if not 0 < confidence < 1:
            raise ValueError(f"`confidence` must be in (0, 1), got {confidence}")
        self.patience, self.monitor, self.confidence = patience, monitor, confidence
        self.history: list[dict[str, float]] = []
        self.best: dict[str, float] | None = None
        self.waited = 0

    def rate(self, trainer: L.Trainer) -> float | None:
        """The monitored success rate of the validation that just ended (``None``: not logged)."""
        metrics = trainer.callback_metrics
        if self.monitor is not None:
            return float(metrics[self.monitor]) if self.monitor in metrics else None
        rates = [float(v) for k, v in metrics.items() if k.startswith("val/") and k.endswith("/success")]
        return sum(rates) / len(rates) if rates else None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rate = self.rate(trainer)
        if rate is None or trainer.sanity_checking:
            return
        n = len(trainer.val_dataloaders.dataset) if trainer.val_dataloaders is not None else 0
        point = {"step": trainer.global_step, "success": rate, "n": n}
        self.history.append(point)
        if self.best is None or rate > proportion_interval(self.best["success"], max(n, 1), self.confidence).high:
            self.best, self.waited = point, 0
        else:
            self.waited += 1
        if self.waited >= self.patience:
            trainer.should_stop = True
            rank_zero_info(f"plateau: validation success {self.best['success']:.1%} at step {self.best['step']}, "
                           f"no gain beyond its interval in {self.patience} validations; stopping at step "
                           f"{trainer.global_step}")
        if trainer.is_global_zero:
            self.write(trainer)

    def write(self, trainer: L.Trainer) -> None:
        """``RUN/plateau.json``: the best validation, whether the run has stopped, and every validation."""
        batch = getattr(trainer.datamodule, "batch_size", None)
        record = {"best_step": self.best["step"] if self.best else None,
                  "best_success": self.best["success"] if self.best else None,
                  "stopped": self.waited >= self.patience, "step": trainer.global_step,
                  "samples_seen": trainer.global_step * batch if batch else None,
                  "patience": self.patience, "confidence": self.confidence, "validations": self.history}
        write_atomic(Path(trainer.default_root_dir) / PLATEAU_FILE, json.dumps(record, indent=1).encode())

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "best": self.best, "waited": self.waited}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self.best = state_dict.get("best")
        self.waited = int(state_dict.get("waited", 0))
