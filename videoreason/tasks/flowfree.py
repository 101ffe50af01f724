"""FlowFree: connect each pair of same-coloured dots with a pipe so that the pipes fill the whole board.

Board. An ``n x n`` grid; label 0 is an empty cell, label ``i`` (1..10) is colour ``i`` (``classes[i]``). The
puzzle fixes two endpoint cells per colour. A solution gives every cell a colour such that each colour's cells form
one simple *induced* path between its endpoints: an endpoint has exactly one same-colour 4-neighbour, every other
cell of the colour exactly two, and the colour's cells are connected (so pipes never cross, branch, loop or run
alongside themselves). Boards are made by randomising a Hamiltonian path (backbite moves), splitting it into
induced segments of >= 3 cells (joining/cutting segments until the colour count is in range), and checking with
the SAT solver (`videoreason.tasks.flowfree_solver`), which also proves whether the solution is unique.

Videos, in one of two styles chosen by the difficulty and recorded in the puzzle (``video``); frame 0 shows only the
dots:

- ``grow``: every pipe grows at once from its first endpoint, each in proportion to its length.
- ``forced`` (levels ending in ``-forced``): each frame paints every move the board forces (`forced_step`), the way
  a person solves it: a pipe end with one free neighbour must go there, and a free cell with only two open
  neighbours (free cells or pipe ends) must join the pipe end among them. When nothing is forced, the solution is
  followed one guess at a time: both ends of the lowest unconnected colour grow one cell (so a rotated or reflected
  video is the video of the rotated or reflected board). Pipe cells are drawn in a pale shade of their colour (the
  ``*_pipe`` classes), so every frame shows which cells are the dots and which are pipe ends: the next frame is a
  function of the frame before (a video can be generated frame by frame, as in the maze's ``fill`` style), and the
  solved board holds to the last frame. Parsing
  reads a pale cell as its colour, so the verdict below is the same for both styles.

Verdict (frames ``L_0 .. L_{F-1}``, ``L = L_{F-1}`` the final board, ``K`` colours, ``E`` the endpoint cells,
``ref`` the solver's board, "coloured" = label in ``1..K``):

- **success**: ``L_0`` equals the puzzle's initial board; every cell is read confidently in every frame; every
  endpoint keeps its colour in every frame; painting is monotone (a cell coloured in frame ``t`` keeps that colour
  in every later frame); in ``L`` every cell is coloured and each colour's cells form one simple induced path
  between its endpoints (as above). Success means ``L`` is a solution of the puzzle.
- **precision / recall / F1**: over the non-endpoint cells, predicted ``P = {(cell, L[cell]) : L[cell] >= 1}`` and
  reference ``R = {(cell, ref[cell])}``: ``|P & R| / |P|`` and ``|P & R| / |R|``.
- **exact_match**: success and ``L == ref``. Generated puzzles are unique (``puzzle.unique``), and for a unique
  puzzle exact match equals success.
- components, each in [0, 1]:
  ``fill`` = fraction of cells coloured in ``L``;
  ``endpoints_kept`` = fraction of (frame, endpoint) pairs showing the endpoint's colour;
  ``connected_pairs`` = fraction of colours whose endpoints are joined through cells of that colour in ``L``;
  ``valid_paths`` = fraction of colours whose cells in ``L`` form a valid induced path between the endpoints;
  ``layout_preserved`` = fraction of cells of ``L_0`` equal to the initial board;
  ``monotonic`` = fraction of consecutive frame pairs in which no coloured cell is lost or recoloured.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from videoreason.checks import is_integer
from videoreason.tasks.base import Task, hold_solved
from videoreason.tasks.flowfree_solver import (
    backbite,
    board_paths,
    neighbour_table,
    snake_path,
    solve_boards,
    split_flows,
)
from videoreason.tasks.grid import checked_cell
from videoreason.tasks.records import JsonRecord
from videoreason.tasks.render import RenderSpec
from videoreason.tasks.verdict import Parsed, Verdict, precision_recall_f1

MAX_COLOURS = 10
MIN_SIZE, MAX_SIZE = 2, 12
VIDEOS = ("grow", "forced")
COLOURS = ("red", "green", "blue", "yellow", "orange", "cyan", "magenta", "brown", "purple", "teal")
#: Split attempts before `generate` gives up (a few per puzzle are typical up to 8x8, ~150 at 10x10).
MAX_ATTEMPTS = 5000


@dataclass(frozen=True)
class FlowFreePuzzle(JsonRecord):
    """A board size, one endpoint pair per colour (colour ``i + 1`` joins ``endpoints[i]``), uniqueness, and how
    its solution video is drawn (``grow`` or ``forced``, see the module docstring)."""

    size: int
    endpoints: tuple[tuple[tuple[int, int], tuple[int, int]], ...]
    unique: bool = False
    video: str = "grow"

    def __post_init__(self) -> None:
        if not is_integer(self.size) or not MIN_SIZE <= self.size <= MAX_SIZE:
            raise ValueError(f"`size` must be an integer in [{MIN_SIZE}, {MAX_SIZE}], got {self.size!r}")
        if not isinstance(self.endpoints, (tuple, list)) or not 1 <= len(self.endpoints) <= MAX_COLOURS:
            raise ValueError(f"`endpoints` must list 1 to {MAX_COLOURS} pairs, got {self.endpoints!r}")
        pairs = []
        for i, pair in enumerate(self.endpoints):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"`endpoints[{i}]` must be a pair of cells, got {pair!r}")
            pairs.append(tuple(checked_cell(p, (self.size, self.size), f"`endpoints[{i}]` cell") for p in pair))
        cells = [c for pair in pairs for c in pair]
        if len(set(cells)) != len(cells):
            raise ValueError(f"`endpoints` cells must be distinct, got {pairs}")
        if not isinstance(self.unique, bool):
            raise ValueError(f"`unique` must be a boolean, got {self.unique!r}")
        if self.video not in VIDEOS:
            raise ValueError(f"`video` must be one of {VIDEOS}, got {self.video!r}")
        object.__setattr__(self, "endpoints", tuple(pairs))

    @property
    def num_colors(self) -> int:
        return len(self.endpoints)


@dataclass(frozen=True)
class FlowFreeSolution(JsonRecord):
    """Per colour, the cells of its pipe from the first endpoint to the second, inclusive."""

    paths: tuple[tuple[tuple[int, int], ...], ...]

    def __post_init__(self) -> None:
        if not isinstance(self.paths, (tuple, list)):
            raise ValueError(f"`paths` must be a list of paths, got {self.paths!r}")
        paths = []
        for i, path in enumerate(self.paths):
            if not isinstance(path, (tuple, list)) or not path:
                raise ValueError(f"`paths[{i}]` must be a non-empty list of cells, got {path!r}")
            paths.append(tuple(checked_cell(c, (MAX_SIZE, MAX_SIZE), f"`paths[{i}]` cell") for c in path))
        object.__setattr__(self, "paths", tuple(paths))


@dataclass(frozen=True)
class FlowFreeDifficulty:
    """Board side, the allowed range of colour counts, whether the solution must be unique, the video style of the
    solutions and, for ``forced`` videos, the most frames a board may need (``max_frames``: boards that need more are
    drawn again; ``None``: every board, at most 1 + size^2 - 2 min_colors frames)."""

    size: int
    min_colors: int
    max_colors: int
    require_unique: bool = True
    video: str = "grow"
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise ValueError(f"`size` must be in [{MIN_SIZE}, {MAX_SIZE}], got {self.size}")
        if not 1 <= self.min_colors <= self.max_colors <= MAX_COLOURS:
            raise ValueError(f"need 1 <= `min_colors` <= `max_colors` <= {MAX_COLOURS}, "
                             f"got {self.min_colors}, {self.max_colors}")
        if 3 * self.min_colors > self.size * self.size:
            raise ValueError(f"`min_colors` {self.min_colors} pipes of >= 3 cells do not fit a "
                             f"{self.size}x{self.size} board")
        if self.video not in VIDEOS:
            raise ValueError(f"`video` must be one of {VIDEOS}, got {self.video!r}")
        if self.video == "forced" and not self.require_unique:
            raise ValueError("the `forced` video paints the moves a board forces, so it needs `require_unique`")
        if self.max_frames is not None and (self.video != "forced" or self.max_frames < 2):
            raise ValueError(f"`max_frames` bounds `forced` videos and must be >= 2, got {self.max_frames} for a "
                             f"{self.video!r} video")


class FlowFree(Task[FlowFreePuzzle, FlowFreeSolution, FlowFreeDifficulty]):
    """FlowFree pipe filling (see the module docstring for the rules and metrics)."""

    name = "flowfree"
    classes = ("empty", *COLOURS, *(f"{c}_pipe" for c in COLOURS))
    levels: ClassVar[dict[str, FlowFreeDifficulty]] = {
        "tiny": FlowFreeDifficulty(size=4, min_colors=2, max_colors=3),
        # forced boards that fit the tiny 9 frames (tiny-forced) and the recipe's 17 (easy-forced): the cap only drops
        # boards that never fitted those videos, so datasets made before it are unchanged
        "tiny-forced": FlowFreeDifficulty(size=4, min_colors=2, max_colors=3, video="forced", max_frames=9),
        "easy-forced": FlowFreeDifficulty(size=5, min_colors=3, max_colors=4, video="forced", max_frames=17),
        "easy": FlowFreeDifficulty(size=5, min_colors=3, max_colors=4),
        "medium": FlowFreeDifficulty(size=6, min_colors=4, max_colors=5),
        "hard": FlowFreeDifficulty(size=7, min_colors=5, max_colors=7),
        "expert": FlowFreeDifficulty(size=8, min_colors=6, max_colors=8),
    }
    puzzle_type = FlowFreePuzzle
    solution_type = FlowFreeSolution
    component_names = ("fill", "endpoints_kept", "connected_pairs", "valid_paths", "layout_preserved",
                       "monotonic")

    def generate(self, rng: np.random.Generator, difficulty: str | FlowFreeDifficulty) -> FlowFreePuzzle:
        level = self.difficulty(difficulty)
        while True:
            puzzle = generate_flows(rng, level)[0]
            if level.max_frames is None or len(self.states(puzzle, self.solve(puzzle))) <= level.max_frames:
                return puzzle

    def board_shape(self, difficulty: str | FlowFreeDifficulty) -> tuple[int, int]:
        return (self.difficulty(difficulty).size,) * 2

    def max_frames(self, difficulty: str | FlowFreeDifficulty) -> int | None:
        """``forced``: the puzzle, then at least one more cell painted per frame, at most ``level.max_frames``."""
        level = self.difficulty(difficulty)
        if level.video != "forced":
            return None
        natural = 1 + level.size**2 - 2 * level.min_colors
        return natural if level.max_frames is None else min(natural, level.max_frames)

    def solve(self, puzzle: FlowFreePuzzle) -> FlowFreeSolution:
        return FlowFreeSolution(paths=board_paths(_reference_board(puzzle), puzzle.endpoints))

    def is_unique(self, puzzle: FlowFreePuzzle) -> bool:
        """Whether the puzzle has exactly one solution (the solver searches for a second one)."""
        return len(solve_boards(puzzle.size, puzzle.endpoints, limit=2)) == 1

    def initial_state(self, puzzle: FlowFreePuzzle) -> np.ndarray:
        board = np.zeros((puzzle.size, puzzle.size), dtype=np.int8)
        for i, pair in enumerate(puzzle.endpoints):
            for cell in pair:
                board[cell] = i + 1
        return board

    def states(self, puzzle: FlowFreePuzzle, solution: FlowFreeSolution,
               max_states: int | None = None) -> np.ndarray:
        _check_solution(puzzle, solution)
        if puzzle.video == "forced":
            return _forced_states(puzzle, solution, self.initial_state(puzzle), max_states)
        inner = [path[1:-1] for path in solution.paths]
        steps = max(1, max(len(p) for p in inner))
        states = np.repeat(self.initial_state(puzzle)[None], steps + 1, axis=0)  # [T, R, C]
        for i, cells in enumerate(inner):
            for j, cell in enumerate(cells):
                # cell j appears once t * len / steps (rounded) exceeds j: each pipe grows proportionally
                first = next(t for t in range(steps + 1) if (2 * t * len(cells) + steps) // (2 * steps) > j)
                states[first:, cell[0], cell[1]] = i + 1
        return states

    def render(self, puzzle: FlowFreePuzzle, states: np.ndarray, spec: RenderSpec) -> np.ndarray:
        """As `Task.render`; in the ``forced`` style pipe cells (coloured cells that are not dots) are pale."""
        states = np.asarray(states)
        if puzzle.video == "forced":
            pipe = (states > 0) & (self.initial_state(puzzle) == 0)
            states = np.where(pipe, states + MAX_COLOURS, states)
        return super().render(puzzle, states, spec)

    def parse(self, video: Any, puzzle: FlowFreePuzzle, spec: RenderSpec) -> Parsed:
        """As `Task.parse`, a pale pipe cell read as its colour."""
        parsed = super().parse(video, puzzle, spec)
        labels = parsed.labels
        return replace(parsed, labels=np.where(labels > MAX_COLOURS, labels - MAX_COLOURS, labels))

    def prompt(self, puzzle: FlowFreePuzzle) -> str:
        n, k = puzzle.size, puzzle.num_colors
        text = (f"A {n}x{n} FlowFree puzzle with {k} colours. Connect each pair of same-coloured dots with a pipe "
                f"of their colour, fill every cell of the grid, and never let pipes cross or branch.")
        if puzzle.video == "forced":
            text += (" Each frame, draw every pipe move the board forces; when none is, extend one pipe by a cell at "
                     "both ends.")
        return text

    def verify(self, parsed: Parsed, puzzle: FlowFreePuzzle) -> Verdict:
        if not self.is_readable(parsed) or parsed.labels.shape[1:] != (puzzle.size, puzzle.size):
            return self.failed(parsed)
        labels = parsed.labels.astype(np.int16)  # [F, R, C]
        initial = self.initial_state(puzzle)
        reference = _reference_board(puzzle)
        k = puzzle.num_colors
        final = labels[-1]
        is_end = initial > 0

        end_ok = labels[:, is_end] == initial[is_end]  # [F, n_ends]
        layout = labels[0] == initial
        coloured = labels[:-1] >= 1
        kept = ~np.any(coloured & (labels[1:] != labels[:-1]), axis=(1, 2))  # [F-1]
        filled = (final >= 1) & (final <= k)
        connected, valid = _flow_checks(final, initial, puzzle)

        inner = ~is_end
        predicted = _cell_codes(final, inner & (final >= 1))
        expected = _cell_codes(reference, inner)
        precision, recall, f1 = precision_recall_f1(predicted, expected)
        success = bool(layout.all() and end_ok.all() and kept.all() and filled.all() and valid.all()
                       and (labels >= 0).all())
        exact = success and bool(np.array_equal(final, reference))
        components = {
            "fill": float(filled.mean()),
            "endpoints_kept": float(end_ok.mean()),
            "connected_pairs": float(connected.mean()),
            "valid_paths": float(valid.mean()),
            "layout_preserved": float(layout.mean()),
            "monotonic": float(kept.mean()),
        }
        return Verdict(success, precision, recall, f1, exact, components, parsed.confidence)


def generate_flows(rng: np.random.Generator, level: FlowFreeDifficulty) -> tuple[FlowFreePuzzle, FlowFreeSolution]:
    """A random puzzle of ``level`` and the generator's own solution (the solver's, too, when unique).

    Raises:
        RuntimeError: no board with the requested colour count was found in `MAX_ATTEMPTS` splits (large boards
            need more colours than the palette has).
    """
    n = level.size
    path = backbite(snake_path(n), n, 10 * n * n, rng)  # burn-in from the snake
    for attempt in range(MAX_ATTEMPTS):
        if attempt % 100 == 0:  # one colour count per puzzle (uniform over the range), redrawn if it is rare
            colours = int(rng.integers(level.min_colors, level.max_colors + 1))
        path = backbite(path, n, n * n, rng)
        segments = split_flows(path, n, colours, rng)
        if segments is None or not level.min_colors <= len(segments) <= level.max_colors:
            continue
        order = rng.permutation(len(segments))
        flips = rng.random(len(segments)) < 0.5
        paths = tuple(tuple(divmod(v, n) for v in (segments[i][::-1] if flip else segments[i]))
                      for i, flip in zip(order.tolist(), flips.tolist(), strict=True))
        endpoints = tuple((p[0], p[-1]) for p in paths)
        unique = len(solve_boards(n, endpoints, limit=2)) == 1
        if level.require_unique and not unique:
            continue
        puzzle = FlowFreePuzzle(size=n, endpoints=endpoints, unique=unique, video=level.video)
        return puzzle, FlowFreeSolution(paths=paths)
    raise RuntimeError(f"could not split a {n}x{n} FlowFree board into {level.min_colors}-{level.max_colors} "
                       f"colours in {MAX_ATTEMPTS} attempts; allow more colours or a smaller board")


@lru_cache(maxsize=4096)
def _reference_board(puzzle: FlowFreePuzzle) -> np.ndarray:
    """The solver's board (read-only, cached: verification calls this for every rollout of a puzzle)."""
    boards = solve_boards(puzzle.size, puzzle.endpoints, limit=1)
    if not boards:
        raise ValueError(f"FlowFree puzzle has no solution: {puzzle}")
    boards[0].setflags(write=False)
    return boards[0]


