"""Maze3D: walk an agent through a multi-floor maze, climbing ladders between floors.

Board. ``floors`` mazes of ``n x n`` cells, each on a ``(2n+1) x (2n+1)`` block grid as in
`videoreason.tasks.maze` (walls, passages, cells at odd coordinates), stacked one above the other. A ladder joins
the same cell of two consecutive floors (both show ``ladder``). The classic levels (``tiny`` to ``expert``) have
perfect floors, one ladder per pair of floors, the start on the ground floor and the goal on the top floor, so there
is exactly one path and it climbs every ladder once. The ``vr-*`` levels are the wider family of VR-Bench's 3-D
mazes: up to ``ladders`` ladders per pair of floors anywhere (on branches too), floors with a ``loops`` share of
their inner walls opened (not perfect mazes), and the start and goal on any cell of any floor, ladder cells included
(the puzzle's ``start`` / ``goal`` fields; such an end is drawn as the start or goal, and its ladder shows on the
floor it joins). ``vr-easy`` / ``vr-medium`` / ``vr-hard`` have the cells and floors of VR-Bench's 6x6x5 / 8x8x7 /
10x10x9 voxel grids (walks of 2 voxels, ladders of 3). The solver is BFS, fewest turns among shortest paths.

View. A fixed oblique view that keeps every block visible: each floor is drawn as a parallelogram (block rows
foreshortened to 0.6 of a block's width and shifted right by 0.8 of their height per row as they recede), floors
stacked from the ground floor at the bottom of the frame to the top floor at the top, with a gap of one block row
between them. So the floor the agent is on is where it is drawn. The parser samples a patch around each block's
projected centre (`videoreason.tasks.render.classify_points`); the board is read as one label grid
``[floors * (2n+1), 2n+1]``, floor ``f`` in rows ``f * (2n+1)`` to ``(f + 1) * (2n+1) - 1``.

Agent video and verdict: the shared agent rules and metrics of `videoreason.tasks.agent` (success, P/R/F1 over
visited cells, exact match, ``goal_reached``, ``hazard_free`` = never on a wall block, ``efficiency``,
``continuity``, ``progress``, ``layout_preserved``, and the trajectory metrics ``trajectory_pr/sr/sd/em`` in frame
coordinates of the oblique view). A legal move goes to the next cell of the same floor through an open passage, or
up or down a ladder (from a ladder cell to the same cell of the floor above or below): one move per frame.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from videoreason.tasks.agent import AgentBoard, AgentTask, straightest_shortest_path
from videoreason.tasks.base import MIN_CELL_PIXELS, round_up
from videoreason.tasks.grid import DIRECTIONS, Cell, checked_cell
from videoreason.tasks.maze import STYLES, carve_tree
from videoreason.tasks.records import JsonRecord, PathSolution
from videoreason.tasks.render import BACKGROUND, CellGeometry, RenderSpec, classify_points, frame_state_indices
from videoreason.tasks.verdict import Parsed

WALL, FLOOR, START, GOAL, LADDER, AGENT = range(6)
_CHARS = {"#": WALL, ".": FLOOR, "S": START, "G": GOAL, "H": LADDER}
MAX_DRAWS = 10_000
DEPTH = 0.6  # a block row's height on screen, in block widths
SHEAR = 0.8  # rightward shift per receding row, in row heights
GAP = 1.0  # rows of background between floors


@dataclass(frozen=True)
class Maze3DPuzzle(JsonRecord):
    """Floors from the ground up, each as text rows of ``#`` (wall), ``.`` (floor), ``S`` (start), ``G`` (goal)
    and ``H`` (ladder; it joins the same cell of the floor above or below, which also shows ``H``). An end on a
    ladder cell is given as ``start`` / ``goal`` (``[row, col]`` of the stacked grid, floor ``f`` in rows
    ``f * side`` to ``(f + 1) * side - 1``) instead of its letter; either end may be given this way."""

    floors: tuple[tuple[str, ...], ...]
    start: Cell | None = None
    goal: Cell | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.floors, tuple) or len(self.floors) < 2 or any(
                not isinstance(f, tuple) or not f or any(not isinstance(r, str) for r in f) for f in self.floors):
            raise ValueError("`floors` must be a list of at least 2 floors, each a non-empty list of strings")
        side = len(self.floors[0])
        if side < 5 or side % 2 == 0 or any(len(f) != side or any(len(r) != side for r in f) for f in self.floors):
            raise ValueError(f"every floor must be a square of the same odd side >= 5, got sides "
                             f"{sorted({len(r) for f in self.floors for r in f} | {len(f) for f in self.floors})}")
        bad = sorted({ch for f in self.floors for r in f for ch in r} - set(_CHARS))
        if bad:
            raise ValueError(f"`floors` has unknown characters {bad}; use '#', '.', 'S', 'G', 'H'")
        text = "".join("".join(f) for f in self.floors)
        for key, letter in (("start", "S"), ("goal", "G")):
            given = getattr(self, key)
            if given is None and text.count(letter) != 1:
                raise ValueError(f"`floors` must contain exactly one {letter!r} (or give `{key}`)")
            if given is not None:
                if letter in text:
                    raise ValueError(f"give the {key} either as {letter!r} in `floors` or as `{key}`, not both")
                cell = checked_cell(given, (len(self.floors) * side, side), f"`{key}`")
                if cell[0] % side % 2 == 0 or cell[1] % 2 == 0 or self.floors[cell[0] // side][cell[0] % side][
                        cell[1]] not in ".H":
                    raise ValueError(f"`{key}` {cell} must be a floor or ladder cell (odd row and column of its floor)")
                object.__setattr__(self, key, cell)
        if self.start is not None and self.start == self.goal:
            raise ValueError("`start` and `goal` must differ")
        grid = self.ladders.reshape(len(self.floors), side, side)
        for floor, r, c in zip(*np.nonzero(grid), strict=True):
            below = floor > 0 and grid[floor - 1, r, c]
            above = floor < len(grid) - 1 and grid[floor + 1, r, c]
            if not (below or above) or r % 2 == 0 or c % 2 == 0:
                raise ValueError(f"the ladder at floor {floor}, block {(int(r), int(c))} must be on a cell and have a "
                                 f"ladder at the same cell of the floor above or below")

    @property
    def side(self) -> int:
        """Blocks per floor side (``2n + 1``)."""
        return len(self.floors[0])

    def to_dict(self) -> dict:
        out = super().to_dict()
        for key in ("start", "goal"):
            if out[key] is None:  # ends given by letter keep their JSON (and hashes) as before
                del out[key]
        return out

    @property
    def grid(self) -> np.ndarray:
        """The stacked label grid ``[floors * side, side]``, the ground floor first, without the agent (an end on a
        ladder shows as the end)."""
        grid = np.array([[_CHARS[ch] for ch in row] for floor in self.floors for row in floor], dtype=np.int8)
        for cell, label in ((self.start, START), (self.goal, GOAL)):
            if cell is not None:
                grid[cell] = label
        return grid

    @property
    def ladders(self) -> np.ndarray:
        """bool ``[floors * side, side]``: the ladder cells, ends on ladders included."""
        return np.array([[ch == "H" for ch in row] for floor in self.floors for row in floor])

    def end_cells(self) -> tuple[Cell, Cell]:
        """The start and goal cells of the stacked grid."""
        grid = self.grid
        return _find(grid, START), _find(grid, GOAL)


@dataclass(frozen=True)
class Maze3DSolution(PathSolution):
    """The agent's walk as cells ``[row, col]`` of the stacked grid, start to goal inclusive."""


