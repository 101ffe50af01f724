"""Regression test of learning itself, on the path a user takes: from the packaged SFT maze model, a short SDE-GRPO
run with the shipped config (dense reward, Early-Step Focus, window-by-window rollouts) raises held-out success and F1
on a fixed set of mazes, scored by ``videoreason eval`` with the same noise seeds before and after."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from videoreason.resources import PretrainedModel, config_root

pytestmark = pytest.mark.slow

START = PretrainedModel("maze_fill_steps")
STEPS = 10
PUZZLES = 32


def videoreason(*args: str | Path) -> None:
    result = subprocess.run([sys.executable, "-m", "videoreason.cli", *map(str, args)], capture_output=True, text=True)
    assert result.returncode == 0, f"videoreason {args[0]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"


def scores(eval_dir: Path) -> tuple[float, float]:
    rows = [json.loads(line) for line in (eval_dir / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == PUZZLES
    return (100 * sum(r["success"] for r in rows) / len(rows), 100 * sum(r["f1"] for r in rows) / len(rows))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grpo_raises_held_out_success_of_the_packaged_model(tmp_path, seed):
    data, card = tmp_path / "data", START.card
    render = ["--height", card["render"]["height"], "--width", card["render"]["width"],
              "--frames", card["render"]["frames"]]
    for split, num in (("test", PUZZLES), ("train", 2 * STEPS)):  # test first: training boards skip its boards
        videoreason("data", "generate", "--task", "maze", "--difficulty", card["difficulty"], "--split", split,
                    "--num", num, "--seed", card["data_seed"], "--out", data, "--workers", 1, *render)
    before = tmp_path / "before"
    videoreason("eval", "--ckpt", START.path, "--data", data, "--out", before, "--workers", 1, "--track", "false")
    run = tmp_path / "grpo"
    videoreason("fit", "--config", config_root() / "maze" / "grpo_tiny_fill_steps.yaml",
                "--model.init_args.init_from", START.path, "--data.init_args.root", data,
                "--data.init_args.num_val_puzzles", 0, "--trainer.limit_val_batches", 0,
                "--trainer.max_steps", STEPS, "--trainer.default_root_dir", run, "--trainer.logger", "false",
                "--seed_everything", seed, "--model.init_args.seed", seed,
                "--model.init_args.sampling.reward_workers", 1)
    after = tmp_path / "after"
    videoreason("eval", "--ckpt", run / "adapter", "--data", data, "--out", after, "--workers", 1, "--track", "false")
    (sr_before, f1_before), (sr_after, f1_after) = scores(before), scores(after)
    assert sr_after > sr_before and f1_after > f1_before, (
        f"seed {seed}: held-out SR {sr_before:.1f} -> {sr_after:.1f}, F1 {f1_before:.1f} -> {f1_after:.1f}")