def _check_solution(puzzle: FlowFreePuzzle, solution: FlowFreeSolution) -> None:
    """Raise ``ValueError`` unless each path runs through adjacent in-board cells between its endpoints."""
    if len(solution.paths) != puzzle.num_colors:
        raise ValueError(f"solution has {len(solution.paths)} paths for {puzzle.num_colors} colours")
    for i, (path, (start, goal)) in enumerate(zip(solution.paths, puzzle.endpoints, strict=True)):
        if path[0] != start or path[-1] != goal:
            raise ValueError(f"path {i} must run from {start} to {goal}, got {path[0]} .. {path[-1]}")
        if any(max(r, c) >= puzzle.size for r, c in path):
            raise ValueError(f"path {i} leaves the {puzzle.size}x{puzzle.size} board")
        if any(abs(a[0] - b[0]) + abs(a[1] - b[1]) != 1 for a, b in zip(path, path[1:], strict=False)):
            raise ValueError(f"path {i} has a step between non-adjacent cells")


def _forced_states(puzzle: FlowFreePuzzle, solution: FlowFreeSolution, initial: np.ndarray,
                   max_states: int | None) -> np.ndarray:
    """The ``forced`` video's boards from ``initial``: `forced_step` until solved, the solved board held to
    ``max_states``."""
    reference = _reference_board(puzzle) if puzzle.unique else _board_of(puzzle, solution)
    states = [initial]
    while (states[-1] == 0).any():
        states.append(forced_step(states[-1], puzzle, reference))
    return hold_solved(states, max_states, "board", "to paint its forced moves one frame each")


