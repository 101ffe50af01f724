"""Choosing the plateau model of an SFT run: the best validation's checkpoint, raw or EMA weights."""

from __future__ import annotations

import json

import pytest
import torch

from videoreason.plateau import best_validation, checkpoint_at, raw_weights_checkpoint, read_plateau


def test_the_best_validation_is_the_highest_rate_and_the_latest_of_equals():
    record = {"validations": [{"step": s, "success": r} for s, r in ((250, .2), (500, .7), (750, .7), (1000, .6))]}
    assert best_validation(record)["step"] == 750


def test_a_run_without_the_plateau_callback_or_checkpoints_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="callbacks/plateau.yaml"):
        read_plateau(tmp_path)
    (tmp_path / "plateau.json").write_text(json.dumps({"validations": []}))
    with pytest.raises(ValueError, match="no validation"):
        read_plateau(tmp_path)
    with pytest.raises(FileNotFoundError, match="step 500.*checkpoint_every_250"):
        checkpoint_at(tmp_path, 500)


def test_raw_weights_replace_the_averaged_ones_and_a_checkpoint_without_ema_is_left_alone(tmp_path):
    ema = {"state_dict": {"w": torch.ones(2)}, "current_model_state": {"w": torch.zeros(2)}, "averaging_state": {},
           "global_step": 500}
    torch.save(ema, tmp_path / "ema.ckpt")
    out = raw_weights_checkpoint(tmp_path / "ema.ckpt", tmp_path / "raw.ckpt")
    raw = torch.load(out, weights_only=False)
    assert torch.equal(raw["state_dict"]["w"], torch.zeros(2)) and raw["global_step"] == 500
    assert "current_model_state" not in raw and "averaging_state" not in raw
    torch.save({"state_dict": {"w": torch.ones(2)}}, tmp_path / "plain.ckpt")
    assert raw_weights_checkpoint(tmp_path / "plain.ckpt", tmp_path / "plain-raw.ckpt") is None
    assert not (tmp_path / "plain-raw.ckpt").exists()
