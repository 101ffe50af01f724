"""Learning curves of trained runs: held-out SR and F1 against training samples and CPU-hours (SFT) or steps (GRPO).

Reads the validation metrics every run logged to its MLflow store (``val/<task>/success`` and ``.../f1`` on the
run's fixed validation puzzles), prints one table per run (SR with its 95% Wilson interval, and the ratio of each
point's SR to the run's first point) and draws ``learning_curves.png``.

    python benchmarks/learning_curve.py --sft runs/maze/sft_tiny_fill --grpo runs/maze/grpo_tiny_fill \
        --out docs/learning_curves.png
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import yaml

from videoreason.eval.bootstrap import Estimate, proportion_interval
from videoreason.tracking import local_tracking_uri


@dataclass(frozen=True)
class Point:
    """One validation of a run."""

    step: int
    samples: int
    cpu_hours: float
    success: Estimate
    f1: float


def read_curve(run_dir: Path, task: str, cores: int) -> list[Point]:
    """The validations of the (latest) run logged in ``run_dir``'s MLflow store."""
    from mlflow.tracking import MlflowClient

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    data = config["data"]["init_args"]
    batch, n_val = int(data.get("batch_size", 2)), int(data.get("num_val_puzzles", 8))
    client = MlflowClient(local_tracking_uri(run_dir))
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        raise ValueError(f"no MLflow run in {run_dir}")
    run = runs[0]
    start = run.info.start_time / 1000
    success = client.get_metric_history(run.info.run_id, f"val/{task}/success")
    f1 = {m.step: m.value for m in client.get_metric_history(run.info.run_id, f"val/{task}/f1")}
    if not success:
        raise ValueError(f"run {run.info.run_id} in {run_dir} logged no val/{task}/success")
    # Lightning logs a validation run after optimizer step k (1-based) at step k - 1
    return [Point(m.step + 1, (m.step + 1) * batch, cores * (m.timestamp / 1000 - start) / 3600,
                  proportion_interval(m.value, n_val).scaled(100), 100 * f1.get(m.step, float("nan")))
            for m in sorted(success, key=lambda m: m.step)]


def table(name: str, points: list[Point]) -> str:
    first = points[0].success.mean
    lines = [name, "| step | samples | CPU-hours | SR % [95% CI] | F1 % | SR / first |", "|---|---|---|---|---|---|"]
    for p in points:
        ratio = f"{p.success.mean / first:.2f}" if first > 0 else "-"
        lines.append(f"| {p.step} | {p.samples} | {p.cpu_hours:.2f} | {p.success} | {p.f1:.1f} | {ratio} |")
    return "\n".join(lines)


def plot(curves: dict[str, list[Point]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sft = {k: v for k, v in curves.items() if k.startswith("sft")}
    grpo = {k: v for k, v in curves.items() if not k.startswith("sft")}
    panels = [("training samples", "samples", sft), ("CPU-hours", "cpu_hours", sft), ("GRPO steps", "step", grpo)]
    panels = [p for p in panels if p[2]]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (label, attr, group) in zip(axes[0], panels, strict=True):
        for name, points in group.items():
            x = [getattr(p, attr) for p in points]
            (line,) = ax.plot(x, [p.success.mean for p in points], "o-", label=f"{name} SR")
            colour = line.get_color()
            ax.fill_between(x, [p.success.low for p in points], [p.success.high for p in points], alpha=0.15,
                            color=colour)
            ax.plot(x, [p.f1 for p in points], "s--", label=f"{name} F1", alpha=0.7, color=colour)
        ax.set_xlabel(label)
        ax.set_ylabel("held-out %")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sft", nargs="*", default=[], help="SFT run folders")
    parser.add_argument("--grpo", nargs="*", default=[], help="GRPO run folders")
    parser.add_argument("--task", default="maze")
    parser.add_argument("--cores", type=int, default=2, help="CPU cores the runs used (CPU-hours = cores x wall)")
    parser.add_argument("--out", default="learning_curves.png")
    args = parser.parse_args()
    curves = {}
    for kind, dirs in (("sft", args.sft), ("grpo", args.grpo)):
        for d in dirs:
            curves[f"{kind}:{Path(d).name}"] = read_curve(Path(d), args.task, args.cores)
    if not curves:
        parser.error("give at least one --sft or --grpo run folder")
    for name, points in curves.items():
        print(table(name, points), end="\n\n")
    plot(curves, Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
