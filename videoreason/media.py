"""Pixels and pictures: every conversion between uint8 frames and model tensors, video and image files, and the
pictures people look at (video grids, contact sheets).

- Conversions: ``to_unit_range`` (one uint8 ``[F, H, W, 3]`` video -> float ``[3, F, H, W]`` in [-1, 1]),
  ``to_model_video`` (a batch in any accepted layout -> float ``[B, 3, F, H, W]``), ``to_uint8`` (float
  ``[B, 3, F, H, W]`` in [-1, 1] -> ``uint8 [B, F, H, W, 3]``).
- Files: ``encode_mp4`` / ``decode_video`` / ``probe_video`` (H.264 with PyAV), ``encode_png``.
- Pictures: ``video_grid`` (several videos as one), ``contact_sheet`` of ``Tile``s (a few frames per video with its
  label, verdict and ground truth) and ``write_samples`` (both, as ``name.mp4`` and ``name.png``).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from videoreason.atomic import write_atomic
from videoreason.tasks.render import frame_state_indices

# conversions


def to_unit_range(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``[F, H, W, 3]`` -> float32 ``[3, F, H, W]`` in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)


def to_model_video(video: torch.Tensor) -> torch.Tensor:
    """Bring a video to float32 ``[B, 3, F, H, W]`` in [-1, 1].

    Args:
        video: ``uint8 [B, F, H, W, 3]``, float ``[B, F, H, W, 3]`` in [0, 255], or float ``[B, 3, F, H, W]`` in
            [-1, 1]. A float video with both ``shape[1] == 3`` and ``shape[-1] == 3`` is ambiguous and rejected.

    Returns:
        The video, float32 ``[B, 3, F, H, W]``.

    Raises:
        ValueError: The shape fits none of the conventions.
    """
    if video.ndim != 5:
        raise ValueError(f"`video` must be 5-D ([B, F, H, W, 3] or [B, 3, F, H, W]), got shape {tuple(video.shape)}")
    if video.dtype != torch.uint8 and video.shape[1] == 3 and video.shape[-1] == 3:
        raise ValueError(
            f"float `video` of shape {tuple(video.shape)} is ambiguous ([B, F=3, H, W, 3] or [B, 3, F, H, W=3]); "
            "pass uint8 [B, F, H, W, 3] or convert with `to_model_video` on an unambiguous shape"
        )
    if video.dtype == torch.uint8 or video.shape[-1] == 3:
        if video.shape[-1] != 3:
            raise ValueError(f"uint8 `video` must be [B, F, H, W, 3], got shape {tuple(video.shape)}")
        return video.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0  # [B, 3, F, H, W]
    if video.shape[1] != 3:
        raise ValueError(f"float `video` must be [B, 3, F, H, W] or [B, F, H, W, 3], got shape {tuple(video.shape)}")
    return video.float()


def to_uint8(video: torch.Tensor) -> torch.Tensor:
    """Float ``[B, 3, F, H, W]`` in [-1, 1] to ``uint8 [B, F, H, W, 3]`` (clamped, rounded)."""
    return ((video.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).contiguous()


# files


SWS_THREADS = 1
"""Threads of libswscale's pixel-format conversion. Its default (0: one per core) keeps a slice-thread pool that a
forked DataLoader or pool worker can deadlock in (a worker was seen waiting forever in
``avpriv_slicethread_execute``); at these frame sizes one thread is as fast."""


def encode_mp4(frames: np.ndarray, fps: int, crf: int = 12) -> bytes:
    """H.264 (yuv420p, playable everywhere) bytes of uint8 frames ``[F, H, W, 3]`` with even sides."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [F, H, W, 3], got {frames.dtype} {frames.shape}")
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f"H.264 needs even frame sides, got {height}x{width}")
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "tune": "animation"}
        stream.thread_count = 1
        for frame in frames:  # converted here, single-threaded (SWS_THREADS)
            rgb = av.VideoFrame.from_ndarray(frame, format="rgb24")
            container.mux(stream.encode(rgb.reformat(format="yuv420p", threads=SWS_THREADS)))
        container.mux(stream.encode())
    return buffer.getvalue()


