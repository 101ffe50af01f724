"""MP4 (H.264) reading and writing with PyAV, plus PNG frames."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
from PIL import Image


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
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
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
                frames.append(frame.to_ndarray(format="rgb24"))
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
