"""Maze: draw the path from the start to the goal of a perfect maze.

Board. An ``n x n`` cell maze is drawn on a ``(2n+1) x (2n+1)`` block grid: cells sit at odd coordinates, the
blocks between them are walls or passages, the border is wall. Start (green dot) and goal (red dot) are cells.
Mazes are *perfect* (a spanning tree: exactly one path between any two cells), made by one of four generators
with distinct looks: ``backtracker`` (long winding corridors), ``prim`` (many short dead ends), ``kruskal``
and ``wilson`` (uniform spanning tree). The solver is BFS. The first frame is the unsolved maze; the rest is drawn
in one of two video styles, chosen by the difficulty and recorded in the puzzle (``video``):

- ``path``: the path is painted block by block from start to goal.
- ``fill`` (chain of frames, dead-end filling): every frame shades the dead ends one cell deeper (a floor cell other
  than start and goal with a single open side, and the passage into it, turn ``dead_end``), so each frame follows
  from the previous one by a local rule; once only the start-to-goal corridor is left (in a perfect maze, exactly
  the path) the next frame paints that corridor as the path, and the solved board holds to the end. Every frame is
  thus a function of the one before (a video can be generated frame by frame). Levels ending in ``-fill`` use it;
  it needs ``K + 2`` frames for a maze whose longest dead end is ``K`` cells deep (``tiny``: 7).

Verdict (``D_t`` = blocks painted as path in frame ``t``, ``D`` = last frame's, ``R`` = reference path blocks
between start and goal, exclusive):

- **success**: frame 0 equals the puzzle; in every frame every wall, start and goal block is unchanged and every
  block is read confidently; painting is monotone (``D_t`` only grows, and so does the shaded set in ``fill``
  videos; ``path`` videos shade nothing); and ``D`` forms exactly one simple
  4-connected path from start to goal: start and goal each touch exactly one painted block (or each other) and
  every painted block has exactly two painted/start/goal neighbours, all connected. Stray painted blocks fail, so
  painting the whole floor is not a success (in a perfect maze success implies ``D == R``).
- **precision / recall / F1**: over path blocks, ``|D & R| / |D|`` and ``|D & R| / |R|``.
- **exact_match**: success and every frame's ``D_t`` is a prefix of the reference path drawn from the start
  (``path``), or every frame equals the reference filling (``fill``).
- components, each in [0, 1]:
  ``connectivity`` = ``|R & reach| / |R|`` where ``reach`` is what the start reaches through painted blocks;
  ``goal_reached`` = 1 if the goal is in that reach; ``wall_free`` = ``1 - min(1, walls painted / |R|)``;
  ``detour_free`` = ``1 - min(1, |D - R - walls| / |R|)`` (floor painted off the path: dead-end branches; without it
  painting the whole floor would maximise every other component);
  ``layout_preserved`` = fraction of (frame, wall/start/goal block) pairs unchanged;
  ``monotonic`` = fraction of consecutive frame pairs with ``D_t`` a subset of ``D_{t+1}`` (and the shaded set
  likewise).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from videoreason.tasks.base import Task, hold_solved
from videoreason.tasks.grid import Cell, bfs_distances, component, shortest_path
from videoreason.tasks.records import JsonRecord, PathSolution
from videoreason.tasks.verdict import Parsed, Verdict, precision_recall_f1

WALL, FLOOR, START, GOAL, PATH, DEAD_END = range(6)
_CHARS = {"#": WALL, ".": FLOOR, "S": START, "G": GOAL}
STYLES = ("backtracker", "prim", "kruskal", "wilson")
VIDEOS = ("path", "fill")


@dataclass(frozen=True)
class MazePuzzle(JsonRecord):
    """A maze as text rows of ``#`` (wall), ``.`` (floor), ``S`` (start) and ``G`` (goal), its generator, and
    how its solution video is drawn (``path`` or ``fill``, see the module docstring)."""

    rows: tuple[str, ...]
    style: str = "backtracker"
    video: str = "path"

    def __post_init__(self) -> None:
        if not self.rows or any(not isinstance(r, str) for r in self.rows):
            raise ValueError("`rows` must be a non-empty list of strings")
        side = len(self.rows)
        if side < 5 or side % 2 == 0 or any(len(r) != side for r in self.rows):
            raise ValueError(f"`rows` must be a square of odd side >= 5, got {side} rows of lengths "
                             f"{sorted({len(r) for r in self.rows})}")
        bad = sorted({ch for r in self.rows for ch in r} - set(_CHARS))
        if bad:
            raise ValueError(f"`rows` has unknown characters {bad}; use '#', '.', 'S', 'G'")
        text = "".join(self.rows)
        if text.count("S") != 1 or text.count("G") != 1:
            raise ValueError("`rows` must contain exactly one 'S' and one 'G'")
        if self.style not in STYLES:
            raise ValueError(f"`style` must be one of {STYLES}, got {self.style!r}")
        if self.video not in VIDEOS:
            raise ValueError(f"`video` must be one of {VIDEOS}, got {self.video!r}")

    @property
    def grid(self) -> np.ndarray:
        """Label grid ``[R, C]`` of the unsolved maze."""
        return np.array([[_CHARS[ch] for ch in row] for row in self.rows], dtype=np.int8)

    @property
    def start(self) -> Cell:
        return _find(self.rows, "S")

    @property
    def goal(self) -> Cell:
        return _find(self.rows, "G")


@dataclass(frozen=True)
class MazeSolution(PathSolution):
    """The path as block coordinates from start to goal, inclusive."""


@dataclass(frozen=True)
class MazeDifficulty:
    """Maze size in cells, the range of start-goal distances in cells (``max_path_length``: none when ``None``), the
    allowed generator styles and the video style of the solutions."""

    size: int
    min_path_length: int
    styles: tuple[str, ...] = STYLES
    video: str = "path"
    max_path_length: int | None = None

    def __post_init__(self) -> None:
        if self.size < 2:
            raise ValueError(f"`size` must be >= 2, got {self.size}")
        if not 1 <= self.min_path_length <= self.size * self.size - 1:
            raise ValueError(f"`min_path_length` must be in [1, size^2 - 1], got {self.min_path_length}")
        if not self.styles or set(self.styles) - set(STYLES):
            raise ValueError(f"`styles` must be a non-empty subset of {STYLES}, got {self.styles}")
        if self.video not in VIDEOS:
            raise ValueError(f"`video` must be one of {VIDEOS}, got {self.video!r}")
        if self.max_path_length is not None and self.max_path_length < self.min_path_length:
            raise ValueError(f"`max_path_length` must be >= min_path_length {self.min_path_length}, got "
                             f"{self.max_path_length}")


def _find(rows: tuple[str, ...], ch: str) -> Cell:
    for r, row in enumerate(rows):
        if ch in row:
            return r, row.index(ch)
    raise ValueError(f"no {ch!r} in maze")


def carve_tree(size: int, style: str, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Edges ``(cell_a, cell_b)`` (cells numbered row-major) of a random spanning tree of the n x n grid."""
    n_cells = size * size

    def adjacent(c: int) -> list[int]:
        r, q = divmod(c, size)
        out = [c - size] if r > 0 else []
        out += [c + size] if r < size - 1 else []
        out += [c - 1] if q > 0 else []
        out += [c + 1] if q < size - 1 else []
        return out

    edges: list[tuple[int, int]] = []
    if style == "backtracker":
        stack = [int(rng.integers(n_cells))]
        seen = {stack[0]}
        while stack:
            fresh = [n for n in adjacent(stack[-1]) if n not in seen]
            if not fresh:
                stack.pop()
                continue
            nxt = fresh[int(rng.integers(len(fresh)))]
            edges.append((stack[-1], nxt))
            seen.add(nxt)
            stack.append(nxt)
    elif style == "prim":
        first = int(rng.integers(n_cells))
        seen, frontier = {first}, [(first, n) for n in adjacent(first)]
        while frontier:
            a, b = frontier.pop(int(rng.integers(len(frontier))))
            if b in seen:
                continue
            edges.append((a, b))
            seen.add(b)
            frontier += [(b, n) for n in adjacent(b) if n not in seen]
    elif style == "kruskal":
        parent = list(range(n_cells))

        def root(c: int) -> int:
            while parent[c] != c:
                parent[c] = parent[parent[c]]
                c = parent[c]
            return c

        candidates = [(a, b) for a in range(n_cells) for b in adjacent(a) if a < b]
        for i in rng.permutation(len(candidates)):
            a, b = candidates[i]
            if root(a) != root(b):
                parent[root(a)] = root(b)
                edges.append((a, b))
    elif style == "wilson":
        in_tree = {int(rng.integers(n_cells))}
        for start in rng.permutation(n_cells):
            walk, cell = {int(start): None}, int(start)
            order = [cell]
            while cell not in in_tree:  # loop-erased random walk until it hits the tree
                options = adjacent(cell)
                nxt = options[int(rng.integers(len(options)))]
                walk[cell] = nxt
                cell = nxt
                order.append(cell)
            cell = int(start)
            while cell not in in_tree:
                edges.append((cell, walk[cell]))
                in_tree.add(cell)
                cell = walk[cell]
    else:
        raise ValueError(f"unknown maze style {style!r}; choose from {STYLES}")
    return edges