@dataclass(frozen=True)
class Maze3DDifficulty:
    """Floors, cells per floor side, the range of the path's moves (ladder climbs included); and for the wider
    family, the most ladders per pair of floors, the share of inner walls opened on each floor, and ``open_ends``
    (start on any ground-floor cell, goal on any cell of any floor, ladder cells included)."""

    floors: int
    size: int
    min_path_length: int
    max_moves: int
    ladders: int = 1
    loops: float = 0.0
    open_ends: bool = False

    @property
    def classic(self) -> bool:
        """Perfect floors, one ladder per pair, start on the ground floor and goal on the top floor."""
        return (self.ladders, self.loops, self.open_ends) == (1, 0.0, False)

    def __post_init__(self) -> None:
        if self.floors < 2 or self.size < 2:
            raise ValueError(f"`floors` and `size` must be >= 2, got {self.floors} and {self.size}")
        if not 1 <= self.ladders <= self.size**2:
            raise ValueError(f"`ladders` must be in [1, size^2], got {self.ladders}")
        if not 0 <= self.loops <= 1:
            raise ValueError(f"`loops` must be in [0, 1], got {self.loops}")
        if not self.floors - 1 <= self.min_path_length <= self.max_moves:
            raise ValueError(f"need floors - 1 <= min_path_length <= max_moves, got {self.min_path_length} and "
                             f"{self.max_moves}")


