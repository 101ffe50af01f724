"""The task interface shared by every puzzle domain, the board helpers tasks share, the one scoring path
(`safe_verdict`) and the task registry (`resolve_task`); the records a task reads and writes are in
`videoreason.tasks.records` (puzzles, solutions) and `videoreason.tasks.verdict` (`Parsed`, `Verdict`).

A task is a small class of pure, seeded, deterministic methods::

    puzzle = task.generate(rng, "easy")          # a JSON-serialisable dataclass
    solution = task.solve(puzzle)                 # rule-based planner
    states = task.states(puzzle, solution)        # label grids [T, R, C], one per solution step
    video = task.render(puzzle, states, spec)     # uint8 [F, H, W, 3]
    parsed = task.parse(video, puzzle, spec)      # per-frame cell labels + confidence
    verdict = task.verify(parsed, puzzle)         # success / P / R / F1 / EM / dense components

Every board is a grid of cells whose content is one of the task's ``classes``; rendering and parsing are shared
(`videoreason.tasks.render`), so a domain only defines its rules.
"""

from __future__ import annotations

import functools
import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from videoreason.imports import import_path
from videoreason.tasks.records import JsonRecord
from videoreason.tasks.render import (
    DEFAULT_PALETTE,
    RenderSpec,
    cell_geometry,
    classify_cells,
    render_states,
)
from videoreason.tasks.verdict import MIN_CONFIDENCE, Parsed, Verdict, failed_verdict

MIN_CELL_PIXELS = 5  # a cell narrower than this may not survive H.264 (a 15-block maze in 64 pixels does not)