def forced_step(board: np.ndarray, puzzle: FlowFreePuzzle, solution: np.ndarray) -> np.ndarray:
    """The ``forced`` video's next frame (labels ``[n, n]``, a partial board whose pipes grow from the dots along
    ``solution``, the solved board): every cell the rules force, or else the guessed cells; a solved board is a fixed
    point. The rules only paint what every solution paints, so on a unique puzzle they agree with ``solution``;
    the guess follows ``solution``."""
    n = puzzle.size
    nbrs = neighbour_table(n)
    flat = board.ravel()
    heads = {}  # flat cell -> colour, the growing end of every unconnected pipe
    for i, pair in enumerate(puzzle.endpoints):
        (r1, c1), (r2, c2) = pair
        first, second = _pipe_end(flat, r1 * n + c1, i + 1, nbrs), _pipe_end(flat, r2 * n + c2, i + 1, nbrs)
        if first != r2 * n + c2:  # the pipe from the first dot does not reach the second yet
            heads.update({first: i + 1, second: i + 1})
    paint: dict[int, int] = {}
    for head, colour in heads.items():  # a pipe end with one free neighbour goes there
        free = [u for u in nbrs[head] if flat[u] == 0]
        if len(free) == 1:
            paint[free[0]] = colour
    for v in np.flatnonzero(flat == 0).tolist():  # a free cell with two open neighbours joins a pipe end of them
        open_ = [u for u in nbrs[v] if flat[u] == 0 or u in heads]
        colours = {heads[u] for u in open_ if u in heads}
        if len(open_) == 2 and len(colours) == 1:
            paint[v] = colours.pop()
    if not paint and heads:  # nothing forced: both ends of the lowest unconnected colour grow one cell
        colour = min(heads.values())
        for head in (u for u, c in heads.items() if c == colour):
            paint.update({u: colour for u in nbrs[head] if flat[u] == 0 and solution.flat[u] == colour})
    out = flat.copy()
    for v, colour in paint.items():
        if solution.flat[v] != colour:
            raise ValueError(f"forced move paints cell {divmod(v, n)} colour {colour}, the solution has "
                             f"{solution.flat[v]}: the puzzle is not unique or `board` is not on its way")
        out[v] = colour
    return out.reshape(board.shape)


