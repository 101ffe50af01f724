"""One step at a time: how often a model turns a reference frame into the reference's next frame.

For every puzzle of a split and every frame k of its reference video, the model generates the next frame from
frame k (``generate(frame k, 2 frames)``: the step a frame-by-frame video takes), which is parsed and compared with
the reference's frame k + 1. Steps are split into those where the reference changes something (a filling or
painting step) and those where it holds; per kind it prints the share of exact next frames and the block accuracy,
and the accuracy over the blocks a changing step changes. A video needs every one of its changing steps right, so
the changing-step exact rate bounds how far a frame-by-frame chain gets.

    python benchmarks/step_accuracy.py --ckpt runs/maze/sft_tiny_fill_steps/checkpoints/last.ckpt \\
        --data runs/data/maze_tiny_fill2 --split test --limit 40
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from videoreason.data.dataset import load_sample, load_spec, read_rows
from videoreason.media import decode_video
from videoreason.models.export import load_module


def step_table(ckpt: str, data: Path, split: str, limit: int, seed: int = 0) -> str:
    module = load_module(ckpt).eval()
    spec = load_spec(data)
    exact: dict[str, list[bool]] = {"changing": [], "holding": []}
    blocks: dict[str, list[float]] = {"changing": [], "holding": []}
    changed_right: list[float] = []
    for row in tqdm(read_rows(data, split=split)[:limit], desc="puzzles", unit="puzzle"):
        sample = load_sample(data, row)
        reference = sample.task.states(sample.puzzle, sample.solution, spec.num_frames)  # [F, R, C]
        video = decode_video(data / row["video"])
        conditions = torch.from_numpy(video[:-1]).permute(0, 3, 1, 2).float() / 127.5 - 1  # frames 0..F-2
        seeds = [seed + k for k in range(len(conditions))]
        steps = module.generate(conditions, [row["prompt"]] * len(conditions), 2, seeds=seeds).numpy()
        for k, step in enumerate(steps):
            labels = sample.task.parse(step, sample.puzzle, spec).labels[1]
            before, after = reference[k], reference[k + 1]
            kind = "holding" if np.array_equal(before, after) else "changing"
            exact[kind].append(bool(np.array_equal(labels, after)))
            blocks[kind].append(float((labels == after).mean()))
            if kind == "changing":
                changed = before != after
                changed_right.append(float((labels[changed] == after[changed]).mean()))
    lines = ["| steps | n | exact next frame % | block accuracy % | changed blocks right % |", "|---" * 5 + "|"]
    for kind in ("changing", "holding"):
        n = len(exact[kind])
        right = f"{100 * np.mean(changed_right):.1f}" if kind == "changing" and changed_right else "-"
        lines.append(f"| {kind} | {n} | {100 * np.mean(exact[kind]) if n else float('nan'):.1f} | "
                     f"{100 * np.mean(blocks[kind]) if n else float('nan'):.1f} | {right} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="export folder or .ckpt of an SFT model")
    parser.add_argument("--data", required=True, type=Path, help="dataset folder")
    parser.add_argument("--split", default="test", help="dataset split (default: test)")
    parser.add_argument("--limit", type=int, default=40, help="puzzles to score (default: 40)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed of the first step (default: 0)")
    args = parser.parse_args()
    print(step_table(args.ckpt, args.data, args.split, args.limit, args.seed))


if __name__ == "__main__":
    main()