def _find(grid: np.ndarray, label: int) -> Cell:
    r, c = np.argwhere(grid == label)[0]
    return int(r), int(c)


class Maze3D(AgentTask[Maze3DPuzzle, Maze3DSolution, Maze3DDifficulty]):
    """Multi-floor mazes in an oblique view, solved by an agent video (see the module docstring)."""

    name = "maze3d"
    classes = ("wall", "floor", "start", "goal", "ladder", "agent")
    # the frame counts they fit: `tiny` 9 frames, `easy` 17, `medium` and `hard` Wan's 33, `expert` 81
    levels: ClassVar[dict[str, Maze3DDifficulty]] = {
        "tiny": Maze3DDifficulty(floors=2, size=2, min_path_length=3, max_moves=8),
        "easy": Maze3DDifficulty(floors=2, size=3, min_path_length=5, max_moves=16),
        "medium": Maze3DDifficulty(floors=3, size=3, min_path_length=8, max_moves=32),
        "hard": Maze3DDifficulty(floors=3, size=4, min_path_length=12, max_moves=32),
        "expert": Maze3DDifficulty(floors=4, size=5, min_path_length=20, max_moves=80),
        # VR-Bench's family: several ladders, loops, ends anywhere; easy / medium / hard as its voxel grids
        "vr-tiny": Maze3DDifficulty(floors=2, size=2, min_path_length=3, max_moves=8, ladders=2, loops=0.25,
                                    open_ends=True),
        "vr-easy": Maze3DDifficulty(floors=2, size=3, min_path_length=5, max_moves=16, ladders=2, loops=0.15,
                                    open_ends=True),
        "vr-medium": Maze3DDifficulty(floors=3, size=4, min_path_length=8, max_moves=32, ladders=3, loops=0.15,
                                      open_ends=True),
        "vr-hard": Maze3DDifficulty(floors=3, size=5, min_path_length=12, max_moves=32, ladders=3, loops=0.15,
                                    open_ends=True),
    }
    puzzle_type = Maze3DPuzzle
    solution_type = Maze3DSolution

    def frame_size(self, difficulty: str | Maze3DDifficulty, height: int, width: int) -> tuple[int, int]:
        """Rows of blocks at least ``MIN_CELL_PIXELS`` high in the oblique view (``ObliqueView``)."""
        level = self.difficulty(difficulty)
        needed = oblique_frame(level.floors, level.size, MIN_CELL_PIXELS)
        return max(height, needed[0]), max(width, needed[1])

    def max_frames(self, difficulty: str | Maze3DDifficulty) -> int:
        return self.difficulty(difficulty).max_moves + 1  # one move per frame

    def generate(self, rng: np.random.Generator, difficulty: str | Maze3DDifficulty) -> Maze3DPuzzle:
        level = self.difficulty(difficulty)
        draw = _draw_classic if level.classic else _draw_wide
        for _ in range(MAX_DRAWS):
            puzzle = draw(rng, level)
            path = _board(puzzle).reference  # a shortest path, or just the start when there is none
            if path[-1] == puzzle.end_cells()[1] and level.min_path_length <= len(path) - 1 <= level.max_moves:
                return puzzle
        raise ValueError(f"no {level.floors}-floor maze of {level.size}x{level.size} cells with a path of "
                         f"{level.min_path_length} to {level.max_moves} moves in {MAX_DRAWS} draws")

    def solve(self, puzzle: Maze3DPuzzle) -> Maze3DSolution:
        board = _board(puzzle)
        if board.reference[-1] != board.goal:
            raise ValueError("the maze has no path from the start to the goal")
        return Maze3DSolution(path=board.reference)

    def prompt(self, puzzle: Maze3DPuzzle) -> str:
        n, floors = len(puzzle.floors[0]) // 2, len(puzzle.floors)
        return (f"A {floors}-floor maze of {n}x{n} cells, seen from above at an angle, floors stacked from the ground "
                f"floor at the bottom. Move the blue agent one cell per frame from the green start to the red goal, "
                f"climbing the brown ladders between floors, never crossing a dark wall.")

    def board(self, puzzle: Maze3DPuzzle) -> AgentBoard:
        """The puzzle as the shared agent verdict sees it."""
        return _board(puzzle)

    # ---------------------------------------------------------------- the oblique view
    def render(self, puzzle: Maze3DPuzzle, states: np.ndarray, spec: RenderSpec) -> np.ndarray:
        """Label grids ``[T, floors * side, side]`` in the oblique view, ``spec.num_frames`` frames (frame ``f``
        shows state ``round(f * (T - 1) / (F - 1))``, as every task)."""
        states = np.asarray(states)
        view = ObliqueView(len(puzzle.floors), puzzle.side, spec)
        palette = np.concatenate([self.colors(spec), np.array([BACKGROUND], dtype=np.uint8)])
        where = view.pixel_blocks()  # [H, W] index into a flattened state, -1 for background
        frames = np.empty((spec.num_frames, spec.height, spec.width, 3), dtype=np.uint8)
        for f, s in enumerate(frame_state_indices(len(states), spec.num_frames)):
            flat = np.append(states[s].reshape(-1), len(palette) - 1)  # the background as the last entry
            frames[f] = palette[flat[where]]
        return frames

    def parse(self, video: Any, puzzle: Maze3DPuzzle, spec: RenderSpec) -> Parsed:
        view = ObliqueView(len(puzzle.floors), puzzle.side, spec)
        half = spec.sample_fraction * min(view.block, view.row) / 2
        labels, confident = classify_points(video, view.centres(), half, spec, self.colors(spec))
        if labels is None:
            return Parsed.unreadable(self.grid_shape(puzzle))
        return Parsed(labels=labels, confidence=float(confident.mean()), geometry=view.geometry())


