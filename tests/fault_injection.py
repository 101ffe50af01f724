"""Faults a test injects into a training subprocess (``PYTHONPATH=tests``, ``class_path: fault_injection.SignalAt``)."""

from __future__ import annotations

import os
import signal

from lightning.pytorch.callbacks import Callback


class SignalAt(Callback):
    """Send ``signal`` (a name: SIGTERM, SIGKILL, SIGUSR1) to this process once the run reaches optimizer step
    ``step``: at the end of that training batch (``when="batch_end"``), or after the backward pass of the step that
    leads there, before its optimizer update (``when="mid_update"``). Only on global rank ``rank`` (default: all)."""

    def __init__(self, step: int, signal: str = "SIGTERM", when: str = "batch_end", rank: int | None = None) -> None:
        self.step, self.signal, self.when, self.rank = step, signal, when, rank
        self.sent = False

    def setup(self, trainer, pl_module, stage) -> None:
        if self.rank is not None and trainer.global_rank != self.rank:
            self.sent = True  # not this rank's signal

    def _send(self) -> None:
        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), getattr(signal, self.signal))

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self.when == "mid_update" and trainer.global_step + 1 >= self.step:
            self._send()

    def on_train_batch_end(self, trainer, *args) -> None:
        if self.when == "batch_end" and trainer.global_step >= self.step:
            self._send()
