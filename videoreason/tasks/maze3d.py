"""Maze3D: walk an agent through a multi-floor maze, climbing ladders between floors.

Board. ``floors`` perfect mazes of ``n x n`` cells, each on a ``(2n+1) x (2n+1)`` block grid as in
`videoreason.tasks.maze` (walls, passages, cells at odd coordinates), stacked one above the other. Each pair of
consecutive floors is joined by one ladder: the same cell on both floors shows ``ladder``. The start is a cell of
the ground floor, the goal one of the top floor; the floors and ladders form a tree, so there is exactly one path,
and it climbs every ladder once. The solver is BFS.

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

from videoreason.tasks.agent import AgentBoard, AgentTask, distances, straightest_shortest_path
from videoreason.tasks.base import MIN_CELL_PIXELS, JsonRecord, Parsed, PathSolution, round_up
from videoreason.tasks.grid import DIRECTIONS, Cell
from videoreason.tasks.maze import STYLES, carve_tree
from videoreason.tasks.render import BACKGROUND, CellGeometry, RenderSpec, classify_points, frame_state_indices

WALL, FLOOR, START, GOAL, LADDER, AGENT = range(6)
_CHARS = {"#": WALL, ".": FLOOR, "S": START, "G": GOAL, "H": LADDER}
MAX_DRAWS = 10_000
DEPTH = 0.6  # a block row's height on screen, in block widths
SHEAR = 0.8  # rightward shift per receding row, in row heights
GAP = 1.0  # rows of background between floors


@dataclass(frozen=True)
class Maze3DPuzzle(JsonRecord):
    """Floors from the ground up, each as text rows of ``#`` (wall), ``.`` (floor), ``S`` (start), ``G`` (goal)
    and ``H`` (ladder; it joins the same cell of the floor above or below, which also shows ``H``)."""

    floors: tuple[tuple[str, ...], ...]

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
        text = ["".join(f) for f in self.floors]
        if sum(t.count("S") for t in text) != 1 or sum(t.count("G") for t in text) != 1:
            raise ValueError("`floors` must contain exactly one 'S' and one 'G'")
        grid = self.grid.reshape(len(self.floors), side, side)
        for floor, r, c in zip(*np.nonzero(grid == LADDER), strict=True):
            below = floor > 0 and grid[floor - 1, r, c] == LADDER
            above = floor < len(grid) - 1 and grid[floor + 1, r, c] == LADDER
            if not (below or above) or r % 2 == 0 or c % 2 == 0:
                raise ValueError(f"the ladder at floor {floor}, block {(int(r), int(c))} must be on a cell and have a "
                                 f"ladder at the same cell of the floor above or below")

    @property
    def side(self) -> int:
        """Blocks per floor side (``2n + 1``)."""
        return len(self.floors[0])

    @property
    def grid(self) -> np.ndarray:
        """The stacked label grid ``[floors * side, side]``, the ground floor first, without the agent."""
        return np.array([[_CHARS[ch] for ch in row] for floor in self.floors for row in floor], dtype=np.int8)

    @property
    def start(self) -> Cell:
        return _find(self.grid, START)

    @property
    def goal(self) -> Cell:
        return _find(self.grid, GOAL)


@dataclass(frozen=True)
class Maze3DSolution(PathSolution):
    """The agent's walk as cells ``[row, col]`` of the stacked grid, start to goal inclusive."""


