"""Rewards on real verdicts: ground-truth, corrupted and garbage videos of every task; batch and pooled scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videoreason.rewards import DenseReward, F1Reward, SuccessReward, VerdictPool, WeightedSum, verdicts_for
from videoreason.rewards.groups import RolloutGroups
from videoreason.tasks.base import BUILTIN_TASKS, resolve_task
from videoreason.tasks.render import RenderSpec

SPEC = RenderSpec.tiny()
TASKS = BUILTIN_TASKS


def videos_of(name: str, seed: int = 0):
    """The puzzle, its solution video, a video stuck on the unsolved board, and random noise."""
    task = resolve_task(name)
    puzzle = task.generate(np.random.default_rng(seed), "tiny")
    states = task.states(puzzle, task.solve(puzzle), SPEC.num_frames)
    solved = task.render(puzzle, states, SPEC)
    stuck = task.render(puzzle, states[:1], SPEC)
    noise = np.random.default_rng(seed).integers(0, 256, solved.shape, dtype=np.uint8)
    return puzzle, np.stack([solved, stuck, noise])  # [3, F, H, W, 3]


@pytest.mark.parametrize("name", TASKS)
def test_solution_scores_one_stuck_video_less_and_noise_zero(name):
    puzzle, videos = videos_of(name)
    verdicts = verdicts_for(torch.from_numpy(videos), [puzzle, puzzle.to_dict(), puzzle], name, SPEC)
    rewards = {"success": SuccessReward(), "f1": F1Reward(), "dense": DenseReward()}
    values = {}
    for key, reward in rewards.items():
        reward.update(RolloutGroups.of_samples(verdicts=verdicts))
        values[key] = reward.compute().flatten().tolist()
    assert values["success"] == [1.0, 0.0, 0.0]
    assert values["f1"][0] == 1.0 and values["f1"][2] == 0.0
    assert values["dense"][0] == 1.0
    assert 0.0 < values["dense"][1] < 1.0  # the untouched board keeps its layout but makes no progress
    assert values["dense"][2] == 0.0  # noise is unreadable: the failed verdict, every component 0
    assert set(verdicts[2].components) == set(resolve_task(name).component_names)


def test_failures_give_zero_verdicts_with_a_warning():
    puzzle, videos = videos_of("maze")
    broken = dict(puzzle.to_dict(), rows="not a maze")
    with pytest.warns(RuntimeWarning, match="sample 'bad-puzzle'"):
        verdicts = verdicts_for(videos[:2], [puzzle, broken], ["maze", "maze"], SPEC, ids=["ok", "bad-puzzle"])
    assert verdicts[0].success and not verdicts[1].success
    assert verdicts[1].metrics() == dict.fromkeys(verdicts[1].metrics(), 0.0)
    truncated = videos[:1, :1]  # one frame: readable pixels, but too short to judge
    assert not verdicts_for(truncated, [puzzle], "maze", SPEC)[0].success
    with pytest.raises(ValueError, match="`puzzles`"):
        verdicts_for(videos, [puzzle], "maze", SPEC)
    with pytest.raises(ValueError, match="unknown task"):
        verdicts_for(videos, [puzzle] * 3, "mazes", SPEC)


def test_mixed_task_batch_and_pool_match_direct_scoring():
    batch, puzzles, names = [], [], []
    for name in TASKS:
        puzzle, videos = videos_of(name, seed=1)
        batch += [videos[0], videos[1]]
        puzzles += [puzzle, puzzle]
        names += [name, name]
    direct = verdicts_for(batch, puzzles, names, SPEC)
    assert [v.success for v in direct] == [True, False] * len(TASKS)
    with VerdictPool(workers=2) as pool:
        futures = [pool.submit(batch, puzzles, names, SPEC, ids=[f"s{i}" for i in range(len(batch))]) for _ in range(2)]
        pooled = [f.result(timeout=60) for f in futures]
    assert pooled[0] == direct and pooled[1] == direct
    reward = WeightedSum({"success": SuccessReward(), "f1": F1Reward()}, {"success": 1.0, "f1": 0.5})
    reward.update(RolloutGroups.of_samples(verdicts=pooled[0]))
    stuck_f1 = [0.0 if i % 2 == 0 else v.f1 for i, v in enumerate(direct)]
    expected = torch.tensor([1.5, 0.0] * len(TASKS)) + 0.5 * torch.tensor(stuck_f1)
    torch.testing.assert_close(reward.compute().flatten(), expected)
    with pytest.raises(ValueError, match="workers"):
        VerdictPool(workers=0)
