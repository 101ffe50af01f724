"""`data generate` without flags: frames and pixels chosen from the level, too few frames refused before anything
is written, a failed run rolled back so the corrected one succeeds, and the dataset card."""

from __future__ import annotations

import json

import pytest

from videoreason.cli import main
from videoreason.data.card import groups
from videoreason.data.dataset import read_rows
from videoreason.data.generate import generate_dataset
from videoreason.data.verify import verify_dataset
from videoreason.eval.table import summarize
from videoreason.tasks.base import BUILTIN_TASKS, resolve_task
from videoreason.tasks.render import RenderSpec

LEVELS = [(name, level) for name in BUILTIN_TASKS for level in resolve_task(name).levels]


def generate(*args: str) -> int:
    return main(["data", "generate", "--workers", "1", *args])


@pytest.mark.parametrize(("task", "level"), LEVELS, ids=[f"{t}-{lv}" for t, lv in LEVELS])
def test_the_plain_command_works_for_every_task_and_level(tmp_path, task, level):
    out = tmp_path / "d"
    assert generate("--task", task, "--difficulty", level, "--num", "4", "--split", "test", "--out", str(out)) == 0
    spec = json.loads((out / "spec.json").read_text())
    assert spec["num_frames"] >= (resolve_task(task).max_frames(level) or 2)
    assert len(read_rows(out)) == 4


@pytest.mark.parametrize(("task", "level"), LEVELS, ids=[f"{t}-{lv}" for t, lv in LEVELS])
def test_max_frames_bounds_the_level(task, level):
    """Every puzzle of the level fits a video of its bound (40 seeds; a shorter video raises)."""
    import numpy as np

    obj = resolve_task(task)
    bound = obj.max_frames(level)
    if bound is None:
        pytest.skip("any frame count works")
    for seed in range(40):
        puzzle = obj.generate(np.random.default_rng(seed), level)
        assert len(obj.states(puzzle, obj.solve(puzzle), max_states=bound)) <= bound


def test_too_few_frames_fail_before_the_folder_exists(tmp_path, capsys):
    out = tmp_path / "d"
    assert generate("--task", "trapfield", "--num", "8", "--split", "test", "--frames", "9", "--out", str(out)) == 2
    assert "needs 17 frames" in capsys.readouterr().err and not out.exists()
    assert generate("--task", "trapfield", "--num", "8", "--split", "test", "--frames", "17", "--out", str(out)) == 0
    assert len(read_rows(out)) == 8


def test_a_failed_run_is_rolled_back_and_the_corrected_one_succeeds(tmp_path, monkeypatch):
    """A run that fails mid-way (an unverifiable sample) leaves nothing behind in a new folder, and in an existing
    one only what was there before; the corrected command then succeeds."""
    import videoreason.data.generate as gen

    out = tmp_path / "d"
    real = gen._append_row
    calls = {"n": 0}

    def fail_third(root, row, spec):
        calls["n"] += 1
        if calls["n"] == 3:
            raise ValueError("disk on fire")
        real(root, row, spec)

    monkeypatch.setattr(gen, "_append_row", fail_third)
    with pytest.raises(ValueError, match="disk on fire"):
        generate_dataset("maze", out, 6, split="test", difficulty="tiny", workers=1, progress=False)
    assert not out.exists()  # the folder it made is gone, spec.json with it
    monkeypatch.setattr(gen, "_append_row", real)
    generate_dataset("maze", out, 6, split="test", difficulty="tiny", workers=1, progress=False)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    calls["n"] = 0
    monkeypatch.setattr(gen, "_append_row", fail_third)
    with pytest.raises(ValueError, match="disk on fire"):
        generate_dataset("maze", out, 6, split="train", difficulty="tiny", workers=1, progress=False)
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # the test split and its card as they were, no train sample left
    monkeypatch.setattr(gen, "_append_row", real)
    generate_dataset("maze", out, 6, split="train", difficulty="tiny", workers=1, progress=False)
    assert len(read_rows(out, split="train")) == 6
    assert summarize(verify_dataset(out, workers=1))[0]["success"] == 100.0


def test_a_folder_keeps_its_own_spec(tmp_path):
    """Without flags a second split takes the folder's spec, even for a level whose default would differ."""
    out = tmp_path / "d"
    assert generate("--task", "maze", "--difficulty", "tiny-fill", "--num", "3", "--split", "test", "--frames", "13",
                    "--height", "56", "--width", "56", "--out", str(out)) == 0
    assert generate("--task", "maze", "--difficulty", "tiny-fill", "--num", "3", "--split", "train",
                    "--out", str(out)) == 0
    assert RenderSpec.from_dict(json.loads((out / "spec.json").read_text())).num_frames == 13
    assert {r["height"] for r in read_rows(out)} == {"56"}


def test_dataset_card_rebuilds_the_folder(tmp_path):
    """The card lists every group in order, and its commands make the same dataset again."""
    import shlex

    out = tmp_path / "d"
    generate("--task", "maze", "--difficulty", "tiny", "--num", "4", "--split", "test", "--seed", "3",
             "--out", str(out))
    generate("--task", "maze", "--difficulty", "tiny", "--num", "5", "--split", "train", "--seed", "3",
             "--out", str(out))
    card = (out / "README.md").read_text()
    assert "| maze | tiny | test | 4 | 3 |" in card and "| maze | tiny | train | 5 | 3 |" in card
    assert [(g.split, g.count, g.seed) for g in groups(out)] == [("test", 4, 3), ("train", 5, 3)]
    commands = [line for line in card.splitlines() if line.startswith("videoreason data generate")]
    assert len(commands) == 2
    again = tmp_path / "again"
    for command in commands:
        args = shlex.split(command)[1:]
        args[args.index("--out") + 1] = str(again)
        assert main(args) == 0
    for name in ("metadata.csv", "spec.json"):
        assert (again / name).read_bytes() == (out / name).read_bytes()
