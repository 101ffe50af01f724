"""Navigation: move a top-down camera through rooms and corridors to a goal object, one cell per frame.

Scene. An ``n x n`` map of walls with ``rooms`` rectangular rooms (2-4 cells a side), each floored in its own tint
(cyan, yellow, green, magenta), joined in a chain by L-shaped corridors (plain floor). The camera starts in the first
room; the goal object (red) stands in the last. The planner is BFS (fewest turns among shortest paths).

Camera. Every frame is the egocentric top-down view of the ``(2v+1) x (2v+1)`` cells around the camera (``v``: the
level's ``view``), the camera itself drawn as the blue centre cell and everything off the map as wall. So the video
shows the scene scrolling past, not a board: the model has to know where it is going from what it sees.

Exact checker (the renderer's own geometry; for tests and metrics, while training uses the embedding reward,
`videoreason.rewards.EmbeddingReward`). Each parsed frame is localised: the camera positions whose view is exactly
that frame. Positions are then chained from the start, each frame's position one legal move (or none) from the last;
where no chain continues, the frame's own candidates restart it (a teleport). The localised walk, drawn on the map,
is judged by the shared agent verdict (`videoreason.tasks.agent`): success, P/R/F1 over visited cells, exact match,
the components (``layout_preserved`` = fraction of frames that are a true view of the scene) and the trajectory
metrics, here in map coordinates (``x / n``, ``y / n``). A frame that matches no view has no position. Where cells
look alike (the middle of a corridor), a pause and a step can show the same frames; the checker then accepts any
legal walk that shows exactly those frames, placing the camera as near the goal as the frames allow.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from videoreason.checks import is_integer
from videoreason.tasks.agent import (
    COMPONENTS,
    NO_TRAJECTORY,
    AgentBoard,
    agent_verdict,
    distances,
    straightest_shortest_path,
    uniform_geometry,
)
from videoreason.tasks.base import Task, hold_solved
from videoreason.tasks.grid import Cell, checked_cell, neighbors
from videoreason.tasks.records import JsonRecord, PathSolution
from videoreason.tasks.verdict import Parsed, Verdict

WALL, FLOOR = 0, 1
TINTS = ("cyan", "yellow", "green", "magenta")  # room floors: labels 2..5
GOAL, AGENT = 6, 7
_CHARS = {"#": WALL, ".": FLOOR, **{str(k): 2 + k for k in range(len(TINTS))}}
MAX_DRAWS = 10_000


@dataclass(frozen=True)
class NavigationPuzzle(JsonRecord):
    """A scene as text rows of ``#`` (wall), ``.`` (corridor) and ``0``-``3`` (room floors by tint), the camera's
    start cell, the goal object's cell and the view radius."""

    rows: tuple[str, ...]
    start: tuple[int, int]
    goal: tuple[int, int]
    view: int = 2

    def __post_init__(self) -> None:
        if not self.rows or any(not isinstance(r, str) for r in self.rows):
            raise ValueError("`rows` must be a non-empty list of strings")
        side = len(self.rows)
        if side < 4 or any(len(r) != side for r in self.rows):
            raise ValueError(f"`rows` must be a square of side >= 4, got {side} rows of lengths "
                             f"{sorted({len(r) for r in self.rows})}")
        bad = sorted({ch for r in self.rows for ch in r} - set(_CHARS))
        if bad:
            raise ValueError(f"`rows` has unknown characters {bad}; use '#', '.', '0'-'3'")
        object.__setattr__(self, "start", checked_cell(self.start, (side, side), "`start`"))
        object.__setattr__(self, "goal", checked_cell(self.goal, (side, side), "`goal`"))
        for name in ("start", "goal"):
            if self.grid[getattr(self, name)] == WALL:
                raise ValueError(f"`{name}` {getattr(self, name)} is a wall")
        if not is_integer(self.view) or not 1 <= self.view <= 6:
            raise ValueError(f"`view` must be an integer in [1, 6], got {self.view!r}")

    @property
    def grid(self) -> np.ndarray:
        """The map's label grid ``[n, n]`` without the goal object or the camera."""
        return np.array([[_CHARS[ch] for ch in row] for row in self.rows], dtype=np.int8)


@dataclass(frozen=True)
class NavigationSolution(PathSolution):
    """The camera's walk as map cells, start to goal inclusive."""


