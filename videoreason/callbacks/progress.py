"""Training progress: ``StepProgressBar`` (optimizer steps out of ``max_steps``, drawn with tqdm) for people,
``ProgressJournal`` (JSON lines) for programs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.utilities import rank_zero_only


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


JOURNAL_FILE = "progress.jsonl"


class ProgressJournal(L.Callback):
    """Training progress as JSON lines in ``RUN/progress.jsonl`` (what ``videoreason recipe`` shows live), a default
    of every ``fit``: ``{"step", "max_steps", "elapsed_s", "metrics"}`` after a training step (at most every
    ``every_s`` seconds, and at the last step) and ``{"step", "validation": {...}}`` after each validation; the
    metrics are the progress bar's (loss or reward), ``start_step`` the step this process began at (a resumed run
    appends). Rank 0 only.

    Args:
        every_s: Least seconds between two step lines.
        dirpath: Output folder (default ``<trainer.default_root_dir>``).
    """

    def __init__(self, every_s: float = 1.0, dirpath: str | None = None) -> None:
        self.every_s, self.dirpath = every_s, dirpath
        self._start = self._last = 0.0
        self._start_step = 0

    def path(self, trainer: L.Trainer) -> Path:
        return Path(self.dirpath or trainer.default_root_dir) / JOURNAL_FILE

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = self._last = time.perf_counter()
        self._start_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        now = time.perf_counter()
        if now - self._last >= self.every_s or trainer.global_step >= trainer.max_steps > 0:
            self._last = now
            metrics = {k: float(v) for k, v in trainer.progress_bar_metrics.items() if k != "v_num"}
            self._write(trainer, {"step": trainer.global_step, "max_steps": trainer.max_steps,
                                  "start_step": self._start_step, "elapsed_s": round(now - self._start, 3),
                                  "metrics": metrics})

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            validation = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
            self._write(trainer, {"step": trainer.global_step, "validation": validation})

    @rank_zero_only
    def _write(self, trainer: L.Trainer, record: dict) -> None:
        path = self.path(trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as stream:
            stream.write(json.dumps(record) + "\n")


def read_journal(path: str | Path) -> list[dict]:
    """The records a `ProgressJournal` wrote (a torn last line, from a run still writing, is left out)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def journal_line(records: list[dict]) -> str | None:
    """One line of a journal's latest state: ``step 120/750 (16%), 0:32 in, ~2:48 left, reward=1.52``, with the
    latest validation's success rates; ``None`` before the first step."""
    steps = [r for r in records if "elapsed_s" in r]
    if not steps:
        return None
    last = steps[-1]
    done, total = last["step"], last["max_steps"]
    parts = [f"step {done}/{total}" + (f" ({100 * done / total:.0f}%)" if total > 0 else ""),
             f"{_clock(last['elapsed_s'])} in"]
    if total > done > last["start_step"]:
        parts.append(f"~{_clock(last['elapsed_s'] / (done - last['start_step']) * (total - done))} left")
    parts += [f"{k}={v:.4g}" for k, v in last["metrics"].items()]
    validations = [r["validation"] for r in records if "validation" in r]
    if validations:
        parts += [f"{k}={100 * v:.1f}%" for k, v in validations[-1].items() if k.endswith("/success")]
    return ", ".join(parts)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"
