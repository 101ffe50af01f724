"""Reward metrics: per-rollout compute over a RolloutGroups record, composition with torchmetrics operators,
WeightedSum, failure handling."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.metric import CompositionalMetric

from videoreason.rewards import (
    ComponentReward,
    DenseReward,
    ExactMatchReward,
    F1Reward,
    PrecisionRecallF1Reward,
    RewardConfigError,
    SuccessReward,
    VerdictReward,
    WeightedSum,
)
from videoreason.rewards.groups import RolloutGroups
from videoreason.tasks.verdict import Verdict, failed_verdict


def verdict(success: bool, p: float, r: float, f1: float, em: bool = False, **components: float) -> Verdict:
    return Verdict(success, p, r, f1, em, dict(components))


def samples(verdicts: list[Verdict], ids: list[str] | None = None) -> RolloutGroups:
    """Independent samples: groups of one."""
    return RolloutGroups.of_samples(ids, verdicts=verdicts)


def column(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)[:, None]


VERDICTS = [
    verdict(True, 1.0, 1.0, 1.0, True, a=1.0, b=1.0),
    verdict(False, 0.5, 0.25, 1 / 3, a=0.5, b=0.0),
    verdict(False, 0.0, 0.0, 0.0, a=0.0, b=0.25),
]


def test_verdict_rewards_are_per_sample():
    expect = {
        SuccessReward(): [1, 0, 0],
        ExactMatchReward(): [1, 0, 0],
        F1Reward(): [1, 1 / 3, 0],
        PrecisionRecallF1Reward("precision"): [1, 0.5, 0],
        PrecisionRecallF1Reward("recall"): [1, 0.25, 0],
        ComponentReward("a"): [1, 0.5, 0],
        DenseReward(): [1, 0.25, 0.125],
        DenseReward({"a": 3.0, "b": 1.0}): [1, 0.375, 0.0625],
    }
    for reward, values in expect.items():
        reward.update(samples(VERDICTS[:2]))
        reward.update(samples(VERDICTS[2:]))
        out = reward.compute()
        assert out.dtype == torch.float32 and out.shape == (3, 1), type(reward).__name__
        torch.testing.assert_close(out, column(values))


def test_failed_verdict_scores_zero_everywhere():
    failed = failed_verdict(("a", "b"), 0.1)
    for reward in (SuccessReward(), ExactMatchReward(), F1Reward(), ComponentReward("b"), DenseReward(),
                   DenseReward({"a": 1.0})):
        reward.update(samples([failed]))
        assert reward.compute().tolist() == [[0.0]]


def test_single_sample_keeps_batch_dim_and_reset_clears():
    reward = SuccessReward()
    reward.update(samples(VERDICTS[:1]))
    assert reward.compute().shape == (1, 1)
    reward.reset()
    assert reward.num_samples == 0
    reward.update(samples(VERDICTS[1:]))
    assert reward.compute().tolist() == [[0.0], [0.0]]


def test_forward_returns_batch_and_accumulates():
    reward = F1Reward()
    torch.testing.assert_close(reward(samples(VERDICTS[:2])), column([1.0, 1 / 3]))
    torch.testing.assert_close(reward(samples(VERDICTS[2:])), column([0.0]))
    assert reward.compute().shape == (3, 1)


def test_torchmetrics_composition_is_element_wise():
    f1, success = F1Reward(), SuccessReward()
    reward = 0.5 * f1 + success
    assert isinstance(reward, CompositionalMetric)
    reward.update(samples(VERDICTS, ids=["x", "y", "z"]))
    expected = column([0.5 * v.f1 + float(v.success) for v in VERDICTS])
    torch.testing.assert_close(reward.compute(), expected)
    torch.testing.assert_close(reward.compute(), 0.5 * f1.compute() + success.compute())
    reward.reset()
    assert f1.num_samples == success.num_samples == 0


def test_weighted_sum_matches_operators_and_logs_components():
    weighted = WeightedSum({"success": SuccessReward(), "f1": F1Reward(), "dense": DenseReward()},
                           {"success": 1.0, "f1": 0.5, "dense": -0.25})
    composed = SuccessReward() + 0.5 * F1Reward() - 0.25 * DenseReward()
    for batch in (VERDICTS[:1], VERDICTS[1:]):
        weighted.update(samples(batch))
        composed.update(samples(batch))
    out = weighted.compute()
    assert out.shape == (3, 1)
    torch.testing.assert_close(out, composed.compute())
    parts = weighted.components()
    assert set(parts) == {"success", "f1", "dense"}
    torch.testing.assert_close(parts["f1"], column([1.0, 1 / 3, 0.0]))
    torch.testing.assert_close(weighted(samples(VERDICTS[:1])), column([1.5 - 0.25]))
    assert weighted.compute().shape == (4, 1)
    weighted.reset()
    assert all(child.num_samples == 0 for child in weighted.rewards.values())


def test_weighted_sum_validates_keys():
    with pytest.raises(ValueError, match=r"missing \['f1'\].*extra \['fl'\]"):
        WeightedSum({"success": SuccessReward(), "f1": F1Reward()}, {"success": 1.0, "fl": 1.0})
    with pytest.raises(ValueError, match="weights.success"):
        WeightedSum({"success": SuccessReward()}, {"success": math.nan})
    with pytest.raises(TypeError, match="rewards.success"):
        WeightedSum({"success": object()}, {"success": 1.0})


class Raising(VerdictReward):
    def reward(self, verdict: Verdict) -> float:
        if not verdict.success:
            raise KeyError("boom")
        return 1.0


class NotFinite(VerdictReward):
    def reward(self, verdict: Verdict) -> float:
        return math.nan if verdict.f1 < 0.5 else 1.0


def test_raising_score_gives_zero_and_warns_with_id():
    reward = Raising()
    with pytest.warns(RuntimeWarning, match=r"Raising could not score rollout 'p#1'.*boom"):
        reward.update(RolloutGroups(["p"], verdicts=[VERDICTS[:2]]))
    assert reward.compute().tolist() == [[1.0, 0.0]]
    with pytest.warns(RuntimeWarning, match="rollout '1'"):  # default id: the sample's index
        Raising().update(samples(VERDICTS[:2]))


def test_non_finite_score_raises_naming_reward_and_id():
    with pytest.raises(ValueError, match=r"NotFinite.*'b'"):
        NotFinite().update(samples(VERDICTS[:2], ids=["a", "b"]))
    with pytest.raises(ValueError, match="ids"):
        SuccessReward().update(samples(VERDICTS, ids=["a"]))


def test_misconfigured_components_raise():
    with pytest.raises(RewardConfigError, match=r"'conectivity'.*\['a', 'b'\]"):
        ComponentReward("conectivity").update(samples(VERDICTS))
    with pytest.raises(RewardConfigError, match="'c'"):
        DenseReward({"a": 1.0, "c": 1.0}).update(samples(VERDICTS))
    with pytest.raises(ValueError, match="weights"):
        DenseReward({"a": -1.0})
    with pytest.raises(ValueError, match="kind"):
        PrecisionRecallF1Reward("iou")


def test_a_composition_reads_the_inputs_of_its_rewards():
    from videoreason.rewards.base import reward_inputs
    from videoreason.rewards.composition import WeightedSum
    from videoreason.rewards.embedding import FrameSimilarityReward

    verdict_only = WeightedSum({"f1": F1Reward(), "success": SuccessReward()}, {"f1": 1.0, "success": 1.0})
    assert "references" not in reward_inputs(verdict_only)
    assert "references" in reward_inputs(0.5 * F1Reward() + FrameSimilarityReward())  # torchmetrics' operators
    assert reward_inputs(SuccessReward()) == {"verdicts"}


def test_groups_score_per_rollout_and_compose():
    groups = RolloutGroups(["p", "q"], verdicts=[VERDICTS[:2], VERDICTS[1:]])  # B = 2 puzzles, G = 2 rollouts
    weighted = WeightedSum({"success": SuccessReward(), "f1": F1Reward()}, {"success": 1.0, "f1": 0.5})
    weighted.update(groups)
    assert weighted.compute().shape == groups.shape == (2, 2)
    torch.testing.assert_close(weighted.compute(), torch.tensor([[1.5, 1 / 6], [1 / 6, 0.0]]))
    torch.testing.assert_close(weighted.components()["success"], torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    composed = SuccessReward() + 0.5 * F1Reward()
    composed.update(groups)
    torch.testing.assert_close(composed.compute(), weighted.compute())


def test_update_takes_a_record_and_names_what_it_lacks():
    with pytest.raises(TypeError, match="RolloutGroups"):
        SuccessReward().update(verdicts=VERDICTS)
    with pytest.raises(TypeError, match="RolloutGroups"):
        SuccessReward().update(VERDICTS)
    from videoreason.rewards.embedding import FrameSimilarityReward

    no_references = RolloutGroups.of_samples(videos=torch.zeros(2, 3, 8, 8, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"FrameSimilarityReward reads \['references'\]"):
        FrameSimilarityReward().update(no_references)
    with pytest.raises(ValueError, match=r"RolloutGroups record lacks"):
        SuccessReward().update(no_references)


def test_a_record_refuses_fields_of_the_wrong_size():
    with pytest.raises(ValueError, match="`prompts` has 1 entries for 2 puzzles"):
        RolloutGroups(["p", "q"], verdicts=[VERDICTS[:1]] * 2, prompts=["one"])
    with pytest.raises(ValueError, match="rows of G verdicts"):
        RolloutGroups(["p", "q"], verdicts=[VERDICTS[:1], VERDICTS[:2]])
    with pytest.raises(ValueError, match=r"`videos` must be \[B=2"):
        RolloutGroups(["p", "q"], videos=torch.zeros(2, 4, 8, 8, 3, dtype=torch.uint8))
