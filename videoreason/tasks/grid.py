"""4-connected grid helpers shared by the tasks: neighbours, BFS distances, components, letter boards."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from typing import ClassVar

import numpy as np

from videoreason.checks import is_integer

Cell = tuple[int, int]
DIRECTIONS: dict[str, Cell] = {"U": (-1, 0), "D": (1, 0), "L": (0, -1), "R": (0, 1)}


def checked_cell(value: object, shape: tuple[int, int], what: str) -> Cell:
    """Validate a JSON ``[row, col]`` pair inside a board of ``shape``; errors name ``what``."""
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(is_integer(x) for x in value)):
        raise ValueError(f"{what} must be a [row, col] pair of integers, got {value!r}")
    r, c = int(value[0]), int(value[1])
    if not (0 <= r < shape[0] and 0 <= c < shape[1]):
        raise ValueError(f"{what} {(r, c)} is outside the {shape[0]}x{shape[1]} board")
    return r, c


def neighbors(cell: Cell, shape: tuple[int, int]) -> Iterator[Cell]:
    """The in-bounds 4-neighbours of ``cell``."""
    r, c = cell
    rows, cols = shape
    for dr, dc in DIRECTIONS.values():
        nr, nc = r + dr, c + dc
        if 0 <= nr < rows and 0 <= nc < cols:
            yield nr, nc


def bfs_distances(passable: np.ndarray, start: Cell) -> np.ndarray:
    """Steps from ``start`` to every cell through ``passable`` cells (``-1`` where unreachable)."""
    dist = np.full(passable.shape, -1, dtype=np.int64)
    if not passable[start]:
        return dist
    dist[start] = 0
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        for nb in neighbors(cell, passable.shape):
            if passable[nb] and dist[nb] < 0:
                dist[nb] = dist[cell] + 1
                queue.append(nb)
    return dist


def shortest_path(passable: np.ndarray, start: Cell, goal: Cell) -> list[Cell] | None:
    """Cells of one shortest 4-connected path from ``start`` to ``goal`` (inclusive), or ``None``."""
    dist = bfs_distances(passable, goal)
    if dist[start] < 0:
        return None
    path = [start]
    while path[-1] != goal:
        cell = path[-1]
        path.append(next(nb for nb in neighbors(cell, passable.shape) if dist[nb] == dist[cell] - 1))
    return path


def component(mask: np.ndarray, start: Cell) -> np.ndarray:
    """Boolean mask of the 4-connected component of ``mask`` containing ``start`` (empty if not in mask)."""
    return bfs_distances(mask, start) >= 0


def count_components(mask: np.ndarray) -> int:
    """Number of 4-connected components of a boolean mask."""
    seen = np.zeros(mask.shape, dtype=bool)
    count = 0
    for cell in zip(*np.nonzero(mask), strict=True):
        cell = (int(cell[0]), int(cell[1]))
        if not seen[cell]:
            seen |= component(mask, cell)
            count += 1
    return count


DIHEDRAL = 8
"""Rotations and reflections of a square board: ``k % 4`` quarter turns, mirrored left-right when ``k >= 4``."""


def dihedral(board: np.ndarray, k: int, axes: tuple[int, int] = (-2, -1)) -> np.ndarray:
    """Image ``k`` of :data:`DIHEDRAL` of an array whose ``axes`` are (rows, columns)."""
    turned = np.rot90(board, k % 4, axes=axes)
    return np.flip(turned, axis=axes[1]) if k >= 4 else turned


def dihedral_images(board: np.ndarray) -> list[np.ndarray]:
    """The 8 images of a ``[..., R, C]`` board under rotations by 90 degrees and reflections (the dihedral group)."""
    return [dihedral(board, k) for k in range(DIHEDRAL)]


def shape_keeping_dihedral(rows: int, cols: int) -> list[int]:
    """The images ``k`` of :func:`dihedral` that keep a ``rows x cols`` shape (all 8 for a square)."""
    return list(range(DIHEDRAL)) if rows == cols else [0, 2, 4, 6]


class LetterBoard:
    """Mixin of a puzzle record stored as square text ``rows``, one character per cell (``chars``: character ->
    label), with exactly one ``S`` (start) and one ``G`` (goal). ``check_rows`` validates (errors name the
    problem); ``grid``, ``start`` and ``goal`` read the rows."""

    rows: tuple[str, ...]
    chars: ClassVar[Mapping[str, int]]
    min_side: ClassVar[int] = 2

    def check_rows(self) -> None:
        if not self.rows or any(not isinstance(r, str) for r in self.rows):
            raise ValueError("`rows` must be a non-empty list of strings")
        side = len(self.rows)
        if side < self.min_side or any(len(r) != side for r in self.rows):
            raise ValueError(f"`rows` must be a square of side >= {self.min_side}, got {side} rows of lengths "
                             f"{sorted({len(r) for r in self.rows})}")
        bad = sorted({ch for r in self.rows for ch in r} - set(self.chars))
        if bad:
            raise ValueError(f"`rows` has unknown characters {bad}; use {', '.join(map(repr, self.chars))}")
        text = "".join(self.rows)
        if text.count("S") != 1 or text.count("G") != 1:
            raise ValueError("`rows` must contain exactly one 'S' and one 'G'")

    @property
    def grid(self) -> np.ndarray:
        """Label grid ``[n, n]`` of the board without the agent."""
        return np.array([[self.chars[ch] for ch in row] for row in self.rows], dtype=np.int8)

    @property
    def start(self) -> Cell:
        return self._find("S")

    @property
    def goal(self) -> Cell:
        return self._find("G")

    def _find(self, ch: str) -> Cell:
        return next((r, row.index(ch)) for r, row in enumerate(self.rows) if ch in row)