@dataclass(frozen=True)
class NavigationDifficulty:
    """Map side, number of rooms, view radius, and the range of the shortest walk's moves."""

    size: int
    rooms: int
    view: int
    min_path_length: int
    max_moves: int

    def __post_init__(self) -> None:
        if not 2 <= self.rooms <= len(TINTS):
            raise ValueError(f"`rooms` must be in [2, {len(TINTS)}], got {self.rooms}")
        if self.size < 6:
            raise ValueError(f"`size` must be >= 6, got {self.size}")
        if not 1 <= self.min_path_length <= self.max_moves:
            raise ValueError(f"need 1 <= min_path_length <= max_moves, got {self.min_path_length}, {self.max_moves}")


class Navigation(Task[NavigationPuzzle, NavigationSolution, NavigationDifficulty]):
    """Egocentric top-down navigation to a goal object (see the module docstring)."""

    name = "navigation"
    classes = ("wall", "floor", *TINTS, "goal", "agent")
    # `tiny` fits 9 frames (8 moves), `easy` 17, `medium` and `hard` Wan's 33
    levels: ClassVar[dict[str, NavigationDifficulty]] = {
        "tiny": NavigationDifficulty(size=8, rooms=2, view=2, min_path_length=4, max_moves=8),
        "easy": NavigationDifficulty(size=10, rooms=3, view=2, min_path_length=6, max_moves=16),
        "medium": NavigationDifficulty(size=12, rooms=3, view=3, min_path_length=10, max_moves=32),
        "hard": NavigationDifficulty(size=14, rooms=4, view=3, min_path_length=14, max_moves=32),
    }
    puzzle_type = NavigationPuzzle
    solution_type = NavigationSolution
    component_names = COMPONENTS
    failed_trajectory = NO_TRAJECTORY
    dihedral = False  # a rotated scene is a different scene to a camera that always faces north

    def board_shape(self, difficulty: str | NavigationDifficulty) -> tuple[int, int]:
        return (2 * self.difficulty(difficulty).view + 1,) * 2  # the camera's view

    def max_frames(self, difficulty: str | NavigationDifficulty) -> int:
        return self.difficulty(difficulty).max_moves + 1  # one move per frame

    def generate(self, rng: np.random.Generator, difficulty: str | NavigationDifficulty) -> NavigationPuzzle:
        level = self.difficulty(difficulty)
        n = level.size
        for _ in range(MAX_DRAWS):
            grid = np.full((n, n), "#")
            rooms: list[tuple[int, int, int, int]] = []
            for _ in range(50 * level.rooms):
                if len(rooms) == level.rooms:
                    break
                h, w = (int(x) for x in rng.integers(2, 5, size=2))
                top, left = int(rng.integers(1, n - h)), int(rng.integers(1, n - w))
                if all(top + h + 1 <= t or t + rh + 1 <= top or left + w + 1 <= lf or lf + rw + 1 <= left
                       for t, lf, rh, rw in rooms):
                    rooms.append((top, left, h, w))
            if len(rooms) < level.rooms:
                continue
            for k, (top, left, h, w) in enumerate(rooms):
                grid[top:top + h, left:left + w] = str(k)
            centres = [(int(rng.integers(t, t + h)), int(rng.integers(lf, lf + w))) for t, lf, h, w in rooms]
            for (r0, c0), (r1, c1) in zip(centres, centres[1:], strict=False):  # L-shaped corridors
                corner = (r0, c1) if rng.integers(2) else (r1, c0)
                for (ra, ca), (rb, cb) in (((r0, c0), corner), (corner, (r1, c1))):
                    for r in range(min(ra, rb), max(ra, rb) + 1):
                        for c in range(min(ca, cb), max(ca, cb) + 1):
                            if grid[r, c] == "#":
                                grid[r, c] = "."
            (t0, l0, h0, w0), (t1, l1, h1, w1) = rooms[0], rooms[-1]
            start = (int(rng.integers(t0, t0 + h0)), int(rng.integers(l0, l0 + w0)))
            goal = (int(rng.integers(t1, t1 + h1)), int(rng.integers(l1, l1 + w1)))
            puzzle = NavigationPuzzle(rows=tuple("".join(row) for row in grid), start=start, goal=goal,
                                      view=level.view)
            steps = distances(_scene(puzzle).board.moves, goal).get(start)
            if steps is not None and level.min_path_length <= steps <= level.max_moves:
                return puzzle
        raise ValueError(f"no {n}x{n} scene with {level.rooms} rooms and a walk of {level.min_path_length} to "
                         f"{level.max_moves} moves in {MAX_DRAWS} draws")

    def solve(self, puzzle: NavigationPuzzle) -> NavigationSolution:
        board = _scene(puzzle).board
        if board.reference[-1] != puzzle.goal:
            raise ValueError("the scene has no walk from the start to the goal")
        return NavigationSolution(path=board.reference)

    def initial_state(self, puzzle: NavigationPuzzle) -> np.ndarray:
        return _scene(puzzle).view_at(puzzle.start)

    def states(self, puzzle: NavigationPuzzle, solution: NavigationSolution,
               max_states: int | None = None) -> np.ndarray:
        scene = _scene(puzzle)
        views = [scene.view_at(cell) for cell in solution.path]
        return hold_solved(views, max_states, "scene", f"to walk its {len(solution.path) - 1} moves one per frame")

    def prompt(self, puzzle: NavigationPuzzle) -> str:
        return ("A top-down camera view of rooms and corridors; the blue marker is you. Move one cell per frame "
                "along the shortest way to the red goal object, never through a wall.")

    def verify(self, parsed: Parsed, puzzle: NavigationPuzzle) -> Verdict:
        if not self.is_readable(parsed):
            return self.failed(parsed)
        scene = _scene(puzzle)
        walk = scene.localise(parsed.labels)
        board = scene.board
        frames = np.stack([board.with_agent(cell) if cell is not None else np.full(board.layout.shape, -1)
                           for cell in walk]).astype(np.int8)  # the localised walk drawn on the map
        return agent_verdict(replace(parsed, labels=frames, geometry=uniform_geometry(board.layout.shape)), board)

    def board(self, puzzle: NavigationPuzzle) -> AgentBoard:
        """The map as the shared agent verdict sees it (with the goal object on it)."""
        return _scene(puzzle).board


