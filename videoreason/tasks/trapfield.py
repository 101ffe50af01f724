"""TrapField: walk an agent from the start to the goal across an open field without stepping on a trap.

Board. An ``n x n`` field of ``floor`` cells (no walls) with ``trap`` cells scattered at the level's density; the
start (green dot), under the agent (blue dot) in the first frame, and the goal (red dot) are floor cells. A level
keeps only fields where a trap-free path from start to goal exists and the shortest one takes between
``min_path_length`` and ``max_moves`` moves (public TrapField levels: 5x5 to 15x15 at 20-35% traps). The planner is
BFS over trap-free cells; among shortest paths it walks the one with the fewest turns (then the smallest next cell).
The video is an agent video (`videoreason.tasks.agent`): one move to a 4-neighbour per frame, the agent then waits
on the goal.

Verdict, P/R/F1, exact match, the dense components (``goal_reached``, ``hazard_free`` = never on a trap,
``efficiency``, ``continuity``, ``progress``, ``layout_preserved``) and the field's trajectory metrics
(``trajectory_pr/sr/sd/em``) are the shared agent ones, defined in `videoreason.tasks.agent`; the legal moves are
steps to a 4-neighbour that is not a trap, the hazards are the traps.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from videoreason.tasks.agent import AgentBoard, AgentTask, distances, straightest_shortest_path
from videoreason.tasks.grid import Cell, LetterBoard, neighbors
from videoreason.tasks.records import JsonRecord, PathSolution

FLOOR, TRAP, START, GOAL, AGENT = range(5)
_CHARS = {".": FLOOR, "x": TRAP, "S": START, "G": GOAL}
MAX_DRAWS = 10_000  # random fields tried per puzzle before a level is declared impossible


@dataclass(frozen=True)
class TrapFieldPuzzle(LetterBoard, JsonRecord):
    """A field as text rows of ``.`` (floor), ``x`` (trap), ``S`` (start) and ``G`` (goal); ``reference``, when
    given, is the walk exact match compares with (a shortest safe walk from start to goal, e.g. an imported
    benchmark's own), else the planner's."""

    rows: tuple[str, ...]
    chars: ClassVar[dict[str, int]] = _CHARS
    reference: tuple[Cell, ...] | None = None

    def __post_init__(self) -> None:
        self.check_rows()
        if self.reference is not None:
            object.__setattr__(self, "reference", PathSolution(path=self.reference).path)
            _check_reference(self)

    def to_dict(self) -> dict:
        out = super().to_dict()
        if self.reference is None:  # puzzles without one keep their JSON (and hashes) as before
            del out["reference"]
        return out


@dataclass(frozen=True)
class TrapFieldSolution(PathSolution):
    """The agent's walk as ``[row, col]`` cells from start to goal, inclusive."""


@dataclass(frozen=True)
class TrapFieldDifficulty:
    """Field side, the fraction of cells that are traps, and the range of the shortest safe path's moves."""

    size: int
    density: float
    min_path_length: int
    max_moves: int

    def __post_init__(self) -> None:
        if self.size < 2:
            raise ValueError(f"`size` must be >= 2, got {self.size}")
        if not 0 <= self.density <= 0.6:
            raise ValueError(f"`density` must be in [0, 0.6], got {self.density}")
        if not 1 <= self.min_path_length <= self.max_moves:
            raise ValueError(f"`min_path_length` must be in [1, max_moves], got {self.min_path_length} and "
                             f"max_moves {self.max_moves}")
        if self.min_path_length > self.size * self.size - 1:
            raise ValueError(f"`min_path_length` must be < size^2, got {self.min_path_length}")


class TrapField(AgentTask[TrapFieldPuzzle, TrapFieldSolution, TrapFieldDifficulty]):
    """Trap avoidance on an open field, as an agent video (see the module docstring)."""

    name = "trapfield"
    classes = ("floor", "trap", "start", "goal", "agent")
    dot_classes = ("start", "goal", "agent")
    dot_background = "floor"
    # `tiny` fits the 9-frame tiny videos (8 moves); the others fit Wan's 33 frames (32 moves), `expert` 81 frames
    levels: ClassVar[dict[str, TrapFieldDifficulty]] = {
        "tiny": TrapFieldDifficulty(size=5, density=0.2, min_path_length=4, max_moves=8),
        "easy": TrapFieldDifficulty(size=6, density=0.25, min_path_length=6, max_moves=16),
        "medium": TrapFieldDifficulty(size=8, density=0.3, min_path_length=9, max_moves=32),
        "hard": TrapFieldDifficulty(size=10, density=0.35, min_path_length=12, max_moves=32),
        "expert": TrapFieldDifficulty(size=15, density=0.35, min_path_length=20, max_moves=80),
    }
    puzzle_type = TrapFieldPuzzle
    solution_type = TrapFieldSolution

    def board_shape(self, difficulty: str | TrapFieldDifficulty) -> tuple[int, int]:
        return (self.difficulty(difficulty).size,) * 2

    def max_frames(self, difficulty: str | TrapFieldDifficulty) -> int:
        return self.difficulty(difficulty).max_moves + 1  # one move per frame

    def generate(self, rng: np.random.Generator, difficulty: str | TrapFieldDifficulty) -> TrapFieldPuzzle:
        level = self.difficulty(difficulty)
        n = level.size
        traps = int(round(level.density * n * n))
        for _ in range(MAX_DRAWS):
            cells = rng.permutation(n * n)
            grid = np.full((n, n), ".")
            start, goal = divmod(int(cells[0]), n), divmod(int(cells[1]), n)
            for index in cells[2:2 + traps]:
                grid[divmod(int(index), n)] = "x"
            grid[start], grid[goal] = "S", "G"
            moves = _moves(grid != "x")
            steps = distances(moves, goal).get(start)
            if steps is not None and level.min_path_length <= steps <= level.max_moves:
                return TrapFieldPuzzle(rows=tuple("".join(row) for row in grid))
        raise ValueError(f"no {n}x{n} trap field with a shortest safe path of {level.min_path_length} to "
                         f"{level.max_moves} moves in {MAX_DRAWS} draws; lower `min_path_length` or `density`")

    def solve(self, puzzle: TrapFieldPuzzle) -> TrapFieldSolution:
        board = _board(puzzle)  # the given reference, else the planner's walk
        if board.reference[-1] != board.goal:
            raise ValueError("the field has no trap-free path from start to goal")
        return TrapFieldSolution(path=board.reference)

    def prompt(self, puzzle: TrapFieldPuzzle) -> str:
        n = len(puzzle.rows)
        return (f"A {n}x{n} field with purple traps. Move the blue dot one cell per frame along the shortest way to "
                f"the red dot, never stepping on a trap.")

    def board(self, puzzle: TrapFieldPuzzle) -> AgentBoard:
        """The puzzle as the shared agent verdict sees it (the reference walk is the planner's)."""
        return _board(puzzle)


@functools.lru_cache(maxsize=4096)
def _board(puzzle: TrapFieldPuzzle) -> AgentBoard:
    """`TrapField.board`, cached: rewards verify the same puzzle G times."""
    grid = puzzle.grid
    safe = grid != TRAP
    moves = _moves(safe)
    path = puzzle.reference or straightest_shortest_path(moves, puzzle.start, puzzle.goal)
    return AgentBoard(layout=grid, agent=AGENT, start=puzzle.start, goal=puzzle.goal, hazards=~safe, moves=moves,
                      reference=tuple(path or (puzzle.start,)))


def _check_reference(puzzle: TrapFieldPuzzle) -> None:
    """Refuse a ``reference`` that is not a shortest safe walk from the start to the goal (the message says why)."""
    walk, moves = puzzle.reference, _moves(puzzle.grid != TRAP)
    n = len(puzzle.rows)
    if any(r >= n or c >= n for r, c in walk):
        raise ValueError(f"`reference` leaves the {n}x{n} field")
    if walk[0] != puzzle.start or walk[-1] != puzzle.goal:
        raise ValueError(f"`reference` must run from the start {puzzle.start} to the goal {puzzle.goal}, got "
                         f"{walk[0]} to {walk[-1]}")
    illegal = next((i for i, (a, b) in enumerate(zip(walk, walk[1:], strict=False)) if b not in moves(a)), None)
    if illegal is not None:
        raise ValueError(f"`reference` step {illegal + 1}, {walk[illegal]} -> {walk[illegal + 1]}, is not a move "
                         "to a trap-free neighbour")
    shortest = distances(moves, puzzle.goal)[puzzle.start]
    if len(walk) - 1 != shortest:
        raise ValueError(f"`reference` takes {len(walk) - 1} moves; the shortest safe walk takes {shortest}")


def _moves(safe: np.ndarray):
    """Legal moves: to a 4-neighbour that is ``safe``."""
    shape = safe.shape

    def moves(cell: Cell) -> list[Cell]:
        return [nb for nb in neighbors(cell, shape) if safe[nb]]

    return moves
