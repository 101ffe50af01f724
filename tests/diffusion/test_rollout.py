"""``FlowSampler.rollout`` with "sde" steps on the tiny Wan transformer: what is stored, determinism, frame-0
conditioning, and the on-policy identity of ``step_log_prob``."""

from __future__ import annotations

import copy

import pytest
import torch

from videoreason.diffusion.plans import early_plan, validate_plan, window_plan
from videoreason.diffusion.sampler import FlowSampler, sample
from videoreason.diffusion.schedule import sampling_sigmas
from videoreason.diffusion.steps import sde_kl
from videoreason.models.transformer import build_transformer

B, C, F, HW, TEXT_DIM, N = 2, 48, 3, 4, 32, 6


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    transformer = build_transformer("tiny", in_channels=C, text_dim=TEXT_DIM).eval()
    noise = torch.randn(B, C, F, HW, HW)  # [B, C, f, h, w]
    first = torch.randn(B, C, 1, HW, HW)  # [B, C, 1, h, w]
    prompt = torch.randn(B, 8, TEXT_DIM)
    return transformer, noise, first, prompt, sampling_sigmas(N, 3.0)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_validate_plan_accepts_sde_but_not_last():
    assert validate_plan(["sde", "ode", "sde", "ode"], 4) == ["sde", "ode", "sde", "ode"]
    with pytest.raises(ValueError, match=r"`plan\[2\]` is 'sde'.*last step"):
        validate_plan(["sde", "sde", "sde"], 3)
    with pytest.raises(ValueError, match=r"`plan\[0\]` is 'euler'"):
        validate_plan(["euler", "ode"], 2)


def test_rollout_stores_the_sde_steps(setup):
    transformer, noise, first, prompt, sigmas = setup
    out = FlowSampler(transformer).rollout(noise, first, prompt, sigmas, early_plan(N, 2), generator=gen(0))
    assert [s.index for s in out.steps] == [0, 1]
    assert torch.equal(out.sigmas, sigmas) and out.tail_sigmas is None
    for s in out.steps:
        assert s.sigma == sigmas[s.index] and s.sigma_next == sigmas[s.index + 1]
        assert s.latents.shape == s.next_latents.shape == (B, C, F, HW, HW)
        assert s.log_prob.shape == (B,) and bool(torch.isfinite(s.log_prob).all())
        assert not (s.latents.requires_grad or s.next_latents.requires_grad or s.log_prob.requires_grad)
        # frame 0 is the clean condition before and after every step
        assert torch.equal(s.latents[:, :, :1], first) and torch.equal(s.next_latents[:, :, :1], first)
    assert torch.equal(out.steps[0].next_latents, out.steps[1].latents)
    assert torch.equal(out.steps[0].latents, torch.cat([first, noise[:, :, 1:]], dim=2))
    assert torch.equal(out.latents[:, :, :1], first)
    # a window plan stores its window
    window = FlowSampler(transformer).rollout(noise, first, prompt, sigmas, window_plan(N, 2, 3), generator=gen(0))
    assert [s.index for s in window.steps] == [3, 4]


def test_rollout_determinism_and_noise(setup):
    transformer, noise, first, prompt, sigmas = setup
    sampler, plan = FlowSampler(transformer), early_plan(N, 2)
    a = sampler.rollout(noise, first, prompt, sigmas, plan, generator=gen(1))
    b = sampler.rollout(noise, first, prompt, sigmas, plan, generator=gen(1))
    c = sampler.rollout(noise, first, prompt, sigmas, plan, generator=gen(2))
    # same SDE noise -> the same deterministic ODE tail and the same log-probs
    assert torch.equal(a.latents, b.latents)
    assert all(torch.equal(x.log_prob, y.log_prob) for x, y in zip(a.steps, b.steps, strict=True))
    # other SDE noise -> other samples (the noisy frames only; frame 0 stays the condition)
    assert (a.latents[:, :, 1:] - c.latents[:, :, 1:]).abs().max() > 1e-3
    assert torch.equal(c.latents[:, :, :1], first)
    # sample() with an SDE plan is the rollout's latents
    assert torch.equal(sample(transformer, noise, first, prompt, sigmas, plan=plan, generator=gen(1)), a.latents)


