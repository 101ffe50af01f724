"""PathFinder: drive an agent along a road network from the start junction to the goal junction.

VR-Bench's fifth task, with its rules as its public generator and rule executor define them: roads join junctions,
drawn light on a dark ground; start and goal are junctions; the agent travels only along roads; the reference route
passes the fewest junctions and is the shortest of those (VR-Bench's solution path is a fewest-hops BFS path, its
video the shortest such path); the goal is the junction the most junctions away from the start.

Board. An ``n x n`` grid of ``ground`` and ``road`` cells with ``junction`` dots (yellow) where roads end or meet,
the start (green dot, under the agent in the first frame) and the goal (red dot) among them. Every road is a
one-cell-wide chain of road cells between two junctions that touches no other road, so cells that look connected
are connected. Generation is VR-Bench's Voronoi generator laid on the grid: junction sites by Poisson-disk sampling
(at least ``spacing`` cells apart), candidate roads between sites less than ``2 * spacing`` apart, a randomized
depth-first spanning tree from the start plus a ``loops`` fraction of the other candidates (VR-Bench's
connectivity ratio), each road routed as a shortest chain of free cells that keeps a cell of ground from every other
road and site. Sites no road reached are dropped. A level keeps boards whose reference route passes at least
``min_junctions`` junctions (start and goal included; VR-Bench's ``min_solution_nodes``) in at most ``max_moves``.

Deviations from VR-Bench, for a grid video: roads bend at right angles instead of following Bezier curves; the
junctions are drawn (VR-Bench's are implicit), so the rule "fewest junctions" can be seen; the agent moves one cell
per frame and then waits on the goal, the shared agent video of `videoreason.tasks.agent`, whose verdict, P/R/F1,
exact match, dense components and trajectory metrics it uses (legal moves: to a 4-neighbour on a road; hazards: the
ground).
"""

from __future__ import annotations

import functools
import heapq
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from videoreason.tasks.agent import AgentBoard, AgentTask
from videoreason.tasks.grid import Cell, LetterBoard, neighbors
from videoreason.tasks.records import JsonRecord, PathSolution

GROUND, ROAD, JUNCTION, START, GOAL, AGENT = range(6)
_CHARS = {".": GROUND, "-": ROAD, "o": JUNCTION, "S": START, "G": GOAL}
MAX_DRAWS = 2_000  # random networks tried per puzzle before a level is declared impossible


@dataclass(frozen=True)
class PathFinderPuzzle(LetterBoard, JsonRecord):
    """A road network as text rows of ``.`` (ground), ``-`` (road), ``o`` (junction), ``S`` (start junction) and
    ``G`` (goal junction)."""

    rows: tuple[str, ...]
    chars: ClassVar[dict[str, int]] = _CHARS
    min_side: ClassVar[int] = 3

    def __post_init__(self) -> None:
        self.check_rows()


@dataclass(frozen=True)
class PathFinderSolution(PathSolution):
    """The agent's route as ``[row, col]`` cells from the start junction to the goal junction, inclusive."""


@dataclass(frozen=True)
class PathFinderDifficulty:
    """Grid side, the least distance between junction sites, the fraction of non-tree roads added (loops), and the
    reference route's least junctions (start and goal included) and most moves."""

    size: int
    spacing: int
    loops: float
    min_junctions: int
    max_moves: int

    def __post_init__(self) -> None:
        if self.size < 3:
            raise ValueError(f"`size` must be >= 3, got {self.size}")
        if not 2 <= self.spacing < self.size:
            raise ValueError(f"`spacing` must be in [2, size), got {self.spacing}")
        if not 0 <= self.loops <= 1:
            raise ValueError(f"`loops` must be in [0, 1], got {self.loops}")
        if self.min_junctions < 2:
            raise ValueError(f"`min_junctions` must be >= 2 (start and goal), got {self.min_junctions}")
        if self.max_moves < (self.min_junctions - 1) * self.spacing:
            raise ValueError(f"`max_moves` {self.max_moves} is fewer than {self.min_junctions} junctions "
                             f"{self.spacing} cells apart need")


