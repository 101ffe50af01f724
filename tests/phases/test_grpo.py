"""GRPO phase: on-policy ratio 1, KL 0 at the start, only LoRA moves, Early-Step Focus trains exactly K steps,
the reference policy is the starting model, and rewards that break are refused."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from videoreason.callbacks.step_plans import EarlyStepFocus
from videoreason.data.datamodule import PuzzleVideoDataModule
from videoreason.models.export import export_module
from videoreason.models.lora import LoraSpec
from videoreason.phases.grpo import GRPOModule
from videoreason.phases.settings import PolicyLoss, PolicyOptimization, Sampling
from videoreason.phases.sft import SFTModule
from videoreason.rewards.base import Reward
from videoreason.rewards.groups import RolloutGroups


class Brightness(Reward):
    """A reward that varies between rollouts of a random model: mean brightness of the generated frames."""

    inputs = frozenset({"videos"})

    def score(self, groups):
        return groups.videos[:, :, 1:].mean(axis=(2, 3, 4, 5)) / 255.0


class Broken(Reward):
    inputs = frozenset({"videos"})

    def score(self, groups):
        return [[0.5] * (groups.group_size - 1)] * groups.size  # one rollout short per puzzle


def _fit(module: GRPOModule, data: PuzzleVideoDataModule, steps: int = 1, callbacks=()) -> L.Trainer:
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        callbacks=list(callbacks))
    trainer.fit(module, datamodule=data)
    return trainer


@pytest.fixture()
def data(maze_dataset) -> PuzzleVideoDataModule:
    return PuzzleVideoDataModule(str(maze_dataset), batch_size=2, num_val_puzzles=0, samples_per_epoch=4)


def _module(sampling: dict | None = None, loss: dict | None = None, optimization: dict | None = None,
            **kwargs) -> GRPOModule:
    """A tiny GRPO module; ``sampling``, ``loss`` and ``optimization`` override fields of the test's settings."""
    torch.manual_seed(0)
    settings = dict(sampling=Sampling(**{"group_size": 3, "num_steps": 4, "reward_workers": 1, **(sampling or {})}),
                    loss=PolicyLoss(**(loss or {})),
                    optimization=PolicyOptimization(**{"learning_rate": 1e-2, **(optimization or {})}))
    return GRPOModule(**{"transformer": "tiny", "lora": LoraSpec(rank=4, alpha=4), "reward": Brightness(),
                         **settings, **kwargs})


def test_one_step_changes_only_lora_and_is_on_policy(data):
    module = _module(loss={"beta": 0.1})
    base = {n: p.detach().clone() for n, p in module.transformer.named_parameters()}
    trainer = _fit(module, data, callbacks=[EarlyStepFocus(num_sde_steps=2)])
    metrics = trainer.callback_metrics
    changed = {n for n, p in module.transformer.named_parameters() if not torch.equal(p, base[n])}
    assert changed and all("lora" in n for n in changed)
    # first (only) inner epoch: the policy that rolled out is the one being scored
    assert abs(float(metrics["ratio/min"]) - 1) < 1e-5 and abs(float(metrics["ratio/max"]) - 1) < 1e-5
    assert float(metrics["kl"]) == 0.0  # the LoRA starts at zero: policy == reference
    assert float(metrics["train/sde_steps"]) == 2.0  # Early-Step Focus: K of N trained
    assert float(metrics["reward_std"]) > 0 and float(metrics["frac_reward_zero_std"]) == 0.0
    for key in ("time/rollout_s", "time/reward_s", "time/train_s", "clip_ratio", "success_rate"):
        assert key in metrics
    assert float(metrics["grad_norm"]) > 0
    assert float(metrics["learning_rate"]) == pytest.approx(module.optimization.learning_rate)


