"""`videoreason data import`: VR-Bench's level files (built here in its generator's format) into our datasets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from videoreason.cli import main
from videoreason.data.dataset import load_sample, read_rows
from videoreason.data.verify import verify_dataset
from videoreason.data.vrbench import import_vrbench, read_level
from videoreason.tasks.render import RenderSpec
from videoreason.tasks.trapfield import TrapField


def entity(row: int, col: int, cell: int) -> dict:
    return {"pixel_pos": {"x": col * cell + cell // 2, "y": row * cell + cell // 2},
            "bbox": {"x": col * cell, "y": row * cell, "width": cell, "height": cell,
                     "center_x": col * cell + cell // 2, "center_y": row * cell + cell // 2},
            "grid_pos": {"row": row, "col": col}}


def write_state(root: Path, game: str, difficulty: str, name: str, grid: list[list[int]] | None,
                player: tuple[int, int], goal: tuple[int, int], cell: int = 64, **metadata) -> Path:
    """A level as VR-Bench's generator saves it: <game>/<skin>/<difficulty>/states/<name>.json, a UnifiedState."""
    state = {"version": "1.0", "game_type": game,
             "entities": {"player": entity(*player, cell), "goal": entity(*goal, cell), "boxes": []},
             "render": {"cell_size": cell, "image_width": cell * 5, "image_height": cell * 5},
             "metadata": metadata}
    if grid is not None:
        state["grid"] = {"data": grid, "height": len(grid), "width": len(grid[0])}
    path = root / game / "skin_1" / difficulty / "states" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2))
    return path


@pytest.fixture()
def vrbench(tmp_path: Path) -> Path:
    src = tmp_path / "vrbench"
    field = [[2, 0, 0, 1, 0], [0, 0, 0, 1, 0], [0, 0, 3, 0, 0], [1, 0, 0, 0, 0], [0, 0, 1, 0, 0]]
    write_state(src, "trapfield", "easy", "easy_0000", field, (0, 0), (2, 2))
    maze = [[1] * 7, [1, 0, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 0, 1], [1, 0, 0, 0, 1, 0, 1], [1, 0, 1, 1, 1, 0, 1],
            [1, 0, 0, 0, 0, 0, 1], [1] * 7]
    maze[1][2], maze[3][2] = 2, 3  # VR-Bench puts them on any open block, passages included
    write_state(src, "maze", "easy", "easy_0000", maze, (1, 2), (3, 2), cell=30)
    room = [[1, 1, 1, 1, 1], [1, 5, 0, 0, 1], [1, 0, 2, 0, 1], [1, 0, 0, 3, 1], [1, 1, 1, 1, 1]]
    write_state(src, "sokoban", "easy", "easy_0001", room, (1, 1), (3, 3))
    write_state(src, "pathfinder", "easy", "easy_0002", None, (0, 0), (1, 1),
                segments=[[[10.0, 10.0], [20.0, 12.0], [30.0, 10.0]]])
    return src


