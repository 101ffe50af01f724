"""The `Reward` metric base: per-sample scores in a ``cat`` state, so rewards compose element-wise.

A reward is a `torchmetrics.Metric`. ``update(**inputs)`` scores a batch and appends one float per sample;
``compute()`` returns every sample scored since the last ``reset()`` as a float32 tensor ``[N]`` (not a mean), so
``0.5 * F1Reward() + SuccessReward()`` (torchmetrics' own operators) is a per-sample reward, and ``.mean()`` of the
same tensor is the epoch value to log. Inputs are passed by keyword; every reward takes the ones it needs
(``verdicts``, ``videos``, ``prompts``, ``references``, ``ids``) and ignores the rest, so a composition can share
one call::

    reward = 0.5 * F1Reward() + SuccessReward()
    reward.update(verdicts=verdicts, ids=ids)
    rewards = reward.compute()        # [N]

Under DDP, ``compute()`` gathers the samples of every rank (``sync_on_compute``), which is what group
normalisation across ranks needs; ``reward.sync_on_compute = False`` keeps it rank-local.
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from videoreason.tasks.verdict import Verdict


class RewardConfigError(ValueError):
    """A reward asked for something its inputs cannot have (a typo'd component); raised, never scored as 0."""


class Reward(Metric):
    """Base of every reward: a metric whose ``compute()`` is the float32 per-sample tensor ``[N]``.

    Subclasses implement ``update(*, ..., ids=None, **_)`` and call :meth:`_record` with the batch's scores, and
    name the inputs ``update`` reads in ``inputs``: GRPO decodes and passes the ground-truth ``references`` (a copy
    of every training video per rollout) only when some reward of the composition names them.
    """

    inputs: ClassVar[frozenset[str]] = frozenset({"verdicts", "videos", "ids"})
    """The keyword inputs ``update`` reads, among ``verdicts``, ``videos``, ``prompts``, ``references`` and ``ids``."""
    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("scores", default=[], dist_reduce_fx="cat")

    def _record(self, scores: Sequence[float] | Tensor, ids: Sequence[str] | None = None) -> None:
        """Append a batch of scores; a NaN/inf score raises a ``ValueError`` naming this reward and the sample."""
        values = torch.as_tensor(scores, dtype=torch.float32).detach().reshape(-1).cpu()
        bad = (~torch.isfinite(values)).nonzero().flatten().tolist()
        if bad:
            sample = self._sample_ids(ids, len(values))[bad[0]]
            raise ValueError(f"{type(self).__name__} gave a non-finite score {values[bad[0]].item()} "
                             f"to sample {sample!r}")
        self.scores.append(values.to(self.device))

    def _sample_ids(self, ids: Sequence[str] | None, size: int) -> list[str]:
        """The given ids, or the sample's position among all samples since the last reset."""
        if ids is None:
            start = self.num_samples
            return [str(start + i) for i in range(size)]
        if len(ids) != size:
            raise ValueError(f"`ids` has {len(ids)} entries for a batch of {size}")
        return [str(i) for i in ids]

    @property
    def num_samples(self) -> int:
        """Samples scored since the last reset (on this rank)."""
        return sum(int(s.numel()) for s in self.scores) if isinstance(self.scores, list) else self.scores.numel()

    def compute(self) -> Tensor:
        """Per-sample scores since the last reset, float32 ``[N]`` (empty before any update)."""
        if isinstance(self.scores, list) and not self.scores:  # a list before any update; one tensor once synced
            return torch.zeros(0, dtype=torch.float32, device=self.device)
        return dim_zero_cat(self.scores).to(torch.float32)

    def _wrap_compute(self, compute: Callable) -> Callable:
        # torchmetrics squeezes one-element results to a scalar; a batch of one is still a batch: keep ``[N]``.
        wrapped = super()._wrap_compute(compute)

        def per_sample(*args: Any, **kwargs: Any) -> Tensor:
            return wrapped(*args, **kwargs).reshape(-1)

        return per_sample


class VerdictReward(Reward):
    """A reward computed from each sample's `Verdict` alone (parse once, score many).

    A ``reward`` that raises on one sample scores it 0 with a warning naming the sample and the reward, so one odd
    verdict never stops training; a `RewardConfigError` (the reward is misconfigured) is raised.
    """

    @abstractmethod
    def reward(self, verdict: Verdict) -> float:
        """The reward of one verdict (finite; usually in [0, 1])."""

    inputs = frozenset({"verdicts", "ids"})

    def update(self, *, verdicts: Sequence[Verdict], ids: Sequence[str] | None = None, **_: Any) -> None:
        """Score a batch of verdicts.

        Args:
            verdicts: one `Verdict` per sample.
            ids: sample names for warnings and errors; default: the sample's index since the last reset.
            **_: inputs meant for other rewards of a composition (ignored).
        """
        names = self._sample_ids(ids, len(verdicts))
        scores = []
        with torch.no_grad():
            for verdict, name in zip(verdicts, names, strict=True):
                try:
                    value = float(self.reward(verdict))
                except RewardConfigError:
                    raise
                except Exception as err:  # noqa: BLE001 - one bad sample must not stop training
                    warnings.warn(f"{type(self).__name__} could not score sample {name!r} ({type(err).__name__}: "
                                  f"{err}); scoring it 0", RuntimeWarning, stacklevel=2)
                    value = 0.0
                scores.append(value)
        self._record(scores, names)


def reward_inputs(reward: Metric) -> frozenset[str]:
    """The inputs a reward reads: the union of ``inputs`` over every `Reward` in it (a `WeightedSum`, torchmetrics'
    ``0.5 * F1Reward() + SuccessReward()``, or a single reward)."""
    return frozenset().union(*(m.inputs for m in reward.modules() if isinstance(m, Reward)))