class Maze(Task[MazePuzzle, MazeSolution, MazeDifficulty]):
    """Perfect-maze path drawing (see the module docstring for the rules and metrics)."""

    name = "maze"
    classes = ("wall", "floor", "start", "goal", "path", "dead_end")
    dot_classes = ("start", "goal")
    dot_background = "floor"
    levels: ClassVar[dict[str, MazeDifficulty]] = {
        "tiny": MazeDifficulty(size=3, min_path_length=3),
        "easy": MazeDifficulty(size=4, min_path_length=5),
        "medium": MazeDifficulty(size=5, min_path_length=8),
        "hard": MazeDifficulty(size=7, min_path_length=14),
        "expert": MazeDifficulty(size=9, min_path_length=22),
        "tiny-fill": MazeDifficulty(size=3, min_path_length=3, video="fill"),
        "easy-fill": MazeDifficulty(size=4, min_path_length=5, video="fill"),
        "medium-fill": MazeDifficulty(size=5, min_path_length=8, video="fill"),
    }
    puzzle_type = MazePuzzle
    solution_type = MazeSolution
    component_names = ("connectivity", "goal_reached", "wall_free", "detour_free", "layout_preserved", "monotonic")

    def generate(self, rng: np.random.Generator, difficulty: str | MazeDifficulty) -> MazePuzzle:
        level = self.difficulty(difficulty)
        n = level.size
        while True:
            style = level.styles[int(rng.integers(len(level.styles)))]
            grid = np.full((2 * n + 1, 2 * n + 1), "#")
            grid[1::2, 1::2] = "."
            for a, b in carve_tree(n, style, rng):
                (ra, ca), (rb, cb) = divmod(a, n), divmod(b, n)
                grid[ra + rb + 1, ca + cb + 1] = "."  # the block between two cells
            start = divmod(int(rng.integers(n * n)), n)
            start_block = (2 * start[0] + 1, 2 * start[1] + 1)
            dist = bfs_distances(grid != "#", start_block)
            cell_dist = dist[1::2, 1::2] // 2  # [n, n] distance in cells
            longest = cell_dist.max() if level.max_path_length is None else level.max_path_length
            far = np.argwhere((cell_dist >= level.min_path_length) & (cell_dist <= longest))
            if len(far) == 0:
                continue
            goal = far[int(rng.integers(len(far)))]
            grid[start_block] = "S"
            grid[2 * goal[0] + 1, 2 * goal[1] + 1] = "G"
            return MazePuzzle(rows=tuple("".join(row) for row in grid), style=style, video=level.video)

    def solve(self, puzzle: MazePuzzle) -> MazeSolution:
        path = shortest_path(puzzle.grid != WALL, puzzle.start, puzzle.goal)
        if path is None:
            raise ValueError("maze has no path from start to goal")
        return MazeSolution(path=tuple(path))

    def initial_state(self, puzzle: MazePuzzle) -> np.ndarray:
        return puzzle.grid

    def board_shape(self, difficulty: str | MazeDifficulty) -> tuple[int, int]:
        side = 2 * self.difficulty(difficulty).size + 1  # cells and the walls between them
        return side, side

    def max_frames(self, difficulty: str | MazeDifficulty) -> int | None:
        """``fill``: the puzzle, at least one more cell shaded per frame (at most the n^2 - L - 1 cells off a path
        of L >= ``min_path_length`` moves), then the path: n^2 - ``min_path_length`` + 1 frames."""
        level = self.difficulty(difficulty)
        return level.size**2 - level.min_path_length + 1 if level.video == "fill" else None

    def states(self, puzzle: MazePuzzle, solution: MazeSolution, max_states: int | None = None) -> np.ndarray:
        if puzzle.video == "fill":
            return _fill_states(puzzle, solution, max_states)
        inner = solution.path[1:-1]
        states = np.repeat(puzzle.grid[None], len(inner) + 1, axis=0)  # [T, R, C]
        for k, (r, c) in enumerate(inner):
            states[k + 1:, r, c] = PATH
        return states

    def prompt(self, puzzle: MazePuzzle) -> str:
        n = len(puzzle.rows) // 2
        if puzzle.video == "fill":
            return (f"A {n}x{n} maze. Shade its dead ends in light blue, one cell deeper each frame, until only the "
                    f"way from the green dot to the red dot is left; then draw that way in yellow.")
        return (f"A {n}x{n} maze. Draw the path from the green dot to the red dot in yellow, growing it from the "
                f"green dot frame by frame, never crossing a dark wall.")

    def verify(self, parsed: Parsed, puzzle: MazePuzzle) -> Verdict:
        if not self.is_readable(parsed):
            return self.failed(parsed)
        labels = parsed.labels  # [F, R, C]
        initial = puzzle.grid
        order = _reference_path(puzzle)
        reference = set(order)
        fixed = initial != FLOOR  # walls, start, goal
        drawn = labels == PATH  # [F, R, C]
        shaded = labels == DEAD_END  # [F, R, C]
        final = drawn[-1]

        intact = labels[:, fixed] == initial[fixed]  # [F, n_fixed]
        layout_preserved = float(intact.mean())
        grows = ~np.any((drawn[:-1] & ~drawn[1:]) | (shaded[:-1] & ~shaded[1:]), axis=(1, 2))  # [F-1]
        monotonic = float(grows.mean())
        walls_painted = int((final & (initial == WALL)).sum())
        wall_free = 1.0 - min(1.0, walls_painted / max(1, len(reference)))
        detours = int((final & (initial == FLOOR)).sum()) - int(sum(final[c] for c in reference))
        detour_free = 1.0 - min(1.0, detours / max(1, len(reference)))

        start, goal = puzzle.start, puzzle.goal
        ends = np.zeros_like(final)
        ends[start] = ends[goal] = True
        reach = component(final | ends, start)
        painted = {(int(r), int(c)) for r, c in zip(*np.nonzero(final), strict=True)}
        precision, recall, f1 = precision_recall_f1(painted, reference)
        connectivity = len({c for c in reference if reach[c]}) / max(1, len(reference))
        goal_reached = float(bool(reach[goal]))

        success = (
            bool(np.array_equal(labels[0], initial))
            and bool(intact.all())
            and bool((labels >= 0).all())
            and bool(grows.all())
            and (puzzle.video == "fill" or not shaded.any())
            and _is_simple_path(final, ends, start, goal)
        )
        if puzzle.video == "fill":
            exact = success and bool(np.array_equal(labels, _reference_fill(puzzle, len(labels))))
        else:
            exact = success and _drawn_in_order(drawn, order)
        components = {
            "connectivity": connectivity,
            "goal_reached": goal_reached,
            "wall_free": wall_free,
            "detour_free": detour_free,
            "layout_preserved": layout_preserved,
            "monotonic": monotonic,
        }
        return Verdict(success, precision, recall, f1, exact, components, parsed.confidence)


