"""Learned rewards beside verifiable ones: `ModelReward` wraps any scorer (a VLM judge, an image-text scorer, a
heuristic) as a `Reward` that YAML composes with the verifiable ones.

A scorer is a callable ``scorer(videos, prompts) -> B scores``: ``videos`` uint8 numpy ``[B, F, H, W, 3]``,
``prompts`` the B text prompts (``None`` where the caller has none). Give it as an object, or in YAML as an import
path: of a function, or of a class that is built with ``scorer_args`` (a local model's folder, say) and then called.

Model-based rewards can be hacked: the policy learns what the scorer likes, not what the task asks. Compose them in
a `WeightedSum` beside `SuccessReward` (weight 0 if it should not count) and GRPO logs each one's mean
(``rewards/<name>/mean``) next to the verified ``success_rate``; hacking shows as the two curves parting.
`ColourFractionScorer` is a deliberately foolable judge for demonstrating exactly that
(``configs/rewards/maze_yellow_judge.yaml``, ``benchmarks/reward_hacking.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from videoreason.imports import import_path
from videoreason.rewards.base import Reward
from videoreason.rewards.groups import RolloutGroups


def resolve_scorer(scorer: str | Callable, scorer_args: dict[str, Any] | None = None) -> Callable:
    """The scorer callable: ``scorer`` itself, or what its import path names (a class built with ``scorer_args``)."""
    if isinstance(scorer, str):
        try:
            scorer = import_path(scorer)
        except ImportError as err:
            raise ValueError(f"`scorer` {scorer!r} is not an importable function or class: {err}") from err
    if isinstance(scorer, type):  # YAML parsers may hand over the class an import path names
        scorer = scorer(**(scorer_args or {}))
    elif scorer_args:
        raise ValueError("`scorer_args` are for a scorer class; the scorer is a function or an object")
    if not callable(scorer):
        raise ValueError(f"`scorer` must be callable as scorer(videos, prompts), got {type(scorer).__name__}")
    return scorer


class ModelReward(Reward):
    """A model's (or any callable's) score of each video as a reward.

    Args:
        scorer: the scorer or its import path (see the module docstring).
        scorer_args: keyword arguments that build a scorer class given by path.
        batch_size: videos per scorer call (bounds a judge model's memory).
        low: scores are clipped to ``[low, high]``.
        high: upper clip of the scores.
    """

    inputs = frozenset({"videos"})  # and ``prompts`` when the record has them

    def __init__(self, scorer: str | Callable, scorer_args: dict[str, Any] | None = None, batch_size: int = 16,
                 low: float = 0.0, high: float = 1.0) -> None:
        super().__init__()
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
        if not low < high:
            raise ValueError(f"`low` must be below `high`, got {low} and {high}")
        self.scorer = resolve_scorer(scorer, scorer_args)
        self.batch_size, self.low, self.high = batch_size, float(low), float(high)

    def score(self, groups: RolloutGroups) -> np.ndarray:
        """The scorer's score of every rollout video, with its puzzle's prompt, in batches of ``batch_size``."""
        frames = groups.videos.reshape(-1, *groups.videos.shape[2:])  # [B * G, F, H, W, 3]
        prompts = None if groups.prompts is None else [p for p in groups.prompts for _ in range(groups.group_size)]
        scores = []
        for start in range(0, len(frames), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            out = np.asarray(self.scorer(frames[chunk], None if prompts is None else prompts[chunk]),
                             dtype=np.float64).reshape(-1)
            if len(out) != len(frames[chunk]):
                raise ValueError(f"the scorer returned {len(out)} scores for {len(frames[chunk])} videos")
            scores.append(out)
        values = np.concatenate(scores) if scores else np.zeros(0)
        if np.any((values < self.low) | (values > self.high)):
            warnings.warn(f"{type(self).__name__}: scores outside [{self.low}, {self.high}] were clipped",
                          RuntimeWarning, stacklevel=2)
        return np.clip(values, self.low, self.high).reshape(groups.shape)


class ColourFractionScorer:
    """A cheap, foolable judge: the fraction of the last frame's pixels within ``tolerance`` of ``colour``.

    With the maze's path colour it is what a naive "is a yellow path drawn?" judge would reward, and it is fooled by
    painting yellow anywhere (``benchmarks/reward_hacking.py`` shows GRPO learning exactly that).

    Args:
        colour: the liked RGB colour (default: the maze path's yellow).
        tolerance: RGB distance within which a pixel counts.
        saturation: the fraction of pixels that scores 1 (scores are ``min(1, fraction / saturation)``).
    """

    def __init__(self, colour: Sequence[int] = (250, 196, 20), tolerance: float = 60.0,
                 saturation: float = 0.25) -> None:
        if len(colour) != 3:
            raise ValueError(f"`colour` must be an RGB triple, got {colour!r}")
        if not 0 < saturation <= 1:
            raise ValueError(f"`saturation` must be in (0, 1], got {saturation!r}")
        self.colour = np.asarray(colour, dtype=np.float32)
        self.tolerance, self.saturation = float(tolerance), float(saturation)

    def __call__(self, videos: np.ndarray, prompts: Sequence[str] | None = None) -> np.ndarray:
        last = videos[:, -1].astype(np.float32)  # [B, H, W, 3]
        near = np.linalg.norm(last - self.colour, axis=-1) <= self.tolerance  # [B, H, W]
        return np.minimum(1.0, near.mean(axis=(1, 2)) / self.saturation)


class ImageTextScorer:
    """A local image-text model as a judge (CLIP-style): the cosine similarity of a frame's image embedding and the
    prompt's text embedding, mapped from [-1, 1] to [0, 1].

    The folder holds a transformers model with ``get_image_features`` and ``get_text_features`` (CLIP, SigLIP, ...),
    its tokenizer and its image processor, all loaded offline (``local_files_only``).

    Args:
        path: the local model folder.
        frame: which frame each video is judged by (``-1``: the last).
        text: the text every video is scored against; ``None``: each video's own prompt.
    """

    def __init__(self, path: str, frame: int = -1, text: str | None = None) -> None:
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder} is not a local transformers model folder (no config.json)")
        self.model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
        if not (hasattr(self.model, "get_image_features") and hasattr(self.model, "get_text_features")):
            raise ValueError(f"{folder} holds a {type(self.model).__name__}, which has no image and text features")
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.processor = AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
        self.frame, self.text = frame, text

    @torch.no_grad()
    def __call__(self, videos: np.ndarray, prompts: Sequence[str] | None = None) -> np.ndarray:
        texts = [self.text] * len(videos) if self.text is not None else prompts
        if texts is None:
            raise ValueError("ImageTextScorer needs the prompts (or a fixed `text`) to score against")
        pixels = self.processor(images=[v[self.frame] for v in videos], return_tensors="pt")["pixel_values"]
        tokens = self.tokenizer(list(texts), return_tensors="pt", padding=True)
        image = _features(self.model.get_image_features(pixel_values=pixels))
        text = _features(self.model.get_text_features(input_ids=tokens["input_ids"],
                                                      attention_mask=tokens["attention_mask"]))
        cosine = torch.nn.functional.cosine_similarity(image, text, dim=-1)
        return ((cosine + 1) / 2).clamp(0, 1).numpy()


def _features(out: Any) -> torch.Tensor:
    """The embedding tensor of a ``get_*_features`` call (a tensor, or an output object in newer transformers)."""
    if isinstance(out, torch.Tensor):
        return out
    for name in ("pooler_output", "image_embeds", "text_embeds"):
        value = getattr(out, name, None)
        if isinstance(value, torch.Tensor):
            return value
    return out[0]