def test_reference_is_the_starting_model_and_kl_grows(data, tmp_path):
    sft = SFTModule(transformer="tiny", lora=LoraSpec(rank=4, alpha=4), val_steps=2)
    for name, param in sft.transformer.named_parameters():
        if "lora_B" in name:
            param.data.normal_(std=0.05)
    export_module(sft, tmp_path / "sft")
    module = _module(init_from=str(tmp_path / "sft"), loss={"beta": 0.1}, optimization={"learning_rate": 5e-2})
    first = torch.zeros(1, 3, 64, 64)
    want = sft.generate(first, ["p"], 9, steps=2)
    torch.testing.assert_close(module.generate(first, ["p"], 9, steps=2), want, atol=1, rtol=0)  # merged SFT
    trainer = _fit(module, data, steps=3)
    with module.reference_policy():
        reference = module.generate(first, ["p"], 9, steps=2)
    torch.testing.assert_close(reference, want, atol=1, rtol=0)  # disabled adapter == start of RL, not random base
    assert float(trainer.callback_metrics["kl"]) > 0


def test_inner_epochs_move_the_ratio_and_clip(data):
    module = _module(loss={"clip_range": 1e-4}, optimization={"inner_epochs": 2, "learning_rate": 5e-2})
    trainer = _fit(module, data, steps=2)  # one batch, two optimizer steps
    metrics = trainer.callback_metrics
    assert float(metrics["ratio/max"]) - float(metrics["ratio/min"]) > 0
    assert float(metrics["clip_ratio"]) > 0


def test_reward_of_wrong_shape_is_refused(data):
    with pytest.raises(ValueError, match=r"Broken scored shape \(2, 2\) for 2 puzzles x 3 rollouts"):
        _fit(_module(reward=Broken()), data)


def test_bad_settings_name_the_argument():
    with pytest.raises(ValueError, match="`sampling.group_size` must be >= 2"):
        GRPOModule(transformer="tiny", sampling=Sampling(group_size=1))
    with pytest.raises(ValueError, match="`loss.clip_range` must be > 0"):
        GRPOModule(transformer="tiny", loss={"clip_range": 0})


def test_step_plan_defaults_to_all_steps_and_is_checked_when_set():
    module = _module()
    assert module.step_plan == ["sde", "sde", "sde", "ode"]
    module.step_plan = ("sde", "ode", "ode", "ode")
    assert module.step_plan == ["sde", "ode", "ode", "ode"]
    with pytest.raises(ValueError, match=r"plan\[3\]"):
        module.step_plan = ["ode", "ode", "ode", "sde"]
    with pytest.raises(ValueError, match="3 entries"):
        module.step_plan = ["sde", "ode", "ode"]
    assert module.step_plan == ["sde", "ode", "ode", "ode"]  # a refused plan leaves the old one


def test_a_step_shows_its_rollout_scoring_and_update_progress(data, capfd):
    module = _module()
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_model_summary=False, limit_val_batches=0, callbacks=[EarlyStepFocus(num_sde_steps=2)])
    trainer.fit(module, datamodule=data)
    err = capfd.readouterr().err
    assert "step 1: rollout" in err and "step 1: update" in err
    # 2 puzzles x G videos, then 2 SDE steps x 1 micro-batch of policy-loss terms
    total = 2 * module.sampling.group_size + 2
    assert f"/{total} [" in err  # tqdm redraws at most every 0.1 s: the last state need not be printed


def test_reward_curve_plot_is_written(maze_dataset, tmp_path):
    from videoreason.callbacks.curves import PlotCurves

    data = PuzzleVideoDataModule(str(maze_dataset), batch_size=2, num_val_puzzles=2, samples_per_epoch=4)
    curves = PlotCurves(keys=["reward", "val/reward"], smoothing=2, dirpath=str(tmp_path))
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, val_check_interval=2,
                        num_sanity_val_steps=1, callbacks=[curves])
    trainer.fit(_module(val_steps=2), datamodule=data)
    assert [s for s, _ in curves.history["reward"]] == [1, 2]
    assert [s for s, _ in curves.history["val/reward"]] == [2]  # after the validation, not the sanity check
    assert (tmp_path / "curves.png").stat().st_size > 1000
    rows = (tmp_path / "curves.csv").read_text().splitlines()
    assert sum(r.startswith("reward,") for r in rows) == 2 and sum(r.startswith("val/reward,") for r in rows) == 1


def test_fast_tail_config_runs(data):
    module = _module(sampling={"tail": {"steps": 2, "solver": "dpmpp_2m"}})
    trainer = _fit(module, data, callbacks=[EarlyStepFocus(num_sde_steps=2)])
    assert float(trainer.callback_metrics["train/sde_steps"]) == 2.0


