"""The degradations a truth video must survive: H.264, Gaussian noise and resizing by +-10%."""

from __future__ import annotations

import numpy as np
import torch

from videoreason.media import decode_video, encode_mp4


def resize(video: np.ndarray, factor: float) -> np.ndarray:
    """``video`` uint8 ``[F, H, W, 3]`` scaled by ``factor`` (bilinear, antialiased, even sides)."""
    frames = torch.from_numpy(video).permute(0, 3, 1, 2).float()  # [F, 3, H, W]
    size = (round(video.shape[1] * factor / 2) * 2, round(video.shape[2] * factor / 2) * 2)
    out = torch.nn.functional.interpolate(frames, size=size, mode="bilinear", antialias=True, align_corners=False)
    return out.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # [F, H', W', 3]


def degraded(video: np.ndarray, fps: int, seed: int) -> dict[str, np.ndarray]:
    """``video`` as is, after an H.264 round trip, with Gaussian noise (sigma 8) and resized by 1.1 and 0.9."""
    noise = np.random.default_rng(seed).normal(0, 8, video.shape)
    return {
        "clean": video,
        "mp4": decode_video(encode_mp4(video, fps)),
        "noise": np.clip(video + noise, 0, 255).astype(np.uint8),
        "larger": resize(video, 1.1),
        "smaller": resize(video, 0.9),
    }
