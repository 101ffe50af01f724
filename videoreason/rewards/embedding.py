"""Embedding-level rewards for domains without a symbolic parser: `EmbeddingReward` (a frame encoder's embeddings
compared for similarity, order and endpoint; the navigation reward) and `FrameSimilarityReward` (pixels).

`FrameSimilarityReward`: each frame is embedded as its pixels average-pooled to ``size x size`` (RGB), centred per
channel, so the embedding measures layout and colour structure rather than overall brightness. With ``relative``
(the default) frames are compared by their change since the first frame, so the static board that every rollout
shares does not count and a video that never changes scores 0. The reward is the cosine similarity to a reference
video (e.g. the rendered ground-truth solution) frame by frame, which also rewards the order of events, blended with
the similarity of the last frames (the endpoint); negative similarities count as 0, so the reward lies in [0, 1]: 1
for the reference itself, about 0 for noise or no change.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from videoreason.rewards.base import Reward
from videoreason.rewards.encoders import FrameEncoder, PooledPixels, WanVAEFrames
from videoreason.rewards.groups import RolloutGroups


def frame_embeddings(videos: Any, size: int) -> Tensor:
    """Centred, pooled pixel embeddings of every frame (`PooledPixels`): float32 ``[B, F, 3 * size * size]``."""
    x = _frames(videos)
    return PooledPixels(size)(x.flatten(0, 1)).reshape(*x.shape[:2], -1)


class FrameSimilarityReward(Reward):
    """Similarity of each video to its reference video, per frame and at the endpoint, in [0, 1].

    It reads the record's ``videos`` and ``references`` (uint8); a reference with another frame count is resampled
    to the video's frames by nearest index.

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

    inputs = frozenset({"videos", "references"})

    def score(self, groups: RolloutGroups) -> Tensor:
        """Each rollout video ``[B, G, F, H, W, 3]`` against its puzzle's reference ``[B, F', H', W', 3]`` (any
        resolution and frame count; each reference embedded once)."""
        video = frame_embeddings(groups.videos.reshape(-1, *groups.videos.shape[2:]), self.size)
        video = video.reshape(*groups.shape, *video.shape[1:])  # [B, G, F, D]
        reference = frame_embeddings(groups.references, self.size)  # [B, F', D]
        steps = video.shape[2]
        index = torch.round(torch.arange(steps) * (reference.shape[1] - 1) / max(steps - 1, 1)).long()
        reference = reference[:, None, index]  # [B, 1, F, D]
        if self.relative and steps > 1:
            video = video[:, :, 1:] - video[:, :, :1]  # [B, G, F-1, D]
            reference = reference[:, :, 1:] - reference[:, :, :1]
        similarity = F.cosine_similarity(video, reference, dim=-1, eps=1e-8).clamp(min=0)  # [B, G, F or F-1]
        return (1 - self.endpoint_weight) * similarity.mean(dim=2) + self.endpoint_weight * similarity[..., -1]


class EmbeddingReward(Reward):
    """The embedding-level verifiable reward (Wan-R1's navigation reward): per-frame embeddings of each video and
    of its reference video compared for similarity, temporal order and endpoint, in [0, 1].

    Each frame is embedded by ``encoder`` and centred on the reference's mean embedding (what every frame of the
    scene shares), and ``S[i, j]`` is the cosine similarity of generated frame ``i`` and reference frame ``j``,
    negative values as 0. Then

    - ``similarity`` = mean over reference frames of their best match among the generated frames;
    - ``order`` = the mean of ``S`` along the best monotone alignment of the two videos (dynamic time warping from
      the first frames to the last), so the right frames in the wrong order score low;
    - ``endpoint`` = ``S`` of the last frames;

    and the reward is their weighted mean. It reads the record's ``videos`` and ``references`` (uint8; references
    may have another frame count and resolution).

    Args:
        encoder: a frame encoder (`videoreason.rewards.encoders`); default: the tiny Wan VAE's encoder.
        weights: of ``similarity``, ``order`` and ``endpoint``.
    """

    inputs = frozenset({"videos", "references"})

    def __init__(self, encoder: FrameEncoder | None = None, weights: dict[str, float] | None = None) -> None:
        super().__init__()
        weights = {"similarity": 1.0, "order": 1.0, "endpoint": 1.0} if weights is None else dict(weights)
        unknown = sorted(set(weights) - {"similarity", "order", "endpoint"})
        if unknown or not weights or any(float(w) < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"`weights` must give non-negative weights (not all 0) to similarity, order and "
                             f"endpoint; got {weights}")
        self.encoder = encoder if encoder is not None else WanVAEFrames("tiny")
        if not callable(self.encoder):
            raise ValueError(f"`encoder` must be a frame encoder, got {type(self.encoder).__name__}")
        self.weights = {k: float(v) for k, v in weights.items()}

    def parts(self, video: Tensor, reference: Tensor) -> dict[str, float]:
        """The three scores of one video's embeddings ``[F, D]`` against its reference's ``[F', D]``."""
        centre = reference.mean(dim=0, keepdim=True)
        sim = (F.normalize(video - centre, dim=1, eps=1e-8) @ F.normalize(reference - centre, dim=1, eps=1e-8).T)
        sim = sim.clamp(min=0.0).double().numpy()  # [F, F']
        return {"similarity": float(sim.max(axis=0).mean()), "order": monotone_alignment(sim),
                "endpoint": float(sim[-1, -1])}

    def score(self, groups: RolloutGroups) -> list[list[float]]:
        """Each rollout video ``[B, G, F, H, W, 3]`` against its puzzle's reference ``[B, F', H', W', 3]``, each
        reference encoded once."""
        video = _frames(groups.videos.reshape(-1, *groups.videos.shape[2:]))
        reference = _frames(groups.references)
        embedded = self.encoder(video.flatten(0, 1)).reshape(*groups.shape, video.shape[1], -1)  # [B, G, F, D]
        references = self.encoder(reference.flatten(0, 1)).reshape(*reference.shape[:2], -1)  # [B, F', D]
        total = sum(self.weights.values())
        return [[sum(w * parts[k] for k, w in self.weights.items()) / total
                 for parts in (self.parts(g, r) for g in rollouts)]
                for rollouts, r in zip(embedded, references, strict=True)]


def monotone_alignment(similarity: np.ndarray) -> float:
    """Mean similarity along the best monotone path through ``similarity`` ``[F, F']`` from ``(0, 0)`` to
    ``(F-1, F'-1)`` (steps: next generated frame, next reference frame, or both); dynamic time warping."""
    rows, cols = similarity.shape
    cost = np.full((rows + 1, cols + 1), np.inf)
    length = np.zeros((rows + 1, cols + 1))
    cost[0, 0] = 0.0
    for i in range(1, rows + 1):
        for j in range(1, cols + 1):
            options = ((cost[i - 1, j - 1], length[i - 1, j - 1]), (cost[i - 1, j], length[i - 1, j]),
                       (cost[i, j - 1], length[i, j - 1]))
            best = min(options, key=lambda o: o[0] / max(o[1], 1))
            cost[i, j] = best[0] + 1.0 - similarity[i - 1, j - 1]
            length[i, j] = best[1] + 1
    return float(1.0 - cost[rows, cols] / length[rows, cols])


def _frames(videos: Any) -> Tensor:
    """uint8 ``[B, F, H, W, 3]`` as a tensor, checked."""
    x = videos if isinstance(videos, Tensor) else torch.from_numpy(np.ascontiguousarray(videos))
    if x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"videos must be [B, F, H, W, 3], got shape {tuple(x.shape)}")
    return x
