"""FlowFree board search: a SAT solver (python-sat) and a random generator of fully-filled flow layouts.

Rules solved here (the same the verifier checks): every cell gets exactly one colour; for each colour, the cells
of that colour form one simple *induced* path between its two endpoints, i.e. an endpoint has exactly one
same-colour 4-neighbour, every other cell exactly two, and all cells of the colour are connected.

SAT encoding: a variable ``x[v, c]`` per cell ``v`` and colour ``c``; exactly one colour per cell; endpoints
fixed; conditional degree constraints (endpoint: exactly 1 same-colour neighbour, other cells: exactly 2, written
as direct clauses over the at most 4 neighbours); no 2x2 block of one colour. Degree constraints alone still admit
detached same-colour cycles, so each model is checked and every cycle found is forbidden by a clause
("not all of these cells have this colour") before solving again (lazy cycle elimination).
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import numpy as np
from pysat.solvers import Solver

Endpoints = tuple[tuple[tuple[int, int], tuple[int, int]], ...]

#: python-sat backend; CaDiCaL is deterministic and fast on these small instances.
SAT_SOLVER = "cadical153"


@lru_cache(maxsize=64)
def neighbour_table(size: int) -> tuple[tuple[int, ...], ...]:
    """Flat (row-major) indices of the in-bounds 4-neighbours of every cell of a ``size x size`` board."""
    table = []
    for v in range(size * size):
        r, c = divmod(v, size)
        table.append(tuple(u for u, ok in ((v - size, r > 0), (v + size, r < size - 1),
                                           (v - 1, c > 0), (v + 1, c < size - 1)) if ok))
    return tuple(table)


@lru_cache(maxsize=64)
def _cell_templates(size: int) -> tuple[np.ndarray, ...]:
    """Per-colour clause templates over cells, as literal arrays of ``+/-(cell + 1)`` padded with 0.

    Returns ``(degree2, twobytwo)``: the conditional exactly-2 clauses of every cell (first literal is the
    negated cell itself) and the "not all four" clauses of every 2x2 block.
    """
    nbrs = neighbour_table(size)
    rows: list[list[int]] = []
    for v in range(size * size):
        me, ns, d = -(v + 1), [u + 1 for u in nbrs[v]], len(nbrs[v])
        rows += [[me, *s] for s in combinations(ns, d - 1)]  # at least 2 of d
        rows += [[me, *(-u for u in s)] for s in combinations(ns, 3)]  # at most 2
    degree2 = np.zeros((len(rows), 5), dtype=np.int64)
    for i, row in enumerate(rows):
        degree2[i, :len(row)] = row
    blocks = [[-(r * size + c + 1), -(r * size + c + 2), -((r + 1) * size + c + 1), -((r + 1) * size + c + 2)]
              for r in range(size - 1) for c in range(size - 1)]
    return degree2, np.array(blocks, dtype=np.int64).reshape(-1, 4)


def _lift(template: np.ndarray, colour: int, num_colours: int) -> np.ndarray:
    """Turn cell literals ``+/-(v + 1)`` into variable literals ``+/-(v * K + colour + 1)`` (0 stays 0)."""
    cells = np.abs(template) - 1
    return np.where(template == 0, 0, np.sign(template) * (cells * num_colours + colour + 1))


def _clauses(size: int, endpoints: Endpoints) -> list[list[int]]:
    """The CNF described in the module docstring (without cycle constraints)."""
    k = len(endpoints)
    nbrs = neighbour_table(size)
    end_colour = {r * size + c: i for i, pair in enumerate(endpoints) for r, c in pair}
    free = np.array([v for v in range(size * size) if v not in end_colour], dtype=np.int64)
    clauses: list[list[int]] = []
    for v, c0 in end_colour.items():
        clauses += [[v * k + c + 1] if c == c0 else [-(v * k + c + 1)] for c in range(k)]
        ns = [u * k + c0 + 1 for u in nbrs[v]]
        clauses.append(ns)
        clauses += [[-a, -b] for a, b in combinations(ns, 2)]
    pairs = list(combinations(range(k), 2))
    base = free[:, None] * k + 1  # [n_free, 1]
    clauses += (base + np.arange(k)).tolist()  # at least one colour
    if pairs:
        first, second = np.array(pairs).T
        clauses += np.stack([-(base + first), -(base + second)], axis=-1).reshape(-1, 2).tolist()
    degree2, blocks = _cell_templates(size)
    keep = np.isin(-degree2[:, 0] - 1, free)  # conditional degree clauses of non-endpoint cells only
    for c in range(k):
        for row in _lift(degree2[keep], c, k).tolist():
            clauses.append([lit for lit in row if lit])
        clauses += _lift(blocks, c, k).tolist()
    return clauses


def _detached_cycles(board: np.ndarray, endpoints: Endpoints) -> list[tuple[int, list[int]]]:
    """``(colour index, flat cells)`` of every same-colour component that does not contain that colour's ends."""
    size = board.shape[0]
    flat = board.ravel().tolist()
    nbrs = neighbour_table(size)
    seen = [False] * len(flat)
    for i, ((r, c), _) in enumerate(endpoints):  # mark each colour's endpoint component
        stack = [r * size + c]
        seen[stack[0]] = True
        while stack:
            v = stack.pop()
            for u in nbrs[v]:
                if not seen[u] and flat[u] == i + 1:
                    seen[u] = True
                    stack.append(u)
    cycles = []
    for start in range(len(flat)):
        if seen[start]:
            continue
        colour, stack, cells = flat[start], [start], [start]
        seen[start] = True
        while stack:
            v = stack.pop()
            for u in nbrs[v]:
                if not seen[u] and flat[u] == colour:
                    seen[u] = True
                    stack.append(u)
                    cells.append(u)
        cycles.append((colour - 1, cells))
    return cycles


