"""Per-frame diagnostics of generated videos against the reference solution videos: where a model goes wrong.

For every test puzzle, the generated video (``videoreason eval`` writes them to ``EVAL_DIR/videos/<id>.mp4``) is
parsed and compared frame by frame with the reference label grids (``task.states``). Per frame it prints the share
of videos whose frame equals the reference exactly, the accuracy over the blocks the reference changes somewhere in
the video (the blocks that carry the solution; the rest is layout), and, per class the solution paints, precision
and recall of that class against the reference frame. A model that gets frame 1 right and drifts later cannot
chain steps; one wrong from frame 1 on cannot take the first step.

    python benchmarks/frame_diagnostics.py --data runs/data/maze_tiny_fill --eval runs/maze/sft_tiny_fill/eval/test
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from videoreason.data.dataset import load_sample, load_spec, read_rows
from videoreason.media import decode_video


def frame_table(data: Path, eval_dir: Path, split: str) -> str:
    spec = load_spec(data)
    rows = [r for r in read_rows(data, split=split) if (eval_dir / "videos" / Path(r["video"]).name).is_file()]
    if not rows:
        raise ValueError(f"no generated videos of split {split!r} in {eval_dir / 'videos'}")
    exact, changing_acc, per_class = [], [], {}
    for row in rows:
        sample = load_sample(data, row)
        task, puzzle = sample.task, sample.puzzle
        reference = task.states(puzzle, sample.solution, spec.num_frames)  # [F, R, C]
        labels = task.parse(decode_video(eval_dir / "videos" / Path(row["video"]).name), puzzle, spec).labels
        if labels.shape != reference.shape:
            labels = np.full(reference.shape, -1, dtype=np.int8)
        changing = (reference != reference[:1]).any(axis=0)  # [R, C]: blocks the solution changes
        exact.append((labels == reference).all(axis=(1, 2)))
        changing_acc.append((labels[:, changing] == reference[:, changing]).mean(axis=1) if changing.any()
                            else np.ones(len(labels)))
        for k in np.unique(reference[-1][changing]):
            name = task.classes[int(k)]
            counts = [((labels == k) & (reference == k)), labels == k, reference == k]  # hits, drawn, reference
            per_class.setdefault(name, []).append(tuple(c.sum(axis=(1, 2)) for c in counts))
    exact, changing_acc = np.mean(exact, axis=0), np.mean(changing_acc, axis=0)
    names = sorted(per_class)
    head = ["frame", "frame exact %", "solution-block acc %"] + [f"{n} P / R %" for n in names]
    lines = [f"{len(rows)} videos of {eval_dir}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in range(len(exact)):
        cells = [str(f), f"{100 * exact[f]:.1f}", f"{100 * changing_acc[f]:.1f}"]
        for n in names:
            hit, drawn, ref = (sum(x[i][f] for x in per_class[n]) for i in range(3))
            cells.append(f"{100 * hit / max(drawn, 1):.1f} / {100 * hit / max(ref, 1):.1f}" if ref else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="dataset folder")
    parser.add_argument("--eval", required=True, help="evaluation folder holding videos/<id>.mp4")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    print(frame_table(Path(args.data), Path(args.eval), args.split))


if __name__ == "__main__":
    main()
