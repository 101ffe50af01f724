"""The SDE step (Flow-GRPO and CPS forms): Gaussian log-probabilities, the step's algebra, and the KL."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from videoreason.diffusion.steps import ode_step, sde_kl, sde_step


def normal_log_prob(sample, mean, std):
    """Independent reference: torch.distributions' log-density, averaged over non-batch dims."""
    lp = Normal(mean.double(), torch.as_tensor(std).double().expand_as(mean)).log_prob(sample.double())
    return lp.mean(dim=tuple(range(1, lp.ndim))).float()


@pytest.mark.parametrize("variant", ["flow_grpo", "cps"])
def test_log_prob_is_gaussian_log_density(variant):
    g = torch.Generator().manual_seed(0)
    x, v = torch.randn(3, 4, 2, 5, generator=g), torch.randn(3, 4, 2, 5, generator=g)
    out = sde_step(x, v, 0.7, 0.55, 0.7, generator=g, variant=variant)
    assert out.log_prob.shape == (3,) and out.log_prob.dtype == torch.float32
    assert out.prev_sample.shape == x.shape
    torch.testing.assert_close(out.log_prob, normal_log_prob(out.prev_sample, out.mean, out.std), atol=1e-5, rtol=1e-5)
    # the draw is mean + std * noise with the given noise
    noise = torch.randn(x.shape, generator=g)
    drawn = sde_step(x, v, 0.7, 0.55, 0.7, noise=noise, variant=variant)
    torch.testing.assert_close(drawn.prev_sample, drawn.mean + drawn.std * noise)


@pytest.mark.parametrize("variant", ["flow_grpo", "cps"])
def test_prev_sample_is_evaluated_not_drawn(variant):
    x, v, other = torch.randn(2, 3, 4), torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    out = sde_step(x, v, 0.5, 0.3, 0.8, prev_sample=other, variant=variant)
    assert out.prev_sample is other
    torch.testing.assert_close(out.log_prob, normal_log_prob(other, out.mean, out.std), atol=1e-5, rtol=1e-5)
    # a sample near the mean is more likely than one far from it
    near = sde_step(x, v, 0.5, 0.3, 0.8, prev_sample=out.mean, variant=variant)
    assert bool((near.log_prob > out.log_prob).all())


def test_flow_grpo_algebra():
    x, v = torch.randn(2, 6), torch.randn(2, 6)
    sigma, sigma_next, a = 0.6, 0.4, 0.7
    dt = sigma_next - sigma
    s = a * math.sqrt(sigma / (1 - sigma))
    out = sde_step(x, v, sigma, sigma_next, a)
    torch.testing.assert_close(out.std, torch.tensor(s * math.sqrt(-dt)))
    mean = x * (1 + s**2 / (2 * sigma) * dt) + v * (1 + s**2 * (1 - sigma) / (2 * sigma)) * dt
    torch.testing.assert_close(out.mean, mean)


def test_flow_grpo_at_sigma_one_uses_next_sigma():
    x, v = torch.randn(2, 6), torch.randn(2, 6)
    out = sde_step(x, v, torch.tensor(1.0), torch.tensor(0.9), 0.5)
    s = 0.5 * math.sqrt(0.9 / 0.1)
    torch.testing.assert_close(out.std, torch.tensor(s * math.sqrt(0.1)))
    assert bool(torch.isfinite(out.mean).all() and torch.isfinite(out.log_prob).all())


@pytest.mark.parametrize("variant", ["flow_grpo", "cps"])
def test_zero_noise_is_the_euler_step(variant):
    x, v = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    out = sde_step(x, v, 0.8, 0.6, 0.0, variant=variant)
    torch.testing.assert_close(out.mean, ode_step(x, v, 0.8, 0.6))
    torch.testing.assert_close(out.prev_sample, ode_step(x, v, 0.8, 0.6))
    assert bool(torch.isnan(out.log_prob).all())  # a point mass has no density


