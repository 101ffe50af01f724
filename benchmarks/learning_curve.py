"""Learning curves of trained runs: held-out SR and F1 against training samples and CPU-hours (SFT) or steps (GRPO).

Reads the validation metrics every run logged to its own MLflow store (``val/<task>/success`` and ``.../f1`` on the
run's fixed validation puzzles; ``videoreason.eval.curves``), prints one table per run (SR with its 95% Wilson
interval and each point's ratio to the run's first point) and draws one PNG.

    python benchmarks/learning_curve.py --sft runs/maze/sft_tiny_fill --grpo runs/maze/grpo_tiny_fill \
        --out docs/learning_curves.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from videoreason.eval.curves import curve_table, plot_curves, read_curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sft", nargs="*", default=[], help="SFT run folders")
    parser.add_argument("--grpo", nargs="*", default=[], help="GRPO run folders")
    parser.add_argument("--task", default="maze")
    parser.add_argument("--cores", type=int, default=2, help="CPU cores the runs used (CPU-hours = cores x wall)")
    parser.add_argument("--out", default="learning_curves.png")
    args = parser.parse_args()
    if not args.sft and not args.grpo:
        parser.error("give at least one --sft or --grpo run folder")
    sft = {Path(d).name: read_curve(d, args.task, args.cores) for d in args.sft}
    grpo = {Path(d).name: read_curve(d, args.task, args.cores) for d in args.grpo}
    for kind, group in (("sft", sft), ("grpo", grpo)):
        for name, points in group.items():
            print(curve_table(f"{kind}: {name}", points), end="\n\n")
    print(f"wrote {plot_curves(sft, grpo, args.out)}")


if __name__ == "__main__":
    main()
