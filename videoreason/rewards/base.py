"""The `Reward` metric base: per-rollout scores in a ``cat`` state, so rewards compose element-wise.

A reward is a `torchmetrics.Metric` updated with a `RolloutGroups` record (``B`` puzzles, ``G`` rollouts each):
``update(groups)`` scores every rollout and appends a ``[B, G]`` block; ``compute()`` returns every block since the
last ``reset()`` as float32 ``[sum B, G]`` (not a mean), so ``0.5 * F1Reward() + SuccessReward()`` (torchmetrics'
own operators) is a per-rollout reward, and ``.mean()`` of the same tensor is the epoch value to log. Each reward
reads the record's fields it names in ``inputs`` (``verdicts``, ``videos``, ``prompts``, ``references``) and a
reference or prompt once per puzzle, however many rollouts share it::

    reward = 0.5 * F1Reward() + SuccessReward()
    reward.update(RolloutGroups.of_samples(verdicts=verdicts))   # N samples: groups of one
    rewards = reward.compute()        # [N, 1]

Under DDP, ``compute()`` gathers the blocks of every rank (``sync_on_compute``); GRPO keeps rewards rank-local and
gathers the groups itself (``rewards.advantages.gather_groups``).
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from videoreason.rewards.groups import RolloutGroups
from videoreason.tasks.verdict import Verdict


class RewardConfigError(ValueError):
    """A reward asked for something its inputs cannot have (a typo'd component); raised, never scored as 0."""


class Reward(Metric):
    """Base of every reward: a metric updated with `RolloutGroups` whose ``compute()`` is float32 ``[sum B, G]``.

    Subclasses implement :meth:`score` and name the record's fields it reads in ``inputs``: GRPO decodes and passes
    the ground-truth ``references`` (one video per puzzle) only when some reward of the composition names them.
    """

    inputs: ClassVar[frozenset[str]] = frozenset({"verdicts", "videos"})
    """The fields of the record ``score`` reads, among ``verdicts``, ``videos``, ``prompts`` and ``references``."""
    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("scores", default=[], dist_reduce_fx="cat")

    @abstractmethod
    def score(self, groups: RolloutGroups) -> Tensor | np.ndarray | Sequence[Sequence[float]]:
        """The score of every rollout of ``groups``, shaped ``[B, G]`` (finite)."""

    def update(self, groups: RolloutGroups | None = None, **inputs: Any) -> None:
        """Score the rollouts of ``groups`` and append the ``[B, G]`` block (`scored`)."""
        if inputs:
            raise TypeError(f"{type(self).__name__}.update takes a RolloutGroups record, not keywords "
                            f"{sorted(inputs)}: RolloutGroups.of_samples(verdicts=..., videos=...) wraps a batch")
        self.scores.append(self.scored(groups).to(self.device))

    def scored(self, groups: RolloutGroups) -> Tensor:
        """:meth:`score` checked, as float32 ``[B, G]``, without updating the state; a missing input, a wrong shape
        or a non-finite score raises a ``ValueError`` naming this reward (and the rollout)."""
        if not isinstance(groups, RolloutGroups):
            raise TypeError(f"{type(self).__name__}.update takes a RolloutGroups record, got "
                            f"{type(groups).__name__} (RolloutGroups.of_samples(verdicts=...) wraps a list)")
        missing = sorted(name for name in self.inputs if getattr(groups, name) is None)
        if missing:
            raise ValueError(f"{type(self).__name__} reads {missing}, which this RolloutGroups record lacks")
        with torch.no_grad():
            values = torch.as_tensor(np.asarray(self.score(groups), dtype=np.float32))
        if tuple(values.shape) != groups.shape:
            raise ValueError(f"{type(self).__name__} scored shape {tuple(values.shape)} for {groups.size} puzzles x "
                             f"{groups.group_size} rollouts; a reward scores each rollout, shape {groups.shape}")
        check_finite(values, groups, type(self).__name__)
        return values

    @property
    def num_samples(self) -> int:
        """Rollouts scored since the last reset (on this rank)."""
        return sum(int(s.numel()) for s in self.scores) if isinstance(self.scores, list) else self.scores.numel()

    def compute(self) -> Tensor:
        """Per-rollout scores since the last reset, float32 ``[sum B, G]`` (``[0, 0]`` before any update)."""
        if isinstance(self.scores, list) and not self.scores:  # a list before any update; one tensor once synced
            return torch.zeros(0, 0, dtype=torch.float32, device=self.device)
        return dim_zero_cat(self.scores).to(torch.float32)

    def _wrap_compute(self, compute: Callable) -> Callable:
        # torchmetrics squeezes a one-element result to a scalar; one puzzle with one rollout is still ``[1, 1]``
        wrapped = super()._wrap_compute(compute)

        def per_rollout(*args: Any, **kwargs: Any) -> Tensor:
            value = wrapped(*args, **kwargs)
            return value.reshape(1, 1) if value.dim() == 0 else value

        return per_rollout


class VerdictReward(Reward):
    """A reward computed from each rollout's `Verdict` alone (parse once, score many).

    A ``reward`` that raises on one rollout scores it 0 with a warning naming the rollout and the reward, so one odd
    verdict never stops training; a `RewardConfigError` (the reward is misconfigured) is raised.
    """

    inputs = frozenset({"verdicts"})

    @abstractmethod
    def reward(self, verdict: Verdict) -> float:
        """The reward of one verdict (finite; usually in [0, 1])."""

    def score(self, groups: RolloutGroups) -> list[list[float]]:
        return [[self._safe_reward(v, name) for v, name in zip(row, names, strict=True)]
                for row, names in zip(groups.verdicts, groups.rollout_ids(), strict=True)]

    def _safe_reward(self, verdict: Verdict, name: str) -> float:
        try:
            return float(self.reward(verdict))
        except RewardConfigError:
            raise
        except Exception as err:  # noqa: BLE001 - one bad sample must not stop training
            warnings.warn(f"{type(self).__name__} could not score rollout {name!r} ({type(err).__name__}: {err}); "
                          f"scoring it 0", RuntimeWarning, stacklevel=3)
            return 0.0


def check_finite(values: Tensor, groups: RolloutGroups, who: str) -> None:
    """Raise a ``ValueError`` naming ``who`` and the first rollout whose score in ``values`` ``[B, G]`` is NaN or
    inf."""
    bad = (~torch.isfinite(values)).nonzero().tolist()
    if bad:
        b, g = bad[0]
        raise ValueError(f"{who} gave a non-finite score {values[b, g].item()} to rollout "
                         f"{groups.rollout_ids()[b][g]!r}")


def reward_inputs(reward: Metric) -> frozenset[str]:
    """The inputs a reward reads: the union of ``inputs`` over every `Reward` in it (a `WeightedSum`, torchmetrics'
    ``0.5 * F1Reward() + SuccessReward()``, or a single reward)."""
    return frozenset().union(*(m.inputs for m in reward.modules() if isinstance(m, Reward)))