def solve_boards(size: int, endpoints: Endpoints, limit: int = 1) -> list[np.ndarray]:
    """Up to ``limit`` distinct solved boards (int8 ``[size, size]``, label ``i + 1`` = colour ``i``).

    Solutions are found in a deterministic order; ``len(solve_boards(..., limit=2)) == 1`` proves uniqueness.
    """
    k = len(endpoints)
    n = size * size
    ends = {r * size + c for pair in endpoints for r, c in pair}
    free = [v for v in range(n) if v not in ends]
    found: list[np.ndarray] = []
    with Solver(name=SAT_SOLVER, bootstrap_with=_clauses(size, endpoints)) as solver:
        while len(found) < limit and solver.solve():
            model = np.array(solver.get_model()[: n * k]).reshape(n, k)  # [cells, colours]
            board = (np.argmax(model > 0, axis=1) + 1).astype(np.int8).reshape(size, size)
            cycles = _detached_cycles(board, endpoints)
            for colour, cells in cycles:
                solver.add_clause([-(v * k + colour + 1) for v in cells])
            if cycles:
                continue
            found.append(board)
            if not free:
                break
            flat = board.ravel()
            solver.add_clause([-(v * k + int(flat[v])) for v in free])  # block this solution
    return found


def board_paths(board: np.ndarray, endpoints: Endpoints) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Each colour's cells walked from its first endpoint to its second, on a solved board."""
    size = board.shape[0]
    paths = []
    for i, (start, goal) in enumerate(endpoints):
        path, prev = [start], None
        while path[-1] != goal:
            r, c = path[-1]
            step = [(a, b) for a, b in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
                    if 0 <= a < size and 0 <= b < size and board[a, b] == i + 1 and (a, b) != prev]
            if len(step) != 1 or len(path) > size * size:
                raise ValueError(f"colour {i + 1} does not form a simple path on the board")
            prev = path[-1]
            path.append(step[0])
        paths.append(tuple(path))
    return tuple(paths)


# ---------------------------------------------------------------------------------------------- generation
def snake_path(size: int) -> list[int]:
    """Boustrophedon Hamiltonian path of the board (flat indices)."""
    return [r * size + (c if r % 2 == 0 else size - 1 - c) for r in range(size) for c in range(size)]