class PathFinder(AgentTask[PathFinderPuzzle, PathFinderSolution, PathFinderDifficulty]):
    """Route finding on a road network, as an agent video (see the module docstring)."""

    name = "pathfinder"
    classes = ("ground", "road", "junction", "start", "goal", "agent")
    dot_classes = ("junction", "start", "goal", "agent")
    dot_background = "road"
    # VR-Bench's easy / medium / hard ask for 4 / 6 / 7 junctions on the route; `tiny` fits the 9-frame tiny videos
    # (8 moves), `easy` 17 frames, `medium` and `hard` Wan's 33 frames, `expert` 81
    levels: ClassVar[dict[str, PathFinderDifficulty]] = {
        "tiny": PathFinderDifficulty(size=7, spacing=2, loops=0.15, min_junctions=3, max_moves=8),
        "easy": PathFinderDifficulty(size=9, spacing=2, loops=0.15, min_junctions=4, max_moves=16),
        "medium": PathFinderDifficulty(size=13, spacing=3, loops=0.2, min_junctions=6, max_moves=32),
        "hard": PathFinderDifficulty(size=17, spacing=3, loops=0.25, min_junctions=7, max_moves=32),
        "expert": PathFinderDifficulty(size=25, spacing=3, loops=0.25, min_junctions=7, max_moves=80),
    }
    puzzle_type = PathFinderPuzzle
    solution_type = PathFinderSolution

    def board_shape(self, difficulty: str | PathFinderDifficulty) -> tuple[int, int]:
        return (self.difficulty(difficulty).size,) * 2

    def max_frames(self, difficulty: str | PathFinderDifficulty) -> int:
        return self.difficulty(difficulty).max_moves + 1  # one move per frame

    def generate(self, rng: np.random.Generator, difficulty: str | PathFinderDifficulty) -> PathFinderPuzzle:
        level = self.difficulty(difficulty)
        for _ in range(MAX_DRAWS):
            rows = _draw_network(rng, level)
            if rows is not None:
                return PathFinderPuzzle(rows=rows)
        raise ValueError(f"no {level.size}x{level.size} road network with a route through {level.min_junctions} "
                         f"junctions in at most {level.max_moves} moves in {MAX_DRAWS} draws; lower "
                         "`min_junctions` or raise `max_moves`")

    def solve(self, puzzle: PathFinderPuzzle) -> PathFinderSolution:
        board = _board(puzzle)
        if board.reference[-1] != board.goal:
            raise ValueError("the network has no road from the start to the goal")
        return PathFinderSolution(path=board.reference)

    def prompt(self, puzzle: PathFinderPuzzle) -> str:
        n = len(puzzle.rows)
        return (f"A {n}x{n} map of roads joined at yellow junctions. Drive the blue dot along the roads one cell per "
                f"frame to the red dot, through the fewest junctions.")

    def board(self, puzzle: PathFinderPuzzle) -> AgentBoard:
        """The network as the shared agent verdict sees it (the reference route is the planner's)."""
        return _board(puzzle)


@functools.lru_cache(maxsize=4096)
def _board(puzzle: PathFinderPuzzle) -> AgentBoard:
    """`PathFinder.board`, cached: rewards verify the same puzzle G times."""
    grid = puzzle.grid
    road = grid != GROUND
    moves = _moves(road)
    path = fewest_junctions_route(moves, grid >= JUNCTION, puzzle.start, puzzle.goal)
    return AgentBoard(layout=grid, agent=AGENT, start=puzzle.start, goal=puzzle.goal, hazards=~road, moves=moves,
                      reference=tuple(path or (puzzle.start,)))


def _moves(road: np.ndarray) -> Callable[[Cell], list[Cell]]:
    """Legal moves: to a 4-neighbour on a road."""
    shape = road.shape

    def moves(cell: Cell) -> list[Cell]:
        return [nb for nb in neighbors(cell, shape) if road[nb]]

    return moves


def junction_costs(moves: Callable[[Cell], Iterable[Cell]], junction: np.ndarray, source: Cell
                   ) -> dict[Cell, tuple[int, int]]:
    """``cell -> (junctions, moves)`` of the best route between ``cell`` and ``source`` (Dijkstra, lexicographic):
    the junction cells it enters on the way to ``source``, ``source`` included, then its moves. Moves are
    symmetric, so from a junction ``source`` to a junction ``cell`` the count is the same either way."""
    cost = {source: (0, 0)}
    heap = [(0, 0, source)]
    while heap:
        hops, steps, cell = heapq.heappop(heap)
        if (hops, steps) > cost[cell]:
            continue
        for prev in moves(cell):  # symmetric moves: prev -> cell enters `cell`
            step = (hops + int(junction[cell]), steps + 1)
            if step < cost.get(prev, (np.inf, np.inf)):
                cost[prev] = step
                heapq.heappush(heap, (*step, prev))
    return cost


def fewest_junctions_route(moves: Callable[[Cell], Iterable[Cell]], junction: np.ndarray, start: Cell, goal: Cell
                           ) -> list[Cell] | None:
    """The route from ``start`` to ``goal`` (inclusive) through the fewest ``junction`` cells, the fewest moves among
    those; remaining ties go to the smallest next cell. ``None`` when the goal cannot be reached."""
    cost = junction_costs(moves, junction, goal)
    if start not in cost:
        return None
    path = [start]
    while path[-1] != goal:
        cell = path[-1]
        hops, steps = cost[cell]
        path.append(min(nxt for nxt in moves(cell)
                        if nxt in cost and (cost[nxt][0] + int(junction[nxt]), cost[nxt][1] + 1) == (hops, steps)))
    return path


