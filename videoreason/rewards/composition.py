"""`WeightedSum`: the YAML form of reward composition, with every component kept by name for logging."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from videoreason.compat import accepted_inputs, count_update
from videoreason.rewards.base import Reward


class WeightedSum(Reward):
    """Per-sample ``sum_k weights[k] * rewards[k]``; ``components()`` gives each named child's per-sample value.

    Equivalent to ``w1 * r1 + w2 * r2`` built with torchmetrics' operators, but writable in YAML and logged by
    component name::

        class_path: videoreason.rewards.WeightedSum
        init_args:
          rewards:
            success: {class_path: videoreason.rewards.SuccessReward}
            f1: {class_path: videoreason.rewards.F1Reward}
          weights: {success: 1.0, f1: 0.5}

    Args:
        rewards: component name -> reward; every call of ``update`` is forwarded to each of them.
        weights: component name -> finite weight (negative for a penalty); the same names as ``rewards``.
    """

    def __init__(self, rewards: dict[str, Reward], weights: dict[str, float]) -> None:
        super().__init__()
        if not rewards:
            raise ValueError("`rewards` must name at least one reward")
        missing = sorted(set(rewards) - set(weights))
        extra = sorted(set(weights) - set(rewards))
        if missing or extra:
            raise ValueError(f"`weights` must have the keys of `rewards`: missing {missing}, extra {extra}")
        for name, reward in rewards.items():
            if not isinstance(reward, Reward):
                raise TypeError(f"`rewards.{name}` must be a videoreason Reward, got {type(reward).__name__}")
            if not math.isfinite(float(weights[name])):
                raise ValueError(f"`weights.{name}` must be finite, got {weights[name]!r}")
        self.rewards = nn.ModuleDict(rewards)
        self.weights = {name: float(weights[name]) for name in rewards}
        self.compute_with_cache = False  # children can be updated on their own; always recompute

    def update(self, **inputs: Any) -> None:
        """Forward the keyword inputs (``verdicts=``, ``ids=``, ...) to every child reward."""
        for reward in self.rewards.values():
            reward.update(**accepted_inputs(reward, inputs))

    def forward(self, **inputs: Any) -> Tensor:
        """Update every child and return this batch's weighted sum ``[B]``."""
        count_update(self)
        batch = {name: reward(**accepted_inputs(reward, inputs)) for name, reward in self.rewards.items()}
        return self._combine(batch)

    def components(self) -> dict[str, Tensor]:
        """Per-sample value ``[N]`` of each named child since the last reset (unweighted)."""
        return {name: reward.compute() for name, reward in self.rewards.items()}

    def compute(self) -> Tensor:
        """Weighted per-sample sum, float32 ``[N]``."""
        return self._combine(self.components())

    def _combine(self, values: dict[str, Tensor]) -> Tensor:
        sizes = {name: int(v.numel()) for name, v in values.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"the rewards of a WeightedSum scored different numbers of samples: {sizes}")
        total = sum(self.weights[name] * v.reshape(-1).to(torch.float32) for name, v in values.items())
        return total.to(torch.float32)

    def reset(self) -> None:
        """Reset this metric and every child."""
        super().reset()
        for reward in self.rewards.values():
            reward.reset()