def backbite(path: list[int], size: int, moves: int, rng: np.random.Generator) -> list[int]:
    """Randomise a Hamiltonian path by ``moves`` backbite moves (Mansfield 1982); returns a new list.

    A move picks an end and one of its grid neighbours on the path (not its successor), links them and cuts the
    path there, reversing the piece between; the result is again a Hamiltonian path.
    """
    nbrs = neighbour_table(size)
    path = list(path)
    pos = [0] * len(path)
    for i, v in enumerate(path):
        pos[v] = i
    last = len(path) - 1
    draws = rng.random((moves, 2)).tolist()
    for use_tail, pick in draws:
        end = path[last] if use_tail >= 0.5 else path[0]
        options = nbrs[end]
        j = pos[options[int(pick * len(options))]]
        if use_tail < 0.5 and j >= 2:  # link path[0]-path[j], drop path[j-1]-path[j]: reverse the prefix
            lo, hi = 0, j
        elif use_tail >= 0.5 and j <= last - 2:  # the mirror image at the tail: reverse the suffix
            lo, hi = j + 1, last + 1
        else:
            continue
        path[lo:hi] = path[lo:hi][::-1]
        for i in range(lo, hi):
            pos[path[i]] = i
    return path


def split_flows(path: list[int], size: int, colours: int, rng: np.random.Generator) -> list[list[int]] | None:
    """Split a Hamiltonian path into ``colours`` induced paths of >= 3 cells, or ``None`` when that fails.

    1. Walk the path and start a new segment whenever the next cell would touch a non-final cell of the current
       one (so every segment is an induced path; such forced segments have >= 3 cells, except maybe the last).
    2. While there are too many (or too short) segments, join two whose ends are adjacent, if the joined path
       is still induced (chosen at random, short segments first).
    3. While there are too few, cut a random segment of >= 6 cells at a random point into two of >= 3.
    """
    nbrs = neighbour_table(size)
    segments: list[list[int]] = [[path[0]]]
    for v in path[1:]:
        seg = segments[-1]
        if any(u in seg[:-1] for u in nbrs[v]):  # seg is short-lived and small: list search is fine
            segments.append([])
        segments[-1].append(v)
    owner = [0] * len(path)
    while len(segments) > colours or min(map(len, segments)) < 3:
        for i, seg in enumerate(segments):
            for v in seg:
                owner[v] = i
        short = {i for i, seg in enumerate(segments) if len(seg) < 3}
        joins = []
        for i, seg in enumerate(segments):
            for a in {seg[0], seg[-1]}:
                for b in nbrs[a]:
                    j = owner[b]
                    other = segments[j]
                    if j <= i or b not in (other[0], other[-1]):
                        continue
                    if (short and i not in short and j not in short) or not _joinable(seg, other, a, b, owner, nbrs):
                        continue
                    joins.append((i, j, a, b))
        if not joins:
            return None
        i, j, a, b = joins[int(rng.integers(len(joins)))]
        first = segments[i] if segments[i][-1] == a else segments[i][::-1]
        second = segments[j] if segments[j][0] == b else segments[j][::-1]
        segments[i] = first + second
        del segments[j]
    while len(segments) < colours:
        long = [i for i, seg in enumerate(segments) if len(seg) >= 6]
        if not long:
            return None
        i = long[int(rng.integers(len(long)))]
        cut = int(rng.integers(3, len(segments[i]) - 2))
        segments.append(segments[i][cut:])
        segments[i] = segments[i][:cut]
    return segments


def _joinable(first: list[int], second: list[int], a: int, b: int, owner: list[int],
              nbrs: tuple[tuple[int, ...], ...]) -> bool:
    """Whether joining two induced paths through their adjacent ends ``a`` (of first) and ``b`` stays induced."""
    j = owner[b]
    i = owner[a]
    for v in first:
        for u in nbrs[v]:
            if owner[u] == j and (v, u) != (a, b):
                return False
    return all(owner[u] != i or (v, u) == (b, a) for v in second for u in nbrs[v])
