"""Grouped phase settings: each group checks its values, every flat key of the old layout has one new home, and a
module saved with flat keys loads with the same settings."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from videoreason.models.export import export_module, load_module
from videoreason.phases.grpo import GRPOModule
from videoreason.phases.settings import (
    FlowMatchingLoss,
    PolicyLoss,
    PolicyOptimization,
    Sampling,
    flat_key_hint,
    flat_keys,
    group_flat_keys,
)
from videoreason.phases.sft import SFTModule

OLD_GRPO_KEYS = {  # GRPOModule's flat arguments before the grouping
    "group_size", "num_steps", "shift", "noise_level", "sde_variant", "tail", "clip_range", "adv_clip", "beta",
    "per_reward_normalization", "scale_rewards", "inner_epochs", "micro_batch_size", "rollout_batch_size",
    "reward_workers", "learning_rate", "weight_decay", "warmup_steps", "optimizer", "max_grad_norm",
    "offload_rollouts"}
OLD_SFT_KEYS = {"learning_rate", "weight_decay", "warmup_steps", "optimizer", "sigma_sampling", "shift",
                "change_weight", "frame_noise"}


def test_every_old_flat_key_has_exactly_one_new_home():
    assert set(flat_keys(GRPOModule)) == OLD_GRPO_KEYS
    assert set(flat_keys(SFTModule)) == OLD_SFT_KEYS
    assert flat_keys(GRPOModule)["rollout_batch_size"] == ("sampling", "batch_size")
    assert flat_keys(GRPOModule)["shift"] == ("sampling", "shift")
    assert flat_keys(SFTModule)["shift"] == ("loss", "shift")
    assert flat_key_hint(GRPOModule, "offload_rollouts") == (
        "`model.init_args.offload_rollouts` is now `model.init_args.sampling.offload`")
    assert flat_key_hint(GRPOModule, "lora") is None  # not a moved key


def test_flat_init_args_are_grouped_and_grouped_ones_kept():
    flat = {"beta": 0.5, "group_size": 8, "rollout_batch_size": 2, "learning_rate": 3e-4, "lora": {"rank": 4},
            "tail": {"steps": 2}}
    grouped = GRPOModule.upgrade_init_args(flat)
    assert grouped == {"lora": {"rank": 4}, "loss": {"beta": 0.5}, "optimization": {"learning_rate": 3e-4},
                       "sampling": {"group_size": 8, "batch_size": 2, "tail": {"steps": 2}}}
    assert GRPOModule.upgrade_init_args(grouped) == grouped
    # a flat key joins a group given beside it; the same setting given twice must agree
    assert group_flat_keys(GRPOModule, {"loss": {"clip_range": 1e-4}, "beta": 1.0}) == {
        "loss": {"clip_range": 1e-4, "beta": 1.0}}
    with pytest.raises(ValueError, match=r"`group_size` \(5\) and `sampling.group_size` \(3\) are both given"):
        group_flat_keys(GRPOModule, {"sampling": {"group_size": 3}, "group_size": 5})


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Sampling(group_size=1), "`sampling.group_size` must be >= 2"),
    (lambda: Sampling(noise_level=0.0), "`sampling.noise_level` must be > 0"),
    (lambda: Sampling(sde_variant="ddim"), "`sampling.sde_variant` must be one of"),
    (lambda: Sampling(batch_size=True), "`sampling.batch_size` must be >= 0, got True"),
    (lambda: PolicyLoss(beta=-1.0), "`loss.beta` must be >= 0"),
    (lambda: PolicyLoss(adv_clip=0.0), "`loss.adv_clip` must be > 0"),
    (lambda: PolicyLoss(scale_rewards="std"), "`loss.scale_rewards` must be one of"),
    (lambda: PolicyOptimization(inner_epochs=0), "`optimization.inner_epochs` must be >= 1"),
    (lambda: PolicyOptimization(optimizer="sgd"), "`optimization.optimizer` must be one of"),
    (lambda: FlowMatchingLoss(sigma_sampling="beta"), "`loss.sigma_sampling` must be one of"),
])
def test_each_group_names_the_value_it_refuses(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_module_records_every_setting_and_its_export_rebuilds_them(tmp_path):
    module = GRPOModule(transformer="tiny", sampling={"group_size": 3, "tail": {"steps": 2}}, loss=PolicyLoss(beta=2.0))
    assert module.hparams.sampling["group_size"] == 3 and module.hparams.sampling["num_steps"] == 10  # defaults too
    loaded = load_module(export_module(module, tmp_path / "grpo"))
    assert loaded.sampling == module.sampling and loaded.loss == module.loss
    assert loaded.optimization == module.optimization and loaded.sampling.tail.steps == 2


def test_an_export_written_with_flat_keys_loads_with_the_same_settings(tmp_path):
    module = SFTModule(transformer="tiny", loss=FlowMatchingLoss(change_weight=3.0, shift=8.0),
                       optimization={"learning_rate": 5e-4, "warmup_steps": 50})
    folder = export_module(module, tmp_path / "sft")
    config = yaml.safe_load((folder / "module.yaml").read_text())
    init = config["init_args"]
    for group in ("loss", "optimization"):
        init.update(init.pop(group))  # the layout exports had before the grouping
    assert init["change_weight"] == 3.0 and "loss" not in init
    (folder / "module.yaml").write_text(yaml.safe_dump(config))
    loaded = load_module(folder)
    assert loaded.loss == module.loss and loaded.optimization == module.optimization
    assert dataclasses.asdict(loaded.loss)["shift"] == 8.0
