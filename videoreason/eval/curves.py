"""Learning curves of training runs: held-out SR and F1 against training samples, CPU-hours and steps.

A run's validations (``val/<task>/success`` and ``val/<task>/f1`` on its fixed validation puzzles) are read back
from the MLflow store in its folder (``RUN/mlflow.db``); SR gets a 95% Wilson interval over the validation
puzzles, since only the rate was logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from videoreason.eval.bootstrap import Estimate, proportion_interval


@dataclass(frozen=True)
class CurvePoint:
    """One validation of a run: after ``step`` optimizer steps and ``samples`` training items."""

    step: int
    samples: int
    cpu_hours: float
    success: Estimate
    f1: float


def read_curve(run_dir: str | Path, task: str, cores: int = 2) -> list[CurvePoint]:
    """The validations of the latest run in ``run_dir``'s own MLflow store, in % (empty if it validated never).

    Args:
        run_dir: A ``fit`` run folder (``config.yaml`` and ``mlflow.db``).
        task: The task whose ``val/<task>/...`` metrics to read.
        cores: CPU cores the run used: CPU-hours are ``cores x`` the wall time since the run started.

    Raises:
        FileNotFoundError: The folder has no ``config.yaml`` or no ``mlflow.db``.
    """
    from mlflow.tracking import MlflowClient

    run_dir = Path(run_dir)
    for name in ("config.yaml", "mlflow.db"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir} is not a run folder with its own MLflow store: no {name}")
    data = yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["init_args"]
    batch, n_val = int(data.get("batch_size", 2)), int(data.get("num_val_puzzles", 8))
    client = MlflowClient(f"sqlite:///{(run_dir / 'mlflow.db').resolve()}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              order_by=["attributes.start_time DESC"], max_results=1)
    if not runs or n_val < 1:
        return []
    run = runs[0]
    start = run.info.start_time / 1000
    success = client.get_metric_history(run.info.run_id, f"val/{task}/success")
    f1 = {m.step: m.value for m in client.get_metric_history(run.info.run_id, f"val/{task}/f1")}
    # Lightning logs the validation after optimizer step k (counting from 1) at step k - 1
    return [CurvePoint(m.step + 1, (m.step + 1) * batch, cores * (m.timestamp / 1000 - start) / 3600,
                       proportion_interval(m.value, n_val).scaled(100), 100 * f1.get(m.step, float("nan")))
            for m in sorted(success, key=lambda m: m.step)]


def curve_table(name: str, points: list[CurvePoint]) -> str:
    """Markdown table of one run's curve, with each point's SR as a ratio to the first point's."""
    first = points[0].success.mean if points else 0.0
    lines = [name, "", "| step | samples | CPU-hours | SR % [95% CI] | F1 % | SR / first |", "|---" * 6 + "|"]
    for p in points:
        ratio = f"{p.success.mean / first:.2f}" if first > 0 else "-"
        lines.append(f"| {p.step} | {p.samples} | {p.cpu_hours:.2f} | {p.success} | {p.f1:.1f} | {ratio} |")
    return "\n".join(lines)


def plot_curves(sft: dict[str, list[CurvePoint]], grpo: dict[str, list[CurvePoint]], out: str | Path) -> Path:
    """One PNG: SR (with its interval) and F1 against samples and CPU-hours for SFT runs, against steps for GRPO."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(label, attr, group) for label, attr, group in (
        ("SFT training samples", "samples", sft), ("SFT CPU-hours", "cpu_hours", sft), ("GRPO steps", "step", grpo))
        if group]
    if not panels:
        raise ValueError("no curve to plot")
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
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
