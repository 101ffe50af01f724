"""The ready callback presets of the top-level ``callbacks/`` folder: each instantiates, and each is added to a real
run from the command line (``--trainer.callbacks+=callbacks/<preset>.yaml``) and does its job there."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch
import yaml

from videoreason.cli import main

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted((ROOT / "callbacks").glob("*.yaml"))
CONFIGS = ROOT / "configs" / "maze"
TINY = ["--trainer.enable_progress_bar", "false", "--data.init_args.batch_size", "1",
        "--data.init_args.num_workers", "0", "--model.init_args.lora.rank", "2"]


def test_the_packaged_link_is_the_top_level_folder():
    assert (ROOT / "videoreason" / "callback_presets").resolve() == (ROOT / "callbacks").resolve()
    assert (ROOT / "videoreason" / "configs").resolve() == (ROOT / "configs").resolve()


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_preset_instantiates(path):
    spec = yaml.safe_load(path.read_text())
    module, _, name = spec["class_path"].rpartition(".")
    callback = getattr(importlib.import_module(module), name)(**spec.get("init_args", {}))
    for key, value in spec.get("init_args", {}).items():
        assert getattr(callback, key, value) == value or key in ("filename", "auto_insert_metric_name")


def callbacks_in(run: Path) -> list[str]:
    return [c["class_path"] for c in yaml.safe_load((run / "config.yaml").read_text())["trainer"]["callbacks"]]


def test_sft_presets_in_one_run(tmp_path, maze_dataset):
    run = tmp_path / "sft"
    adds = [f"--trainer.callbacks+=callbacks/{name}.yaml" for name in ("ema", "checkpoint_every_250", "samples",
                                                                      "curves", "plateau")]
    assert main(["fit", "--config", str(CONFIGS / "sft_tiny_lora.yaml"), "--trainer.default_root_dir", str(run),
                 "--trainer.max_steps", "8", "--trainer.val_check_interval", "1", "--data.init_args.root",
                 str(maze_dataset), "--data.init_args.num_val_puzzles", "1", "--model.init_args.val_steps", "1",
                 "--model.init_args.transformer", "tiny", *TINY, *adds]) == 0
    assert {"lightning.pytorch.callbacks.EMAWeightAveraging", "videoreason.callbacks.RunCheckpoint",
            "videoreason.callbacks.LogSampleVideos", "videoreason.callbacks.PlotCurves",
            "videoreason.callbacks.StopAtPlateau"} <= set(callbacks_in(run))
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False, map_location="cpu")
    assert "current_model_state" in checkpoint  # EMA: the average in state_dict, the raw weights beside it
    assert "every_n_train_steps': 250" in next(k for k in checkpoint["callbacks"] if k.startswith("RunCheckpoint"))
    assert (run / "curves.png").is_file() and any((run / "samples").iterdir())
    plateau = json.loads((run / "plateau.json").read_text())  # no gain in 3 validations after the first: stopped
    assert plateau["stopped"] and plateau["best_step"] == 1 and plateau["step"] == checkpoint["global_step"] == 4


@pytest.fixture(scope="module")
def sft(tmp_path_factory, maze_dataset) -> Path:
    """A one-step SFT run the GRPO runs start from."""
    run = tmp_path_factory.mktemp("presets") / "sft"
    assert main(["fit", "--config", str(CONFIGS / "sft_tiny_lora.yaml"), "--trainer.default_root_dir", str(run),
                 "--trainer.max_steps", "1", "--data.init_args.root", str(maze_dataset),
                 "--data.init_args.num_val_puzzles", "0", "--model.init_args.transformer", "tiny", *TINY]) == 0
    return run


@pytest.mark.parametrize(("preset", "plan"), [
    ("early_step_focus", ["sde"] * 3 + ["ode"] * 3),
    ("all_steps", ["sde"] * 5 + ["ode"]),
    ("sliding_window", ["sde"] * 3 + ["ode"] * 3),
    ("random_subset", None),
])
def test_step_plan_presets_replace_the_configs_plan(tmp_path, maze_dataset, sft, preset, plan):
    run = tmp_path / "grpo"
    assert main(["fit", "--config", str(CONFIGS / "grpo_tiny.yaml"), "--trainer.default_root_dir", str(run),
                 "--model.init_args.init_from", str(sft / "adapter"), "--trainer.max_steps", "1",
                 "--data.init_args.root", str(maze_dataset), "--data.init_args.num_val_puzzles", "0",
                 "--model.init_args.sampling.group_size", "2", "--model.init_args.sampling.num_steps", "6",
                 "--model.init_args.sampling.batch_size", "2", "--model.init_args.sampling.reward_workers", "1", *TINY,
                 f"--trainer.callbacks+=callbacks/{preset}.yaml"]) == 0
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False, map_location="cpu")
    plans = {k: v["last_plan"] for k, v in checkpoint["callbacks"].items() if "last_plan" in v}
    (name,) = plans  # the config's EarlyStepFocus gave way to the preset's plan
    expected = yaml.safe_load((ROOT / "callbacks" / f"{preset}.yaml").read_text())["class_path"].rpartition(".")[2]
    assert name.startswith(expected)
    if plan is not None:
        assert plans[name] == plan
    else:
        assert plans[name].count("sde") == 3 and plans[name][-1] == "ode"
