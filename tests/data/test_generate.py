"""Dataset generation: layout, verification, split disjointness, atomic resume (incl. kill -9), errors, CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from videoreason.cli import main
from videoreason.data.dataset import COLUMNS, load_sample, load_spec, read_rows
from videoreason.data.generate import generate_dataset, puzzle_hash
from videoreason.data.verify import verify_dataset
from videoreason.eval.table import summarize
from videoreason.media import decode_video, encode_mp4
from videoreason.tasks.grid import dihedral_images
from videoreason.tasks.maze import Maze, MazeDifficulty
from videoreason.tasks.render import RenderSpec


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file's bytes but the dataset card's, which names its folder."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "README.md"}


def test_layout_and_ground_truth_verifies(tmp_path):
    root = generate_dataset("maze", tmp_path / "ds", 6, split="train", difficulty="easy", workers=2, progress=False)
    generate_dataset("sokoban", root, 4, split="test", difficulty="tiny", workers=1, progress=False)
    rows = read_rows(root)
    assert len(rows) == 10 and set(rows[0]) == set(COLUMNS)
    assert load_spec(root) == RenderSpec.tiny()
    preview = np.asarray(Image.open(root / "preview.png"))  # two videos of each task, scaled up
    assert preview.shape[0] > 4 * 96 and preview.shape[1] > 5 * 96
    for row in rows:
        video = decode_video(root / row["video"])
        assert video.shape == (9, 64, 64, 3)
        image = np.asarray(Image.open(root / row["input_image"]).convert("RGB"))
        assert np.abs(image.astype(int) - video[0].astype(int)).mean() < 4  # first frame, up to H.264 loss
        sample = load_sample(root, row)
        assert sample.task.prompt(sample.puzzle) == row["prompt"]
    results = verify_dataset(root, workers=2, progress=False)
    assert all(r["success"] == 1.0 and r["exact_match"] == 1.0 and r["status"] == "ok" for r in results)
    table = {(r["task"], r["difficulty"]): r for r in summarize(results)}
    assert table[("maze", "easy")]["n"] == 6 and table[("sokoban", "tiny")]["success"] == 100.0


class MicroMaze(Maze):
    """2x2 mazes: 48 distinct puzzles, 6 up to rotation and reflection, so splits must collide (also shows a task
    given by class path)."""

    name = f"{__name__}.MicroMaze"
    levels = {"micro": MazeDifficulty(size=2, min_path_length=1)}


def test_splits_are_disjoint_in_seeds_and_puzzles(tmp_path):
    root = tmp_path / "ds"
    generate_dataset(MicroMaze.name, root, 4, split="train", difficulty="micro", workers=2, progress=False)
    generate_dataset(MicroMaze.name, root, 8, split="test", difficulty="micro", workers=2, progress=False)
    train, test = read_rows(root, split="train"), read_rows(root, split="test")
    assert len(test) == 8
    assert not {r["seed"] for r in train} & {r["seed"] for r in test}
    hashes = {split: {puzzle_hash(MicroMaze(), load_sample(root, r).puzzle) for r in rows}
              for split, rows in (("train", train), ("test", test))}
    assert not hashes["train"] & hashes["test"]
    # candidates that duplicated a train puzzle were skipped, so test indices run past 8
    assert max(int(r["id"].rsplit("_", 1)[1]) for r in test) >= 8


def test_resume_equals_uninterrupted_run(tmp_path):
    generate_dataset("maze", tmp_path / "full", 8, split="train", workers=2, progress=False)
    partial = tmp_path / "partial"
    generate_dataset("maze", partial, 3, split="train", workers=1, progress=False)
    with open(partial / "metadata.csv", "a") as handle:  # a torn row from an interrupted append
        handle.write("maze_train_easy_000003,videos/maze_tr")
    (partial / "videos" / ".maze_train_easy_000003.mp4.tmp123").write_bytes(b"half")
    generate_dataset("maze", partial, 8, split="train", workers=2, progress=False)
    cards = [(root / "README.md").read_text().replace(f"# {root.name}\n", "").replace(f" {root.name}`", "`")
             .replace(f"--out {root.name}", "") for root in (partial, tmp_path / "full")]
    assert cards[0] == cards[1]
    assert tree_bytes(partial) == tree_bytes(tmp_path / "full")


def test_kill_during_generation_loses_nothing(tmp_path):
    reference = generate_dataset("sokoban", tmp_path / "ref", 60, split="train", difficulty="easy", workers=1,
                                 progress=False)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "videoreason.cli", "data", "generate", "--task", "sokoban", "--difficulty", "easy",
           "--num", "60", "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        meta = out / "metadata.csv"
        if meta.is_file() and meta.read_text().count("\n") > 10:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    rows = read_rows(out)
    assert 10 <= len(rows) < 60, "the kill should land mid-run"
    for row in rows:  # every listed sample is complete
        assert decode_video(out / row["video"]).shape[0] == 9
        load_sample(out, row)
    assert main(["data", "generate", "--task", "sokoban", "--difficulty", "easy", "--num", "60",
                 "--out", str(out), "--workers", "2"]) == 0
    assert tree_bytes(out) == tree_bytes(reference)


def test_errors_name_the_problem(tmp_path, capsys):
    root = generate_dataset("maze", tmp_path / "ds", 2, workers=1, progress=False)
    with pytest.raises(ValueError, match=r"different spec \(differs in \['height', 'width'\]\)"):
        generate_dataset("maze", root, 2, spec=RenderSpec(height=128, width=128), progress=False)
    with pytest.raises(ValueError, match="unknown task 'chess'"):
        generate_dataset("chess", root, 2, progress=False)
    with pytest.raises(ValueError, match="unknown maze difficulty 'brutal'"):
        generate_dataset("maze", root, 2, difficulty="brutal", progress=False)
    with pytest.raises(ValueError, match="does not verify after H.264"):
        generate_dataset("maze", tmp_path / "small", 2, difficulty="hard", workers=1, progress=False)
    assert not (tmp_path / "small" / "spec.json").exists()  # so the retry with a bigger spec is not refused
    generate_dataset("maze", tmp_path / "small", 1, difficulty="hard", workers=1, progress=False, spec=RenderSpec.wan())
    assert load_spec(tmp_path / "small") == RenderSpec.wan()
    with pytest.raises(ValueError, match="`frames` 9 is too few for sokoban level 'hard': .* needs 25 frames"):
        generate_dataset("sokoban", tmp_path / "sok", 2, difficulty="hard", workers=1, progress=False)
    assert not (tmp_path / "sok").exists()  # refused before anything was written
    with pytest.raises(FileNotFoundError, match="no dataset"):
        read_rows(tmp_path / "nowhere")
    assert main(["data", "generate", "--task", "chess", "--num", "1", "--out", str(tmp_path / "x")]) == 2
    assert "unknown task 'chess'" in capsys.readouterr().err
    puzzle_file = root / read_rows(root)[0]["puzzle"]
    record = json.loads(puzzle_file.read_text())
    record["puzzle"]["rows"] = ["#####"]
    puzzle_file.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=f"bad puzzle file {puzzle_file}"):
        verify_dataset(root, workers=1, progress=False)


def test_scoring_another_models_videos(tmp_path, capsys):
    root = generate_dataset("maze", tmp_path / "ds", 4, split="test", workers=1, progress=False)
    rows = read_rows(root)
    external = tmp_path / "model_videos"
    external.mkdir()
    shutil.copy(root / rows[0]["video"], external)  # correct
    reversed_video = decode_video(root / rows[1]["video"])[::-1].copy()  # solution erased over time
    (external / Path(rows[1]["video"]).name).write_bytes(encode_mp4(reversed_video, 4))
    (external / Path(rows[2]["video"]).name).write_bytes(b"not an mp4")  # unreadable; rows[3] missing
    results = {r["id"]: r for r in verify_dataset(root, videos=external, workers=1, progress=False)}
    assert results[rows[0]["id"]]["success"] == 1.0
    assert results[rows[1]["id"]]["success"] == 0.0 and results[rows[1]["id"]]["monotonic"] < 1
    assert results[rows[2]["id"]]["status"] == "unreadable" and results[rows[3]["id"]]["status"] == "missing"
    assert main(["data", "verify", str(root), "--videos", str(external), "--out", str(tmp_path / "rep")]) == 0
    captured = capsys.readouterr()
    assert "| maze | easy | 4 |" in captured.out
    assert "warning: 2 of 4 videos missing, unreadable, scored as failures" in captured.err
    assert rows[2]["id"] in captured.err and rows[3]["id"] in captured.err
    assert main(["eval", "--videos", str(external), "--data", str(root), "--out", str(tmp_path / "ev"),
                 "--workers", "1", "--track", "false"]) == 0
    assert "warning: 2 of 4 videos missing, unreadable" in capsys.readouterr().err
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text())[0]["success"] == 25.0
    sheet = np.asarray(Image.open(tmp_path / "rep" / "preview.png"))
    assert sheet.shape[0] > 64 and sheet.shape[1] > 4 * 64  # two readable videos, five frames each


def test_trajectory_points_and_tolerance_are_settings_of_verify_and_eval(tmp_path, capsys):
    root = generate_dataset("trapfield", tmp_path / "ds", 2, split="test", difficulty="tiny", workers=1,
                            progress=False)
    external = tmp_path / "backwards"
    external.mkdir()
    for row in read_rows(root):  # the agent walks from the goal back to the start: its points start far away
        video = decode_video(root / row["video"])[::-1].copy()
        (external / Path(row["video"]).name).write_bytes(encode_mp4(video, 4))
    strict = verify_dataset(root, videos=external, workers=2, progress=False)
    assert all(r["trajectory_pr"] == 0.0 for r in strict)
    assert main(["data", "verify", str(root), "--videos", str(external), "--points", "1000", "--tolerance", "0.99",
                 "--workers", "2", "--out", str(tmp_path / "rep")]) == 0
    assert "| n_sd | points | tolerance |" in capsys.readouterr().out  # the header says which were used
    loose = json.loads((tmp_path / "rep" / "trajectory.json").read_text())
    assert loose[0]["trajectory_pr"] == 100.0 and (loose[0]["points"], loose[0]["tolerance"]) == (1000, 0.99)
    assert main(["eval", "--videos", str(external), "--data", str(root), "--out", str(tmp_path / "ev"),
                 "--tolerance", "1.5", "--track", "false"]) == 2
    assert "trajectory `tolerance` must be in (0, 1)" in capsys.readouterr().err


def test_test_boards_are_no_rotation_or_reflection_of_training_boards(tmp_path):
    root = tmp_path / "ds"
    generate_dataset("maze", root, 150, split="train", difficulty="tiny", workers=2, progress=False)
    generate_dataset("maze", root, 40, split="test", difficulty="tiny", workers=2, progress=False)
    task = Maze()
    train = {task.initial_state(load_sample(root, r).puzzle).tobytes() for r in read_rows(root, split="train")}
    test = [task.initial_state(load_sample(root, r).puzzle) for r in read_rows(root, split="test")]
    assert len(test) == 40
    # each test board's 8 images against ~150 training boards: a plain board hash lets ~1 in 6 through
    assert not any(image.tobytes() in train for board in test for image in dihedral_images(board))


def test_a_cell_size_puts_several_board_sizes_in_one_dataset_drawn_alike(tmp_path, capsys):
    out = tmp_path / "mixed"
    for level, extra in (("tiny-fill", ["--height", "72", "--width", "72", "--frames", "17", "--cell", "8"]),
                         ("easy-fill", [])):  # the second run takes the folder's spec
        assert main(["data", "generate", "--task", "maze", "--difficulty", level, "--num", "3", "--split", "test",
                     "--out", str(out), "--workers", "1", *extra]) == 0
    spec = load_spec(out)
    assert (spec.height, spec.width, spec.num_frames, spec.cell) == (72, 72, 17, 8)
    rows = read_rows(out)
    assert sorted({r["difficulty"] for r in rows}) == ["easy-fill", "tiny-fill"]
    for row in rows:
        frame = decode_video(out / row["video"], max_frames=1)[0].astype(int)
        sample, task = load_sample(out, row), Maze()
        side = 8 * len(task.initial_state(sample.puzzle))  # 8 pixels a block, whatever the board's size
        border = (72 - side) // 2
        assert side == (56 if row["difficulty"] == "tiny-fill" else 72)
        if border:  # the smaller board sits centred on the background
            assert np.abs(frame[:border] - 16).max() < 24 and np.abs(frame[:, -border:] - 16).max() < 24
        assert np.abs(frame[border + 4, border + 4] - np.array([52, 64, 104])).max() < 24  # its corner wall block
    report = verify_dataset(out, workers=1, progress=False)
    assert summarize(report)[-1]["success"] == 100.0  # every ground truth verifies at both sizes
    capsys.readouterr()
    assert main(["data", "generate", "--task", "maze", "--num", "1", "--out", str(tmp_path / "c"), "--cell", "3"]) == 2
    assert "`cell` must be at least 5 pixels" in capsys.readouterr().err and not (tmp_path / "c").exists()
    with pytest.raises(ValueError, match=r"`spec.cell` must be a positive integer or None, got 0"):
        RenderSpec(cell=0)
    assert RenderSpec.from_dict({k: v for k, v in RenderSpec().to_dict().items() if k != "cell"}).cell is None