def test_validation_logs_the_training_reward_on_held_out_puzzles(maze_dataset):
    data = PuzzleVideoDataModule(str(maze_dataset), batch_size=2, num_val_puzzles=2, samples_per_epoch=2)
    module = _module(val_steps=2)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.validate(module, datamodule=data)
    brightness = [float(v[1:].mean()) / 255.0 for v in (t.video for t in module.samples)]
    assert len(brightness) == 2
    assert float(trainer.callback_metrics["val/reward"]) == pytest.approx(sum(brightness) / 2, rel=1e-5)
    assert "val/maze/success" in trainer.callback_metrics


def test_rollout_steps_slice_move_and_concatenate_their_samples():
    from videoreason.diffusion.sampler import Rollout, RolloutStep

    step = RolloutStep(3, torch.tensor(0.8), torch.tensor(0.6), torch.randn(4, 4, 3, 2, 2), torch.randn(4, 4, 3, 2, 2),
                       torch.randn(4))
    moved = step.to("meta")  # "meta" stands in for the GPU
    assert all(t.is_meta for t in (moved.latents, moved.next_latents, moved.log_prob))
    assert moved.index == 3 and moved.sigma is step.sigma and moved.sigma_next is step.sigma_next
    same = step.to(torch.device("cpu"))
    assert same.latents is step.latents and same.log_prob is step.log_prob  # in place already: no copy
    halves = [step.slice(slice(0, 1)), step.slice(slice(1, 4))]
    assert halves[1].latents.shape[0] == 3 and torch.equal(halves[1].log_prob, step.log_prob[1:])
    whole = RolloutStep.cat(halves)
    assert all(torch.equal(getattr(whole, k), getattr(step, k)) for k in ("latents", "next_latents", "log_prob"))
    parts = [Rollout(h.next_latents, [h, h], torch.linspace(1, 0, 3)) for h in halves]
    merged = Rollout.cat(parts)
    assert torch.equal(merged.latents, step.next_latents) and len(merged.steps) == 2
    assert torch.equal(merged.steps[1].log_prob, step.log_prob) and merged.sigmas is parts[0].sigmas


def test_a_puzzle_drawn_twice_is_two_groups_with_their_own_noise():
    module = _module()  # group size 3
    once = module._generators(["p"])
    twice = module._generators(["p", "p", "q"])
    draw = [torch.randn(2, generator=g) for g in twice]
    assert len(twice) == 9 and len({tuple(d.tolist()) for d in draw}) == 9  # 9 rollouts, 9 different noises
    assert all(torch.equal(torch.randn(2, generator=g), d) for g, d in zip(once, draw[:3], strict=True))
    rewards = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])  # the second draw all solved
    groups, tied = module.advantages(RolloutGroups(["p", "p", "q"], verdicts=[[None] * 3] * 3, rewards=rewards))
    adv = groups.advantages
    assert adv.shape == (3, 3) and adv[1].abs().max() == 0 and adv[0, 0] > 0  # each draw against its own group
    assert tied == pytest.approx(1 / 3)


def _capture_rollouts(module: GRPOModule, monkeypatch) -> list:
    """Record the rollouts ``_update`` receives (with their step tensors' devices)."""
    seen = []
    update = module._update

    def recording(rollout, *args):
        seen.append([(s.latents.device, s.next_latents.device, s.log_prob.device) for s in rollout.steps])
        return update(rollout, *args)

    monkeypatch.setattr(module, "_update", recording)
    return seen


def test_offloaded_rollouts_give_the_same_update(data, monkeypatch):

    from videoreason.diffusion.sampler import RolloutStep

    moves = []
    original = RolloutStep.to
    monkeypatch.setattr(RolloutStep, "to", lambda step, device, pin=False: moves.append(str(device))
                        or original(step, device, pin))
    results = {}
    for offload in (False, True):
        moves.clear()
        module = _module(sampling={"offload": offload, "batch_size": 3}, optimization={"micro_batch_size": 2})
        seen = _capture_rollouts(module, monkeypatch)
        trainer = _fit(module, data, callbacks=[EarlyStepFocus(num_sde_steps=2)])
        results[offload] = (float(trainer.callback_metrics["train/loss"]),
                            {n: p.detach().clone() for n, p in module.transformer.named_parameters() if "lora" in n})
        assert len(seen) == 1 and all(d.type == "cpu" for step in seen[0] for d in step)
        # 6 rollouts in 2 chunks x 2 SDE steps go to the CPU; the update brings 3 micro-batches x 2 steps back
        assert moves.count("cpu") == (4 + 6 if offload else 6)
    assert results[True][0] == results[False][0]
    for name, weight in results[False][1].items():
        assert torch.equal(results[True][1][name], weight)


