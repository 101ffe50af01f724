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
