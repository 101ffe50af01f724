"""The task interface shared by every puzzle domain, and the `Parsed` / `Verdict` records it produces.

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

import dataclasses
import functools
import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from videoreason.tasks.render import (
    DEFAULT_PALETTE,
    CellGeometry,
    RenderSpec,
    cell_geometry,
    classify_cells,
    render_states,
)

#: A parsed video is accepted for scoring only when at least this fraction of its cells was read confidently.
MIN_CONFIDENCE = 0.5


@dataclass
class Parsed:
    """What a parser read from a video.

    Attributes:
        labels: int8 array ``[F, R, C]``; the class index of every cell in every frame, ``-1`` where unsure.
        confidence: fraction of cells read with a clear margin (0 for garbage, 1 for a clean render).
        geometry: where each cell lies in the frame (for trajectory metrics in frame units); ``None`` when unknown.
    """

    labels: np.ndarray
    confidence: float
    geometry: CellGeometry | None = None

    @classmethod
    def unreadable(cls, shape: tuple[int, int]) -> Parsed:
        """A parse of a video that could not be read at all (no frames, wrong layout)."""
        return cls(labels=np.full((0, *shape), -1, dtype=np.int8), confidence=0.0)


@dataclass
class Verdict:
    """The verifier's judgement of one video.

    Attributes:
        success: every rule of the task holds (the SR metric averages this).
        precision: fraction of what the video drew that the reference solution also has.
        recall: fraction of the reference solution that the video drew.
        f1: harmonic mean of precision and recall.
        exact_match: success and the same trajectory as the reference solution.
        components: dense scores in [0, 1] measuring partial progress, by name.
        confidence: the parser's confidence.
        trajectory: the field's trajectory metrics of agent videos (`videoreason.tasks.agent`: PR, SR, SD, EM as
            published), ``None`` where undefined; empty for painted videos.
    """

    success: bool
    precision: float
    recall: float
    f1: float
    exact_match: bool
    components: dict[str, float] = field(default_factory=dict)
    confidence: float = 1.0
    trajectory: dict[str, float | None] = field(default_factory=dict)

    def metrics(self) -> dict[str, float | None]:
        """Flat ``name -> value`` view (success/exact_match as 0/1), for tables and rewards."""
        out = {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "success": float(self.success),
            "exact_match": float(self.exact_match),
        }
        out.update(self.components)
        out.update(self.trajectory)
        return out


def precision_recall_f1(predicted: set, reference: set) -> tuple[float, float, float]:
    """Set precision, recall and F1; an empty prediction has precision 0 (nothing right was drawn)."""
    hits = len(predicted & reference)
    precision = hits / len(predicted) if predicted else 0.0
    recall = hits / len(reference) if reference else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


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


def failed_verdict(component_names: tuple[str, ...], confidence: float,
                   trajectory: Mapping[str, float | None] | None = None) -> Verdict:
    """The verdict of an unreadable video: nothing holds, every score is 0 (``trajectory``: an agent task's
    trajectory metrics of a video without a trajectory)."""
    return Verdict(False, 0.0, 0.0, 0.0, False, dict.fromkeys(component_names, 0.0), confidence, dict(trajectory or {}))


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


class JsonRecord:
    """Mixin for dataclasses that round-trip through JSON (tuples and nested lists are restored by the type)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        """Build from :meth:`to_dict` output; unknown or missing keys raise a ``ValueError`` naming them."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {unknown}")
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"missing {cls.__name__} keys: {missing}")
        try:
            return cls(**{k: _tuplify(v) for k, v in data.items()})
        except (TypeError, ValueError) as err:
            raise ValueError(f"invalid {cls.__name__}: {err}") from err


@dataclass(frozen=True)
class PathSolution(JsonRecord):
    """A solution that is a walk of cells: ``[row, col]`` pairs of non-negative integers, first to last inclusive."""

    path: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        if not isinstance(self.path, (tuple, list)) or not self.path:
            raise ValueError(f"`path` must be a non-empty list of [row, col] cells, got {self.path!r}")
        for cell in self.path:
            if (not isinstance(cell, (tuple, list)) or len(cell) != 2 or not all(
                    isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= 0 for x in cell)):
                raise ValueError(f"`path` cells must be [row, col] pairs of non-negative integers, got {cell!r}")
        object.__setattr__(self, "path", tuple((int(r), int(c)) for r, c in self.path))


def _tuplify(value: Any) -> Any:
    """JSON lists back to (nested) tuples, the immutable form our records use."""
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value


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
        module_name, _, cls_name = name.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), cls_name)
        except (ImportError, AttributeError) as err:
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