def test_grpo_trains_lora_on_an_int8_base(data):
    module = _module(quantize_base=True, loss={"beta": 0.1})
    base = {n: p.detach().clone() for n, p in module.transformer.named_parameters()}
    assert module.transformer.blocks[0].attn1.to_q.base_layer.weight.dtype == torch.int8
    trainer = _fit(module, data, callbacks=[EarlyStepFocus(num_sde_steps=2)])
    changed = {n for n, p in module.transformer.named_parameters() if not torch.equal(p, base[n])}
    assert changed and all("lora" in n for n in changed)
    assert float(trainer.callback_metrics["kl"]) == 0.0  # reference = the int8 base under the disabled adapter
    assert abs(float(trainer.callback_metrics["ratio/max"]) - 1) < 1e-5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_offloaded_rollouts_on_cuda_are_pinned_and_update_the_same(data, monkeypatch):
    results = {}
    for offload in (False, True):
        module = _module(sampling={"offload": offload, "batch_size": 3}, optimization={"micro_batch_size": 2})
        seen = []
        update = module._update

        def recording(rollout, *args, update=update, seen=seen):
            seen.append([(s.latents, s.next_latents, s.log_prob) for s in rollout.steps])
            return update(rollout, *args)

        monkeypatch.setattr(module, "_update", recording)
        trainer = L.Trainer(max_steps=1, accelerator="cuda", devices=1, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                            callbacks=[EarlyStepFocus(num_sde_steps=2)])
        trainer.fit(module, datamodule=data)
        tensors = [t for step in seen[0] for t in step]
        if offload:
            assert all(t.device.type == "cpu" and t.is_pinned() for t in tensors)
        else:
            assert all(t.is_cuda for t in tensors)
        results[offload] = {n: p.detach().cpu() for n, p in module.transformer.named_parameters() if "lora" in n}
    for name, weight in results[False].items():
        torch.testing.assert_close(results[True][name], weight)


def test_a_clip_trained_start_rolls_out_window_by_window(data, tmp_path, monkeypatch):
    sft = SFTModule(transformer="tiny", clip_frames=2, val_steps=2)
    module = _module(init_from=str(export_module(sft, tmp_path / "sft")), sampling={"num_steps": 3})
    assert module.hparams.clip_frames == 2  # the start's windows
    seen = _capture_rollouts(module, monkeypatch)
    rollouts = []
    real = module._rollout_videos
    monkeypatch.setattr(module, "_rollout_videos", lambda *a: rollouts.append(real(*a)) or rollouts[-1])
    base = {n: p.detach().clone() for n, p in module.transformer.named_parameters()}
    trainer = _fit(module, data, callbacks=[EarlyStepFocus(num_sde_steps=2)])
    rollout, videos = rollouts[0]
    frames = module.spec.num_frames
    assert videos.shape[1] == frames
    # every window (frame k -> k + 1) trains its own 2 early steps, conditioned on the frame generated before it
    assert len(seen[0]) == len(rollout.steps) == 2 * (frames - 1)
    assert float(trainer.callback_metrics["train/sde_steps"]) == 2 * (frames - 1)
    for k, step in enumerate(rollout.steps[::2]):
        condition = module.codec.encode(torch.from_numpy(videos[:, k:k + 1]))
        assert torch.allclose(step.latents[:, :, :1], condition, atol=1e-6)
    assert abs(float(trainer.callback_metrics["ratio/max"]) - 1) < 1e-5  # on policy: each window's condition kept
    assert any(not torch.equal(p, base[n]) for n, p in module.transformer.named_parameters() if "lora" in n)
    with pytest.raises(ValueError, match="clip_frames"):
        _module(clip_frames=1)
