"""`WeightedSum`: the YAML form of reward composition, with every component kept by name for logging."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from videoreason.compat import count_update
from videoreason.rewards.base import Reward
from videoreason.rewards.groups import RolloutGroups


class WeightedSum(Reward):
    """Per-rollout ``sum_k weights[k] * rewards[k]``; ``components()`` gives each named child's per-rollout value.

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

    @property
    def inputs(self) -> frozenset[str]:  # type: ignore[override]
        """What the children read."""
        return frozenset().union(*(r.inputs for r in self.rewards.values()))

    def score(self, groups: RolloutGroups) -> Tensor:
        """This record's weighted sum ``[B, G]`` (no state changes)."""
        return self._combine({name: reward.scored(groups) for name, reward in self.rewards.items()})

    def update(self, groups: RolloutGroups) -> None:
        """Update every child reward with ``groups``."""
        for reward in self.rewards.values():
            reward.update(groups)

    def forward(self, groups: RolloutGroups) -> Tensor:
        """Update every child and return this record's weighted sum ``[B, G]``."""
        count_update(self)
        return self._combine({name: reward(groups) for name, reward in self.rewards.items()})

    def components(self) -> dict[str, Tensor]:
        """Per-rollout value ``[sum B, G]`` of each named child since the last reset (unweighted)."""
        return {name: reward.compute() for name, reward in self.rewards.items()}

    def compute(self) -> Tensor:
        """Weighted per-rollout sum, float32 ``[sum B, G]``."""
        return self._combine(self.components())

    def _combine(self, values: dict[str, Tensor]) -> Tensor:
        shapes = {name: tuple(v.shape) for name, v in values.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"the rewards of a WeightedSum scored different shapes: {shapes}")
        return sum(self.weights[name] * v.to(torch.float32) for name, v in values.items()).to(torch.float32)

    def reset(self) -> None:
        """Reset this metric and every child."""
        super().reset()
        for reward in self.rewards.values():
            reward.reset()
