"""The ``videoreason`` command.

``fit`` / ``validate`` / ``test`` go to LightningCLI (``videoreason fit --config configs/maze/sft_tiny.yaml``);
``data generate`` / ``data verify`` build and score datasets; ``eval`` scores a checkpoint or another model's
videos on a test split. Everything is imported lazily so ``videoreason --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from videoreason.data.dataset import SPLITS

TRAINER_COMMANDS = ("fit", "validate", "test")


class HELP(argparse.ArgumentDefaultsHelpFormatter):
    """Each flag's help ends with its default, unless the help already names it or there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        if "default" in (action.help or "") or default is None or default is False or default in ("", []):
            return action.help
        return super()._get_help_string(action)


def _data_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="generate and verify puzzle video datasets")
    actions = data.add_subparsers(dest="action", required=True)

    gen = actions.add_parser("generate", help="render planner solutions of one task into a dataset folder",
                             formatter_class=HELP)
    gen.add_argument("--task", required=True, help="maze, flowfree, sokoban, or a Task class path")
    gen.add_argument("--difficulty", default="easy", help="a level name of the task (e.g. tiny, easy, medium)")
    gen.add_argument("--num", type=int, required=True, help="samples this task/split/difficulty should hold")
    gen.add_argument("--split", default="train", choices=SPLITS, help="the split the samples belong to")
    gen.add_argument("--seed", type=int, default=0, help="base seed; splits never share sample seeds")
    gen.add_argument("--out", required=True, help="dataset folder (created, or completed if interrupted)")
    gen.add_argument("--spec", default="tiny", choices=("tiny", "wan"), help="render preset")
    gen.add_argument("--height", type=int, help="override the preset's frame height")
    gen.add_argument("--width", type=int, help="override the preset's frame width")
    gen.add_argument("--frames", type=int, help="override the preset's frame count")
    gen.add_argument("--fps", type=int, help="override the preset's frames per second")
    gen.add_argument("--workers", type=int, help="processes (default: all cores)")

    ver = actions.add_parser("verify", help="re-parse every video and print the P/R/F1/SR/EM table",
                             formatter_class=HELP)
    ver.add_argument("dir", help="dataset folder")
    ver.add_argument("--split", choices=SPLITS, help="only this split")
    ver.add_argument("--videos", help="score videos from this folder instead (same file names)")
    ver.add_argument("--out", help="also write metrics.md/.csv/.json and per-sample results here")
    ver.add_argument("--workers", type=int, help="processes (default: all cores)")


def _eval_parser(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("eval", help="generate with a checkpoint (or take another model's videos) and score a split",
                        formatter_class=HELP)
    ev.add_argument("--data", required=True, help="dataset folder")
    source = ev.add_mutually_exclusive_group(required=True)
    source.add_argument("--ckpt", help="export folder (RUN/adapter), Lightning .ckpt of a phase module, or the "
                        "name of a packaged model (maze_fill_steps)")
    source.add_argument("--videos", help="score this folder of videos named like the dataset's (<id>.mp4)")
    ev.add_argument("--split", default="test", choices=SPLITS, help="the dataset split to evaluate")
    ev.add_argument("--out", help="output folder (default RUN/eval/SPLIT; for a packaged model "
                    "runs/eval/<its name>/SPLIT; with --videos runs/eval/<videos folder name>/SPLIT)")
    ev.add_argument("--batch-size", type=int, default=8, help="videos generated per forward pass")
    ev.add_argument("--steps", type=int, help="denoising steps (default: the module's validation steps)")
    ev.add_argument("--shift", type=float, help="sigma shift (default: the module's validation shift)")
    ev.add_argument("--seed", type=int, default=0, help="base noise seed; puzzle i uses seed + i")
    ev.add_argument("--limit", type=int, help="only the first N puzzles of the split")
    ev.add_argument("--device", default="auto", help="torch device for generation (auto: CUDA when available, else "
                    "cpu; cpu, cuda, cuda:1)")
    ev.add_argument("--precision", default="32", choices=("32", "bf16"),
                    help="transformer weights while generating: float32 or bfloat16 (half the memory)")
    ev.add_argument("--workers", type=int, help="verification processes (default: all cores)")
    ev.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")


def _eval(args: argparse.Namespace) -> int:
    from videoreason.eval.evaluate import evaluate

    report = evaluate(args.data, ckpt=args.ckpt, videos=args.videos, split=args.split, out=args.out,
                      batch_size=args.batch_size, seed=args.seed, steps=args.steps, shift=args.shift,
                      limit=args.limit, device=args.device, precision=args.precision, workers=args.workers,
                      track=not args.no_mlflow)
    print(report.markdown())
    _warn_unscored(report.results)
    print(f"wrote {report.out_dir}" + (f"\nMLflow: {report.mlflow_hint}" if report.mlflow_hint else ""))
    return 0


def _warn_unscored(results: list[dict]) -> None:
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
    from pathlib import Path

    from videoreason.data.verify import score_dataset, write_preview
    from videoreason.eval.table import summarize, to_markdown, write_sample_rows, write_tables

    results = score_dataset(args.dir, split=args.split, videos=args.videos, workers=args.workers)
    table = summarize(results)
    print(to_markdown(table))
    _warn_unscored(results)
    if args.out:
        paths = write_tables(table, args.out)
        paths.append(write_sample_rows(results, args.out))
        paths.append(write_preview(args.dir, Path(args.out) / "preview.png", videos=args.videos, results=results))
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The top-level argument parser."""
    parser = argparse.ArgumentParser(prog="videoreason", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in TRAINER_COMMANDS:
        sub.add_parser(name, add_help=False, help=f"LightningCLI `{name}` (see `videoreason {name} --help`)")
    _data_parser(sub)
    _eval_parser(sub)
    sub.add_parser("recipe", add_help=False, help="data -> SFT -> GRPO -> eval of a task's tiny recipe, with CIs "
                   "(see `videoreason recipe --help`)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``videoreason`` console script."""
    from videoreason.quiet import silence_unactionable_output

    argv = list(sys.argv[1:] if argv is None else argv)
    silence_unactionable_output()
    if argv and argv[0] in TRAINER_COMMANDS:
        from videoreason.trainer_cli import run_lightning_cli

        return _reporting_errors(run_lightning_cli, argv)
    if argv and argv[0] == "recipe":
        from videoreason.recipe import main as run_recipe

        return _reporting_errors(run_recipe, argv[1:])
    args = build_parser().parse_args(argv)
    handler = _eval if args.command == "eval" else {"generate": _generate, "verify": _verify}[args.action]
    return _reporting_errors(handler, args)


def _reporting_errors(fn, *args) -> int:
    """Run ``fn``; bad input (``ValueError``/``FileNotFoundError``, a checkpoint that needs unpickling arbitrary
    objects) becomes one ``error:`` line and exit code 2.

    ``VIDEOREASON_TRACEBACK=1`` re-raises instead, for debugging.
    """
    import os
    import pickle

    try:
        result = fn(*args)
    except (ValueError, FileNotFoundError, pickle.UnpicklingError) as err:
        if os.environ.get("VIDEOREASON_TRACEBACK"):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