@functools.lru_cache(maxsize=4096)
def _reference_path(puzzle: MazePuzzle) -> tuple[Cell, ...]:
    """Reference path blocks strictly between start and goal (cached: rewards verify the same puzzle G times)."""
    return Maze().solve(puzzle).path[1:-1]


def _reference_fill(puzzle: MazePuzzle, num_frames: int) -> np.ndarray:
    """The reference ``fill`` video's label grids for ``num_frames`` frames (the solution is not needed)."""
    return _fill_states(puzzle, MazeSolution(path=(puzzle.start,)), num_frames)


def _fill_states(puzzle: MazePuzzle, solution: MazeSolution, max_states: int | None) -> np.ndarray:
    """Dead-end filling, one cell deeper per state, then the remaining corridor painted (``[T, R, C]``).

    With ``max_states`` the solved board is held so that there are exactly ``max_states`` states (one per frame);
    a maze whose filling needs more raises a ``ValueError`` naming the frames it needs.
    """
    del solution  # the corridor left by filling a perfect maze is its path
    states = [puzzle.grid]
    while not np.array_equal(board := fill_step(states[-1]), states[-1]):
        states.append(board)
    return hold_solved(states, max_states, "maze", "to fill its dead ends one cell per frame")


def fill_step(board: np.ndarray) -> np.ndarray:
    """The ``fill`` video's next frame (labels ``[R, C]``): the dead ends shaded one cell deeper; once none is left,
    the remaining corridor painted as the path; a painted board is a fixed point."""
    board = board.copy()
    if np.any(board == PATH):
        return board
    before = board.copy()
    for _ in range(2):  # a dead-end cell, then the passage into it: one cell deeper
        open_ = (board == FLOOR) | (board == START) | (board == GOAL)
        board[(board == FLOOR) & (_neighbour_count(open_) <= 1)] = DEAD_END
    if np.array_equal(board, before):
        board[board == FLOOR] = PATH
    return board


def _neighbour_count(mask: np.ndarray) -> np.ndarray:
    """Number of 4-neighbours inside ``mask`` for every block."""
    padded = np.pad(mask.astype(np.int8), 1)
    return padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]


def _is_simple_path(drawn: np.ndarray, ends: np.ndarray, start: Cell, goal: Cell) -> bool:
    """Whether painted blocks plus the two ends form exactly one simple path from start to goal."""
    union = drawn | ends
    counts = _neighbour_count(union)
    if counts[start] != 1 or counts[goal] != 1 or np.any(counts[drawn] != 2):
        return False
    return bool(component(union, start).sum() == union.sum())


def _drawn_in_order(drawn: np.ndarray, order: tuple[Cell, ...]) -> bool:
    """Whether every frame's painted set is a prefix of ``order``."""
    rank = np.full(drawn.shape[1:], -1)
    for k, cell in enumerate(order):
        rank[cell] = k
    for frame in drawn:
        ranks = rank[frame]
        if np.any(ranks < 0) or (len(ranks) and ranks.max() != len(ranks) - 1):
            return False
    return True
