"""The Euler ODE step and the step-plan validation."""

from __future__ import annotations

import pytest
import torch

from videoreason.diffusion.plans import validate_plan
from videoreason.diffusion.sampler import token_timesteps
from videoreason.diffusion.schedule import add_noise, sampling_sigmas, velocity_target
from videoreason.diffusion.steps import ode_step


def test_ode_step_formula_and_dtype():
    x, v = torch.randn(2, 3), torch.randn(2, 3)
    torch.testing.assert_close(ode_step(x, v, 0.8, 0.5), x - 0.3 * v)
    xb = x.to(torch.bfloat16)
    out = ode_step(xb, v, 0.8, 0.5)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, (xb.float() - 0.3 * v).to(torch.bfloat16))
    with pytest.raises(ValueError, match="same shape"):
        ode_step(x, v[:1], 0.8, 0.5)


def test_ode_step_matches_scheduler_step():
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler(shift=5.0)
    scheduler.set_timesteps(6)
    sigmas = sampling_sigmas(6, 5.0)
    x = torch.randn(1, 4, 3, 4, 4)
    ours = x.clone()
    for i, t in enumerate(scheduler.timesteps):
        v = torch.randn_like(x)
        x = scheduler.step(v, t, x, return_dict=False)[0]
        ours = ode_step(ours, v, sigmas[i], sigmas[i + 1])
        assert torch.equal(ours, x)


def test_ode_with_exact_velocity_recovers_x0():
    x0, noise = torch.randn(2, 4, 5), torch.randn(2, 4, 5)
    sigmas = sampling_sigmas(7, 3.0)
    x = add_noise(x0, noise, sigmas[0])
    for i in range(7):
        x = ode_step(x, velocity_target(x0, noise), sigmas[i], sigmas[i + 1])
    torch.testing.assert_close(x, x0, atol=1e-5, rtol=0)


def test_validate_plan():
    assert validate_plan(None, 3) == ["ode", "ode", "ode"]
    assert validate_plan(("ode", "ode"), 2) == ["ode", "ode"]
    assert validate_plan(["ode", "sde", "ode"], 3) == ["ode", "sde", "ode"]
    with pytest.raises(ValueError, match=r"plan\[2\]"):
        validate_plan(["ode", "ode", "sde"], 3)  # the last step is never stochastic
    with pytest.raises(ValueError, match=r"plan\[0\].*'euler'"):
        validate_plan(["euler"], 1)
    with pytest.raises(ValueError, match="2 entries but the sigmas define 3"):
        validate_plan(["ode", "ode"], 3)
    with pytest.raises(ValueError, match="not the string"):
        validate_plan("ode", 3)


def test_plan_checked_by_sampler():
    from videoreason.diffusion.sampler import FlowSampler

    class Never(torch.nn.Module):
        def forward(self, *args, **kwargs):
            raise AssertionError("the plan must be checked before any transformer call")

    noise, first = torch.randn(1, 4, 3, 4, 4), torch.randn(1, 4, 1, 4, 4)
    with pytest.raises(ValueError, match="sde"):
        FlowSampler(Never()).sample(noise, first, torch.randn(1, 2, 8), sampling_sigmas(2), plan=["ode", "sde"])


def test_token_timesteps():
    ts = token_timesteps(torch.tensor(0.5), (2, 4, 3, 4, 6), (1, 2, 2))
    assert ts.shape == (2, 3 * 2 * 3)
    assert bool((ts[:, :6] == 0).all()) and bool((ts[:, 6:] == 500.0).all())
    with pytest.raises(ValueError, match="multiples"):
        token_timesteps(torch.tensor(0.5), (1, 4, 3, 5, 6), (1, 2, 2))
    with pytest.raises(ValueError, match="temporal patch"):
        token_timesteps(torch.tensor(0.5), (1, 4, 3, 4, 6), (2, 2, 2))
