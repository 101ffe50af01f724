"""Metric tables: per-sample verdict rows -> per task/difficulty means -> Markdown, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from videoreason.atomic import write_atomic
from videoreason.tasks.agent import VR_BENCH_SETTINGS, TrajectorySettings

HEADLINE = ("precision", "recall", "f1", "success", "exact_match")
TRAJECTORY = ("trajectory_pr", "trajectory_sr", "trajectory_sd", "trajectory_em")
LABELS = {"precision": "P", "recall": "R", "f1": "F1", "success": "SR", "exact_match": "EM",
          "trajectory_pr": "PR (traj.)", "trajectory_sr": "SR (traj.)", "trajectory_sd": "SD (traj.)",
          "trajectory_em": "EM (traj.)"}


def summarize(results: Iterable[dict[str, Any]], metrics: Sequence[str] = HEADLINE) -> list[dict[str, Any]]:
    """Mean of each metric per (task, difficulty), then per task over all difficulties, in percent.

    Each result needs ``task``, ``difficulty`` and the metric keys; rows come out sorted by task.
    """
    table = []
    for (task, difficulty), rows in _groups(results):
        entry: dict[str, Any] = {"task": task, "difficulty": difficulty, "n": len(rows)}
        for m in metrics:
            entry[m] = 100.0 * sum(float(r[m]) for r in rows) / len(rows)
        table.append(entry)
    return table


def trajectory_summary(results: Iterable[dict[str, Any]], settings: TrajectorySettings = VR_BENCH_SETTINGS
                       ) -> list[dict[str, Any]]:
    """The field's trajectory metrics of agent videos (`videoreason.tasks.agent`) per (task, difficulty), as
    published: PR, SR and EM means in percent, SD the mean step deviation over the videos where it is defined
    (``n_sd`` of them; ``None`` when none is), and the ``points`` and ``tolerance`` PR was scored with (``settings``).
    Results without trajectory metrics are left out."""
    agent = [r for r in results if "trajectory_pr" in r]
    table = []
    for (task, difficulty), rows in _groups(agent):
        entry = summarize(rows, ("trajectory_pr", "trajectory_sr", "trajectory_em"))[0]
        defined = [float(r["trajectory_sd"]) for r in rows if r.get("trajectory_sd") is not None]
        entry.update(task=task, difficulty=difficulty, n=len(rows), n_sd=len(defined),
                     trajectory_sd=sum(defined) / len(defined) if defined else None)
        table.append({**{k: entry[k] for k in ("task", "difficulty", "n", *TRAJECTORY, "n_sd")},
                      "points": settings.points, "tolerance": settings.tolerance})
    return table


def _groups(results: Iterable[dict[str, Any]]) -> list[tuple[tuple[str, str], list[dict[str, Any]]]]:
    """Results per (task, difficulty), then per (task, ``all``) where a task has several difficulties; by task."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[(r["task"], r["difficulty"])].append(r)
        groups[(r["task"], "all")].append(r)
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] == "all"))
    return [(key, rows) for key, rows in ordered
            if key[1] != "all" or sum(1 for t, _ in groups if t == key[0]) > 2]  # one difficulty: no total row


def to_markdown(table: Sequence[dict[str, Any]]) -> str:
    """A Markdown table with percentages to one decimal."""
    if not table:
        return "(no samples)"
    keys = list(table[0])
    head = [LABELS.get(k, k) for k in keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in keys) + "|"]
    for row in table:
        cells = [str(v) if k == "tolerance" else f"{v:.1f}" if isinstance(v, float) else "n/a" if v is None else str(v)
                 for k, v in row.items()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_tables(table: Sequence[dict[str, Any]], out_dir: str | Path, name: str = "metrics") -> list[Path]:
    """Write ``name.md``, ``name.csv`` and ``name.json`` into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    if table:
        writer = csv.DictWriter(buffer, fieldnames=list(table[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
    paths = [out / f"{name}.md", out / f"{name}.csv", out / f"{name}.json"]
    for path, text in zip(paths, (to_markdown(table) + "\n", buffer.getvalue(), json.dumps(list(table), indent=1)),
                          strict=True):
        write_atomic(path, text.encode())
    return paths


SAMPLES_FILE = "samples.jsonl"


def write_sample_rows(results: Sequence[dict[str, Any]], out_dir: str | Path) -> Path:
    """Write one JSON line per sample (its verdict row) to ``out_dir/samples.jsonl``; returns the path."""
    path = Path(out_dir) / SAMPLES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in results).encode())
    return path


def read_sample_rows(out_dir: str | Path) -> list[dict[str, Any]]:
    """The per-sample rows ``write_sample_rows`` wrote into ``out_dir``."""
    text = (Path(out_dir) / SAMPLES_FILE).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]
