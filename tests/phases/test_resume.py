"""Exact resume: a run stopped after step k and resumed from its last checkpoint ends bitwise where an
uninterrupted run ends (CPU, same seeds), mid-epoch and at an epoch boundary, for SFT and GRPO."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from videoreason.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "maze"


def fit(run: Path, data: Path, phase: str, steps: int, *extra: str, reward: dict | None = None
        ) -> dict[str, torch.Tensor]:
    """``videoreason fit`` of a tiny LoRA run (16 mazes, batch 4: 4 steps per epoch); returns the exported LoRA."""
    config = CONFIGS / ("sft_tiny_lora.yaml" if phase == "sft" else "grpo_tiny.yaml")
    args = ["fit", "--config", str(config), "--trainer.default_root_dir", str(run),
            "--trainer.max_steps", str(steps), "--trainer.val_check_interval", "1000",
            "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
            "--trainer.logger", "false",
            "--data.init_args.root", str(data), "--data.init_args.num_workers", "0",
            "--data.init_args.num_val_puzzles", "0", "--model.init_args.transformer", "tiny"]
    if phase == "sft":
        args += ["--trainer.callbacks", "[]", "--data.init_args.batch_size", "4",
                 "--data.init_args.samples_per_epoch", "16", "--model.init_args.lora.rank", "4"]
    else:
        args += ["--data.init_args.batch_size", "2", "--model.init_args.init_from", "null",
                 "--model.init_args.group_size", "2", "--model.init_args.num_steps", "6",
                 "--model.init_args.rollout_batch_size", "2", "--model.init_args.lora.rank", "4",
                 "--model.init_args.reward", json.dumps(reward)]
    assert main(args + list(extra)) == 0
    return load_file(run / "adapter" / "pytorch_lora_weights.safetensors")


@pytest.mark.parametrize("stop", [2, 4], ids=["mid-epoch", "epoch-end"])
def test_sft_resumed_from_its_checkpoint_ends_bitwise_where_an_uninterrupted_run_ends(tmp_path, maze_dataset, stop):
    straight = fit(tmp_path / "straight", maze_dataset, "sft", 6)
    fit(tmp_path / "resumed", maze_dataset, "sft", stop)
    checkpoint = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    resumed = fit(tmp_path / "resumed", maze_dataset, "sft", 6, "--ckpt_path", str(checkpoint))
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert max(float(v.abs().max()) for k, v in straight.items() if "lora_B" in k) > 0


def test_grpo_with_early_step_focus_resumed_mid_epoch_ends_bitwise_where_an_uninterrupted_run_ends(
        tmp_path, maze_dataset, varying_reward):
    straight = fit(tmp_path / "straight", maze_dataset, "grpo", 3, reward=varying_reward)
    fit(tmp_path / "resumed", maze_dataset, "grpo", 1, reward=varying_reward)
    checkpoint = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    resumed = fit(tmp_path / "resumed", maze_dataset, "grpo", 3, "--ckpt_path", str(checkpoint),
                  reward=varying_reward)
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert max(float(v.abs().max()) for k, v in straight.items() if "lora_B" in k) > 0
