"""Contact sheets: a few frames of several videos in one PNG, for people to look at.

Each row is one video (a ``Tile``): a header with its label and verdict, its frames scaled up to a readable size
and framed in the verdict's colour (green success, red failure, grey unscored), and the ground truth's frames
beside them when given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from videoreason.tasks.render import frame_state_indices

SUCCESS, FAILURE, UNSCORED = (40, 160, 60), (200, 40, 40), (110, 110, 110)
BACKGROUND, TEXT = (255, 255, 255), (20, 20, 20)


@dataclass
class Tile:
    """One row of a sheet: a video ``uint8 [F, H, W, 3]``, its label (e.g. the puzzle id), its verdict and the ground
    truth to show beside it."""

    video: np.ndarray
    label: str = ""
    success: bool | None = None
    reference: np.ndarray | None = None


def contact_sheet(tiles: Sequence[Tile | np.ndarray], frames: int = 5, gap: int = 4, min_height: int = 96
                  ) -> np.ndarray:
    """One row per tile showing ``frames`` evenly spaced frames (first and last included), uint8 ``[H, W, 3]``.

    Frames smaller than ``min_height`` are scaled up by a whole factor (nearest neighbour, so blocks stay sharp).
    A bare video is a tile without label, verdict or reference. Rows may differ in size; each is padded to the widest.
    """
    if not tiles:
        raise ValueError("contact_sheet needs at least one video")
    tiles = [t if isinstance(t, Tile) else Tile(t) for t in tiles]
    labelled = any(t.label or t.success is not None or t.reference is not None for t in tiles)
    rows = [_row(t, frames, gap, min_height, labelled) for t in tiles]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, gap), (0, width - r.shape[1]), (0, 0)), constant_values=255 if labelled else 0)
            for r in rows]
    return np.concatenate(rows, axis=0)[:-gap]


def _strip(video: np.ndarray, frames: int, gap: int, scale: int, fill: int) -> np.ndarray:
    """``frames`` evenly spaced frames of ``video``, scaled by ``scale``, side by side."""
    picks = video[np.unique(frame_state_indices(len(video), frames))]  # [k, H, W, 3]
    picks = picks.repeat(scale, axis=1).repeat(scale, axis=2)
    pad = np.full((picks.shape[1], gap, 3), fill, dtype=np.uint8)
    return np.concatenate([x for frame in picks for x in (frame, pad)][:-1], axis=1)


def _row(tile: Tile, frames: int, gap: int, min_height: int, labelled: bool) -> np.ndarray:
    scale = max(1, -(-min_height // tile.video.shape[1]))
    if not labelled:
        return _strip(tile.video, frames, gap, scale, 0)
    colour = UNSCORED if tile.success is None else SUCCESS if tile.success else FAILURE
    border = max(2, scale)
    body = np.pad(_strip(tile.video, frames, gap, scale, 255), ((border,) * 2, (border,) * 2, (0, 0)))
    body[:border], body[-border:], body[:, :border], body[:, -border:] = colour, colour, colour, colour
    verdict = "" if tile.success is None else ("success" if tile.success else "fail")
    texts = [(2, "   ".join(x for x in (tile.label, verdict) if x), colour if verdict else TEXT)]
    parts = [body]
    if tile.reference is not None:
        reference = np.pad(_strip(tile.reference, frames, gap, scale, 255), ((border,) * 2, (0, 0), (0, 0)),
                           constant_values=255)
        parts += [np.full((body.shape[0], 3 * gap, 3), 255, dtype=np.uint8), reference]
        texts.append((body.shape[1] + 3 * gap, "ground truth", TEXT))
    body = np.concatenate(parts, axis=1)
    return np.concatenate([_text(texts, body.shape[1]), body], axis=0)


def _text(texts: list[tuple[int, str, tuple[int, int, int]]], width: int, height: int = 14) -> np.ndarray:
    """A white strip ``[height, width, 3]`` with each ``(x, text, colour)`` written on it (PIL's built-in font)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for x, text, colour in texts:
        draw.text((x, 1), text, fill=colour)
    return np.asarray(image)