def round_up(value: float, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is >= ``value``."""
    return int(-(-value // multiple) * multiple)


def hold_solved(states: list[np.ndarray], max_states: int | None, board: str, steps: str) -> np.ndarray:
    """A chain-of-frames video's states ``[T, R, C]``; with ``max_states`` the solved board is held so that there are
    exactly ``max_states`` (one per frame), and a video needing more raises a ``ValueError`` naming the frames
    ("this ``board`` needs N frames ``steps``, the video has M")."""
    if max_states is not None:
        if len(states) > max_states:
            raise ValueError(f"this {board} needs {len(states)} frames {steps}, the video has {max_states}")
        states = states + [states[-1]] * (max_states - len(states))
    return np.stack(states)


PuzzleT = TypeVar("PuzzleT", bound=JsonRecord)
SolutionT = TypeVar("SolutionT", bound=JsonRecord)
DifficultyT = TypeVar("DifficultyT")


class Task(ABC, Generic[PuzzleT, SolutionT, DifficultyT]):
    """A verifiable puzzle domain. Subclasses set the class attributes and implement the abstract methods.

    Attributes:
        name: short name used in dataset rows and on the command line (``--task maze``).
        classes: palette names of the cell classes, in label order (label ``i`` is ``classes[i]``).
        dot_classes: classes drawn as a disc on the ``dot_background`` class instead of a full square.
        levels: named difficulty presets, easiest first.
        puzzle_type / solution_type: the JSON record classes.
        failed_trajectory: the trajectory metrics of an unreadable video (agent tasks, `videoreason.tasks.agent`).
        dihedral: the rules, prompt and verdict are unchanged when the board is rotated or reflected, so a
            rotated or mirrored board is the same puzzle: held-out splits exclude them and training may augment
            with them.
    """

    name: ClassVar[str]
    classes: ClassVar[tuple[str, ...]]
    dot_classes: ClassVar[tuple[str, ...]] = ()
    dot_background: ClassVar[str] = ""
    levels: ClassVar[dict[str, Any]]
    puzzle_type: ClassVar[type]
    solution_type: ClassVar[type]
    component_names: ClassVar[tuple[str, ...]]
    failed_trajectory: ClassVar[dict[str, float | None]] = {}
    dihedral: ClassVar[bool] = True

    # ---------------------------------------------------------------- domain rules (implemented per task)
    @abstractmethod
    def generate(self, rng: np.random.Generator, difficulty: str | DifficultyT) -> PuzzleT:
        """A random puzzle of the given difficulty; the same rng state gives the same puzzle."""

    @abstractmethod
    def solve(self, puzzle: PuzzleT) -> SolutionT:
        """A solution found by the rule-based planner."""

    @abstractmethod
    def states(self, puzzle: PuzzleT, solution: SolutionT, max_states: int | None = None) -> np.ndarray:
        """The board after each solution step: int8 ``[T, R, C]``, ``states[0]`` is the unsolved puzzle.

        ``max_states`` (the video's frame count) lets a task whose rules need every step visible (Sokoban)
        coarsen its steps so they fit, or raise a ``ValueError`` if they cannot; others may ignore it.
        """

    @abstractmethod
    def verify(self, parsed: Parsed, puzzle: PuzzleT) -> Verdict:
        """Judge a parsed video against the rules and the reference solution."""

    @abstractmethod
    def prompt(self, puzzle: PuzzleT) -> str:
        """The text prompt given to the video model with the first frame."""

    def max_frames(self, difficulty: str | DifficultyT) -> int | None:
        """The most frames a solution video of this level can need (its longest solution, one step per frame), known
        from the level alone; ``None`` when any frame count works (the solution is resampled to the frames)."""
        del difficulty
        return None

    def board_shape(self, difficulty: str | DifficultyT) -> tuple[int, int] | None:
        """``(rows, cols)`` of the largest board of this level, known from the level alone (``None``: unknown)."""
        del difficulty
        return None

    def frame_size(self, difficulty: str | DifficultyT, height: int, width: int) -> tuple[int, int]:
        """The smallest frame of at least ``height`` x ``width`` pixels that draws every board of this level with
        cells of at least ``MIN_CELL_PIXELS`` (sides a multiple of 16, as video codecs like)."""
        shape = self.board_shape(difficulty)
        if shape is None:
            return height, width
        return (max(height, round_up(shape[0] * MIN_CELL_PIXELS, 16)),
                max(width, round_up(shape[1] * MIN_CELL_PIXELS, 16)))

    def grid_shape(self, puzzle: PuzzleT) -> tuple[int, int]:
        """``(rows, cols)`` of the rendered board."""
        return self.initial_state(puzzle).shape

    @abstractmethod
    def initial_state(self, puzzle: PuzzleT) -> np.ndarray:
        """The unsolved board as an int8 label grid ``[R, C]`` (the first frame)."""

    # ---------------------------------------------------------------- shared machinery
    def difficulty(self, level: str | DifficultyT) -> DifficultyT:
        """Resolve a level name (``"easy"``) to its preset; a difficulty object passes through."""
        if isinstance(level, str):
            if level not in self.levels:
                raise ValueError(f"unknown {self.name} difficulty {level!r}; choose from {sorted(self.levels)}")
            return self.levels[level]
        return level

    def colors(self, spec: RenderSpec) -> np.ndarray:
        """RGB colours of the classes, uint8 ``[K, 3]``, from the spec's palette.

        A class the palette lacks (a dataset written before the class existed) takes its default colour; two
        classes of one task sharing a colour could not be told apart, so that raises a ``ValueError``.
        """
        unknown = [c for c in self.classes if c not in spec.palette and c not in DEFAULT_PALETTE]
        if unknown:
            raise ValueError(f"`spec.palette` lacks colours for {self.name} classes {unknown}")
        colors = [tuple(spec.palette.get(c, DEFAULT_PALETTE.get(c))) for c in self.classes]
        if len(set(colors)) < len(colors):
            raise ValueError(f"`spec.palette` gives two {self.name} classes the same colour: "
                             f"{dict(zip(self.classes, colors, strict=True))}")
        return np.array(colors, dtype=np.uint8)

    def render(self, puzzle: PuzzleT, states: np.ndarray, spec: RenderSpec) -> np.ndarray:
        """Render label grids ``[T, R, C]`` to a video ``[F, H, W, 3]`` uint8 of ``spec.num_frames`` frames.

        Frame ``f`` shows state ``round(f * (T - 1) / (F - 1))``: the first frame is the puzzle, the last the
        solution, and when ``T <= F`` every state is shown at least once.
        """
        dots = [self.classes.index(c) for c in self.dot_classes]
        under = self.classes.index(self.dot_background) if self.dot_classes else -1
        return render_states(np.asarray(states), spec, self.colors(spec), dots, under)

    def parse(self, video: Any, puzzle: PuzzleT, spec: RenderSpec) -> Parsed:
        """Read the cell labels of every frame; never raises on malformed or garbage input."""
        shape = self.grid_shape(puzzle)
        labels, confident = classify_cells(video, shape, spec, self.colors(spec))
        if labels is None:
            return Parsed.unreadable(shape)
        return Parsed(labels=labels, confidence=float(confident.mean()), geometry=cell_geometry(shape, spec))

    def verdict(self, video: Any, puzzle: PuzzleT, spec: RenderSpec) -> Verdict:
        """Parse and verify in one call."""
        return self.verify(self.parse(video, puzzle, spec), puzzle)

    def is_readable(self, parsed: Parsed) -> bool:
        """Whether the parse is good enough to be judged (enough frames and confidence)."""
        return parsed.labels.ndim == 3 and parsed.labels.shape[0] >= 2 and parsed.confidence >= MIN_CONFIDENCE

    def failed(self, parsed: Parsed) -> Verdict:
        """Zero verdict for an unreadable parse."""
        return failed_verdict(self.component_names, parsed.confidence, self.failed_trajectory)

    def puzzle_from_dict(self, data: Mapping[str, Any]) -> PuzzleT:
        """Load and validate a puzzle from JSON data."""
        return self.puzzle_type.from_dict(data)

    def solution_from_dict(self, data: Mapping[str, Any]) -> SolutionT:
        """Load and validate a solution from JSON data."""
        return self.solution_type.from_dict(data)


def safe_verdict(task: Task, video: Any, puzzle: Any, spec: RenderSpec) -> tuple[Verdict, str | None]:
    """Parse and verify one video: the one scoring path of validation, ``videoreason eval`` and ``data verify``.

    Args:
        task: the video's task.
        video: uint8 ``[F, H, W, 3]``.
        puzzle: the task's puzzle record or its JSON dict.
        spec: how the video was rendered.

    Returns:
        The verdict and ``None``; or, when the puzzle record, the parse or the verification raised, the task's zero
        verdict and the error (``"ValueError: ..."``), so one bad sample never stops a batch.
    """
    confidence = 0.0
    try:
        if isinstance(puzzle, Mapping):
            puzzle = task.puzzle_from_dict(puzzle)
        parsed = task.parse(video, puzzle, spec)
        confidence = float(parsed.confidence)
        return task.verify(parsed, puzzle), None
    except Exception as err:  # noqa: BLE001 - one bad sample must not stop the batch
        failed = failed_verdict(tuple(task.component_names), confidence, task.failed_trajectory)
        return failed, f"{type(err).__name__}: {err}"


BUILTIN_TASKS = ("maze", "flowfree", "sokoban", "trapfield", "maze_agent", "maze3d", "navigation", "pathfinder")
"""Short names of the built-in tasks (modules of `videoreason.tasks`)."""


@functools.cache
def resolve_task(name: str) -> Task:
    """The task instance of a short name (``maze`` -> ``videoreason.tasks.maze``) or a class path.

    Tasks are stateless, so one shared instance per name is cached.

    The module of a short name must define exactly one `Task` subclass; a class path (``pkg.mod.MyTask``) lets
    users bring their own domains without registering them anywhere.
    """
    if "." in name:
        try:
            cls = import_path(name)
        except ImportError as err:
            raise ValueError(f"cannot import task class {name!r}: {err}") from err
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise ValueError(f"{name!r} is not a videoreason Task subclass")
        return cls()
    try:
        module = importlib.import_module(f"videoreason.tasks.{name}")
    except ImportError as err:
        raise ValueError(f"unknown task {name!r}; built-in tasks: {', '.join(BUILTIN_TASKS)} "
                         f"(or give a class path such as mypkg.tasks.MyTask)") from err
    found = [v for v in vars(module).values()
             if isinstance(v, type) and issubclass(v, Task) and v.__module__ == module.__name__]
    if len(found) != 1:
        raise ValueError(f"module videoreason.tasks.{name} does not define exactly one Task")
    return found[0]()
