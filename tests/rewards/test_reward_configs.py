"""Every configs/rewards/*.yaml parses and instantiates, and equals the same composition built in Python."""

from __future__ import annotations

import pytest
import torch
from jsonargparse import ArgumentParser

from videoreason.rewards import (
    DenseReward,
    EmbeddingReward,
    F1Reward,
    ModelReward,
    Reward,
    SuccessReward,
    WeightedSum,
    load_reward,
    preset_names,
)
from videoreason.rewards.groups import RolloutGroups
from videoreason.rewards.presets import PRESETS
from videoreason.tasks.base import BUILTIN_TASKS, resolve_task
from videoreason.tasks.verdict import Verdict, failed_verdict

CONFIGS = sorted(PRESETS.glob("*.yaml"))
VERDICT_CONFIGS = [p for p in CONFIGS if not p.stem.endswith(("_judge", "_embedding"))]  # they score videos


def task_verdicts(name: str) -> list[Verdict]:
    components = resolve_task(name).component_names
    partial = {c: (i + 1) / (len(components) + 1) for i, c in enumerate(components)}
    return [Verdict(True, 1.0, 1.0, 1.0, True, dict.fromkeys(components, 1.0)),
            Verdict(False, 0.5, 0.2, 2 / 7, False, partial),
            failed_verdict(components, 0.0)]


def test_every_task_has_sparse_dense_and_f1_configs():
    assert {p.name for p in CONFIGS} >= {f"{t}_{k}.yaml" for t in BUILTIN_TASKS for k in ("sparse", "dense", "f1")}


@pytest.mark.parametrize("path", VERDICT_CONFIGS, ids=lambda p: p.name)
def test_config_instantiates_and_scores_its_task(path):
    reward = load_reward(path)
    assert not any(isinstance(m, (ModelReward, EmbeddingReward)) for m in reward.modules())
    assert isinstance(reward, WeightedSum)
    reward.update(RolloutGroups.of_samples(verdicts=task_verdicts(path.stem.rsplit("_", 1)[0])))
    out = reward.compute().flatten()
    assert out.shape == (3,) and out[2] == 0.0 and out[0] >= 1.0 > out[1]
    assert set(reward.components()) == set(reward.weights)


def test_yaml_dense_equals_python_composition():
    reward = load_reward(next(p for p in CONFIGS if p.name == "maze_dense.yaml"))
    weights = {"connectivity": 3.0, "goal_reached": 2.0, "detour_free": 2.0, "wall_free": 1.0, "layout_preserved": 1.0,
               "monotonic": 1.0}
    python = SuccessReward() + 0.5 * DenseReward(weights) + 0.5 * F1Reward()
    verdicts = task_verdicts("maze")
    reward.update(RolloutGroups.of_samples(verdicts=verdicts))
    python.update(RolloutGroups.of_samples(verdicts=verdicts))
    torch.testing.assert_close(reward.compute().flatten(), python.compute().flatten())


def test_presets_load_by_name_and_unknown_names_list_them():
    assert set(preset_names()) == {p.stem for p in CONFIGS}
    assert isinstance(load_reward("maze_sparse"), WeightedSum)
    with pytest.raises(FileNotFoundError, match="maze_dense"):
        load_reward("maze_dence")


def test_lightningcli_style_init_argument_accepts_the_file():
    class Module:
        def __init__(self, reward: Reward, lr: float = 1e-4) -> None:
            self.reward = reward

    parser = ArgumentParser()
    parser.add_class_arguments(Module, "model", sub_configs=True)
    path = next(p for p in CONFIGS if p.name == "sokoban_sparse.yaml")
    module = parser.instantiate(parser.parse_args(["--model.reward", str(path)])).model
    assert isinstance(module.reward.rewards["success"], SuccessReward)
