"""Learning curves of training runs: held-out SR and F1 against training samples, CPU-hours and steps.

A run's validations (``val/<task>/success`` and ``val/<task>/f1`` on its fixed validation puzzles) are read back
from the MLflow store in its folder (``RUN/mlflow.db``); SR gets a 95% Wilson interval over the validation
puzzles, since only the rate was logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from videoreason.stats import Estimate, proportion_interval


@dataclass(frozen=True)
class CurvePoint:
    """One validation of a run: after ``step`` optimizer steps and ``samples`` training items."""

    step: int
    samples: int
    cpu_hours: float
    success: Estimate
    f1: float


def validation_size(data: dict[str, Any]) -> int:
    """Puzzles a run validates on, from its data module's ``init_args``: ``num_val_puzzles`` of its validation split
    (``test`` when a default ``val`` split is empty, as the data module does), or fewer if the split is smaller.
    A dataset that is gone (moved since the run) cannot say: then ``num_val_puzzles``."""
    from videoreason.data.dataset import metadata_path, read_rows

    wanted = int(data.get("num_val_puzzles", 8))
    root, split = data.get("root"), data.get("val_split") or "val"
    if not root or not metadata_path(root).is_file():
        return wanted
    rows = read_rows(root, split=split)
    if not rows and split == "val":
        rows = read_rows(root, split="test")
    return min(wanted, len(rows))


def logged_run(run_dir: str | Path) -> tuple[Any, str]:
    """``(MlflowClient, run id)`` of ``run_dir``'s latest MLflow run: in the run folder's store
    (``videoreason.tracking``: the project's ``runs/mlflow.db``), or in one in the folder itself, as runs logged before
    the project store have.

    Raises:
        FileNotFoundError: No MLflow run of the folder is found.
    """
    from mlflow.tracking import MlflowClient

    from videoreason.tracking import find_run, local_tracking_uri

    run_dir = Path(run_dir)
    client = MlflowClient(local_tracking_uri(run_dir))
    run_id = find_run(client, run_dir)
    if run_id is None and (run_dir / "mlflow.db").is_file():  # logged before the project store: the folder's own
        client = MlflowClient(f"sqlite:///{(run_dir / 'mlflow.db').resolve()}")
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                  order_by=["attributes.start_time DESC"], max_results=1)
        run_id = runs[0].info.run_id if runs else None
    if run_id is None:
        raise FileNotFoundError(f"no MLflow run of {run_dir} in {local_tracking_uri(run_dir)}")
    return client, run_id


def save_figure(fig: Any, out: str | Path, dpi: int = 120) -> Path:
    """Write a matplotlib figure to ``out`` (its folder made) and close it; returns the path."""
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def read_curve(run_dir: str | Path, task: str, cores: int = 2) -> list[CurvePoint]:
    """The validations of ``run_dir``'s latest MLflow run, in % (empty if it validated never).

    The run is the folder's latest (`logged_run`).

    Args:
        run_dir: A ``fit`` run folder (with its ``config.yaml``).
        task: The task whose ``val/<task>/...`` metrics to read.
        cores: CPU cores the run used: CPU-hours are ``cores x`` the wall time since the run started.

    Raises:
        FileNotFoundError: The folder has no ``config.yaml``, or no MLflow run of it is found.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder: no config.yaml")
    data = yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["init_args"]
    batch, n_val = int(data.get("batch_size", 2)), validation_size(data)
    client, run_id = logged_run(run_dir)
    if n_val < 1:
        return []
    run = client.get_run(run_id)
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
    return save_figure(fig, out)
