"""StopAtPlateau: a gain counts only beyond the best rate's Wilson interval; the run stops after `patience`
validations without one and records the plateau; its state resumes."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from videoreason.callbacks import StopAtPlateau


def validations(callback: StopAtPlateau, rates: list[float], tmp_path, n: int = 64) -> list[bool]:
    """Feed one validation per rate; whether the trainer was told to stop after each."""
    trainer = SimpleNamespace(callback_metrics={}, sanity_checking=False, should_stop=False, is_global_zero=True,
                              val_dataloaders=SimpleNamespace(dataset=range(n)), default_root_dir=str(tmp_path),
                              datamodule=SimpleNamespace(batch_size=32), global_step=0)
    stops = []
    for step, rate in enumerate(rates, 1):
        trainer.global_step = 250 * step
        trainer.callback_metrics = {"val/maze/success": rate, "val/maze/f1": 0.5, "train/loss": 1.0}
        callback.on_validation_end(trainer, None)
        stops.append(trainer.should_stop)
    return stops


def test_gains_within_the_interval_do_not_reset_the_wait(tmp_path):
    # 0.55 lies inside 0.5's interval over 64 puzzles, 0.9 beyond it; 0.92 and 0.93 inside 0.9's
    stops = validations(StopAtPlateau(patience=3), [0.0, 0.5, 0.55, 0.9, 0.9, 0.92, 0.93], tmp_path)
    assert stops == [False] * 6 + [True]
    record = json.loads((tmp_path / "plateau.json").read_text())
    assert record["best_step"] == 1000 and record["best_success"] == 0.9 and record["stopped"]
    assert record["step"] == 1750 and record["samples_seen"] == 1750 * 32 and len(record["validations"]) == 7


def test_a_real_gain_restarts_the_wait_and_state_resumes(tmp_path):
    callback = StopAtPlateau(patience=2)
    assert validations(callback, [0.1, 0.1, 0.6], tmp_path) == [False, False, False]
    resumed = StopAtPlateau(patience=2)
    resumed.load_state_dict(callback.state_dict())
    assert validations(resumed, [0.62, 0.6], tmp_path) == [False, True]


def test_settings_are_checked():
    with pytest.raises(ValueError, match="`patience`"):
        StopAtPlateau(patience=0)
    with pytest.raises(ValueError, match="`confidence`"):
        StopAtPlateau(confidence=1.0)
