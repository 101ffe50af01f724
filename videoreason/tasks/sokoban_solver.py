"""Sokoban planning: a push-optimal A* solver, move replay and a reverse-play level generator.

Cells are ``(row, col)`` tuples at the interface; inside, a level lives on a flattened grid padded with one
ring of wall, so neighbours never need bounds checks (`Board`).

Solver. A* over *push states*: the sorted box cells plus the player's normalised position (the smallest cell
of the region it can walk to without moving a box), so all player positions between two pushes are one state.
Each edge is one push (cost 1). The heuristic is the minimum-cost assignment of boxes to targets under the
*push distance* (pushes needed to bring a lone box to a target, computed by pulling from each target; it
ignores the player's position and other boxes), found by a DP over target subsets (sum of per-box minima above
6 boxes). It is admissible and consistent (one push changes it by at most 1), so the first goal popped is
push-optimal. Pruning: *dead squares* (cells from which no target can be reached by pushes) and 2x2 *freeze*
deadlocks (a 2x2 block of walls and boxes holding a box off target). Both are exact (never prune a solvable
state). The push plan is expanded into a LURD move string with shortest BFS walks between pushes.

Generator. A random room (outer wall ring, a few inner walls that keep the floor connected), random targets
with the boxes on them, then *reverse play*: random pulls from the solved state scatter the boxes, so the
level is solvable by construction. The solver then measures the optimal push count and the level is kept only
if it lies in the difficulty's range.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import count
from types import SimpleNamespace

import numpy as np

from videoreason.tasks.grid import count_components

Cell = tuple[int, int]
#: Move letters (lowercase walks, uppercase pushes) and their steps, in the order the planner tries them.
LETTERS = ("u", "d", "l", "r")
STEPS: dict[str, Cell] = {"u": (-1, 0), "d": (1, 0), "l": (0, -1), "r": (0, 1)}
INF = 1 << 20
#: Expanded A* nodes after which `solve_pushes` gives up (a few seconds of work at most).
NODE_LIMIT = 200_000
_MATCHING_MAX_BOXES = 6
_PATIENCE = 30


class Board:
    """The static part of a level (size, walls, targets) on a padded, flattened grid, with push distances.

    Args:
        height: rows of the level.
        width: columns of the level.
        walls: wall cells; every other in-bounds cell is floor.
        targets: target cells.
    """

    def __init__(self, height: int, width: int, walls: Iterable[Cell], targets: Iterable[Cell]) -> None:
        self.height, self.width = height, width
        self.stride = width + 2
        self.size = (height + 2) * self.stride
        self.offsets = (-self.stride, self.stride, -1, 1)  # u, d, l, r
        wall_set = set(walls)
        self.floor = bytearray(self.size)
        for r in range(height):
            for c in range(width):
                if (r, c) not in wall_set:
                    self.floor[self.index((r, c))] = 1
        self.adjacent = [tuple(i + o for o in self.offsets if self.floor[i + o]) if self.floor[i] else ()
                         for i in range(self.size)]
        self.targets = tuple(sorted(self.index(t) for t in targets))
        self.target_set = frozenset(self.targets)
        self.push_distance = [self._pull_distances(t) for t in self.targets]  # [n_targets][size]
        self.nearest = [min((d[i] for d in self.push_distance), default=INF) for i in range(self.size)]
        self.dead = bytearray(1 if self.floor[i] and self.nearest[i] >= INF else 0 for i in range(self.size))
        self._popcount = [bin(m).count("1") for m in range(1 << min(len(self.targets), _MATCHING_MAX_BOXES))]

    def index(self, cell: Cell) -> int:
        """Flat index of an in-bounds ``(row, col)``."""
        return (cell[0] + 1) * self.stride + cell[1] + 1

    def cell(self, index: int) -> Cell:
        """``(row, col)`` of a flat index."""
        r, c = divmod(index, self.stride)
        return r - 1, c - 1

    def _pull_distances(self, target: int) -> list[int]:
        """Pushes a lone box needs from each cell to ``target`` (``INF`` where impossible), by pulling."""
        dist = [INF] * self.size
        dist[target] = 0
        queue = deque([target])
        floor = self.floor
        while queue:
            box = queue.popleft()
            for off in self.offsets:
                player = box + off  # the box is pulled onto the player's cell, the player steps back
                if floor[player] and floor[player + off] and dist[player] == INF:
                    dist[player] = dist[box] + 1
                    queue.append(player)
        return dist

    def reachable(self, start: int, boxes: set[int] | frozenset[int]) -> tuple[bytearray, int]:
        """Cells the player reaches from ``start`` without moving a box, and the smallest of them."""
        seen = bytearray(self.size)
        seen[start] = 1
        stack, lowest, adjacent = [start], start, self.adjacent
        while stack:
            x = stack.pop()
            if x < lowest:
                lowest = x
            for y in adjacent[x]:
                if not seen[y] and y not in boxes:
                    seen[y] = 1
                    stack.append(y)
        return seen, lowest

    def heuristic(self, boxes: Sequence[int]) -> int:
        """Lower bound on the pushes left: min-cost box-to-target assignment under the push distance."""
        n = len(boxes)
        if n == 1:
            return self.nearest[boxes[0]]
        if n > _MATCHING_MAX_BOXES or n != len(self.targets):
            return sum(self.nearest[b] for b in boxes)
        dist, pop = self.push_distance, self._popcount
        best = [INF] * (1 << n)  # best[mask]: boxes 0..|mask|-1 assigned to the targets in mask
        best[0] = 0
        for mask in range(1 << n):
            base = best[mask]
            k = pop[mask]
            if base >= INF or k >= n:
                continue
            box = boxes[k]
            for t in range(n):
                bit = 1 << t
                if not mask & bit:
                    cost = base + dist[t][box]
                    if cost < best[mask | bit]:
                        best[mask | bit] = cost
        return min(best[-1], INF)

    def frozen(self, box: int, boxes: set[int] | frozenset[int]) -> bool:
        """Whether ``box`` closes a 2x2 block of walls and boxes that holds a box off target."""
        floor, stride, targets = self.floor, self.stride, self.target_set
        for corner in (box, box - 1, box - stride, box - stride - 1):
            square = (corner, corner + 1, corner + stride, corner + stride + 1)
            if all(not floor[x] or x in boxes for x in square) and any(
                    x in boxes and x not in targets for x in square):
                return True
        return False

    def walk(self, start: int, goal: int, boxes: set[int] | frozenset[int]) -> str:
        """Lowercase moves of a shortest walk avoiding boxes (``ValueError`` if there is none)."""
        if start == goal:
            return ""
        previous = {start: -1}
        queue = deque([start])
        while queue and goal not in previous:
            x = queue.popleft()
            for y in self.adjacent[x]:
                if y not in previous and y not in boxes:
                    previous[y] = x
                    queue.append(y)
        if goal not in previous:
            raise ValueError(f"the player cannot walk from {self.cell(start)} to {self.cell(goal)}")
        letters = []
        while goal != start:
            letters.append(LETTERS[self.offsets.index(goal - previous[goal])])
            goal = previous[goal]
        return "".join(reversed(letters))


@lru_cache(maxsize=512)
def board_for(height: int, width: int, walls: tuple[Cell, ...], targets: tuple[Cell, ...]) -> Board:
    """Cached `Board` of a level layout (generation and verification reuse it)."""
    return Board(height, width, walls, targets)


def solve_pushes(
    puzzle, max_pushes: int | None = None, node_limit: int = NODE_LIMIT
) -> list[tuple[Cell, str]] | None:
    """A push-optimal plan as ``[(box cell before the push, "U"/"D"/"L"/"R"), ...]``.

    Args:
        puzzle: anything with ``height``, ``width``, ``walls``, ``targets``, ``boxes`` and ``player``.
        max_pushes: prune plans longer than this; ``None`` for no bound.
        node_limit: expanded states after which the search raises.

    Returns:
        The plan, or ``None`` when no plan exists (within ``max_pushes``).

    Raises:
        ValueError: the search expanded more than ``node_limit`` states.
    """
    board = board_for(puzzle.height, puzzle.width, tuple(puzzle.walls), tuple(puzzle.targets))
    if len(puzzle.boxes) != len(board.targets):
        return None
    bound = INF if max_pushes is None else max_pushes
    floor, dead, offsets, goal = board.floor, board.dead, board.offsets, board.target_set
    start_boxes = tuple(sorted(board.index(b) for b in puzzle.boxes))
    h0 = board.heuristic(start_boxes)
    if h0 > bound:
        return None
    _, lowest = board.reachable(board.index(puzzle.player), frozenset(start_boxes))
    start = (start_boxes, lowest)
    parent: dict = {start: None}
    best_g = {start: 0}
    heuristics = {start_boxes: h0}
    tie = count()
    heap = [(h0, h0, next(tie), 0, start)]
    expanded = 0
    while heap:
        _, _, _, g, key = heapq.heappop(heap)
        if g > best_g[key]:
            continue  # stale entry
        boxes, player = key
        if goal.issuperset(boxes):
            return _plan(board, parent, key)
        expanded += 1
        if expanded > node_limit:
            raise ValueError(f"sokoban search gave up after {node_limit} states (level too hard)")
        box_set = frozenset(boxes)
        region, _ = board.reachable(player, box_set)
        for i, box in enumerate(boxes):
            for d, off in enumerate(offsets):
                dest = box + off
                if not region[box - off] or not floor[dest] or dead[dest] or dest in box_set:
                    continue
                moved = box_set - {box} | {dest}
                if board.frozen(dest, moved):
                    continue
                new_boxes = tuple(sorted(boxes[:i] + (dest,) + boxes[i + 1:]))
                h = heuristics.get(new_boxes)
                if h is None:
                    h = heuristics[new_boxes] = board.heuristic(new_boxes)
                if g + 1 + h > bound:
                    continue
                _, lowest = board.reachable(box, moved)
                child = (new_boxes, lowest)
                if g + 1 < best_g.get(child, INF):
                    best_g[child] = g + 1
                    parent[child] = (key, box, d)
                    heapq.heappush(heap, (g + 1 + h, h, next(tie), g + 1, child))
    return None


def _plan(board: Board, parent: dict, key) -> list[tuple[Cell, str]]:
    """Pushes along the parent links from the start to ``key``."""
    plan = []
    while parent[key] is not None:
        key, box, d = parent[key]
        plan.append((board.cell(box), LETTERS[d].upper()))
    return plan[::-1]


def plan_to_moves(puzzle, plan: Sequence[tuple[Cell, str]]) -> str:
    """Expand a push plan into a LURD move string with shortest walks before each push."""
    board = board_for(puzzle.height, puzzle.width, tuple(puzzle.walls), tuple(puzzle.targets))
    boxes = {board.index(b) for b in puzzle.boxes}
    player = board.index(puzzle.player)
    moves = []
    for cell, letter in plan:
        box = board.index(cell)
        off = board.offsets[LETTERS.index(letter.lower())]
        moves.append(board.walk(player, box - off, boxes))
        moves.append(letter.upper())
        boxes.remove(box)
        boxes.add(box + off)
        player = box
    return "".join(moves)


def replay(puzzle, moves: str) -> list[tuple[Cell, frozenset[Cell], bool]]:
    """Play ``moves`` from the puzzle: ``(player, boxes, pushed)`` after each move, the start first.

    Raises:
        ValueError: an unknown letter, a walk into a wall, a lowercase move into a box, an uppercase move
            that pushes nothing, or a push of a box into a wall or another box.
    """
    walls = set(puzzle.walls)
    boxes = frozenset(puzzle.boxes)
    player = tuple(puzzle.player)
    out = [(player, boxes, False)]
    for i, letter in enumerate(moves):
        if letter.lower() not in STEPS:
            raise ValueError(f"`moves` has unknown letter {letter!r} at {i}; use LURD (udlr walk, UDLR push)")
        dr, dc = STEPS[letter.lower()]
        nxt = (player[0] + dr, player[1] + dc)
        if not _open(puzzle, walls, nxt):
            raise ValueError(f"move {i} ({letter}) walks into a wall at {nxt}")
        pushed = nxt in boxes
        if pushed:
            beyond = (nxt[0] + dr, nxt[1] + dc)
            if letter.islower():
                raise ValueError(f"move {i} ({letter}) is a walk into the box at {nxt}; pushes are uppercase")
            if not _open(puzzle, walls, beyond) or beyond in boxes:
                raise ValueError(f"move {i} ({letter}) pushes the box at {nxt} into a wall or box {beyond}")
            boxes = boxes - {nxt} | {beyond}
        elif letter.isupper():
            raise ValueError(f"move {i} ({letter}) is uppercase but pushes no box")
        player = nxt
        out.append((player, boxes, pushed))
    return out


def _open(puzzle, walls: set[Cell], cell: Cell) -> bool:
    return 0 <= cell[0] < puzzle.height and 0 <= cell[1] < puzzle.width and cell not in walls


def pushes_of(puzzle, moves: str) -> list[tuple[Cell, str]]:
    """The pushes of a move string as ``[(box cell before the push, letter), ...]``."""
    trace = replay(puzzle, moves)
    return [(trace[i + 1][0], moves[i]) for i in range(len(moves)) if trace[i + 1][2]]


# ------------------------------------------------------------------------------------------------- generation
def random_room(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Boolean wall mask ``[H, W]``: the outer ring plus a few inner walls that keep the floor connected."""
    walls = np.zeros((height, width), dtype=bool)
    walls[0, :] = walls[-1, :] = walls[:, 0] = walls[:, -1] = True
    interior = (height - 2) * (width - 2)
    wanted = int(rng.integers(interior // 12, interior // 5 + 1))
    for flat in rng.permutation(interior):
        if wanted == 0:
            break
        r, c = divmod(int(flat), width - 2)
        walls[r + 1, c + 1] = True
        if count_components(~walls) == 1:
            wanted -= 1
        else:
            walls[r + 1, c + 1] = False
    return walls


def scatter(
    rng: np.random.Generator, board: Board, boxes: set[int], player: int, pulls: int
) -> tuple[set[int], int]:
    """Reverse play: ``pulls`` random pulls from ``(boxes, player)``; returns the new boxes and a player cell.

    Pulls that take the boxes farther from the targets (raise the heuristic) are 4x as likely, and a box is
    never pulled straight back, so the scattered levels need more pushes.
    """
    last = None
    for _ in range(pulls):
        region, _ = board.reachable(player, boxes)
        here = board.heuristic(sorted(boxes))
        options, weights = [], []
        for box in sorted(boxes):
            for d, off in enumerate(board.offsets):
                stand, back = box + off, box + 2 * off  # the player stands at `stand`, steps back to `back`
                if region[stand] and board.floor[back] and back not in boxes and (box, d) != last:
                    options.append((box, d, stand, back))
                    weights.append(4.0 if board.heuristic(sorted(boxes - {box} | {stand})) > here else 1.0)
        if not options:
            break
        box, d, stand, back = options[int(rng.choice(len(options), p=np.array(weights) / sum(weights)))]
        boxes = boxes - {box} | {stand}
        player = back
        last = (stand, d ^ 1)  # pulling the box straight back would undo this pull
    region, _ = board.reachable(player, boxes)
    free = np.flatnonzero(np.frombuffer(bytes(region), dtype=np.uint8))
    return boxes, int(free[int(rng.integers(len(free)))])


def generate_level(rng: np.random.Generator, height: int, width: int, n_boxes: int, min_pushes: int,
                   max_pushes: int, max_attempts: int = 2000) -> dict:
    """Fields of a random level whose optimal push count lies in ``[min_pushes, max_pushes]``.

    A push count is first drawn uniformly from the range and levels must need at least that many for the first
    `_PATIENCE` attempts, then only ``min_pushes``: long levels are rare in reverse play, so this spreads the
    push counts over the range at a bounded cost.

    Raises:
        ValueError: no such level was found in ``max_attempts`` tries (the range is too tight for the size).
    """
    want = int(rng.integers(min_pushes, max_pushes + 1))
    for attempt in range(max_attempts):
        wall_mask = random_room(rng, height, width)
        floor_cells = [(int(r), int(c)) for r, c in np.argwhere(~wall_mask)]
        if len(floor_cells) < n_boxes + 2:
            continue
        chosen = rng.choice(len(floor_cells), size=n_boxes, replace=False)
        targets = tuple(sorted(floor_cells[int(i)] for i in chosen))
        walls = tuple((int(r), int(c)) for r, c in np.argwhere(wall_mask))
        board = board_for(height, width, walls, targets)
        start_boxes = {board.index(t) for t in targets}
        free = [board.index(c) for c in floor_cells if c not in targets]
        player = free[int(rng.integers(len(free)))]
        pulls = int(rng.integers(min_pushes, 2 * max_pushes + 1))
        boxes, player = scatter(rng, board, start_boxes, player, pulls)
        if boxes == start_boxes or board.heuristic(sorted(boxes)) > max_pushes:
            continue
        level = {"height": height, "width": width, "walls": walls, "targets": targets,
                 "boxes": tuple(sorted(board.cell(b) for b in boxes)), "player": board.cell(player)}
        plan = solve_pushes(SimpleNamespace(**level), max_pushes=max_pushes)
        if plan is not None and len(plan) >= (want if attempt < _PATIENCE else min_pushes):
            return level
    raise ValueError(f"no {height}x{width} level with {n_boxes} boxes and {min_pushes}..{max_pushes} optimal "
                     f"pushes found in {max_attempts} attempts")

