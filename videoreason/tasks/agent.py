"""Agent-trajectory videos: an agent walks from the start to the goal, one legal move per frame.

Maze's ``agent`` style, TrapField and Maze3D show their solution this way, as Wan-R1's games and the public
video-maze benchmarks do: the first frame shows the board with the agent on the start, every later frame moves it by
at most one legal move (it may pause), and once on the goal it stays. A task describes one puzzle as an
`AgentBoard` (its static layout, the agent's label, the legal moves between cells, the cells the agent must never
enter and the reference trajectory); `walk_states` renders a walk and `agent_verdict` judges a parsed video.

Trajectory extraction: `agent_cells` reads the agent's cells in every frame (the cells parsed as its label), and
`trajectory_points` turns them into frame coordinates (the centre of the agent's cells in each frame that shows it).

Verdict (our strict rules; ``A_t`` = the agent's cells in frame ``t``):

- **success**: frame 0 equals the puzzle; every frame shows exactly one agent cell, and every other cell is read and
  equals the layout; consecutive agent cells are equal or one legal move apart (so the agent never enters a hazard:
  a wall, a trap); the last frame's agent stands on the goal.
- **precision / recall / F1**: over visited cells (the union of ``A_t``) against the reference trajectory's cells.
- **exact_match**: success and the agent's cells, consecutive repeats dropped, are the reference trajectory.
- components, each in [0, 1], each usable alone as a reward:
  ``goal_reached`` = 1 if the last frame shows one agent and it stands on the goal;
  ``hazard_free`` = fraction of frames whose agent cells include no hazard;
  ``efficiency`` = reference moves / max(reference moves, moves made) when the goal is reached, else 0 (a move is
  a change of the single agent's cell between consecutive frames);
  ``continuity`` = fraction of consecutive frame pairs that both show one agent, equal or one legal move apart;
  ``progress`` = ``1 - d(last) / d(start)``, ``d`` the number of legal moves to the goal (0 when the last frame
  does not show one agent or the goal cannot be reached from its cell);
  ``layout_preserved`` = fraction of (frame, cell) pairs outside the frame's agent cells that equal the layout.

The field's trajectory metrics, with VR-Bench's published definitions (coordinates x / width and y / height of the
frame, trajectories as above, the reference through the centres of its cells):

- ``trajectory_pr`` (precision rate): the reference resampled at 100 points equally spaced by arc length, the
  generated trajectory at the same arc lengths (clamped at its own end); the fraction of points within 0.01 of
  each other before the first pair that is not (points and tolerance: `TrajectorySettings`).
- ``trajectory_sr`` (success rate): some point of the generated trajectory lies in the goal cell's box.
- ``trajectory_sd`` (step deviation): generated length / reference length - 1, only when ``trajectory_sr`` is 1
  (``None`` otherwise, and ``None`` when negative, as published; 0, never ``-0.0``, for equal lengths).
- ``trajectory_em`` (exact match): ``trajectory_sr`` and ``trajectory_pr >= 0.98`` and ``|trajectory_sd| <= 0.1``.

A generated or reference trajectory of fewer than 2 points (a video that shows the agent in at most one frame) gets
VR-Bench's evaluator's empty result: PR 0, SR 0, SD 0, EM 0 (``TOO_SHORT``), even when its one point is on the goal.
"""

from __future__ import annotations

import abc
import functools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import astuple, dataclass

import numpy as np

from videoreason.checks import is_integer
from videoreason.tasks.base import DifficultyT, PuzzleT, SolutionT, Task, hold_solved
from videoreason.tasks.grid import Cell
from videoreason.tasks.render import CellGeometry
from videoreason.tasks.verdict import Parsed, Verdict, precision_recall_f1

COMPONENTS = ("goal_reached", "hazard_free", "efficiency", "continuity", "progress", "layout_preserved")
# VR-Bench's evaluator's result for a trajectory of fewer than 2 points, the trajectory metrics of a video without one
TOO_SHORT: dict[str, float | None] = {"trajectory_pr": 0.0, "trajectory_sr": 0.0, "trajectory_sd": 0.0,
                                      "trajectory_em": 0.0}