def _carved_floors(rng: np.random.Generator, level: Maze3DDifficulty) -> list[np.ndarray]:
    """One perfect maze per floor, as character grids."""
    n, side = level.size, 2 * level.size + 1
    floors = []
    for _ in range(level.floors):
        grid = np.full((side, side), "#")
        grid[1::2, 1::2] = "."
        for a, b in carve_tree(n, STYLES[int(rng.integers(len(STYLES)))], rng):
            (ra, ca), (rb, cb) = divmod(a, n), divmod(b, n)
            grid[ra + rb + 1, ca + cb + 1] = "."
        floors.append(grid)
    return floors


def _as_puzzle(floors: list[np.ndarray], start: Cell | None = None, goal: Cell | None = None) -> Maze3DPuzzle:
    return Maze3DPuzzle(floors=tuple(tuple("".join(row) for row in f) for f in floors), start=start, goal=goal)


def _draw_classic(rng: np.random.Generator, level: Maze3DDifficulty) -> Maze3DPuzzle:
    """Perfect floors, one ladder per pair of floors, start on the ground floor, goal on the top floor."""
    n = level.size
    floors = _carved_floors(rng, level)
    taken: set[tuple[int, int, int]] = set()
    for floor in range(level.floors - 1):  # one ladder per pair of floors, never two on one cell
        free = [c for c in range(n * n) if (floor, *divmod(c, n)) not in taken]
        r, c = divmod(free[int(rng.integers(len(free)))], n)
        floors[floor][2 * r + 1, 2 * c + 1] = floors[floor + 1][2 * r + 1, 2 * c + 1] = "H"
        taken |= {(floor, r, c), (floor + 1, r, c)}
    for floor, mark in ((0, "S"), (level.floors - 1, "G")):
        free = [c for c in range(n * n) if (floor, *divmod(c, n)) not in taken]
        r, c = divmod(free[int(rng.integers(len(free)))], n)
        floors[floor][2 * r + 1, 2 * c + 1] = mark
    return _as_puzzle(floors)


