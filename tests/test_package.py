"""Package-level behaviour: a light import, the console script, the examples."""

from __future__ import annotations

import runpy
import subprocess
import sys

import pytest


def test_import_and_help_stay_light():
    code = ("import sys, videoreason, videoreason.tasks, videoreason.cli; "
            "heavy = [m for m in ('torch', 'diffusers', 'mlflow', 'lightning', 'transformers') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-m", "videoreason.cli", "data", "generate", "--help"],
                               capture_output=True, text=True, check=True).stdout
    assert "--difficulty" in help_text and "--task" in help_text


def test_cli_rejects_unknown_command(capsys):
    from videoreason.cli import main

    with pytest.raises(SystemExit):
        main(["teleport"])
    assert "invalid choice" in capsys.readouterr().err


def test_walkthrough_example_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["tasks_walkthrough.py", "--out", str(tmp_path)])
    runpy.run_path("examples/tasks_walkthrough.py", run_name="__main__")
    out = capsys.readouterr().out
    assert out.count("ground truth: success=True f1=1.00") == 3
    assert out.count("stopped half-way: success=False") == 3
    assert {p.name for p in tmp_path.iterdir()} == {"maze.mp4", "flowfree.mp4", "sokoban.mp4", "sheet.png"}
