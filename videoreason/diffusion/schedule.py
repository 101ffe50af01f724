"""Flow-matching schedule helpers (rectified flow, as Wan trains and samples).

- Forward process: ``x_sigma = (1 - sigma) * x0 + sigma * noise``; velocity target ``v = noise - x0``.
- Shift: ``sigma <- s * sigma / (1 + (s - 1) * sigma)`` (``s > 1`` spends more steps at high noise).
- ``sampling_sigmas(n, shift)`` reproduces, value for value, the ``sigmas`` of diffusers'
  ``FlowMatchEulerDiscreteScheduler(shift=shift, num_train_timesteps=1000).set_timesteps(n)`` (the scheduler the Wan
  pipelines use): ``n + 1`` float32 values from 1 down to the terminal 0. ``timesteps_from_sigmas`` gives the
  transformer's timesteps (``sigma * 1000`` in float32, as the scheduler's ``timesteps``).
- ``sample_training_sigmas``: uniform or logit-normal sigmas for training, then shifted.
"""

from __future__ import annotations

import numpy as np
import torch

NUM_TRAIN_TIMESTEPS = 1000


def shift_sigmas(sigmas: torch.Tensor | float, shift: float) -> torch.Tensor | float:
    """``s * sigma / (1 + (s - 1) * sigma)``; maps 0 to 0 and 1 to 1, identity at ``shift == 1``.

    Args:
        sigmas: Noise levels in [0, 1] (tensor, array or float).
        shift: The shift ``s > 0``.

    Returns:
        The shifted sigmas, same type as ``sigmas``.
    """
    if shift <= 0:
        raise ValueError(f"`shift` must be > 0, got {shift}")
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def sampling_sigmas(num_steps: int, shift: float = 1.0, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> torch.Tensor:
    """The inference sigmas of ``FlowMatchEulerDiscreteScheduler(shift, num_train_timesteps).set_timesteps(n)``.

    Reproduces the scheduler's arithmetic exactly (float32 training table for the end points, float64 linspace and
    shift, float32 result, terminal 0 appended), so the values are bit-identical to ``scheduler.sigmas``.

    Args:
        num_steps: Denoising steps ``n >= 1``.
        shift: Sigma shift (Wan2.1 T2V 480p uses 3.0, Wan2.2 TI2V 5.0).
        num_train_timesteps: The scheduler's training timesteps (1000 for Wan).

    Returns:
        float32 ``[n + 1]``: ``sigmas[0] == 1``, decreasing, ``sigmas[n] == 0``.
    """
    if num_steps < 1:
        raise ValueError(f"`num_steps` must be >= 1, got {num_steps}")
    if shift <= 0:
        raise ValueError(f"`shift` must be > 0, got {shift}")
    # The scheduler's __init__: float32 table t = 1000..1, sigma = t / 1000, shifted in float32; keep its ends.
    ends = torch.tensor([float(num_train_timesteps), 1.0], dtype=torch.float32) / num_train_timesteps
    ends = shift * ends / (1 + (shift - 1) * ends)
    sigma_max, sigma_min = ends[0].item(), ends[1].item()
    # set_timesteps: linspace of timesteps in float64, back to sigmas, shifted again (float64), then float32.
    timesteps = np.linspace(sigma_max * num_train_timesteps, sigma_min * num_train_timesteps, num_steps)
    sigmas = timesteps / num_train_timesteps
    sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    sigmas = torch.from_numpy(sigmas).to(torch.float32)
    return torch.cat([sigmas, torch.zeros(1, dtype=torch.float32)])


def timesteps_from_sigmas(sigmas: torch.Tensor, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> torch.Tensor:
    """The transformer's timesteps of float sigmas: ``sigma * num_train_timesteps`` in float32 (the scheduler's
    ``timesteps``)."""
    return sigmas.to(torch.float32) * num_train_timesteps


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """``x_sigma = (1 - sigma) * x0 + sigma * noise``.

    Args:
        x0: Clean latents ``[B, ...]``.
        noise: Gaussian noise, same shape.
        sigma: A float, or per-sample sigmas ``[B]`` (broadcast over the non-batch dims).

    Returns:
        The noised latents, shape and dtype of ``x0``.
    """
    if isinstance(sigma, torch.Tensor) and sigma.ndim == 1:
        sigma = sigma.reshape(-1, *([1] * (x0.ndim - 1)))
    if isinstance(sigma, torch.Tensor):
        sigma = sigma.to(device=x0.device, dtype=x0.dtype)
    return (1 - sigma) * x0 + sigma * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The flow-matching regression target ``v = noise - x0`` (``d x_sigma / d sigma``)."""
    return noise - x0


def sample_training_sigmas(
    batch_size: int,
    mode: str = "uniform",
    shift: float = 1.0,
    logit_mean: float = 0.0,
    logit_std: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw training sigmas, then shift them.

    Args:
        batch_size: Number of sigmas.
        mode: ``"uniform"`` (U(0, 1)) or ``"logit_normal"`` (``sigmoid(N(logit_mean, logit_std))``, SD3-style).
        shift: Shift applied after drawing (1.0 = none).
        logit_mean: Mean of the normal before the sigmoid (``logit_normal`` only).
        logit_std: Std of the normal before the sigmoid (``logit_normal`` only).
        generator: Optional RNG (on ``device``).
        device: Device of the result.

    Returns:
        float32 ``[batch_size]`` in (0, 1).
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}")
    if mode == "uniform":
        u = torch.rand(batch_size, generator=generator, device=device, dtype=torch.float32)
    elif mode == "logit_normal":
        if logit_std <= 0:
            raise ValueError(f"`logit_std` must be > 0, got {logit_std}")
        z = torch.randn(batch_size, generator=generator, device=device, dtype=torch.float32)
        u = torch.sigmoid(logit_mean + logit_std * z)
    else:
        raise ValueError(f"`mode` must be 'uniform' or 'logit_normal', got {mode!r}")
    return shift_sigmas(u, shift)


def staggered_sigmas(sigmas: torch.Tensor, num_frames: int, lag: int) -> torch.Tensor:
    """Per-frame sigmas of a staggered (rolling) schedule, ``[n + (num_frames - 2) * lag + 1, num_frames]``.

    Latent frame 0 is the clean condition (sigma 0 throughout). Frame ``k >= 1`` walks the whole ``sigmas`` grid
    ``[n + 1]`` but starts ``(k - 1) * lag`` steps after frame 1, so every frame is denoised while the frames before
    it are already cleaner: with ``lag = n`` one frame at a time (each from a finished predecessor), with ``lag = 0``
    all together (row ``i`` is then ``sigmas[i]`` on every frame but 0). A model trained with rising per-frame
    noise (``SFTModule(loss=FlowMatchingLoss(frame_noise="rising"))``) has seen such states.
    """
    sigmas = torch.as_tensor(sigmas, dtype=torch.float32).cpu()
    if sigmas.ndim != 1 or len(sigmas) < 2:
        raise ValueError(f"`sigmas` must be 1-D with at least 2 values, got shape {tuple(sigmas.shape)}")
    if num_frames < 2 or lag < 0:
        raise ValueError(f"need num_frames >= 2 and lag >= 0, got {num_frames} and {lag}")
    n = len(sigmas) - 1
    total = n + (num_frames - 2) * lag
    step = torch.arange(total + 1).unsqueeze(1)  # [G + 1, 1]
    start = torch.cat([torch.zeros(1), torch.arange(num_frames - 1) * lag]).long().unsqueeze(0)  # [1, f]
    out = sigmas[(step - start).clamp(0, n)]  # [G + 1, f]
    out[:, 0] = 0.0
    return out
