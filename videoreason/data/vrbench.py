"""Import VR-Bench levels (the on-disk format of its public generator) as a dataset of ours.

VR-Bench writes one level as ``<skin>/<difficulty>/states/<difficulty>_<NNNN>.json`` (with ``videos/`` and ``images/``
beside it): a ``UnifiedState`` with ``game_type``, ``grid.data`` (row-major integer codes), ``entities.player`` /
``entities.goal`` (``grid_pos`` as ``row`` / ``col``) and ``render``. What is imported, and as what:

- ``trapfield`` (0 floor, 1 trap, 2 player, 3 goal) -> `TrapField`;
- ``maze`` (0 floor, 1 wall, 2 player, 3 goal) -> `TrapField` with the walls as traps: VR-Bench's maze agent steps
  one block at a time and never onto a wall, TrapField's rule exactly (our ``maze_agent`` steps cell to cell);
- ``sokoban`` (0 floor, 1 wall, 2 box, 3 target, 4 box on target, 5 player, 6 player on target) -> `Sokoban`;
- ``maze3d`` (no grid; ``metadata`` holds ``grid_size``, the ``cubes`` of its paths, ``start_pos`` / ``goal_pos``
  and the ``ladders``, all ``x, y, z``) -> `Maze3D`: walks are 2 cubes along x or y, ladders climb 3 at one
  ``x, y``, so height ``3f`` is floor ``f`` and the cubes are the open blocks of floors of block mazes (``_maze3d``).
  Its paths branch without loops, so the one walk from start to goal is both VR-Bench's and our planner's.

VR-Bench's reference is kept for exact match: its videos walk the first shortest path of a breadth-first search
that tries up, down, left, right in that order (``generation/path_finder.py``), stored as the puzzle's
``reference``. Sokoban keeps our push-optimal planner's solution (VR-Bench's has as few pushes; its walks between
pushes may differ). ``pathfinder`` levels (Bezier roads in pixels, no grid) are reported as skipped. Each record
keeps the level's source file (``source``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from videoreason.data.card import write_card
from videoreason.data.dataset import SPLITS, metadata_path
from videoreason.data.generate import _append_row, _prepare, _Snapshot, write_sample
from videoreason.data.verify import write_preview
from videoreason.tasks.agent import distances
from videoreason.tasks.base import MIN_CELL_PIXELS, resolve_task
from videoreason.tasks.grid import Cell
from videoreason.tasks.maze3d import Maze3DPuzzle, oblique_frame
from videoreason.tasks.records import JsonRecord
from videoreason.tasks.render import RenderSpec
from videoreason.tasks.sokoban import SokobanPuzzle
from videoreason.tasks.trapfield import TrapFieldPuzzle

VR_BENCH_ORDER = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right: VR-Bench's search order
FIELD_CHARS = {0: ".", 1: "x", 2: "S", 3: "G"}  # trapfield and maze codes (a maze's walls become traps)
SOKOBAN_CODES = {0: "floor", 1: "wall", 2: "box", 3: "target", 4: "box_on_target", 5: "player",
                 6: "player_on_target"}
NO_GRID = {"pathfinder": "its roads are Bezier curves in pixels, not a grid"}
PIXELS_PER_CELL = 8
LADDER = 3  # VR-Bench's 3-D maze: a walk is 2 cubes along x or y, a ladder climbs 3 cubes


@dataclass(frozen=True)
class Level:
    """One imported level: our task, its VR-Bench difficulty and the puzzle."""

    source: Path
    task: str
    difficulty: str
    puzzle: JsonRecord


def vrbench_reference(walkable: Callable[[Cell], bool], shape: tuple[int, int], start: Cell, goal: Cell
                      ) -> tuple[Cell, ...]:
    """VR-Bench's reference walk: of the shortest walks, the first its breadth-first search finds (directions tried
    up, down, left, right), i.e. the lexicographically smallest sequence of direction indices."""
    def moves(cell: Cell) -> list[Cell]:
        out = []
        for dr, dc in VR_BENCH_ORDER:
            nxt = (cell[0] + dr, cell[1] + dc)
            if 0 <= nxt[0] < shape[0] and 0 <= nxt[1] < shape[1] and walkable(nxt):
                out.append(nxt)
        return out

    to_goal = distances(moves, goal)
    if start not in to_goal:
        raise ValueError(f"no walk from the player {start} to the goal {goal}")
    walk = [start]
    while walk[-1] != goal:
        walk.append(next(n for n in moves(walk[-1]) if to_goal.get(n) == to_goal[walk[-1]] - 1))
    return tuple(walk)


def read_level(path: Path) -> Level:
    """One VR-Bench state file as a `Level`; a ``ValueError`` names the file and what is wrong (or unsupported)."""
    try:
        state = json.loads(path.read_text())
        game = state["game_type"]
        if game in NO_GRID:
            raise ValueError(f"{game} levels cannot be imported: {NO_GRID[game]}")
        difficulty = f"vrbench-{path.parent.parent.name}"
        if game in ("maze3d", "3d_maze"):
            return Level(path, "maze3d", difficulty, _maze3d(state["metadata"]))
        grid = [[int(v) for v in row] for row in state["grid"]["data"]]
        if game in ("trapfield", "maze"):
            return Level(path, "trapfield", difficulty, _field(grid, state["entities"]))
        if game == "sokoban":
            return Level(path, "sokoban", difficulty, _sokoban(grid))
        raise ValueError(f"unknown game_type {game!r}")
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a VR-Bench state file ({type(err).__name__}: {err})") from err
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def _field(grid: list[list[int]], entities: dict[str, Any]) -> TrapFieldPuzzle:
    unknown = sorted({v for row in grid for v in row} - set(FIELD_CHARS))
    if unknown:
        raise ValueError(f"grid codes {unknown} are not floor (0), wall or trap (1), player (2) or goal (3)")
    start, goal = (_grid_pos(entities[k]) for k in ("player", "goal"))
    rows = [[FIELD_CHARS[v] if v in (0, 1) else "." for v in row] for row in grid]
    for cell, ch in ((start, "S"), (goal, "G")):
        if rows[cell[0]][cell[1]] == "x":
            raise ValueError(f"the {'player' if ch == 'S' else 'goal'} {cell} stands on a blocked cell")
        rows[cell[0]][cell[1]] = ch
    blocked = {(r, c) for r, row in enumerate(grid) for c, v in enumerate(row) if v == 1}
    reference = vrbench_reference(lambda cell: cell not in blocked, (len(grid), len(grid[0])), start, goal)
    return TrapFieldPuzzle(rows=tuple("".join(row) for row in rows), reference=reference)


def _sokoban(grid: list[list[int]]) -> SokobanPuzzle:
    unknown = sorted({v for row in grid for v in row} - set(SOKOBAN_CODES))
    if unknown:
        raise ValueError(f"grid codes {unknown} are not Sokoban codes 0-6")
    cells: dict[str, list[Cell]] = {name: [] for name in ("wall", "target", "box", "player")}
    for r, row in enumerate(grid):
        for c, v in enumerate(row):
            for part in SOKOBAN_CODES[v].split("_on_"):
                if part != "floor":
                    cells[part].append((r, c))
    if len(cells["player"]) != 1:
        raise ValueError(f"the grid shows {len(cells['player'])} players, not one")
    return SokobanPuzzle(height=len(grid), width=len(grid[0]), walls=tuple(cells["wall"]),
                         targets=tuple(cells["target"]), boxes=tuple(cells["box"]), player=cells["player"][0])


def _maze3d(meta: dict[str, Any]) -> Maze3DPuzzle:
    """VR-Bench's 3-D maze (the cubes of its paths, ``x, y, z``; walks of 2 cubes along x or y at one height,
    ladders climbing 3 at one ``x, y``) as floors of block mazes: height ``3f`` is floor ``f``, block ``(y, x)``
    (shifted by one when the start's coordinates are even, so that cells sit at odd blocks), a cube an open block,
    a ladder ``H`` on the two floors it joins. Refused when a ladder is not 3 high or ladders on one ``x, y``
    would join floors VR-Bench does not (``H`` joins every pair of consecutive floors that shows it)."""
    cubes = {tuple(int(v) for v in cube) for cube in meta["cubes"]}
    start, goal = (tuple(int(v) for v in meta[key]) for key in ("start_pos", "goal_pos"))
    shift = (1 - start[0] % 2, 1 - start[1] % 2)  # cells at odd blocks
    blocks = {(x + shift[0], y + shift[1], z) for x, y, z in cubes | {start, goal}}
    if any(z % LADDER for *_, z in blocks):
        raise ValueError(f"cube heights {sorted({z for *_, z in blocks if z % LADDER})} are not multiples of "
                         f"{LADDER} (VR-Bench's ladder height)")
    if any(x % 2 == 0 and y % 2 == 0 for x, y, _ in blocks):
        raise ValueError("a cube sits between four cells (VR-Bench's walks never put one there)")
    floors = max(z for *_, z in blocks) // LADDER + 1
    size = max(max(x, y) for x, y, _ in blocks) // 2 + 1
    side = 2 * size + 1
    rows = [[["." if (c, r, f * LADDER) in blocks else "#" for c in range(side)] for r in range(side)]
            for f in range(max(floors, 2))]
    joined = set()
    for ladder in meta.get("ladders", []):
        x, y, z = (int(v) for v in ladder["base_pos"])
        if int(ladder["height"]) != LADDER or z % LADDER:
            raise ValueError(f"the ladder at {(x, y, z)} climbs {ladder['height']}, not {LADDER} from a floor")
        x, y, floor = x + shift[0], y + shift[1], z // LADDER
        joined.add((x, y, floor))
        for f in (floor, floor + 1):
            rows[f][y][x] = "H"
    for x, y, f in {(x, y, f) for f in range(len(rows) - 1) for y in range(side) for x in range(side)
                    if rows[f][y][x] == rows[f + 1][y][x] == "H"} - joined:
        raise ValueError(f"ladders above one another at x, y = {(x - shift[0], y - shift[1])} would also join "
                         f"heights {LADDER * f} and {LADDER * (f + 1)}, which VR-Bench does not")
    ends = [(z // LADDER * side + y + shift[1], x + shift[0]) for x, y, z in (start, goal)]
    return Maze3DPuzzle(floors=tuple(tuple("".join(row) for row in floor) for floor in rows), start=ends[0],
                        goal=ends[1])


def _grid_pos(entity: dict[str, Any]) -> Cell:
    """An entity's ``grid_pos`` as ``(row, col)`` (VR-Bench writes ``row`` / ``col``; ``x`` / ``y`` also read)."""
    pos = entity["grid_pos"]
    return (int(pos["row"]), int(pos["col"])) if "row" in pos else (int(pos["y"]), int(pos["x"]))


def frame_side(level: Level, cell_pixels: float) -> int:
    """The square frame side that draws ``level``'s cells (Maze3D: block rows) ``cell_pixels`` high."""
    if isinstance(level.puzzle, Maze3DPuzzle):
        return max(oblique_frame(len(level.puzzle.floors), level.puzzle.side // 2, cell_pixels))
    return int(cell_pixels * max(resolve_task(level.task).grid_shape(level.puzzle)))


def find_levels(source: str | Path) -> list[Path]:
    """VR-Bench state files under ``source`` (``**/states/*.json``), sorted."""
    root = Path(source)
    if not root.is_dir():
        raise ValueError(f"VR-Bench folder {root} does not exist")
    found = sorted(root.rglob("states/*.json"))
    if not found:
        raise ValueError(f"no VR-Bench levels under {root}: expected <skin>/<difficulty>/states/<level>.json files "
                         "as VR-Bench's generator writes them")
    return found


def import_vrbench(source: str | Path, out: str | Path, split: str = "test", frames: int | None = None,
                   size: int | None = None, fps: int = 4, progress: bool = True) -> tuple[Path, dict[str, str]]:
    """Import every grid level under ``source`` into a new dataset folder ``out``; returns the folder and the levels
    skipped (file -> why). Every sample is solved, rendered and verified like a generated one.

    Args:
        source: a VR-Bench output folder (or any folder above its ``states/`` folders).
        out: new dataset folder (must not hold a dataset yet).
        split: the split the levels go to (a benchmark is a test set).
        frames: video frames (default: the longest reference walk + 1; fewer is refused, naming the level).
        size: frame height and width in pixels (default: 8 per cell of the largest board).
        fps: frames per second of the videos.
        progress: show a progress bar.
    """
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}")
    root = Path(out)
    if metadata_path(root).is_file():
        raise ValueError(f"{root} already holds a dataset; import into a new folder")
    levels, skipped = [], {}
    for path in find_levels(source):
        try:
            levels.append(read_level(path))
        except ValueError as err:
            skipped[str(path)] = str(err).removeprefix(f"{path}: ")
    if not levels:
        raise ValueError(f"none of the {len(skipped)} levels under {source} can be imported: "
                         + "; ".join(sorted(set(skipped.values()))[:3]))
    lengths = {lv.source: len(resolve_task(lv.task).states(lv.puzzle, resolve_task(lv.task).solve(lv.puzzle)))
               for lv in levels}
    longest = max(lengths, key=lengths.get)
    frames = frames or lengths[longest]
    if frames < lengths[longest]:
        raise ValueError(f"`frames` {frames} is too few: {longest} needs {lengths[longest]}")
    size = size or max(frame_side(lv, PIXELS_PER_CELL) for lv in levels)
    least = {lv.source: frame_side(lv, MIN_CELL_PIXELS) for lv in levels}  # each level's smallest frame
    largest = max(least, key=least.get)
    if size < least[largest]:
        raise ValueError(f"`size` {size} is too small: {largest} needs {least[largest]} pixels for cells of "
                         f"{MIN_CELL_PIXELS} pixels at least")
    spec = RenderSpec(height=size, width=size, num_frames=frames, fps=fps)
    before = _Snapshot.of(root)
    try:
        _prepare(root, spec)
        for index, level in enumerate(tqdm(levels, desc="import", unit="level", disable=not progress)):
            sample_id = f"{level.task}_{split}_{level.difficulty}_{index:06d}"
            row = write_sample(resolve_task(level.task), level.puzzle, sample_id, root, spec, split, index,
                               level.difficulty, extra={"source": str(level.source)})
            before.written.append(sample_id)
            _append_row(root, row, spec)
    except BaseException:
        before.restore()
        raise
    write_preview(root, root / "preview.png")
    write_card(root)
    return root, skipped
