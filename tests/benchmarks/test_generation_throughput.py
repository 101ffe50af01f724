"""benchmarks/generation_throughput.py on a tiny exported LoRA model: the adapter form makes the eval (merged) form's
videos, both and the GRPO rollout are timed, and the table shows each row."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # as `python benchmarks/...` does
import generation_throughput as gt  # noqa: E402

from videoreason.models.export import export_module  # noqa: E402
from videoreason.models.lora import LoraSpec  # noqa: E402
from videoreason.phases.sft import SFTModule  # noqa: E402


def test_a_lora_export_is_timed_merged_and_unmerged_and_rolled_out(tmp_path, maze_dataset):
    torch.manual_seed(0)
    sft = SFTModule(transformer="tiny", lora=LoraSpec(rank=4, alpha=4), val_steps=2)
    for name, param in sft.transformer.named_parameters():
        if "lora_B" in name:
            param.data.normal_(std=0.05)  # an adapter that changes the videos
    model = str(export_module(sft, tmp_path / "sft"))
    rows = gt.generation_rows(model, maze_dataset, batch=2, steps=2, repeats=1)
    assert [r["form"] for r in rows] == ["eval", "adapter"]
    assert rows[0]["ratio"] == 1.0 and rows[1]["ratio"] > 0
    assert rows[1]["max_diff"] <= 1  # the unmerged adapter generates the merged model's videos
    assert all(r["videos_per_s"] > 0 for r in rows)
    [rollout] = gt.rollout_rows(model, maze_dataset, puzzles=1, group=2, steps=3, sde_steps=1, repeats=1)
    assert rollout["videos"] == 2 and rollout["videos_per_s"] > 0 and rollout["warmup"] > 0
    text = gt.table([*rows, rollout])
    assert text.count("\n") == 4 and "rollout (G=2, ESF K=1)" in text


@pytest.mark.slow
def test_the_compiled_transformer_makes_the_same_videos(tmp_path, maze_dataset):
    torch.manual_seed(0)
    model = str(export_module(SFTModule(transformer="tiny", val_steps=2), tmp_path / "sft"))
    rows = gt.generation_rows(model, maze_dataset, batch=2, steps=2, repeats=1, compile_=True)
    assert [r["form"] for r in rows] == ["eval", "eval, compiled"] and rows[1]["max_diff"] <= 1
    rollouts = gt.rollout_rows(model, maze_dataset, puzzles=1, group=2, steps=3, sde_steps=1, repeats=1,
                               compile_=True)
    assert [r["form"].split(" (")[0] for r in rollouts] == ["rollout", "rollout, compiled"]
    assert rollouts[1]["ratio"] > 0