def decode_video(source: str | Path | bytes, max_frames: int | None = None) -> np.ndarray:
    """The frames of a video file (or its bytes) as uint8 ``[F, H, W, 3]``: all of them, or the first
    ``max_frames`` (decoding stops there).

    Raises:
        ValueError: the file is missing, not a video, or has no frames.
    """
    handle = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        with av.open(handle, metadata_errors="replace") as container:  # a stray non-UTF-8 tag is no reason to fail
            stream = container.streams.video[0]
            stream.thread_count = 1
            frames = []
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24", threads=SWS_THREADS))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except (av.error.FFmpegError, IndexError, OSError) as err:
        raise ValueError(f"cannot read video {source if not isinstance(source, bytes) else '<bytes>'}: {err}") from err
    if not frames:
        raise ValueError(f"video {source if not isinstance(source, bytes) else '<bytes>'} has no frames")
    return np.stack(frames)


def probe_video(path: str | Path) -> tuple[int, int, int]:
    """``(frames, height, width)`` from a video file's header, without decoding it.

    Raises:
        ValueError: the file is missing or not a readable video.
    """
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            stream = container.streams.video[0]
            if stream.codec_context is None:  # an unknown codec tag: PyAV gives no context to read the size from
                raise ValueError(f"cannot read video {path}: no decoder for its codec")
            return int(stream.frames), int(stream.codec_context.height), int(stream.codec_context.width)
    except (av.error.FFmpegError, IndexError, OSError) as err:
        raise ValueError(f"cannot read video {path}: {err}") from err


def encode_png(frame: np.ndarray) -> bytes:
    """PNG bytes of one uint8 frame ``[H, W, 3]``."""
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return buffer.getvalue()


# pictures

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
    from PIL import ImageDraw

    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for x, text, colour in texts:
        draw.text((x, 1), text, fill=colour)
    return np.asarray(image)


def video_grid(videos: Sequence[np.ndarray], columns: int | None = None, gap: int = 2) -> np.ndarray:
    """Tile equally shaped videos ``[F, H, W, 3]`` into one video ``[F, rows*(H+gap)-gap, cols*(W+gap)-gap, 3]``."""
    if not videos:
        raise ValueError("video_grid needs at least one video")
    shapes = {v.shape for v in videos}
    if len(shapes) != 1:
        raise ValueError(f"videos of a grid must share one shape, got {sorted(shapes)}")
    frames, height, width, _ = videos[0].shape
    cols = columns or math.ceil(math.sqrt(len(videos)))
    rows = math.ceil(len(videos) / cols)
    grid = np.zeros((frames, rows * (height + gap) - gap, cols * (width + gap) - gap, 3), dtype=np.uint8)
    for i, video in enumerate(videos):
        r, c = divmod(i, cols)
        grid[:, r * (height + gap):r * (height + gap) + height, c * (width + gap):c * (width + gap) + width] = video
    return grid


def write_samples(tiles: Sequence[Tile | np.ndarray], out_dir: str | Path, name: str, fps: int) -> list[Path]:
    """Write ``name.mp4`` (grid of the videos, even-sized for H.264) and ``name.png`` (contact sheet: labels,
    verdicts, ground truths); returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tiles = [t if isinstance(t, Tile) else Tile(t) for t in tiles]
    grid = video_grid([t.video for t in tiles])
    grid = np.pad(grid, ((0, 0), (0, grid.shape[1] % 2), (0, grid.shape[2] % 2), (0, 0)))  # yuv420p needs even
    paths = [out / f"{name}.mp4", out / f"{name}.png"]
    write_atomic(paths[0], encode_mp4(grid, fps=fps))
    write_atomic(paths[1], encode_png(contact_sheet(tiles)))
    return paths
