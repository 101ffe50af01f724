"""The ``videoreason`` command: ``data generate`` and ``data verify`` (thin wrappers over the Python API)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from videoreason.data.dataset import SPLITS


def _data_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="generate and verify puzzle video datasets")
    actions = data.add_subparsers(dest="action", required=True)

    gen = actions.add_parser("generate", help="render planner solutions of one task into a dataset folder")
    gen.add_argument("--task", required=True, help="maze, flowfree, sokoban, or a Task class path")
    gen.add_argument("--difficulty", default="easy", help="a level name of the task (e.g. tiny, easy, medium)")
    gen.add_argument("--num", type=int, required=True, help="samples this task/split/difficulty should hold")
    gen.add_argument("--split", default="train", choices=SPLITS)
    gen.add_argument("--seed", type=int, default=0, help="base seed; splits never share sample seeds")
    gen.add_argument("--out", required=True, help="dataset folder (created, or completed if interrupted)")
    gen.add_argument("--spec", default="tiny", choices=("tiny", "wan"), help="render preset")
    gen.add_argument("--height", type=int, help="override the preset's frame height")
    gen.add_argument("--width", type=int, help="override the preset's frame width")
    gen.add_argument("--frames", type=int, help="override the preset's frame count")
    gen.add_argument("--fps", type=int, help="override the preset's frames per second")
    gen.add_argument("--workers", type=int, help="processes (default: all cores)")

    ver = actions.add_parser("verify", help="re-parse every video and print the P/R/F1/SR/EM table")
    ver.add_argument("dir", help="dataset folder")
    ver.add_argument("--split", choices=SPLITS, help="only this split")
    ver.add_argument("--videos", help="score videos from this folder instead (same file names)")
    ver.add_argument("--out", help="also write metrics.md/.csv/.json and per-sample results here")
    ver.add_argument("--workers", type=int, help="processes (default: all cores)")


def _generate(args: argparse.Namespace) -> int:
    from videoreason.data.generate import generate_dataset
    from videoreason.tasks.render import RenderSpec

    overrides = {k: v for k, v in {"height": args.height, "width": args.width, "num_frames": args.frames,
                                   "fps": args.fps}.items() if v is not None}
    spec = getattr(RenderSpec, args.spec)(**overrides)
    root = generate_dataset(args.task, args.out, args.num, split=args.split, seed=args.seed,
                            difficulty=args.difficulty, spec=spec, workers=args.workers)
    print(f"dataset ready: {root}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from videoreason.data.verify import score_dataset, write_preview
    from videoreason.eval.table import summarize, to_markdown, write_tables

    results = score_dataset(args.dir, split=args.split, videos=args.videos, workers=args.workers)
    table = summarize(results)
    print(to_markdown(table))
    problems = [r for r in results if r["status"] != "ok"]
    if problems:
        print(f"{len(problems)} videos missing or unreadable, scored 0: "
              + ", ".join(r["id"] for r in problems[:10]) + (" ..." if len(problems) > 10 else ""))
    if args.out:
        paths = write_tables(table, args.out)
        paths.append(Path(args.out) / "samples.jsonl")
        paths[-1].write_text("".join(json.dumps(r) + "\n" for r in results))
        paths.append(write_preview(args.dir, Path(args.out) / "preview.png", videos=args.videos))
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The top-level argument parser."""
    parser = argparse.ArgumentParser(prog="videoreason", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _data_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``videoreason`` console script."""
    args = build_parser().parse_args(argv)
    handler = {"generate": _generate, "verify": _verify}[args.action]
    try:
        return handler(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