class Scene:
    """A puzzle's map, its camera views and localisation."""

    def __init__(self, puzzle: NavigationPuzzle) -> None:
        layout = puzzle.grid
        layout[puzzle.goal] = GOAL
        self.view = puzzle.view
        walls = layout == WALL
        shape = layout.shape

        def moves(cell: Cell) -> list[Cell]:
            return [nb for nb in neighbors(cell, shape) if not walls[nb]]

        path = straightest_shortest_path(moves, puzzle.start, puzzle.goal)
        self.board = AgentBoard(layout=layout, agent=AGENT, start=puzzle.start, goal=puzzle.goal, hazards=walls,
                                moves=moves, reference=tuple(path or (puzzle.start,)))
        self.padded = np.pad(layout, self.view, constant_values=WALL)  # off the map: wall
        self.where: dict[bytes, list[Cell]] = defaultdict(list)  # view -> camera cells showing it
        for r, c in zip(*np.nonzero(~walls), strict=True):
            self.where[self.view_at((int(r), int(c))).tobytes()].append((int(r), int(c)))

    def view_at(self, cell: Cell) -> np.ndarray:
        """The camera's view from ``cell``: ``[2v+1, 2v+1]`` labels, the camera at the centre."""
        r, c = cell
        size = 2 * self.view + 1
        view = self.padded[r:r + size, c:c + size].copy()
        view[self.view, self.view] = AGENT
        return view

    def localise(self, views: np.ndarray) -> list[Cell | None]:
        """The camera cell of each parsed view ``[F, 2v+1, 2v+1]`` (see the module docstring), ``None`` where no
        position shows that view."""
        moves, goal = self.board.moves, self.board.goal
        candidates = [set(self.where.get(v.astype(np.int8).tobytes(), ())) if (v >= 0).all() else set()
                      for v in views]
        reach: list[set[Cell]] = []
        for t, cand in enumerate(candidates):
            if t == 0:
                chained = cand & {self.board.start}
            else:
                chained = {c for c in cand if c in reach[-1] or any(p in reach[-1] for p in moves(c))}
            reach.append(chained or cand)  # no chain continues: the frame's own candidates (a teleport)
        to_goal = distances(moves, goal)
        walk: list[Cell | None] = [None] * len(views)
        later: Cell | None = None
        for t in range(len(views) - 1, -1, -1):
            options = reach[t]
            if later is not None:
                linked = [c for c in options if c == later or later in moves(c)]
                options = linked or options
            if options:
                walk[t] = later = min(options, key=lambda c: (to_goal.get(c, 10**9), c))
        return walk


@functools.lru_cache(maxsize=1024)
def _scene(puzzle: NavigationPuzzle) -> Scene:
    return Scene(puzzle)
