"""Walk through the task API: generate, solve, render, verify, then break a solution and watch the verdict drop.

    python examples/tasks_walkthrough.py [--out runs/walkthrough]

Writes one mp4 per task and a contact sheet PNG, and prints each verdict.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from videoreason.media import contact_sheet, encode_mp4, encode_png
from videoreason.tasks import FlowFree, Maze, RenderSpec, Sokoban


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    spec = RenderSpec(height=128, width=128, num_frames=17, fps=8)
    videos = []
    for task, level in ((Maze(), "medium"), (FlowFree(), "medium"), (Sokoban(), "easy")):
        puzzle = task.generate(np.random.default_rng(0), level)
        solution = task.solve(puzzle)
        states = task.states(puzzle, solution, max_states=spec.num_frames)
        video = task.render(puzzle, states, spec)
        (out / f"{task.name}.mp4").write_bytes(encode_mp4(video, spec.fps))
        videos.append(video)
        good = task.verdict(video, puzzle, spec)
        print(f"{task.name:9s} prompt: {task.prompt(puzzle)}")
        print(f"{task.name:9s} ground truth: success={good.success} f1={good.f1:.2f} {good.components}")
        # freeze the video halfway: the solution is never finished
        half = video.copy()
        half[len(video) // 2:] = video[len(video) // 2]
        bad = task.verdict(half, puzzle, spec)
        print(f"{task.name:9s} stopped half-way: success={bad.success} f1={bad.f1:.2f} "
              + " ".join(f"{k}={v:.2f}" for k, v in bad.components.items()))
    (out / "sheet.png").write_bytes(encode_png(contact_sheet(videos, frames=6)))
    print(f"videos and sheet.png in {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/walkthrough"))
    main(parser.parse_args().out)