NO_TRAJECTORY = TOO_SHORT
EM_MIN_PR = 0.98
EM_MAX_SD = 0.1


@dataclass(frozen=True)
class TrajectorySettings:
    """How ``trajectory_pr`` compares trajectories: ``points`` resampled along the reference, a point matching within
    ``tolerance`` of the frame size. The default is VR-Bench's batch evaluator's command line (100 / 0.01); its
    evaluator class defaults to 1000 points, its shipped evaluation script to 1000 / 0.05."""

    points: int = 100
    tolerance: float = 0.01

    def __post_init__(self) -> None:
        if not is_integer(self.points) or self.points < 2:
            raise ValueError(f"trajectory `points` must be an integer >= 2, got {self.points!r}")
        if not 0 < self.tolerance < 1:
            raise ValueError(f"trajectory `tolerance` must be in (0, 1) (a fraction of the frame), "
                             f"got {self.tolerance!r}")


VR_BENCH_SETTINGS = TrajectorySettings()
_SETTINGS: ContextVar[TrajectorySettings | None] = ContextVar("trajectory_settings", default=None)


@contextmanager
def trajectory_settings(settings: TrajectorySettings) -> Iterator[TrajectorySettings]:
    """Score ``trajectory_pr`` with ``settings`` inside the block (`trajectory_metrics` without explicit settings)."""
    token = _SETTINGS.set(settings)
    try:
        yield settings
    finally:
        _SETTINGS.reset(token)


@dataclass(frozen=True)
class AgentBoard:
    """One agent puzzle as the shared verdict sees it.

    Attributes:
        layout: int8 ``[R, C]``, the board without the agent (what every non-agent cell must keep showing).
        agent: the agent's label.
        start: the agent's cell in frame 0.
        goal: the cell to reach.
        hazards: bool ``[R, C]``, cells the agent must never stand on (walls, traps).
        moves: the legal moves from a cell (symmetric: ``b in moves(a)`` iff ``a in moves(b)``); never into a hazard.
        reference: the reference trajectory, ``start`` to ``goal`` inclusive.
    """

    layout: np.ndarray
    agent: int
    start: Cell
    goal: Cell
    hazards: np.ndarray
    moves: Callable[[Cell], Iterable[Cell]]
    reference: tuple[Cell, ...]

    def with_agent(self, cell: Cell) -> np.ndarray:
        """The layout with the agent on ``cell``."""
        board = self.layout.copy()
        board[cell] = self.agent
        return board


def distances(moves: Callable[[Cell], Iterable[Cell]], source: Cell) -> dict[Cell, int]:
    """Legal moves from ``source`` to every cell it reaches (BFS over ``moves``)."""
    dist = {source: 0}
    queue = deque([source])
    while queue:
        cell = queue.popleft()
        for nxt in moves(cell):
            if nxt not in dist:
                dist[nxt] = dist[cell] + 1
                queue.append(nxt)
    return dist


def straightest_shortest_path(moves: Callable[[Cell], Iterable[Cell]], start: Cell, goal: Cell) -> list[Cell] | None:
    """A shortest walk from ``start`` to ``goal`` (inclusive) with the fewest turns; remaining ties go to the smallest
    next cell. ``None`` when the goal cannot be reached. Cells are tuples; a turn is a change of ``next - cell``."""
    dist = distances(moves, goal)
    if start not in dist:
        return None

    @functools.cache
    def best(cell: Cell, heading: tuple[int, ...] | None) -> tuple[int, Cell | None]:
        """(fewest turns from ``cell`` to the goal arriving with ``heading``, the next cell of that walk)."""
        if cell == goal:
            return 0, None
        options = []
        for nxt in sorted(moves(cell)):
            if dist.get(nxt) == dist[cell] - 1:
                step = tuple(b - a for a, b in zip(cell, nxt, strict=True))
                options.append((best(nxt, step)[0] + int(heading is not None and step != heading), nxt))
        return min(options)

    path, heading = [start], None
    while path[-1] != goal:
        nxt = best(path[-1], heading)[1]
        heading = tuple(b - a for a, b in zip(path[-1], nxt, strict=True))
        path.append(nxt)
    return path