def _draw_network(rng: np.random.Generator, level: PathFinderDifficulty) -> tuple[str, ...] | None:
    """One random network of ``level`` as puzzle rows, or ``None`` when this draw has no route the level accepts."""
    n = level.size
    sites = _poisson_sites(rng, n, level.spacing)
    if len(sites) < level.min_junctions:
        return None
    near = {i: [j for j in range(len(sites)) if j != i
                and 0 < np.hypot(*np.subtract(sites[i], sites[j])) < 2 * level.spacing] for i in range(len(sites))}
    road = np.zeros((n, n), dtype=bool)
    site_at = np.zeros((n, n), dtype=bool)
    for cell in sites:
        site_at[cell] = True
    root = int(rng.integers(len(sites)))
    connected, tree = {root}, set()
    stack = [root]
    while stack:  # randomized depth-first spanning tree, each road routed as it is added
        i = stack[-1]
        options = [j for j in near[i] if j not in connected]
        rng.shuffle(options)
        for j in options:
            if _route_road(road, site_at, sites[i], sites[j]):
                connected.add(j)
                tree.add(frozenset((i, j)))
                stack.append(j)
                break
        else:
            stack.pop()
    if len(connected) < level.min_junctions:
        return None
    extra = sorted({frozenset((i, j)) for i in connected for j in near[i] if j in connected} - tree,
                   key=lambda pair: sorted(pair))
    for k in rng.permutation(len(extra))[:int(len(extra) * level.loops)]:
        i, j = sorted(extra[k])
        _route_road(road, site_at, sites[i], sites[j])
    junction = np.zeros((n, n), dtype=bool)
    for i in connected:
        junction[sites[i]] = road[sites[i]] = True
    start = sites[root]
    goal = _farthest_junction(_moves(road), junction, start, level)
    if goal is None:
        return None
    grid = np.where(junction, "o", np.where(road, "-", "."))
    grid[start], grid[goal] = "S", "G"
    return tuple("".join(row) for row in grid)


def _poisson_sites(rng: np.random.Generator, n: int, spacing: int) -> list[Cell]:
    """Junction sites at least ``spacing`` apart (Euclidean), by dart throwing over the cells in random order."""
    sites: list[Cell] = []
    for index in rng.permutation(n * n):
        cell = divmod(int(index), n)
        if all(np.hypot(cell[0] - r, cell[1] - c) >= spacing for r, c in sites):
            sites.append(cell)
    return sites


def _route_road(road: np.ndarray, site_at: np.ndarray, a: Cell, b: Cell) -> bool:
    """Lay a shortest chain of free cells from site ``a`` to site ``b`` into ``road`` whose inner cells keep a cell
    of ground from every other road and site (4-neighbours); ``False`` (nothing laid) when there is none."""
    shape = road.shape
    ends = {a, b}

    def free(cell: Cell) -> bool:
        return not road[cell] and not site_at[cell] and all(
            nb in ends or not (road[nb] or site_at[nb]) for nb in neighbors(cell, shape))

    came: dict[Cell, Cell | None] = {a: None}
    queue = deque([a])
    while queue:
        cell = queue.popleft()
        if cell == b:
            break
        for nb in neighbors(cell, shape):
            if nb not in came and (nb == b or free(nb)):
                came[nb] = cell
                queue.append(nb)
    if b not in came:
        return False
    cell: Cell | None = b
    while cell is not None:
        road[cell] = True
        cell = came[cell]
    return True


def _farthest_junction(moves: Callable[[Cell], list[Cell]], junction: np.ndarray, start: Cell,
                       level: PathFinderDifficulty) -> Cell | None:
    """VR-Bench's goal: the junction whose reference route from ``start`` passes the most junctions (then the
    longest, then the smallest cell), among routes the level accepts; ``None`` when there is none. One Dijkstra from
    ``start`` prices every junction's route (`junction_costs`)."""
    best, best_key = None, None
    for cell, (hops, steps) in junction_costs(moves, junction, start).items():
        passed = hops + 1  # the junctions entered on the way, and ``start`` itself
        if cell == start or not junction[cell] or steps > level.max_moves or passed < level.min_junctions:
            continue
        key = (passed, steps, tuple(-x for x in cell))
        if best_key is None or key > best_key:
            best, best_key = cell, key
    return best
