"""The dataset commands of ``videoreason`` and how the other commands' results are shown.

``videoreason.cli`` generates every command's flags and ``--help`` from the signature and docstring of its function
(``generate`` and ``verify`` here, ``videoreason.eval.evaluate.evaluate``, ``videoreason.recipe.recipe``), so the
two cannot drift apart.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

Split = Literal["train", "val", "test"]


def generate(task: str, num: int, out: Path, difficulty: str = "easy", split: Split = "train", seed: int = 0,
             spec: Literal["tiny", "wan"] = "tiny", height: int | None = None, width: int | None = None,
             frames: int | None = None, fps: int | None = None, cell: int | None = None,
             workers: int | None = None) -> None:
    """Render planner solutions of one task into a dataset folder.

    Args:
        task: maze, flowfree, sokoban, trapfield, maze_agent, maze3d, navigation, or a Task
            class path.
        num: Samples this task/split/difficulty should hold.
        out: Dataset folder (created, or completed if interrupted).
        difficulty: A level name of the task (e.g. tiny, easy, medium).
        split: The split the samples belong to.
        seed: Base seed; splits never share puzzle seeds.
        spec: Render preset.
        height: Frame height (default: the folder's when it has samples, else the preset's, or more where the
            level's boards need it).
        width: Frame width (likewise).
        frames: Frames per video (default: the folder's when it has samples and they are enough, else what the
            level's longest solution needs, at least the preset's, 4k + 1 for wan). Too few is refused before
            anything is written.
        fps: Frames per second (default: the folder's, else the preset's).
        cell: Largest cell side in pixels (default: the folder's, else as large as the frame allows). Boards of
            several levels generated into one folder at one frame size and ``--cell`` are drawn alike, the smaller
            ones centred with background around them: one dataset of mixed board sizes.
        workers: Processes (default: all cores).
    """
    from videoreason.data.generate import generate_dataset, planned_spec
    from videoreason.tasks.render import RenderSpec

    given = {"height": height, "width": width, "num_frames": frames, "fps": fps, "cell": cell}
    plan = planned_spec(task, difficulty, getattr(RenderSpec, spec)(), out, four_k_plus_1=spec == "wan",
                        **{k: v for k, v in given.items() if v is not None})
    root = generate_dataset(task, out, num, split=split, seed=seed, difficulty=difficulty, spec=plan,
                            workers=workers)
    print(f"dataset ready: {root}")


def import_levels(source: Path, out: Path, split: Split = "test", frames: int | None = None, size: int | None = None
                  ) -> None:
    """Read the grid levels of a VR-Bench output folder (``<skin>/<difficulty>/states/*.json``) into a new dataset:
    trap fields and mazes (walls as traps) as ``trapfield`` with VR-Bench's own reference walk, Sokoban rooms as
    ``sokoban``, 3-D mazes (their cubes, ladders and path) as ``maze3d``; every sample is solved, rendered and
    verified like a generated one. PathFinder levels (no grid) are listed as skipped.

    Args:
        source: VR-Bench output folder.
        out: New dataset folder.
        split: The split the levels go to.
        frames: Video frames (default: the longest reference walk + 1).
        size: Frame height and width in pixels (default: 8 per cell of the largest board).
    """
    from collections import Counter

    from videoreason.data.dataset import read_rows
    from videoreason.data.vrbench import import_vrbench

    root, skipped = import_vrbench(source, out, split=split, frames=frames, size=size)
    for (task, difficulty), n in sorted(Counter((r["task"], r["difficulty"]) for r in read_rows(root)).items()):
        print(f"imported {n} {task} levels ({difficulty})")
    for path, why in skipped.items():
        print(f"skipped {path}: {why}", file=sys.stderr)
    print(f"dataset ready: {root}")


def verify(data: Path, split: Split | None = None, videos: Path | None = None, out: Path | None = None,
           workers: int | None = None, points: int = 100, tolerance: float = 0.01) -> None:
    """Re-parse every video of a dataset (or another model's videos) and print the P/R/F1/SR/EM table (and the
    trajectory metrics of agent videos).

    Args:
        data: Dataset folder.
        split: Only this split (default: all).
        videos: Score videos from this folder instead (same file names).
        out: Also write metrics.md/.csv/.json, per-sample results and a preview here.
        workers: Processes (default: all cores).
        points: Agent videos' trajectory PR: points resampled along the reference (VR-Bench's batch evaluator: 100).
        tolerance: Agent videos' trajectory PR: match distance as a fraction of the frame (VR-Bench's: 0.01).
    """
    from videoreason.data.verify import verify_dataset, write_preview
    from videoreason.eval.table import summarize, to_markdown, trajectory_summary, write_sample_rows, write_tables
    from videoreason.tasks.agent import TrajectorySettings

    settings = TrajectorySettings(points, tolerance)
    results = verify_dataset(data, split=split, videos=videos, workers=workers, trajectory=settings)
    table, trajectory = summarize(results), trajectory_summary(results, settings)
    print(to_markdown(table))
    if trajectory:
        print("\n" + to_markdown(trajectory))
    warn_unscored(results)
    if out is not None:
        paths = write_tables(table, out) + (write_tables(trajectory, out, "trajectory") if trajectory else [])
        paths.append(write_sample_rows(results, out))
        paths.append(write_preview(data, Path(out) / "preview.png", videos=videos, results=results))
        print("wrote " + ", ".join(str(p) for p in paths))


def show_evaluation(report: Any) -> None:
    """Print what ``videoreason eval`` produced (an ``EvalReport``): the table, unscored videos, where it is."""
    print(report.markdown())
    warn_unscored(report.results)
    print(f"wrote {report.out_dir}" + (f"\nMLflow: {report.mlflow_hint}" if report.mlflow_hint else ""))


def warn_unscored(results: list[dict]) -> None:
    """Say on stderr which videos were missing, unreadable or raised while scored (they score 0 and count in the
    table), with the first error."""
    problems = [r for r in results if r["status"] != "ok"]
    if problems:
        kinds = ", ".join(sorted({r["status"] for r in problems}))
        print(f"warning: {len(problems)} of {len(results)} videos {kinds}, scored as failures: "
              + ", ".join(r["id"] for r in problems[:10]) + (" ..." if len(problems) > 10 else ""), file=sys.stderr)
        errors = [r for r in problems if r.get("error")]
        if errors:
            print(f"first error ({errors[0]['id']}): {errors[0]['error']}", file=sys.stderr)
