"""Maze as an agent video: walk an agent through a perfect maze from the start to the goal.

The mazes are `videoreason.tasks.maze`'s (same generators and levels, the puzzle record's ``video`` field unused),
shown the way agent-style video-maze benchmarks show them: the first frame has the agent (blue dot) on the start
cell, and every frame moves it to the next maze cell through an open passage (two blocks of the block grid), until
it waits on the goal. The solver is BFS (a perfect maze has exactly one path).

Verdict, P/R/F1 (over visited maze cells), exact match, the dense components (``goal_reached``, ``hazard_free`` =
never on a wall block, ``efficiency``, ``continuity``, ``progress``, ``layout_preserved``) and the field's trajectory
metrics (``trajectory_pr/sr/sd/em``) are the shared agent ones of `videoreason.tasks.agent`: legal moves go from a
maze cell to a neighbouring cell whose passage block is open, the hazards are the walls.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np

from videoreason.tasks.agent import AgentBoard, AgentTask
from videoreason.tasks.grid import DIRECTIONS, Cell
from videoreason.tasks.maze import WALL, Maze, MazeDifficulty, MazePuzzle, MazeSolution

AGENT = 4  # the maze's wall, floor, start and goal labels, then the agent


class MazeAgent(AgentTask[MazePuzzle, MazeSolution, MazeDifficulty]):
    """The maze task's mazes, solved by an agent walking cell to cell (see the module docstring)."""

    name = "maze_agent"
    classes = ("wall", "floor", "start", "goal", "agent")
    dot_classes = ("start", "goal", "agent")
    dot_background = "floor"
    # the maze task's sizes; a path takes at most 8 moves in `tiny` (9-frame tiny videos), 32 in `medium` and `hard`
    # (Wan's 33 frames), 80 in `expert` (81 frames)
    levels: ClassVar[dict[str, MazeDifficulty]] = {
        "tiny": MazeDifficulty(size=3, min_path_length=3, max_path_length=8),
        "easy": MazeDifficulty(size=4, min_path_length=5, max_path_length=15),
        "medium": MazeDifficulty(size=5, min_path_length=8, max_path_length=24),
        "hard": MazeDifficulty(size=7, min_path_length=14, max_path_length=32),
        "expert": MazeDifficulty(size=9, min_path_length=22, max_path_length=80),
    }
    puzzle_type = MazePuzzle
    solution_type = MazeSolution

    def generate(self, rng: np.random.Generator, difficulty: str | MazeDifficulty) -> MazePuzzle:
        return Maze().generate(rng, self.difficulty(difficulty))

    def solve(self, puzzle: MazePuzzle) -> MazeSolution:
        """The path through every block, as the maze task's solver gives it."""
        check_on_cells(puzzle)
        return Maze().solve(puzzle)

    def board_shape(self, difficulty: str | MazeDifficulty) -> tuple[int, int]:
        return Maze().board_shape(self.difficulty(difficulty))

    def max_frames(self, difficulty: str | MazeDifficulty) -> int:
        level = self.difficulty(difficulty)
        return (level.max_path_length or level.size**2 - 1) + 1

    def walk(self, solution: MazeSolution) -> tuple[Cell, ...]:
        """One maze cell per move: every other block of the solution's path."""
        return solution.path[::2]

    def prompt(self, puzzle: MazePuzzle) -> str:
        n = len(puzzle.rows) // 2
        return (f"A {n}x{n} maze. Move the blue dot from the green cell to the red dot one cell per frame, "
                f"never crossing a dark wall.")

    def board(self, puzzle: MazePuzzle) -> AgentBoard:
        """The maze as the shared agent verdict sees it."""
        return _board(puzzle)


def check_on_cells(puzzle: MazePuzzle) -> None:
    """Refuse a start or goal off the maze cells (odd row and column): the agent moves cell to cell, so from a
    passage or wall block it could never start or arrive (VR-Bench mazes may put them there)."""
    for name, (r, c) in (("start", puzzle.start), ("goal", puzzle.goal)):
        if r % 2 == 0 or c % 2 == 0:
            raise ValueError(f"maze_agent: the {name} is on block ({r}, {c}), a passage or wall block between maze "
                             f"cells; the agent walks from cell to cell, so the {name} must be on a maze cell (odd "
                             "row and odd column)")


@functools.lru_cache(maxsize=4096)
def _board(puzzle: MazePuzzle) -> AgentBoard:
    """`MazeAgent.board`, cached: rewards verify the same puzzle G times."""
    check_on_cells(puzzle)
    grid = puzzle.grid
    walls = grid == WALL
    rows, cols = grid.shape

    def moves(cell: Cell) -> list[Cell]:
        r, c = cell
        if r % 2 == 0 or c % 2 == 0:  # not a maze cell: no legal move from a passage or wall block
            return []
        out = []
        for dr, dc in DIRECTIONS.values():
            if 0 < r + 2 * dr < rows and 0 < c + 2 * dc < cols and not walls[r + dr, c + dc]:
                out.append((r + 2 * dr, c + 2 * dc))
        return out

    reference = Maze().solve(puzzle).path[::2]
    return AgentBoard(layout=grid, agent=AGENT, start=puzzle.start, goal=puzzle.goal, hazards=walls, moves=moves,
                      reference=reference)
