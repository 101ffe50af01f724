"""Board rendering and parsing shared by all tasks.

A board is an ``R x C`` grid of cells, each holding one class label. `render_states` paints label grids into
frames with a fixed palette; `classify_cells` reads them back by averaging a small patch in the middle of each
cell and picking the nearest palette colour, keeping only cells whose nearest colour is close and clearly
nearer than the runner-up. The geometry is defined relative to the frame, so a resized video still parses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from videoreason.checks import is_integer

#: Fixed palette: well-separated RGB colours (min pairwise distance > 90), none near black or mid-grey.
DEFAULT_PALETTE: dict[str, tuple[int, int, int]] = {
    "floor": (236, 236, 228),
    "wall": (52, 64, 104),
    "start": (40, 170, 70),
    "goal": (215, 40, 55),
    "path": (250, 196, 20),
    "dead_end": (150, 170, 250),
    "target": (250, 160, 170),
    "box": (150, 90, 30),
    "box_on_target": (140, 200, 40),
    "player": (20, 120, 230),
    "player_on_target": (150, 40, 200),
    "empty": (236, 236, 228),
    "red": (220, 30, 40),
    "green": (30, 170, 60),
    "blue": (30, 80, 230),
    "yellow": (250, 220, 20),
    "orange": (250, 130, 20),
    "cyan": (40, 220, 230),
    "magenta": (230, 40, 220),
    "brown": (130, 70, 20),
    "purple": (120, 40, 160),
    "teal": (0, 128, 128),
    # agent videos (TrapField, Maze3D, Maze's `agent` style)
    "agent": (20, 120, 230),
    "trap": (120, 40, 160),
    "ladder": (140, 80, 20),
    # PathFinder: light roads on dark ground, junctions as yellow dots
    "ground": (52, 64, 104),
    "road": (236, 236, 228),
    "junction": (250, 196, 20),
    # FlowFree pipe cells of the `forced` video: each colour halfway to white
    "red_pipe": (238, 142, 148),
    "green_pipe": (142, 212, 158),
    "blue_pipe": (142, 168, 242),
    "yellow_pipe": (252, 238, 138),
    "orange_pipe": (252, 192, 138),
    "cyan_pipe": (148, 238, 242),
    "magenta_pipe": (242, 148, 238),
    "brown_pipe": (192, 162, 138),
    "purple_pipe": (188, 148, 208),
    "teal_pipe": (128, 192, 192),
}
BACKGROUND = (16, 16, 16)
MIN_DOT_CELL = 12.0


@dataclass(frozen=True)
class RenderSpec:
    """How boards become videos.

    Args:
        height: frame height in pixels (even, for H.264).
        width: frame width in pixels (even).
        num_frames: frames per video; Wan models want ``4k + 1``.
        fps: frames per second of the written mp4.
        margin: pixels kept free around the board, which is centred and square-celled.
        cell: the largest cell side in pixels, or ``None`` for cells as large as the frame allows. With it a board
            smaller than the frame sits centred at this cell size with background around it, so one dataset (one
            spec) can hold boards of several sizes drawn alike (``data generate --cell 8``).
        grid_line: width of the dark line between cells, as a fraction of the cell side.
        sample_fraction: side of the patch the parser averages in each cell's middle, as a fraction of the cell.
        palette: RGB colour of each class name.
    """

    height: int = 64
    width: int = 64
    num_frames: int = 9
    fps: int = 4
    margin: int = 0
    cell: int | None = None
    grid_line: float = 0.06
    sample_fraction: float = 0.4
    palette: dict[str, tuple[int, int, int]] = field(default_factory=lambda: dict(DEFAULT_PALETTE))

    def __post_init__(self) -> None:
        for key in ("height", "width"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 16 or value % 2:
                raise ValueError(f"`spec.{key}` must be an even integer >= 16, got {value!r}")
        if not isinstance(self.num_frames, int) or self.num_frames < 2:
            raise ValueError(f"`spec.num_frames` must be an integer >= 2, got {self.num_frames!r}")
        if not isinstance(self.fps, int) or self.fps < 1:
            raise ValueError(f"`spec.fps` must be a positive integer, got {self.fps!r}")
        if not 0 <= self.margin < min(self.height, self.width) // 2:
            raise ValueError(f"`spec.margin` must leave room for the board, got {self.margin!r}")
        if self.cell is not None and (not is_integer(self.cell) or self.cell < 1):
            raise ValueError(f"`spec.cell` must be a positive integer or None, got {self.cell!r}")
        if not 0 <= self.grid_line < 0.3:
            raise ValueError(f"`spec.grid_line` must be in [0, 0.3), got {self.grid_line!r}")
        if not 0 < self.sample_fraction <= 0.6:
            raise ValueError(f"`spec.sample_fraction` must be in (0, 0.6], got {self.sample_fraction!r}")
        object.__setattr__(self, "palette", {k: tuple(int(c) for c in v) for k, v in self.palette.items()})

    @classmethod
    def tiny(cls, **overrides: Any) -> RenderSpec:
        """The default for tiny CPU recipes: 64x64, 9 frames."""
        return cls(**overrides)

    @classmethod
    def wan(cls, **overrides: Any) -> RenderSpec:
        """Wan 2.x default: 480x832 (sides multiple of 16), 33 frames (4k + 1) at 16 fps."""
        return cls(**{"height": 480, "width": 832, "num_frames": 33, "fps": 16, "margin": 16, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict."""
        out = dataclasses.asdict(self)
        out["palette"] = {k: list(v) for k, v in self.palette.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenderSpec:
        """Inverse of :meth:`to_dict`; unknown keys raise a ``ValueError`` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown RenderSpec keys: {unknown}")
        return cls(**data)


def frame_state_indices(num_states: int, num_frames: int) -> np.ndarray:
    """State shown in each frame: ``round(f * (T - 1) / (F - 1))``; surjective whenever ``T <= F``."""
    return np.rint(np.arange(num_frames) * (num_states - 1) / (num_frames - 1)).astype(np.int64)


@dataclass(frozen=True)
class CellGeometry:
    """Where each cell of a board lies in the frame, in frame-relative units (x / width, y / height).

    Attributes:
        centres: float ``[R, C, 2]``, the ``(x, y)`` centre of every cell.
        boxes: float ``[R, C, 4]``, the ``(x, y, w, h)`` box around every cell (top-left corner and size).
    """

    centres: np.ndarray
    boxes: np.ndarray


def cell_geometry(shape: tuple[int, int], spec: RenderSpec) -> CellGeometry:
    """The frame-relative geometry of a ``rows x cols`` board rendered with ``spec`` (`render_states`' layout)."""
    ys, xs, cell = _board_edges(shape, spec)
    top, left = np.meshgrid(ys[:-1] / spec.height, xs[:-1] / spec.width, indexing="ij")  # [R, C] each
    h, w = cell / spec.height, cell / spec.width
    centres = np.stack([left + w / 2, top + h / 2], axis=-1)  # [R, C, 2]
    boxes = np.stack([left, top, np.full_like(left, w), np.full_like(top, h)], axis=-1)  # [R, C, 4]
    return CellGeometry(centres=centres, boxes=boxes)


def _board_edges(shape: tuple[int, int], spec: RenderSpec):
    """Float pixel edges (ys [R+1], xs [C+1]) and cell side of a centred board of square cells."""
    rows, cols = shape
    height, width, margin = spec.height, spec.width, spec.margin
    cell = min((height - 2 * margin) / rows, (width - 2 * margin) / cols, spec.cell or np.inf)
    y0 = (height - rows * cell) / 2
    x0 = (width - cols * cell) / 2
    return y0 + cell * np.arange(rows + 1), x0 + cell * np.arange(cols + 1), cell


def render_states(
    states: np.ndarray, spec: RenderSpec, colors: np.ndarray, dot_labels: Sequence[int] = (), under_label: int = -1
) -> np.ndarray:
    """Paint label grids ``[T, R, C]`` into ``spec.num_frames`` frames, uint8 ``[F, H, W, 3]``.

    Cells of a label in ``dot_labels`` are drawn as a disc on a cell of ``under_label``'s colour when cells are
    at least ``MIN_DOT_CELL`` pixels wide (smaller discs do not survive H.264 chroma subsampling), else full.
    """
    if states.ndim != 3 or states.shape[0] < 1:
        raise ValueError(f"states must be label grids [T, R, C], got shape {states.shape}")
    if states.min() < 0 or states.max() >= len(colors):
        raise ValueError(f"state labels must be in [0, {len(colors)}), got [{states.min()}, {states.max()}]")
    _, rows, cols = states.shape
    ys, xs, cell = _board_edges((rows, cols), spec)
    py = np.arange(spec.height) + 0.5  # pixel centres
    px = np.arange(spec.width) + 0.5
    row_of = np.searchsorted(ys, py, side="right") - 1  # [H]
    col_of = np.searchsorted(xs, px, side="right") - 1  # [W]
    # grid lines: a whole number of pixels, split between the two sides of every cell edge
    line = int(round(spec.grid_line * cell))
    in_cell = _inside_cells(ys, row_of, rows, line)[:, None] & _inside_cells(xs, col_of, cols, line)[None, :]
    # distance of each pixel centre from its cell centre, in cell units (for dots)
    dy = (py - ys[np.clip(row_of, 0, rows - 1)]) / cell - 0.5  # [H]
    dx = (px - xs[np.clip(col_of, 0, cols - 1)]) / cell - 0.5  # [W]
    in_dot = dy[:, None] ** 2 + dx[None, :] ** 2 < 0.38**2  # [H, W]
    r_idx = np.clip(row_of, 0, rows - 1)[:, None]
    c_idx = np.clip(col_of, 0, cols - 1)[None, :]

    palette = np.concatenate([colors, np.array([BACKGROUND], dtype=np.uint8)])  # background = last entry
    background = len(colors)
    is_dot = np.zeros(len(colors) + 1, dtype=bool)
    is_dot[list(dot_labels)] = True

    frames = np.empty((spec.num_frames, spec.height, spec.width, 3), dtype=np.uint8)
    cache: dict[int, np.ndarray] = {}
    for f, s in enumerate(frame_state_indices(states.shape[0], spec.num_frames)):
        if s not in cache:
            labels = states[s][r_idx, c_idx].astype(np.int64)  # [H, W]
            if len(dot_labels) and cell >= MIN_DOT_CELL:
                dot = is_dot[labels]
                labels = np.where(dot & ~in_dot, under_label, labels)
            cache[s] = palette[np.where(in_cell, labels, background)]
        frames[f] = cache[s]
    return frames


def _inside_cells(edges: np.ndarray, index: np.ndarray, count: int, line: int) -> np.ndarray:
    """Per pixel along one axis: inside a cell and not on a grid line."""
    starts = np.rint(edges).astype(np.int64)
    clipped = np.clip(index, 0, count - 1)
    offset = np.arange(len(index)) - starts[clipped]
    size = starts[clipped + 1] - starts[clipped]
    return (index >= 0) & (index < count) & (offset >= line // 2) & (offset < size - (line - line // 2))


def as_video(video: Any) -> np.ndarray | None:
    """Coerce frames to uint8 ``[F, H, W, 3]``; ``None`` when that is impossible.

    Accepts numpy arrays or torch tensors, channels-last, grey (``[F, H, W]`` or one channel), RGBA, and floats
    in [0, 1] or [0, 255]. Never raises.
    """
    try:
        if hasattr(video, "detach"):  # torch tensor
            video = video.detach().float().cpu().numpy()
        arr = np.asarray(video)
        if arr.ndim == 3:
            arr = arr[..., None]
        if arr.ndim != 4 or min(arr.shape[:3]) < 1:
            return None
        if arr.shape[-1] == 1:
            arr = np.repeat(arr, 3, axis=-1)
        elif arr.shape[-1] == 4:
            arr = arr[..., :3]
        elif arr.shape[-1] != 3:
            return None
        if arr.dtype != np.uint8:
            arr = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
            if arr.size and arr.max() <= 1.0:
                arr = arr * 255.0
            arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return arr
    except (TypeError, ValueError):
        return None


def classify_cells(
    video: Any, shape: tuple[int, int], spec: RenderSpec, colors: np.ndarray,
    max_distance: float = 60.0, min_margin: float = 0.25,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Nearest-palette label of every cell in every frame.

    The board geometry of ``spec`` is scaled to the video's actual frame size. A cell is labelled only if its
    mean colour lies within ``max_distance`` (RGB) of the nearest class colour and the relative margin
    ``(d2 - d1) / (d2 + d1)`` to the second nearest is at least ``min_margin``; otherwise it gets ``-1``.

    Returns:
        ``(labels int8 [F, R, C], confident bool [F, R, C])``, or ``(None, empty)`` for unreadable input.
    """
    frames = as_video(video)
    if frames is None:
        return None, np.zeros(0, dtype=bool)
    _, height, width, _ = frames.shape
    rows, cols = shape
    sy, sx = height / spec.height, width / spec.width
    ys, xs, cell = _board_edges(shape, spec)
    cy = ((ys[:-1] + ys[1:]) / 2) * sy  # [R] centres in the actual frame
    cx = ((xs[:-1] + xs[1:]) / 2) * sx  # [C]
    half_y = spec.sample_fraction * cell * sy / 2
    half_x = spec.sample_fraction * cell * sx / 2
    n_y = int(np.clip(round(2 * half_y), 1, 6))  # samples per side: enough to average noise, cheap at 480p
    n_x = int(np.clip(round(2 * half_x), 1, 6))
    oy = np.linspace(-half_y, half_y, n_y) if n_y > 1 else np.zeros(1)
    ox = np.linspace(-half_x, half_x, n_x) if n_x > 1 else np.zeros(1)
    iy = np.clip(np.floor(cy[:, None] + oy[None, :]), 0, height - 1).astype(np.int64)  # [R, n_y]
    ix = np.clip(np.floor(cx[:, None] + ox[None, :]), 0, width - 1).astype(np.int64)  # [C, n_x]
    patches = frames[:, iy[:, :, None, None], ix[None, None, :, :]]  # [F, R, n_y, C, n_x, 3]
    return nearest_colours(patches.astype(np.float32).mean(axis=(2, 4)), colors, max_distance, min_margin)


def classify_points(
    video: Any, centres: np.ndarray, half: float, spec: RenderSpec, colors: np.ndarray,
    max_distance: float = 60.0, min_margin: float = 0.25,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Nearest-palette label of a square patch around each of ``centres`` (``[..., 2]`` ``(x, y)`` in ``spec``
    pixels, ``half`` its half side) in every frame, for boards that are not an axis-aligned grid; scaled to the
    video's frame size and judged as in `classify_cells`. Returns ``(labels int8 [F, ...], confident)`` or
    ``(None, empty)``."""
    frames = as_video(video)
    if frames is None:
        return None, np.zeros(0, dtype=bool)
    _, height, width, _ = frames.shape
    sy, sx = height / spec.height, width / spec.width
    points = centres.reshape(-1, 2)
    n_y = int(np.clip(round(2 * half * sy), 1, 6))
    n_x = int(np.clip(round(2 * half * sx), 1, 6))
    oy = np.linspace(-half * sy, half * sy, n_y) if n_y > 1 else np.zeros(1)
    ox = np.linspace(-half * sx, half * sx, n_x) if n_x > 1 else np.zeros(1)
    iy = np.clip(np.floor(points[:, 1:2] * sy + oy[None]), 0, height - 1).astype(np.int64)  # [N, n_y]
    ix = np.clip(np.floor(points[:, 0:1] * sx + ox[None]), 0, width - 1).astype(np.int64)  # [N, n_x]
    patches = frames[:, iy[:, :, None], ix[:, None, :]]  # [F, N, n_y, n_x, 3]
    labels, confident = nearest_colours(patches.astype(np.float32).mean(axis=(2, 3)), colors, max_distance, min_margin)
    shape = (len(frames), *centres.shape[:-1])
    return labels.reshape(shape), confident.reshape(shape)


def nearest_colours(means: np.ndarray, colors: np.ndarray, max_distance: float, min_margin: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Label (``-1`` when unsure) and confidence of mean colours ``[..., 3]``: the nearest of ``colors`` when within
    ``max_distance`` and clearly nearer than the runner-up (relative margin ``(d2 - d1) / (d2 + d1)``)."""
    dist = np.linalg.norm(means[..., None, :] - colors.astype(np.float32), axis=-1)  # [..., K]
    order = np.argsort(dist, axis=-1)
    nearest = order[..., 0]
    d1 = np.take_along_axis(dist, order[..., :1], axis=-1)[..., 0]
    d2 = np.take_along_axis(dist, order[..., 1:2], axis=-1)[..., 0] if colors.shape[0] > 1 else d1 + 1e9
    confident = (d1 <= max_distance) & ((d2 - d1) >= min_margin * (d2 + d1))
    return np.where(confident, nearest, -1).astype(np.int8), confident
