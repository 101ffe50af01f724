"""FrameSimilarityReward: the reference scores 1, partial progress less, no change or noise ~0; it composes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videoreason.rewards import FrameSimilarityReward, SuccessReward, WeightedSum, verdicts_for
from videoreason.rewards.groups import RolloutGroups
from videoreason.tasks.maze import Maze
from videoreason.tasks.render import RenderSpec

SPEC = RenderSpec.tiny()


def maze_videos() -> tuple[object, np.ndarray]:
    task = Maze()
    puzzle = task.generate(np.random.default_rng(3), "easy")
    states = task.states(puzzle, task.solve(puzzle))
    solved = task.render(puzzle, states, SPEC)
    stuck = task.render(puzzle, states[:1], SPEC)
    half = task.render(puzzle, states[: len(states) // 2 + 1], SPEC)
    noise = np.random.default_rng(0).integers(0, 256, solved.shape, dtype=np.uint8)
    return puzzle, np.stack([solved, stuck, half, noise, solved[::-1]])  # [5, F, H, W, 3]


def test_similarity_ranks_reference_order_and_endpoint():
    _, videos = maze_videos()
    references = np.repeat(videos[:1], len(videos), axis=0)
    reward = FrameSimilarityReward(size=16)
    reward.update(RolloutGroups.of_samples(videos=torch.from_numpy(videos), references=references))
    solved, stuck, half, noise, backwards = reward.compute().flatten().tolist()
    assert solved == pytest.approx(1.0, abs=1e-5)
    assert stuck == 0.0  # no change since the first frame
    assert 0.2 < half < 0.9
    assert noise < 0.1 and backwards < 0.1
    absolute = FrameSimilarityReward(size=16, relative=False)  # the shared static board dominates
    absolute.update(RolloutGroups.of_samples(videos=videos, references=references))
    solved, stuck, half, noise, backwards = absolute.compute().flatten().tolist()
    assert solved > half > stuck > noise and stuck > 0.5
    endpoint_only = FrameSimilarityReward(size=16, endpoint_weight=1.0)
    # another reference frame count
    endpoint_only.update(RolloutGroups.of_samples(videos=videos[:3], references=references[:3, ::2]))
    assert endpoint_only.compute().flatten()[0] == pytest.approx(1.0, abs=1e-5)


def test_similarity_composes_with_verdict_rewards_in_one_call():
    puzzle, videos = maze_videos()
    references = np.repeat(videos[:1], len(videos), axis=0)
    verdicts = verdicts_for(videos, [puzzle] * len(videos), "maze", SPEC)
    reward = WeightedSum({"success": SuccessReward(), "similarity": FrameSimilarityReward()},
                         {"success": 1.0, "similarity": 0.5})
    reward.update(RolloutGroups.of_samples(verdicts=verdicts, videos=videos, references=references))
    parts = reward.components()
    torch.testing.assert_close(reward.compute(), parts["success"] + 0.5 * parts["similarity"])
    assert parts["success"].flatten().tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="references"):
        FrameSimilarityReward().update(RolloutGroups.of_samples(videos=videos, references=references[:2]))
    with pytest.raises(ValueError, match="endpoint_weight"):
        FrameSimilarityReward(endpoint_weight=2.0)
