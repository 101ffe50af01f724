"""Metric tables: per-task means and the agent videos' trajectory table."""

from __future__ import annotations

import pytest

from videoreason.eval.table import summarize, to_markdown, trajectory_summary


def row(task, difficulty, success, sd=None, **trajectory):
    out = {"task": task, "difficulty": difficulty, "precision": 1.0, "recall": 1.0, "f1": 1.0, "success": success,
           "exact_match": 0.0}
    if trajectory:
        out.update(trajectory, trajectory_sd=sd)
    return out


def test_trajectory_table_averages_sd_only_where_it_is_defined():
    results = [
        row("trapfield", "tiny", 1.0, sd=0.0, trajectory_pr=1.0, trajectory_sr=1.0, trajectory_em=1.0),
        row("trapfield", "tiny", 1.0, sd=0.5, trajectory_pr=0.2, trajectory_sr=1.0, trajectory_em=0.0),
        row("trapfield", "easy", 0.0, sd=None, trajectory_pr=0.0, trajectory_sr=0.0, trajectory_em=0.0),
        row("maze", "tiny", 1.0),  # a painted video: no trajectory metrics, not in the table
    ]
    table = {(r["task"], r["difficulty"]): r for r in trajectory_summary(results)}
    assert set(table) == {("trapfield", "tiny"), ("trapfield", "easy"), ("trapfield", "all")}
    tiny = table[("trapfield", "tiny")]
    assert tiny["trajectory_pr"] == pytest.approx(60.0) and tiny["trajectory_em"] == 50.0
    assert tiny["trajectory_sd"] == pytest.approx(0.25) and tiny["n_sd"] == 2
    assert table[("trapfield", "easy")]["trajectory_sd"] is None and table[("trapfield", "all")]["n"] == 3
    text = to_markdown(trajectory_summary(results))
    assert "n/a" in text and "SD (traj.)" in text
    assert {r["task"] for r in summarize(results)} == {"maze", "trapfield"}
