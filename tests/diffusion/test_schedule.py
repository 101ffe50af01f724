"""Flow-matching schedule: sigmas identical to diffusers' scheduler, noising, targets, training sigmas."""

from __future__ import annotations

import pytest
import torch

from videoreason.diffusion.schedule import (
    add_noise,
    sample_training_sigmas,
    sampling_sigmas,
    shift_sigmas,
    timesteps_from_sigmas,
    velocity_target,
)


@pytest.mark.parametrize("shift", [1.0, 3.0, 5.0, 12.0])
@pytest.mark.parametrize("steps", [1, 2, 4, 10, 50])
def test_sampling_sigmas_equal_diffusers_scheduler(steps, shift):
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift, num_train_timesteps=1000)
    scheduler.set_timesteps(steps)
    ours = sampling_sigmas(steps, shift)
    assert ours.dtype == torch.float32 and ours.shape == (steps + 1,)
    assert torch.equal(ours, scheduler.sigmas)  # bit for bit, terminal 0 included
    assert torch.equal(timesteps_from_sigmas(ours[:-1]), scheduler.timesteps)
    assert ours[0] == 1.0 and ours[-1] == 0.0
    assert bool((ours[1:] < ours[:-1]).all())


def test_sampling_sigmas_errors():
    with pytest.raises(ValueError, match="num_steps"):
        sampling_sigmas(0)
    with pytest.raises(ValueError, match="shift"):
        sampling_sigmas(4, shift=0.0)


def test_shift_sigmas():
    s = torch.tensor([0.0, 0.25, 0.5, 1.0])
    assert torch.equal(shift_sigmas(s, 1.0), s)
    shifted = shift_sigmas(s, 3.0)
    torch.testing.assert_close(shifted, torch.tensor([0.0, 0.5, 0.75, 1.0]))
    assert shift_sigmas(0.5, 5.0) == pytest.approx(5 / 6)


def test_add_noise_endpoints_and_target():
    x0, noise = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    assert torch.equal(add_noise(x0, noise, 0.0), x0)
    assert torch.equal(add_noise(x0, noise, 1.0), noise)
    per_sample = add_noise(x0, noise, torch.tensor([0.0, 1.0]))
    assert torch.equal(per_sample[0], x0[0]) and torch.equal(per_sample[1], noise[1])
    torch.testing.assert_close(add_noise(x0, noise, 0.3), 0.7 * x0 + 0.3 * noise)
    # the velocity target is d x_sigma / d sigma
    v = velocity_target(x0, noise)
    torch.testing.assert_close(add_noise(x0, noise, 0.6) - add_noise(x0, noise, 0.2), 0.4 * v)


@pytest.mark.parametrize("mode", ["uniform", "logit_normal"])
def test_training_sigmas(mode):
    g = torch.Generator().manual_seed(0)
    s = sample_training_sigmas(4096, mode=mode, generator=g)
    assert s.shape == (4096,) and s.dtype == torch.float32
    assert bool(((s > 0) & (s < 1)).all())
    assert abs(s.mean().item() - 0.5) < 0.03
    shifted = sample_training_sigmas(4096, mode=mode, shift=3.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(shifted, shift_sigmas(s, 3.0))
    assert shifted.mean() > s.mean()


def test_training_sigmas_errors():
    with pytest.raises(ValueError, match="mode"):
        sample_training_sigmas(2, mode="beta")
    with pytest.raises(ValueError, match="batch_size"):
        sample_training_sigmas(0)


def test_staggered_sigmas_start_each_frame_lag_steps_later():
    from videoreason.diffusion.schedule import staggered_sigmas

    sigmas = sampling_sigmas(4, shift=1.0)
    grid = staggered_sigmas(sigmas, num_frames=4, lag=2)
    assert grid.shape == (4 + 2 * 2 + 1, 4)
    assert bool((grid[:, 0] == 0).all())  # the condition frame
    for k in (1, 2, 3):
        column = grid[:, k]
        start = 2 * (k - 1)
        assert torch.equal(column[start:start + 5], sigmas)  # the whole grid, started late
        assert bool((column[:start] == 1).all()) and bool((column[start + 5:] == sigmas[-1]).all())
    assert torch.equal(staggered_sigmas(sigmas, 4, 0)[:, 1:], sigmas.unsqueeze(1).expand(5, 3))
    with pytest.raises(ValueError, match="lag"):
        staggered_sigmas(sigmas, 4, -1)


def test_staggered_sampling_with_no_lag_is_the_shared_sampler():
    from videoreason.diffusion.sampler import FlowSampler, frame_timesteps, token_timesteps
    from videoreason.diffusion.schedule import staggered_sigmas
    from videoreason.models.transformer import build_transformer

    torch.manual_seed(0)
    transformer = build_transformer("tiny", in_channels=48).eval()
    shape = (2, 48, 4, 4, 4)
    sigma = torch.full((2, 4), 0.3)
    assert torch.equal(frame_timesteps(sigma, shape, transformer.config.patch_size),
                       token_timesteps(torch.full((2,), 0.3), shape, transformer.config.patch_size))
    noise, first, embeds = torch.randn(shape), torch.randn(2, 48, 1, 4, 4), torch.randn(2, 8, 32)
    sigmas = sampling_sigmas(4, shift=3.0)
    with torch.no_grad():
        shared = FlowSampler(transformer).sample(noise, first, embeds, sigmas)
        staggered = FlowSampler(transformer).sample_staggered(noise, first, embeds, staggered_sigmas(sigmas, 4, 0))
    assert torch.allclose(shared, staggered, atol=1e-6)
    with pytest.raises(ValueError, match="must not increase"):
        FlowSampler(transformer).sample_staggered(noise, first, embeds, staggered_sigmas(sigmas, 4, 1).flip(0))
