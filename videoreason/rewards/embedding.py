"""`FrameSimilarityReward`: an embedding-level reward for domains without a symbolic parser.

Each frame is embedded as its pixels average-pooled to ``size x size`` (RGB), centred per channel, so the
embedding measures layout and colour structure rather than overall brightness. With ``relative`` (the default)
frames are compared by their change since the first frame, so the static board that every rollout shares does
not count and a video that never changes scores 0. The reward is the cosine similarity to a reference video
(e.g. the rendered ground-truth solution) frame by frame, which also rewards the order of events, blended with
the similarity of the last frames (the endpoint); negative similarities count as 0, so the reward lies in
[0, 1]: 1 for the reference itself, about 0 for noise or no change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from videoreason.rewards.base import Reward


def frame_embeddings(videos: Any, size: int) -> Tensor:
    """Centred, pooled pixel embeddings of every frame: float32 ``[B, F, 3 * size * size]``."""
    x = videos if isinstance(videos, Tensor) else torch.from_numpy(np.ascontiguousarray(videos))
    if x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"videos must be [B, F, H, W, 3], got shape {tuple(x.shape)}")
    b, f, h, w, _ = x.shape
    frames = x.detach().to(torch.float32).reshape(b * f, h, w, 3).permute(0, 3, 1, 2) / 255.0  # [B*F, 3, H, W]
    pooled = F.adaptive_avg_pool2d(frames, size)  # [B*F, 3, size, size]
    pooled = pooled - pooled.mean(dim=(2, 3), keepdim=True)
    return pooled.reshape(b, f, -1)  # [B, F, 3*size*size]


class FrameSimilarityReward(Reward):
    """Similarity of each video to its reference video, per frame and at the endpoint, in [0, 1].

    ``update(videos=..., references=...)`` takes uint8 ``[B, F, H, W, 3]`` batches (tensor or numpy); a reference
    with another frame count is resampled to the video's frames by nearest index.

    Args:
        size: side of the pooled frame (the embedding has ``3 * size**2`` dimensions).
        endpoint_weight: weight of the last-frame similarity; ``1 - endpoint_weight`` goes to the mean per-frame
            similarity.
        relative: compare each frame's change since frame 0 (frames 1..F-1) instead of the frames themselves.
    """

    def __init__(self, size: int = 8, endpoint_weight: float = 0.5, relative: bool = True) -> None:
        super().__init__()
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"`size` must be a positive integer, got {size!r}")
        if not 0.0 <= endpoint_weight <= 1.0:
            raise ValueError(f"`endpoint_weight` must be in [0, 1], got {endpoint_weight!r}")
        self.size = size
        self.endpoint_weight = float(endpoint_weight)
        self.relative = relative

    inputs = frozenset({"videos", "references", "ids"})

    def update(self, *, videos: Any, references: Any, ids: Sequence[str] | None = None, **_: Any) -> None:
        """Score a batch of videos against their references.

        Args:
            videos: generated videos, uint8 ``[B, F, H, W, 3]``.
            references: reference videos, uint8 ``[B, F', H, W', 3]`` (any resolution and frame count).
            ids: sample names for errors.
            **_: inputs meant for other rewards of a composition (ignored).
        """
        with torch.no_grad():
            video = frame_embeddings(videos, self.size)
            reference = frame_embeddings(references, self.size)
            if reference.shape[0] != video.shape[0]:
                raise ValueError(f"`references` has {reference.shape[0]} videos for a batch of {video.shape[0]}")
            steps = video.shape[1]
            index = torch.round(torch.arange(steps) * (reference.shape[1] - 1) / max(steps - 1, 1)).long()
            reference = reference[:, index]  # [B, F, D]
            if self.relative and steps > 1:
                video = video[:, 1:] - video[:, :1]  # [B, F-1, D]
                reference = reference[:, 1:] - reference[:, :1]
            similarity = F.cosine_similarity(video, reference, dim=-1, eps=1e-8).clamp(min=0)  # [B, F or F-1]
            score = (1 - self.endpoint_weight) * similarity.mean(dim=1) + self.endpoint_weight * similarity[:, -1]
        self._record(score, ids)