def walk_states(board: AgentBoard, walk: Sequence[Cell], max_states: int | None, name: str) -> np.ndarray:
    """The video states ``[T, R, C]`` of the agent walking ``walk``, one cell per state; with ``max_states`` the
    agent then waits on its last cell so that there are exactly ``max_states``, and a longer walk raises."""
    states = [board.with_agent(cell) for cell in walk]
    return hold_solved(states, max_states, name, f"to walk its {len(walk) - 1} moves one per frame")


def agent_cells(labels: np.ndarray, agent: int) -> list[list[Cell]]:
    """The trajectory extractor: the cells parsed as the agent in each frame of ``labels`` ``[F, R, C]``."""
    return [[(int(r), int(c)) for r, c in zip(*np.nonzero(frame == agent), strict=True)] for frame in labels]


def trajectory_points(cells: Sequence[Sequence[Cell]], geometry: CellGeometry) -> np.ndarray:
    """Frame coordinates ``[N, 2]`` of a trajectory: the mean centre of each frame's agent cells, frames without
    one skipped (a tracker's reading of the video)."""
    points = [geometry.centres[tuple(np.array(frame).T)].mean(axis=0) for frame in cells if frame]
    return np.array(points, dtype=np.float64).reshape(-1, 2)


def path_length(points: np.ndarray) -> float:
    """Arc length of a polyline ``[N, 2]``."""
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum()) if len(points) > 1 else 0.0