def _draw_wide(rng: np.random.Generator, level: Maze3DDifficulty) -> Maze3DPuzzle:
    """VR-Bench's family: floors with a ``loops`` share of inner walls opened, 1 to ``ladders`` ladders per pair of
    floors on any cells, the start on any ground-floor cell and the goal on any other cell of any floor."""
    n, side = level.size, 2 * level.size + 1
    floors = _carved_floors(rng, level)
    for grid in floors:
        closed = [(r, c) for r in range(1, side - 1) for c in range(1, side - 1)
                  if (r + c) % 2 == 1 and grid[r, c] == "#"]  # walls between two cells
        for k in rng.permutation(len(closed))[:int(round(level.loops * len(closed)))]:
            grid[closed[k]] = "."
    for floor in range(level.floors - 1):
        for cell in rng.choice(n * n, size=int(rng.integers(1, level.ladders + 1)), replace=False):
            r, c = divmod(int(cell), n)
            floors[floor][2 * r + 1, 2 * c + 1] = floors[floor + 1][2 * r + 1, 2 * c + 1] = "H"
    start = int(rng.integers(n * n))  # a ground-floor cell (floor 0: indices 0 .. n^2 - 1)
    goal = int(rng.integers(level.floors * n * n - 1))  # any other cell of any floor
    goal += int(goal >= start)
    floor, (r, c) = goal // (n * n), divmod(goal % (n * n), n)
    start_cell = (2 * (start // n) + 1, 2 * (start % n) + 1)
    goal_cell = (floor * side + 2 * r + 1, 2 * c + 1)
    return _as_puzzle(floors, start_cell, goal_cell)


def oblique_frame(floors: int, size: int, row_pixels: float) -> tuple[int, int]:
    """The smallest frame ``(height, width)`` (multiples of 16) whose oblique view of ``floors`` floors of
    ``size x size`` cells draws block rows ``row_pixels`` high."""
    side, block = 2 * size + 1, row_pixels / DEPTH  # the block width whose rows are row_pixels high
    return (round_up(DEPTH * (floors * side + (floors - 1) * GAP) * block, 16),
            round_up(side * (1 + SHEAR * DEPTH) * block, 16))


class ObliqueView:
    """Where the blocks of a stacked ``floors x side x side`` board fall in a frame of ``spec`` (module docstring):
    block width ``block`` and row height ``row`` in pixels, floor ``f`` drawn in band ``floors - 1 - f`` from the
    top."""

    def __init__(self, floors: int, side: int, spec: RenderSpec) -> None:
        self.floors, self.side, self.spec = floors, side, spec
        width_units = side * (1 + SHEAR * DEPTH)  # in block widths
        height_units = DEPTH * (floors * side + (floors - 1) * GAP)
        self.block = min((spec.width - 2 * spec.margin) / width_units, (spec.height - 2 * spec.margin) / height_units,
                         spec.cell or np.inf)  # a block's width
        self.row = DEPTH * self.block
        self.left = (spec.width - width_units * self.block) / 2
        self.top = (spec.height - height_units * self.block) / 2

    def band_top(self, floor: np.ndarray | int) -> np.ndarray:
        """Pixel y of the far edge of ``floor``."""
        return self.top + (self.floors - 1 - np.asarray(floor)) * (self.side + GAP) * self.row

    def corner(self, floor: np.ndarray, r: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel (x, y) of the point at fractional block coordinates ``(r, c)`` of ``floor``."""
        return self.left + c * self.block + (self.side - r) * SHEAR * self.row, self.band_top(floor) + r * self.row

    def centres(self) -> np.ndarray:
        """Pixel ``(x, y)`` of every block centre, ``[floors * side, side, 2]``."""
        rows, cols = np.meshgrid(np.arange(self.floors * self.side), np.arange(self.side), indexing="ij")
        x, y = self.corner(rows // self.side, rows % self.side + 0.5, cols + 0.5)
        return np.stack([x, y], axis=-1)

    def geometry(self) -> CellGeometry:
        """Frame-relative centres and bounding boxes of the blocks (for trajectory metrics)."""
        centres = self.centres() / (self.spec.width, self.spec.height)
        w = (self.block + SHEAR * self.row) / self.spec.width
        h = self.row / self.spec.height
        boxes = np.concatenate([centres - (w / 2, h / 2), np.broadcast_to((w, h), centres.shape)], axis=-1)
        return CellGeometry(centres=centres, boxes=boxes)

    def pixel_blocks(self) -> np.ndarray:
        """Per pixel ``[H, W]``: the flattened index of the block it shows, or ``-1`` (background, grid lines)."""
        y = np.arange(self.spec.height) + 0.5
        x = np.arange(self.spec.width) + 0.5
        out = np.full((self.spec.height, self.spec.width), -1, dtype=np.int64)
        line = self.spec.grid_line / 2
        for floor in range(self.floors):
            r = (y - self.band_top(floor)) / self.row  # [H] fractional row
            inside = (r >= 0) & (r < self.side)
            c = (x[None, :] - self.left - (self.side - r[:, None]) * SHEAR * self.row) / self.block  # [H, W]
            inside = inside[:, None] & (c >= 0) & (c < self.side)
            off_line_r = np.abs(r - np.floor(r) - 0.5)[:, None] < 0.5 - line  # not on a grid line
            clear = inside & off_line_r & (np.abs(c - np.floor(c) - 0.5) < 0.5 - line)
            row = floor * self.side + np.floor(r).astype(np.int64)[:, None]  # [H, 1]
            index = row * self.side + np.floor(c).astype(np.int64)
            out = np.where(clear, index, out)
        return out


@functools.lru_cache(maxsize=4096)
def _board(puzzle: Maze3DPuzzle) -> AgentBoard:
    """The puzzle as an `AgentBoard` (cached: rewards verify the same puzzle G times)."""
    grid, ladders = puzzle.grid, puzzle.ladders
    side, height = puzzle.side, len(grid)
    walls = grid == WALL

    def moves(cell: Cell) -> list[Cell]:
        row, c = cell
        r = row % side
        if r % 2 == 0 or c % 2 == 0:
            return []
        out = [(row + 2 * dr, c + 2 * dc) for dr, dc in DIRECTIONS.values()
               if 0 < r + 2 * dr < side and 0 < c + 2 * dc < side and not walls[row + dr, c + dc]]
        if ladders[row, c]:
            out += [(row + d, c) for d in (-side, side) if 0 <= row + d < height and ladders[row + d, c]]
        return out

    start, goal = puzzle.end_cells()
    path = straightest_shortest_path(moves, start, goal)
    return AgentBoard(layout=grid, agent=AGENT, start=start, goal=goal, hazards=walls, moves=moves,
                      reference=tuple(path or (start,)))
