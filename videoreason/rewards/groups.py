"""`RolloutGroups`: one record of a GRPO step's puzzles and their rollouts, from the sampler to the reward to the loss.

``B`` puzzles (the draws of the step), ``G`` rollouts each. Fields about a puzzle are per puzzle, ``[B]``: its id,
task, puzzle record, prompt and ground-truth video, each held once however many rollouts it has. Fields about a
rollout are ``[B, G, ...]``: the videos, their verdicts, and what GRPO derives from them (rewards, components,
advantages). Rewards read it (``Reward.update(groups)``, scores ``[B, G]``), advantages are computed over its rows,
and the policy loss pairs ``advantages`` with the sampler's stored SDE steps, whose rows are the rollouts in
row-major order (``b * G + g``; `flat_rows`). Validation and evaluation use the same record with ``G = 1``
(`RolloutGroups.of_samples`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from videoreason.tasks.verdict import Verdict


@dataclass
class RolloutGroups:
    """``B`` puzzles and their ``G`` rollouts each.

    Attributes:
        ids: puzzle ids ``[B]``.
        videos: rollout videos, uint8 numpy ``[B, G, F, H, W, 3]`` (``None`` for rewards that read only verdicts).
        verdicts: the verified rollouts, ``B`` rows of ``G`` `Verdict`\\ s (``None`` before scoring).
        prompts: text prompts ``[B]``, for judges (``ModelReward``).
        references: ground-truth solution videos, uint8 ``[B, F', H', W', 3]`` tensor, for embedding rewards; made
            only when a reward reads them (``Reward.inputs``).
        tasks: task name of each puzzle ``[B]`` (what verifies its rollouts).
        puzzles: puzzle records ``[B]``.
        rewards: total reward ``[B, G]`` (float32), set once the reward is computed.
        components: each named reward component ``[B, G]`` (a ``WeightedSum``'s), unweighted.
        advantages: group-relative advantages ``[B, G]``.
    """

    ids: list[str]
    videos: np.ndarray | None = None
    verdicts: list[list[Verdict]] | None = None
    prompts: list[str] | None = None
    references: Tensor | None = None
    tasks: list[str] | None = None
    puzzles: list[Any] | None = None
    rewards: Tensor | None = None
    components: dict[str, Tensor] = field(default_factory=dict)
    advantages: Tensor | None = None

    def __post_init__(self) -> None:
        self.ids = [str(i) for i in self.ids]
        b = len(self.ids)
        for name in ("prompts", "tasks", "puzzles", "references"):
            value = getattr(self, name)
            if value is not None and len(value) != b:
                raise ValueError(f"`{name}` has {len(value)} entries for {b} puzzles")
        if self.videos is None and self.verdicts is None:
            raise ValueError("a RolloutGroups record needs its rollouts: `videos`, `verdicts` or both")
        if self.videos is not None:
            if isinstance(self.videos, Tensor):
                self.videos = self.videos.detach().cpu().numpy()
            if self.videos.ndim != 6 or self.videos.shape[0] != b or self.videos.shape[-1] != 3:
                raise ValueError(f"`videos` must be [B={b}, G, F, H, W, 3], got shape {tuple(self.videos.shape)}")
        if self.verdicts is not None:
            sizes = {len(row) for row in self.verdicts}
            if len(self.verdicts) != b or len(sizes) != 1:
                raise ValueError(f"`verdicts` must be {b} rows of G verdicts, got rows of {sorted(sizes)}")
            if self.videos is not None and sizes != {self.videos.shape[1]}:
                raise ValueError(f"`verdicts` has {sizes.pop()} per puzzle, `videos` {self.videos.shape[1]}")

    @classmethod
    def of_samples(cls, ids: Sequence[str] | None = None, *, videos: Any = None,
                   verdicts: Sequence[Verdict] | None = None, **per_puzzle: Any) -> RolloutGroups:
        """A record of ``N`` independent samples: ``N`` groups of one (validation, evaluation, scoring a list).

        ``videos`` is ``[N, F, H, W, 3]``, ``verdicts`` ``N`` verdicts, ``ids`` default ``"0" .. "N-1"``; the other
        keywords are the per-puzzle fields."""
        if videos is not None:
            videos = videos.detach().cpu().numpy() if isinstance(videos, Tensor) else np.asarray(videos)
            if videos.ndim != 5:
                raise ValueError(f"`videos` must be a batch [N, F, H, W, 3], got shape {tuple(videos.shape)}")
        n = len(videos) if videos is not None else len(verdicts) if verdicts is not None else 0
        if ids is None:
            ids = [str(i) for i in range(n)]
        if len(ids) != n:
            raise ValueError(f"`ids` has {len(ids)} entries for {n} samples")
        return cls(list(ids), videos=None if videos is None else videos[:, None],
                   verdicts=None if verdicts is None else [[v] for v in verdicts], **per_puzzle)

    @property
    def size(self) -> int:
        """``B``: puzzles."""
        return len(self.ids)

    @property
    def group_size(self) -> int:
        """``G``: rollouts per puzzle."""
        return self.videos.shape[1] if self.videos is not None else len(self.verdicts[0]) if self.verdicts else 0

    @property
    def shape(self) -> tuple[int, int]:
        """``(B, G)``: the shape of every per-rollout score."""
        return self.size, self.group_size

    def rollout_ids(self) -> list[list[str]]:
        """A name for each rollout, ``[B][G]``: the puzzle's id, and ``#g`` when a group has several."""
        if self.group_size == 1:
            return [[i] for i in self.ids]
        return [[f"{i}#{g}" for g in range(self.group_size)] for i in self.ids]

    def flat_rows(self, values: Tensor) -> Tensor:
        """Per-rollout ``values`` ``[B, G, ...]`` in the sampler's row order ``[B * G, ...]`` (``b * G + g``)."""
        if tuple(values.shape[:2]) != self.shape:
            raise ValueError(f"expected values shaped {self.shape} + (...), got {tuple(values.shape)}")
        return values.reshape(self.size * self.group_size, *values.shape[2:])

    def with_scores(self, **scores: Any) -> RolloutGroups:
        """A copy with ``rewards``, ``components`` or ``advantages`` set."""
        return dataclasses.replace(self, **scores)

    def success(self) -> Tensor:
        """Verified success of each rollout, float ``[B, G]``."""
        if self.verdicts is None:
            raise ValueError("this record has no verdicts yet")
        return torch.tensor([[float(v.success) for v in row] for row in self.verdicts], dtype=torch.float32)
