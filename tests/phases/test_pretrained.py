"""The packaged SFT model: its card records how it was made, it fits the size budget, and it solves held-out mazes
(test boards of its own data seed, which its training boards never were, up to rotation and reflection)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from videoreason.data.generate import generate_dataset
from videoreason.eval.evaluate import evaluate
from videoreason.models.export import load_module
from videoreason.resources import PretrainedModel, resolve_config
from videoreason.tasks.render import RenderSpec

MODEL = PretrainedModel("maze_fill_steps")


def test_the_card_records_config_data_and_compute():
    card = MODEL.card
    config = yaml.safe_load(Path(resolve_config(card["config"])).read_text())
    assert config["model"]["class_path"] == "videoreason.phases.sft.SFTModule"
    assert card["samples_seen"] == card["optimizer_steps"] * config["data"]["init_args"]["batch_size"]
    assert card["task"] == "maze" and card["difficulty"] == "tiny-fill" and card["data_seed"] == 0
    assert card["train_wall_minutes"] > 0 and card["command"].startswith("videoreason recipe")
    assert 0 < card["test"]["success"] < 100 and card["test"]["n"] >= 200


def test_the_model_fits_the_size_budget():
    assert sum(f.stat().st_size for f in MODEL.path.rglob("*") if f.is_file()) <= 25 * 2**20


def test_a_model_is_named_by_its_name_or_folder_and_an_unknown_name_lists_the_packaged_ones():
    assert PretrainedModel.of("maze_fill_steps") == MODEL == PretrainedModel.of(MODEL.path)
    assert PretrainedModel.of("runs/maze/sft/adapter") is None and PretrainedModel.of(Path(__file__)) is None
    with pytest.raises(FileNotFoundError, match=r"no_such_model.*packaged: \['maze_fill_steps'\]"):
        load_module("no_such_model")


def test_the_packaged_model_solves_held_out_mazes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    card = MODEL.card
    generate_dataset("maze", tmp_path, 16, split="test", seed=card["data_seed"], difficulty=card["difficulty"],
                     spec=RenderSpec.tiny(height=56, width=56, num_frames=9), workers=1, progress=False)
    report = evaluate(tmp_path, ckpt="maze_fill_steps", batch_size=16, workers=1, track=False)
    assert report.out_dir == Path("runs/eval/maze_fill_steps/test")  # not inside the package
    solved = sum(r["success"] for r in report.results)
    assert 4 <= solved < 16, f"{solved}/16 held-out mazes solved"  # the card: SR {card['test']['success']}% of 200
