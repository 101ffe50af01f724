"""Rewards read from a `Verdict`, so they work for every task (Maze, FlowFree, Sokoban, your own).

Sparse: `SuccessReward` (1 iff every rule holds), `ExactMatchReward`. Overlap with the reference solution:
`PrecisionRecallF1Reward` / `F1Reward`. Dense, from the task's named components in [0, 1] (listed in each task
module's docstring): `ComponentReward` (one) and `DenseReward` (weighted mean). A failed (unreadable) verdict has
every score and component at 0, so it scores 0 under all of them.
"""

from __future__ import annotations

from typing import Literal

from videoreason.rewards.base import RewardConfigError, VerdictReward
from videoreason.tasks.verdict import Verdict


class SuccessReward(VerdictReward):
    """Sparse reward: 1 when the video obeys every rule of its task (the SR metric), else 0."""

    def reward(self, verdict: Verdict) -> float:
        """1.0 on success, else 0.0."""
        return float(verdict.success)


class ExactMatchReward(VerdictReward):
    """1 when the video succeeds with the reference trajectory (the EM metric), else 0."""

    def reward(self, verdict: Verdict) -> float:
        """1.0 on exact match, else 0.0."""
        return float(verdict.exact_match)


class PrecisionRecallF1Reward(VerdictReward):
    """Overlap of what the video drew with the reference solution (each task defines the sets).

    Args:
        kind: which of the verdict's ``precision``, ``recall`` or ``f1`` to use.
    """

    def __init__(self, kind: Literal["f1", "precision", "recall"] = "f1") -> None:
        super().__init__()
        if kind not in ("f1", "precision", "recall"):
            raise ValueError(f"`kind` must be 'f1', 'precision' or 'recall', got {kind!r}")
        self.kind = kind

    def reward(self, verdict: Verdict) -> float:
        """The verdict's precision, recall or F1."""
        return float(getattr(verdict, self.kind))


class F1Reward(PrecisionRecallF1Reward):
    """F1 of the video's drawing against the reference solution (shorthand for ``PrecisionRecallF1Reward("f1")``)."""

    def __init__(self) -> None:
        super().__init__("f1")


def _component(verdict: Verdict, name: str) -> float:
    if name not in verdict.components:
        raise RewardConfigError(f"the verdict has no component {name!r}; available: {sorted(verdict.components)}")
    return float(verdict.components[name])


class ComponentReward(VerdictReward):
    """One dense component of the verdict, e.g. ``connectivity`` (Maze) or ``boxes_on_target`` (Sokoban).

    Args:
        component: component name, as listed in the task module's docstring; a name the verdict lacks raises.
    """

    def __init__(self, component: str) -> None:
        super().__init__()
        if not isinstance(component, str) or not component:
            raise ValueError(f"`component` must be a non-empty string, got {component!r}")
        self.component = component

    def reward(self, verdict: Verdict) -> float:
        """The component's value."""
        return _component(verdict, self.component)


class DenseReward(VerdictReward):
    """The dense decomposed reward: weighted mean of the verdict's components, in [0, 1].

    Args:
        weights: component name -> non-negative weight; only these components count, and a name the verdict
            lacks raises. ``None``: equal weights over every component the verdict has.
    """

    def __init__(self, weights: dict[str, float] | None = None) -> None:
        super().__init__()
        if weights is not None:
            if not weights:
                raise ValueError("`weights` must name at least one component (or be None for all)")
            negative = sorted(k for k, w in weights.items() if not float(w) >= 0)
            if negative:
                raise ValueError(f"`weights` must be non-negative; check {negative}")
            if sum(float(w) for w in weights.values()) <= 0:
                raise ValueError("`weights` must not all be 0")
            weights = {str(k): float(w) for k, w in weights.items()}
        self.weights = weights

    def reward(self, verdict: Verdict) -> float:
        """Weighted mean of the components (0 for a verdict without components)."""
        if self.weights is None:
            values = list(verdict.components.values())
            return float(sum(values) / len(values)) if values else 0.0
        total = sum(w * _component(verdict, name) for name, w in self.weights.items())
        return total / sum(self.weights.values())