def test_all_ode_rollout_is_sample(setup):
    transformer, noise, first, prompt, sigmas = setup
    out = FlowSampler(transformer).rollout(noise, first, prompt, sigmas)
    assert out.steps == []
    assert torch.equal(out.latents, sample(transformer, noise, first, prompt, sigmas))


def test_noise_and_log_prob_only_concern_noisy_frames(setup):
    transformer, noise, first, prompt, sigmas = setup
    sampler = FlowSampler(transformer)
    step = sampler.rollout(noise, first, prompt, sigmas, early_plan(N, 1), generator=gen(3)).steps[0]
    log_prob, mean, std = sampler.step_log_prob(step, first, prompt, noise_level=0.7)
    assert mean.shape == (B, C, F - 1, HW, HW)
    z = (step.next_latents[:, :, 1:] - mean) / std  # the injected noise, standard normal
    assert abs(z.mean().item()) < 0.1 and abs(z.std().item() - 1) < 0.1
    expected = torch.distributions.Normal(mean.double(), std.double()).log_prob(step.next_latents[:, :, 1:].double())
    torch.testing.assert_close(log_prob.double(), expected.mean(dim=(1, 2, 3, 4)), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("variant", "guidance"), [("flow_grpo", 1.0), ("cps", 1.0), ("flow_grpo", 2.5)])
def test_step_log_prob_on_policy_identity(setup, variant, guidance):
    transformer, noise, first, prompt, sigmas = setup
    negative = torch.randn(B, 8, TEXT_DIM) if guidance > 1 else None
    sampler = FlowSampler(transformer, guidance_scale=guidance)
    out = sampler.rollout(
        noise, first, prompt, sigmas, early_plan(N, 3), noise_level=0.9, variant=variant, generator=gen(4),
        negative=negative,
    )  # fmt: skip
    assert len(out.steps) == 3
    for step in out.steps:
        log_prob, mean, _ = sampler.step_log_prob(
            step, first, prompt, noise_level=0.9, variant=variant, negative=negative
        )
        torch.testing.assert_close(log_prob, step.log_prob, atol=1e-6, rtol=1e-6)
        assert log_prob.requires_grad and mean.requires_grad  # the GRPO loss back-propagates through it


def test_step_log_prob_gradients_and_other_policy(setup):
    transformer, noise, first, prompt, sigmas = setup
    sampler = FlowSampler(transformer)
    step = sampler.rollout(noise, first, prompt, sigmas, early_plan(N, 2), generator=gen(5)).steps[1]
    log_prob, mean, std = sampler.step_log_prob(step, first, prompt, noise_level=0.7)
    transformer.zero_grad()
    log_prob.sum().backward()
    grads = [p.grad for p in transformer.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    transformer.zero_grad()
    # another policy: a different log-prob of the same step and a positive KL to it
    other = copy.deepcopy(transformer)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
        other_log_prob, other_mean, _ = FlowSampler(other).step_log_prob(step, first, prompt, noise_level=0.7)
        assert (other_log_prob - step.log_prob).abs().max() > 1e-4
        assert bool((sde_kl(mean.detach(), other_mean, std) > 0).all())
        assert torch.equal(sde_kl(mean.detach(), mean.detach(), std), torch.zeros(B))


def test_rollout_rejects_bad_plans_before_any_call(setup):
    _, noise, first, prompt, sigmas = setup

    class Never(torch.nn.Module):
        config = type("Config", (), {"patch_size": (1, 2, 2)})

        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, *args, **kwargs):
            raise AssertionError("the plan must be checked before any transformer call")

    sampler = FlowSampler(Never())
    with pytest.raises(ValueError, match=rf"`plan\[{N - 1}\]` is 'sde'"):
        sampler.rollout(noise, first, prompt, sigmas, ["ode"] * (N - 1) + ["sde"])
    with pytest.raises(ValueError, match="`noise_level`"):
        sampler.rollout(noise, first, prompt, sigmas, early_plan(N, 1), noise_level=-0.1)
    with pytest.raises(ValueError, match="`variant`"):
        sampler.rollout(noise, first, prompt, sigmas, early_plan(N, 1), variant="sde")
