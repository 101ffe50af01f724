"""The fast deterministic ODE tail: DPM-Solver++(2M) for flow matching against Euler and diffusers, its grid, and
its use after the last SDE step of a rollout (never with grad)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from videoreason.diffusion.plans import early_plan
from videoreason.diffusion.sampler import FlowSampler
from videoreason.diffusion.schedule import sampling_sigmas
from videoreason.diffusion.solvers import TailSpec, dpmpp_2m_tail, euler_tail, tail_sigmas

DATA_MEAN, DATA_STD = 0.8, 0.3


def gaussian_velocity(x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """The exact flow-matching velocity ``E[eps - x0 | x_sigma]`` for data ``x0 ~ N(DATA_MEAN, DATA_STD^2)``."""
    sigma = torch.as_tensor(sigma, dtype=torch.float32)
    alpha = 1 - sigma
    var = alpha**2 * DATA_STD**2 + sigma**2
    r = x - alpha * DATA_MEAN
    return sigma / var * r - (DATA_MEAN + alpha * DATA_STD**2 / var * r)


class GaussianTransformer(torch.nn.Module):
    """Stands in for the Wan transformer: the exact Gaussian velocity, recording the grad mode of every call."""

    config = SimpleNamespace(patch_size=(1, 2, 2))

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.grad_modes: list[bool] = []

    def forward(self, hidden_states, timestep, encoder_hidden_states, return_dict=False):
        self.grad_modes.append(torch.is_grad_enabled())
        sigma = (timestep[:, -1] / 1000).reshape(-1, 1, 1, 1, 1)  # [B, 1, 1, 1, 1]: a token of a noisy frame
        return (self.scale * gaussian_velocity(hidden_states, sigma),)


@pytest.mark.parametrize("steps", [4, 6])
def test_dpmpp_2m_beats_euler_with_few_steps(steps):
    sigmas = sampling_sigmas(20, 3.0)
    start = 10  # the tail of a 10-of-20 Early-Step Focus plan
    x = torch.randn(2, 4096, generator=torch.Generator().manual_seed(0))
    reference = euler_tail(gaussian_velocity, x, tail_sigmas(sigmas, start, 200))  # uniform grid (the default)
    grid = tail_sigmas(sigmas, start, steps)
    err_euler = (euler_tail(gaussian_velocity, x, grid) - reference).abs().mean()
    err_dpm = (dpmpp_2m_tail(gaussian_velocity, x, grid) - reference).abs().mean()
    assert err_dpm < 0.9 * err_euler
    # and it converges: more steps, smaller error
    finer = (dpmpp_2m_tail(gaussian_velocity, x, tail_sigmas(sigmas, start, 2 * steps)) - reference).abs().mean()
    assert finer < 0.5 * err_dpm


def test_dpmpp_2m_matches_diffusers_flow_dpm_solver():
    from diffusers import DPMSolverMultistepScheduler

    scheduler = DPMSolverMultistepScheduler(
        use_flow_sigmas=True,
        prediction_type="flow_prediction",
        flow_shift=3.0,
        solver_order=2,
        algorithm_type="dpmsolver++",
        final_sigmas_type="zero",
    )
    scheduler.set_timesteps(6)
    x = torch.randn(2, 64, generator=torch.Generator().manual_seed(1))
    expected = x.clone()
    for i, t in enumerate(scheduler.timesteps):
        expected = scheduler.step(gaussian_velocity(expected, scheduler.sigmas[i]), t, expected, return_dict=False)[0]
    ours = dpmpp_2m_tail(gaussian_velocity, x, scheduler.sigmas)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_dpmpp_2m_from_sigma_one_starts_with_an_euler_step():
    x = torch.randn(3, 8)
    grid = torch.tensor([1.0, 0.7])
    torch.testing.assert_close(dpmpp_2m_tail(gaussian_velocity, x, grid), euler_tail(gaussian_velocity, x, grid))


@pytest.mark.parametrize("grid", ["uniform", "schedule"])
def test_tail_sigmas(grid):
    sigmas = sampling_sigmas(20, 3.0)
    values = tail_sigmas(sigmas, 10, 4, grid)
    assert values.shape == (5,) and values.dtype == torch.float32
    assert values[0] == sigmas[10] and values[-1] == 0
    assert bool((values[1:] < values[:-1]).all())
    if grid == "uniform":
        torch.testing.assert_close(values[:-1] - values[1:], torch.full((4,), sigmas[10].item() / 4))
    else:
        assert torch.equal(tail_sigmas(sigmas, 10, 10, grid), sigmas[10:])  # as many steps as left: the schedule
    with pytest.raises(ValueError, match="`start`"):
        tail_sigmas(sigmas, 20, 4)
    with pytest.raises(ValueError, match="`steps`"):
        tail_sigmas(sigmas, 0, 0)
    with pytest.raises(ValueError, match="`grid`"):
        tail_sigmas(sigmas, 0, 2, "karras")
    with pytest.raises(ValueError, match="`sigmas`"):
        euler_tail(gaussian_velocity, torch.zeros(1), torch.tensor([0.5, 0.5]))


def test_tail_spec_validation():
    assert TailSpec(3).solver == "dpmpp_2m"
    with pytest.raises(ValueError, match="`steps`"):
        TailSpec(0)
    with pytest.raises(ValueError, match="`solver`"):
        TailSpec(3, solver="heun")
    with pytest.raises(ValueError, match="`grid`"):
        TailSpec(3, grid="karras")


@pytest.fixture()
def toy():
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(2, 4, 3, 4, 4, generator=g)  # [B, C, f, h, w]
    first = torch.randn(2, 4, 1, 4, 4, generator=g)
    return GaussianTransformer(), noise, first, torch.randn(2, 3, 8, generator=g), sampling_sigmas(20, 3.0)


def test_rollout_with_tail(toy):
    model, noise, first, prompt, sigmas = toy
    sampler = FlowSampler(model)
    with torch.enable_grad():
        out = sampler.rollout(
            noise, first, prompt, sigmas, early_plan(20, 5), generator=torch.Generator().manual_seed(1),
            tail=TailSpec(4),
        )  # fmt: skip
    assert len(model.grad_modes) == 5 + 4  # 5 SDE steps, then 4 tail steps instead of 15 ODE steps
    assert not any(model.grad_modes)  # the tail (like the whole rollout) never runs with grad
    assert [s.index for s in out.steps] == list(range(5))
    torch.testing.assert_close(out.tail_sigmas, torch.linspace(sigmas[5].item(), 0, 5))
    assert out.tail_sigmas[0] == sigmas[5] and out.tail_sigmas[-1] == 0
    assert torch.equal(out.latents[:, :, :1], first) and not out.latents.requires_grad
    # a plan without SDE steps runs the tail from the start
    model.grad_modes.clear()
    assert sampler.rollout(noise, first, prompt, sigmas, tail=TailSpec(3)).tail_sigmas[0] == 1.0
    assert len(model.grad_modes) == 3


def test_euler_tail_on_the_original_grid_is_the_plain_rollout(toy):
    model, noise, first, prompt, sigmas = toy
    sampler, plan = FlowSampler(model), early_plan(20, 5)
    plain = sampler.rollout(noise, first, prompt, sigmas, plan, generator=torch.Generator().manual_seed(2))
    tailed = sampler.rollout(
        noise, first, prompt, sigmas, plan, generator=torch.Generator().manual_seed(2),
        tail=TailSpec(15, solver="euler", grid="schedule"),
    )  # fmt: skip
    assert torch.equal(tailed.latents, plain.latents)


def test_dpmpp_tail_is_closer_to_a_fine_rollout_than_euler_tail(toy):
    model, noise, first, prompt, sigmas = toy
    sampler, plan = FlowSampler(model), early_plan(20, 10)

    def run(tail):
        return sampler.rollout(
            noise, first, prompt, sigmas, plan, generator=torch.Generator().manual_seed(3), tail=tail
        ).latents

    reference = run(TailSpec(200, solver="euler"))
    err_dpm = (run(TailSpec(5)) - reference).abs().mean()
    err_euler = (run(TailSpec(5, solver="euler")) - reference).abs().mean()
    assert err_dpm < 0.9 * err_euler