def test_cps_preserves_the_forward_coefficients():
    # data x0 = 0: x_sigma = sigma * eps and the exact velocity is eps; a CPS step must give std sigma_next again
    eps = torch.randn(1, 200_000, generator=torch.Generator().manual_seed(1))
    sigma, sigma_next = 0.8, 0.5
    out = sde_step(sigma * eps, eps, sigma, sigma_next, 0.7, variant="cps", generator=torch.Generator().manual_seed(2))
    assert out.std.item() == pytest.approx(sigma_next * math.sin(0.7 * math.pi / 2))
    assert out.prev_sample.std().item() == pytest.approx(sigma_next, rel=1e-2)
    # the mean is the CPS formula with the exact predictions x0 = 0, eps
    x0_pred, eps_pred = torch.zeros_like(eps), eps
    mean = (1 - sigma_next) * x0_pred + math.sqrt(sigma_next**2 - out.std.item() ** 2) * eps_pred
    torch.testing.assert_close(out.mean, mean)


@pytest.mark.parametrize("variant", ["flow_grpo", "cps"])
def test_per_sample_sigmas_broadcast(variant):
    x, v, noise = torch.randn(3, 2, 4), torch.randn(3, 2, 4), torch.randn(3, 2, 4)
    sig, sig_next = torch.tensor([1.0, 0.7, 0.3]), torch.tensor([0.9, 0.5, 0.1])
    out = sde_step(x, v, sig, sig_next, 0.7, noise=noise, variant=variant)
    assert out.std.shape == (3, 1, 1)
    for i in range(3):
        one = sde_step(x[i : i + 1], v[i : i + 1], sig[i], sig_next[i], 0.7, noise=noise[i : i + 1], variant=variant)
        torch.testing.assert_close(out.prev_sample[i : i + 1], one.prev_sample)
        torch.testing.assert_close(out.log_prob[i : i + 1], one.log_prob)


def test_float32_arithmetic_and_consistent_log_prob_for_bf16():
    x, v = torch.randn(2, 3, 4).bfloat16(), torch.randn(2, 3, 4).bfloat16()
    out = sde_step(x, v, 0.5, 0.3, 0.7, generator=torch.Generator().manual_seed(0))
    assert out.prev_sample.dtype == torch.bfloat16
    assert out.mean.dtype == torch.float32 and out.log_prob.dtype == torch.float32
    # the stored log-prob is that of the returned (rounded) sample
    again = sde_step(x, v, 0.5, 0.3, 0.7, prev_sample=out.prev_sample)
    torch.testing.assert_close(again.log_prob, out.log_prob, atol=0, rtol=0)


def test_sde_step_errors():
    x, v = torch.randn(2, 3), torch.randn(2, 3)
    with pytest.raises(ValueError, match="`noise_level` must be >= 0, got -1"):
        sde_step(x, v, 0.5, 0.3, -1)
    with pytest.raises(ValueError, match="`sigma_next`"):
        sde_step(x, v, 0.3, 0.5, 0.7)
    with pytest.raises(ValueError, match="`sigma_next`"):
        sde_step(x, v, torch.tensor([0.5, 0.3]), torch.tensor([0.4, 0.3]), 0.7)
    with pytest.raises(ValueError, match="`variant`"):
        sde_step(x, v, 0.5, 0.3, 0.7, variant="ddim")
    with pytest.raises(ValueError, match="`sigma`"):
        sde_step(x, v, torch.tensor([0.5, 0.4, 0.3]), 0.2, 0.7)
    with pytest.raises(ValueError, match="`prev_sample`"):
        sde_step(x, v, 0.5, 0.3, 0.7, prev_sample=x[:1])
    with pytest.raises(ValueError, match="`noise`"):
        sde_step(x, v, 0.5, 0.3, 0.7, noise=x[:, :1])
    with pytest.raises(ValueError, match="same shape"):
        sde_step(x, v[:1], 0.5, 0.3, 0.7)


def test_sde_kl():
    mean, std = torch.randn(3, 4, 5), torch.tensor([0.1, 0.2, 0.3]).reshape(3, 1, 1)
    assert torch.equal(sde_kl(mean, mean.clone(), std), torch.zeros(3))
    other = mean + 0.05 * torch.randn(3, 4, 5)
    kl = sde_kl(mean, other, std)
    assert kl.shape == (3,) and bool((kl > 0).all())
    reference = kl_divergence(Normal(mean, std.expand_as(mean)), Normal(other, std.expand_as(mean)))
    torch.testing.assert_close(kl, reference.mean(dim=(1, 2)))
    with pytest.raises(ValueError, match="`mean_ref`"):
        sde_kl(mean, other[:1], std)