def resample(points: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Points of a polyline ``[N, 2]`` at the given arc lengths (clamped to its own length)."""
    if len(points) == 1:
        return np.repeat(points, len(lengths), axis=0)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    at = np.minimum(lengths, arc[-1])
    return np.stack([np.interp(at, arc, points[:, 0]), np.interp(at, arc, points[:, 1])], axis=1)


def trajectory_metrics(generated: np.ndarray, reference: np.ndarray, goal_box: Sequence[float],
                       settings: TrajectorySettings | None = None) -> dict[str, float | None]:
    """VR-Bench's PR, SR, SD and EM of a generated trajectory ``[N, 2]`` against the reference ``[M, 2]`` (frame
    coordinates), with the goal's box ``(x, y, w, h)`` (see the module docstring); ``settings`` default to the
    enclosing `trajectory_settings` block's (VR-Bench's 100 points / 0.01 outside one)."""
    if len(generated) < 2 or len(reference) < 2:
        return dict(TOO_SHORT)
    points, tolerance = astuple(settings or _SETTINGS.get() or VR_BENCH_SETTINGS)
    x, y, w, h = goal_box
    inside = (generated[:, 0] >= x) & (generated[:, 0] <= x + w) & (generated[:, 1] >= y) & (generated[:, 1] <= y + h)
    sr = float(inside.any())
    reference_length, generated_length = path_length(reference), path_length(generated)
    at = np.linspace(0.0, reference_length, points)
    close = np.linalg.norm(resample(reference, at) - resample(generated, at), axis=1) <= tolerance
    pr = float(points if close.all() else int(np.argmin(close))) / points
    sd = None
    if sr and reference_length < 1e-10:
        sd = 0.0  # a reference that does not move: VR-Bench's evaluator says 0
    elif sr:
        # rounded: no -1e-16 from summing in another order; + 0.0 turns a rounded -0.0 into 0.0
        deviation = round(generated_length / reference_length - 1.0, 9) + 0.0
        sd = deviation if deviation >= 0 else None
    em = float(bool(sr) and pr >= EM_MIN_PR and abs(sd or 0.0) <= EM_MAX_SD)
    return {"trajectory_pr": pr, "trajectory_sr": sr, "trajectory_sd": sd, "trajectory_em": em}


def uniform_geometry(shape: tuple[int, int]) -> CellGeometry:
    """The geometry of a board filling a square frame (for parses that carry none)."""
    rows, cols = shape
    top, left = np.meshgrid(np.arange(rows) / rows, np.arange(cols) / cols, indexing="ij")
    centres = np.stack([left + 0.5 / cols, top + 0.5 / rows], axis=-1)
    boxes = np.stack([left, top, np.full_like(left, 1 / cols), np.full_like(top, 1 / rows)], axis=-1)
    return CellGeometry(centres=centres, boxes=boxes)


def agent_verdict(parsed: Parsed, board: AgentBoard) -> Verdict:
    """Judge a parsed agent video against ``board`` (the rules and metrics of the module docstring)."""
    labels = parsed.labels  # [F, R, C]
    cells = agent_cells(labels, board.agent)
    single = [frame[0] if len(frame) == 1 else None for frame in cells]
    legal_pairs = [a is not None and b is not None and (a == b or b in set(board.moves(a)))
                   for a, b in zip(single[:-1], single[1:], strict=True)]
    continuity = float(np.mean(legal_pairs)) if legal_pairs else 1.0
    hazard_free = float(np.mean([not any(board.hazards[c] for c in frame) for frame in cells]))

    not_agent = labels != board.agent  # [F, R, C]
    kept = (labels == board.layout[None]) & not_agent
    layout_preserved = float(kept.sum() / max(1, not_agent.sum()))
    last = single[-1]
    goal_reached = float(last == board.goal)
    reference_moves = len(board.reference) - 1
    moves_made = sum(a is not None and b is not None and a != b for a, b in zip(single[:-1], single[1:], strict=True))
    efficiency = reference_moves / max(reference_moves, moves_made, 1) if goal_reached else 0.0
    to_goal = distances(board.moves, board.goal)
    progress = 0.0
    if last in to_goal:
        progress = 1.0 if to_goal[board.start] == 0 else max(0.0, 1.0 - to_goal[last] / to_goal[board.start])

    visited = {c for frame in cells for c in frame}
    precision, recall, f1 = precision_recall_f1(visited, set(board.reference))
    success = (
        bool(np.array_equal(labels[0], board.with_agent(board.start)))
        and all(c is not None for c in single)
        and bool(kept.sum() == not_agent.sum())
        and all(legal_pairs)
        and bool(goal_reached)
    )
    walk = [c for i, c in enumerate(single) if i == 0 or c != single[i - 1]]
    exact = success and walk == list(board.reference)
    geometry = parsed.geometry or uniform_geometry(board.layout.shape)
    reference_points = geometry.centres[tuple(np.array(board.reference).T)]  # [M, 2]
    trajectory = trajectory_metrics(trajectory_points(cells, geometry), reference_points, geometry.boxes[board.goal])
    components = {
        "goal_reached": goal_reached,
        "hazard_free": hazard_free,
        "efficiency": efficiency,
        "continuity": continuity,
        "progress": progress,
        "layout_preserved": layout_preserved,
    }
    return Verdict(success, precision, recall, f1, exact, components, parsed.confidence, trajectory)


class AgentTask(Task[PuzzleT, SolutionT, DifficultyT]):
    """A task whose solution video is an agent's walk, judged by the shared verdict: subclasses give the puzzle as
    an `AgentBoard` (``board``) and, if their solution path is not the walk itself, the walk (``walk``)."""

    component_names = COMPONENTS
    failed_trajectory = NO_TRAJECTORY

    @abc.abstractmethod
    def board(self, puzzle: PuzzleT) -> AgentBoard:
        """The puzzle as the shared agent verdict sees it."""

    def walk(self, solution: SolutionT) -> Sequence[Cell]:
        """The agent's cells, one per move (default: the solution's ``path``)."""
        return solution.path

    def initial_state(self, puzzle: PuzzleT) -> np.ndarray:
        board = self.board(puzzle)
        return board.with_agent(board.start)

    def states(self, puzzle: PuzzleT, solution: SolutionT, max_states: int | None = None) -> np.ndarray:
        return walk_states(self.board(puzzle), self.walk(solution), max_states, self.name)

    def verify(self, parsed: Parsed, puzzle: PuzzleT) -> Verdict:
        if not self.is_readable(parsed):
            return self.failed(parsed)
        return agent_verdict(parsed, self.board(puzzle))
