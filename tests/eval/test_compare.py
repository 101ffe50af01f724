"""Side-by-side comparison of evaluation tables."""

from __future__ import annotations

import json

from videoreason.eval.compare import compare, main


def test_compare_puts_runs_side_by_side(tmp_path, capsys):
    row = {"task": "maze", "difficulty": "tiny", "n": 200, "precision": 50.0, "recall": 40.0, "f1": 44.4,
           "success": 10.0, "exact_match": 5.0}
    for name, sr in (("sft", 10.0), ("grpo", 25.0)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps([{**row, "success": sr}]))
    assert main([f"SFT={tmp_path / 'sft'}", f"GRPO={tmp_path / 'grpo'}"]) == 0
    out = capsys.readouterr().out
    assert "| SR SFT | SR GRPO |" in out and "| 10.0 | 25.0 |" in out
    assert main([str(tmp_path / "missing")]) == 2 and "metrics.json" in capsys.readouterr().err
    assert compare({"a": [row], "b": []}).splitlines()[-1].endswith("| - |")