def test_levels_import_verify_and_keep_vr_benchs_reference(vrbench, tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["data", "import", "--source", str(vrbench), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "imported 2 trapfield levels (vrbench-easy)" in captured.out
    assert "imported 1 sokoban levels (vrbench-easy)" in captured.out
    assert "easy_0002.json: pathfinder levels cannot be imported" in captured.err
    rows = read_rows(out)
    assert {r["split"] for r in rows} == {"test"} and len(rows) == 3
    assert all(r["success"] == 1.0 and r["exact_match"] == 1.0 for r in verify_dataset(out, workers=1,
                                                                                        progress=False))
    sources = {r["id"]: json.loads((out / r["puzzle"]).read_text())["source"] for r in rows}
    assert sorted(Path(p).relative_to(vrbench).parts[0] for p in sources.values()) == ["maze", "sokoban", "trapfield"]
    field = next(load_sample(out, r) for r in rows if "/trapfield/" in sources[r["id"]])
    # VR-Bench tries up, down, left, right: down first from the corner; our planner would go right first
    vr_walk = ((0, 0), (1, 0), (2, 0), (2, 1), (2, 2))
    assert field.puzzle.reference == vr_walk == field.solution.path
    ours = TrapField().solve(type(field.puzzle)(rows=field.puzzle.rows)).path
    assert ours != vr_walk and len(ours) == len(vr_walk)
    spec = RenderSpec(height=40, width=40, num_frames=5)
    board = TrapField().board(field.puzzle)
    video = TrapField().render(field.puzzle, np.stack([board.with_agent(c) for c in ours]), spec)
    verdict = TrapField().verdict(video, field.puzzle, spec)
    assert verdict.success and not verdict.exact_match  # a legal shortest walk, but not the benchmark's


def test_bad_levels_and_folders_are_named(vrbench, tmp_path):
    broken = vrbench / "trapfield" / "skin_1" / "hard" / "states" / "hard_0000.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"game_type": "trapfield"}')  # no grid
    with pytest.raises(ValueError, match="hard_0000.json: not a VR-Bench state file"):
        read_level(broken)
    walled = write_state(tmp_path / "other", "trapfield", "easy", "easy_0009",
                         [[2, 1, 0], [1, 1, 0], [0, 0, 3]], (0, 0), (2, 2))
    with pytest.raises(ValueError, match=r"easy_0009.json: no walk from the player \(0, 0\) to the goal"):
        read_level(walled)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no VR-Bench levels under"):
        import_vrbench(tmp_path / "empty", tmp_path / "x")
    out = tmp_path / "ds"
    with pytest.raises(ValueError, match=r"`frames` 3 is too few: .*maze/skin_1/easy/states/easy_0000.json needs \d+"):
        import_vrbench(vrbench, out, frames=3, progress=False)
    assert not out.exists()  # a refused import leaves nothing behind
    import_vrbench(vrbench, out, progress=False)
    with pytest.raises(ValueError, match="already holds a dataset"):
        import_vrbench(vrbench, out, progress=False)


def vr_walk(start: tuple[int, int, int], moves: str) -> tuple[list[dict], set[tuple[int, int, int]]]:
    """Path segments and cubes as VR-Bench's ``generate_valid_path`` makes them: ``x`` / ``y`` walk 2 cubes down
    that axis (the cube between them added), ``z`` climbs a ladder of 3."""
    segments, cubes, pos = [], {start}, start
    for move in moves:
        delta = {"x": (-2, 0, 0), "y": (0, -2, 0), "z": (0, 0, 3)}[move]
        end = tuple(p + d for p, d in zip(pos, delta, strict=True))
        if move != "z":
            cubes.add(tuple(p + d // 2 for p, d in zip(pos, delta, strict=True)))
        segments.append({"start": list(pos), "end": list(end), "type": "ladder" if move == "z" else "walk"})
        cubes.add(end)
        pos = end
    return segments, cubes


def write_maze3d(root: Path, name: str, grid_size: tuple[int, int, int], main: str, branches: dict) -> Path:
    """A 3-D maze level as VR-Bench saves it (no grid: its cubes, ends, ladders and path in ``metadata``)."""
    start = (grid_size[0] - 1, grid_size[1] - 1, 0)  # VR-Bench's start corner
    path, cubes = vr_walk(start, main)
    segments = list(path)
    for at, moves in branches.items():
        side, more = vr_walk(at, moves)
        segments += side
        cubes |= more
    ladders = [{"base_pos": s["start"], "direction": "+x", "height": 3} for s in segments if s["type"] == "ladder"]
    return write_state(root, "maze3d", "easy", name, None, (0, 0), (0, 0), grid_size=list(grid_size),
                       cubes=sorted(list(c) for c in cubes), start_pos=list(start), goal_pos=path[-1]["end"],
                       ladders=ladders, path=path)


def test_vr_bench_3d_mazes_import_as_maze3d_with_its_path_as_ours(tmp_path):
    from videoreason.tasks.maze3d import Maze3D

    src = tmp_path / "vrbench"
    # 6x6x5 (VR-Bench's easy): along y, up a ladder, along x twice; a dead-end branch at the start
    level = write_maze3d(src, "easy_0000", (6, 6, 5), "yzxx", {(5, 5, 0): "x"})
    # a goal on top of a ladder (an end on a ladder cell) and a branch that climbs
    write_maze3d(src, "easy_0001", (8, 8, 7), "xzyz", {(5, 7, 0): "y"})
    out = tmp_path / "ds"
    root, skipped = import_vrbench(src, out, progress=False)
    assert skipped == {} and len(read_rows(out)) == 2
    assert all(r["success"] == 1.0 and r["exact_match"] == 1.0 for r in verify_dataset(out, workers=1, progress=False))
    puzzle = read_level(level).puzzle
    # block (row, col) = (y, x); the dead-end branch at the start runs along x on the ground floor
    assert puzzle.floors == (("#######", "#######", "#######", "#####H#", "#####.#", "###...#", "#######"),
                             ("#######", "#######", "#######", "#....H#", "#######", "#######", "#######"))
    assert (puzzle.start, puzzle.goal) == ((5, 5), (10, 1))  # floor 1 starts at stacked row 7
    # the walk VR-Bench's video takes, cell by cell (y, up the ladder, x, x), is our planner's solution
    assert Maze3D().solve(puzzle).path == ((5, 5), (3, 5), (10, 5), (10, 3), (10, 1))
    climbed = read_level(src / "maze3d" / "skin_1" / "easy" / "states" / "easy_0001.json").puzzle
    assert climbed.floors[2][climbed.goal[0] - 2 * climbed.side][climbed.goal[1]] == "H"  # the goal is on a ladder


def test_vr_bench_3d_mazes_our_floors_cannot_hold_are_refused_by_name(tmp_path):
    src = tmp_path / "vrbench"
    stacked = write_maze3d(src, "easy_0002", (6, 6, 11), "zzz", {})  # ladders at one x, y: 0-3, 3-6, 6-9
    state = json.loads(stacked.read_text())
    state["metadata"]["ladders"] = [lad for lad in state["metadata"]["ladders"] if lad["base_pos"][2] != 3]
    stacked.write_text(json.dumps(state))  # only 0-3 and 6-9 now: our H cells would join 3-6 as well
    with pytest.raises(ValueError, match=r"easy_0002.json: ladders above one another at x, y = \(5, 5\) would also "
                                         r"join heights 3 and 6"):
        read_level(stacked)
    odd = write_maze3d(src, "easy_0003", (6, 6, 5), "y", {})
    state = json.loads(odd.read_text())
    state["metadata"]["cubes"].append([5, 5, 2])
    odd.write_text(json.dumps(state))
    with pytest.raises(ValueError, match=r"cube heights \[2\] are not multiples of 3"):
        read_level(odd)