@dataclass(frozen=True)
class Maze3DDifficulty:
    """Floors, cells per floor side, and the range of the path's moves (ladder climbs included)."""

    floors: int
    size: int
    min_path_length: int
    max_moves: int

    def __post_init__(self) -> None:
        if self.floors < 2 or self.size < 2:
            raise ValueError(f"`floors` and `size` must be >= 2, got {self.floors} and {self.size}")
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
    }
    puzzle_type = Maze3DPuzzle
    solution_type = Maze3DSolution

    def frame_size(self, difficulty: str | Maze3DDifficulty, height: int, width: int) -> tuple[int, int]:
        """Rows of blocks at least ``MIN_CELL_PIXELS`` high in the oblique view (``ObliqueView``)."""
        level = self.difficulty(difficulty)
        side = 2 * level.size + 1
        block = MIN_CELL_PIXELS / DEPTH  # block width whose rows are MIN_CELL_PIXELS high
        return (max(height, round_up(DEPTH * (level.floors * side + (level.floors - 1) * GAP) * block, 16)),
                max(width, round_up(side * (1 + SHEAR * DEPTH) * block, 16)))

    def max_frames(self, difficulty: str | Maze3DDifficulty) -> int:
        return self.difficulty(difficulty).max_moves + 1  # one move per frame

    def generate(self, rng: np.random.Generator, difficulty: str | Maze3DDifficulty) -> Maze3DPuzzle:
        level = self.difficulty(difficulty)
        n, side = level.size, 2 * level.size + 1
        for _ in range(MAX_DRAWS):
            floors = []
            for _ in range(level.floors):
                grid = np.full((side, side), "#")
                grid[1::2, 1::2] = "."
                for a, b in carve_tree(n, STYLES[int(rng.integers(len(STYLES)))], rng):
                    (ra, ca), (rb, cb) = divmod(a, n), divmod(b, n)
                    grid[ra + rb + 1, ca + cb + 1] = "."
                floors.append(grid)
            taken: set[tuple[int, int, int]] = set()
            for floor in range(level.floors - 1):  # one ladder per pair of floors, never two on one cell
                free = [c for c in range(n * n) if (floor, *divmod(c, n)) not in taken]
                r, c = divmod(free[int(rng.integers(len(free)))], n)
                floors[floor][2 * r + 1, 2 * c + 1] = floors[floor + 1][2 * r + 1, 2 * c + 1] = "H"
                taken |= {(floor, r, c), (floor + 1, r, c)}
            ends = []
            for floor, mark in ((0, "S"), (level.floors - 1, "G")):
                free = [c for c in range(n * n) if (floor, *divmod(c, n)) not in taken]
                r, c = divmod(free[int(rng.integers(len(free)))], n)
                floors[floor][2 * r + 1, 2 * c + 1] = mark
                ends.append((floor * side + 2 * r + 1, 2 * c + 1))
            puzzle = Maze3DPuzzle(floors=tuple(tuple("".join(row) for row in f) for f in floors))
            moves = _board(puzzle).moves
            steps = distances(moves, ends[1]).get(ends[0])
            if steps is not None and level.min_path_length <= steps <= level.max_moves:
                return puzzle
        raise ValueError(f"no {level.floors}-floor maze of {n}x{n} cells with a path of {level.min_path_length} to "
                         f"{level.max_moves} moves in {MAX_DRAWS} draws")

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


class ObliqueView:
    """Where the blocks of a stacked ``floors x side x side`` board fall in a frame of ``spec`` (module docstring):
    block width ``block`` and row height ``row`` in pixels, floor ``f`` drawn in band ``floors - 1 - f`` from the
    top."""

    def __init__(self, floors: int, side: int, spec: RenderSpec) -> None:
        self.floors, self.side, self.spec = floors, side, spec
        width_units = side * (1 + SHEAR * DEPTH)  # in block widths
        height_units = DEPTH * (floors * side + (floors - 1) * GAP)
        self.block = min((spec.width - 2 * spec.margin) / width_units, (spec.height - 2 * spec.margin) / height_units)
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
    grid = puzzle.grid
    side, height = puzzle.side, len(grid)
    walls = grid == WALL

    def moves(cell: Cell) -> list[Cell]:
        row, c = cell
        r = row % side
        if r % 2 == 0 or c % 2 == 0:
            return []
        out = [(row + 2 * dr, c + 2 * dc) for dr, dc in DIRECTIONS.values()
               if 0 < r + 2 * dr < side and 0 < c + 2 * dc < side and not walls[row + dr, c + dc]]
        if grid[row, c] == LADDER:
            out += [(row + d, c) for d in (-side, side) if 0 <= row + d < height and grid[row + d, c] == LADDER]
        return out

    start, goal = puzzle.start, puzzle.goal
    path = straightest_shortest_path(moves, start, goal)
    return AgentBoard(layout=grid, agent=AGENT, start=start, goal=goal, hazards=walls, moves=moves,
                      reference=tuple(path or (start,)))