def _pipe_end(flat: np.ndarray, start: int, colour: int, nbrs: tuple[tuple[int, ...], ...]) -> int:
    """The last cell of the pipe of ``colour`` grown from the dot at flat cell ``start``."""
    prev, cell = -1, start
    while True:
        step = [u for u in nbrs[cell] if u != prev and flat[u] == colour]
        if not step:
            return cell
        prev, cell = cell, step[0]


def _board_of(puzzle: FlowFreePuzzle, solution: FlowFreeSolution) -> np.ndarray:
    """The label board of ``solution``."""
    board = np.zeros((puzzle.size, puzzle.size), dtype=np.int8)
    for i, path in enumerate(solution.paths):
        for r, c in path:
            board[r, c] = i + 1
    return board


def _cell_codes(board: np.ndarray, mask: np.ndarray) -> set[int]:
    """``{flat_cell * 16 + label}`` of the masked cells: a (cell, colour) set for precision / recall."""
    idx = np.flatnonzero(mask)
    return set((idx * 16 + board.ravel()[idx]).tolist())


def _flow_checks(final: np.ndarray, initial: np.ndarray, puzzle: FlowFreePuzzle) -> tuple[np.ndarray, np.ndarray]:
    """Per colour: endpoints connected through that colour, and its cells forming a valid induced path."""
    k, n = puzzle.num_colors, puzzle.size
    ok = (final >= 1) & (final <= k)
    same_v = (final[1:] == final[:-1]) & ok[1:]  # [R-1, C]
    same_h = (final[:, 1:] == final[:, :-1]) & ok[:, 1:]  # [R, C-1]
    degree = np.zeros(final.shape, dtype=np.int16)
    degree[1:] += same_v
    degree[:-1] += same_v
    degree[:, 1:] += same_h
    degree[:, :-1] += same_h
    wanted = np.where((initial > 0) & (final == initial), 1, 2)  # own endpoints end a path, other cells don't
    counts = np.bincount(final[ok], minlength=k + 1)
    bad = np.bincount(final[ok & (degree != wanted)], minlength=k + 1)
    flat = final.ravel().tolist()
    nbrs = neighbour_table(n)
    connected = np.zeros(k, dtype=bool)
    valid = np.zeros(k, dtype=bool)
    for i, ((r1, c1), (r2, c2)) in enumerate(puzzle.endpoints):
        colour, start, goal = i + 1, r1 * n + c1, r2 * n + c2
        if flat[start] != colour or flat[goal] != colour:
            continue
        seen, stack = {start}, [start]
        while stack:
            for u in nbrs[stack.pop()]:
                if u not in seen and flat[u] == colour:
                    seen.add(u)
                    stack.append(u)
        connected[i] = goal in seen
        valid[i] = connected[i] and len(seen) == counts[colour] and bad[colour] == 0
    return connected, valid
