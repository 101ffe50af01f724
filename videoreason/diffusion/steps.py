"""Single denoising steps. ``ode_step`` is the Euler step of the flow ODE (what diffusers'
``FlowMatchEulerDiscreteScheduler.step`` does); the SDE step with log-probabilities arrives with the GRPO phase."""

from __future__ import annotations

import torch


def ode_step(
    x: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor | float, sigma_next: torch.Tensor | float
) -> torch.Tensor:
    """Euler step of the flow ODE: ``x' = x + (sigma_next - sigma) * v``, computed in float32.

    ``sigma`` and ``sigma_next`` may be floats or 0-d tensors; pass float32 0-d tensors (entries of
    ``sampling_sigmas``) to reproduce the diffusers scheduler bit for bit (it forms ``dt`` in float32).

    Args:
        x: Current latents ``[B, ...]`` at noise level ``sigma``.
        v: Predicted velocity, same shape (any float dtype; upcast).
        sigma: Current noise level.
        sigma_next: Next (lower) noise level.

    Returns:
        The latents at ``sigma_next``, in ``x``'s dtype.
    """
    if x.shape != v.shape:
        raise ValueError(f"`x` and `v` must have the same shape, got {tuple(x.shape)} and {tuple(v.shape)}")
    dt = sigma_next - sigma
    if isinstance(dt, torch.Tensor):
        dt = dt.to(device=x.device, dtype=torch.float32)
    return (x.to(torch.float32) + dt * v.to(torch.float32)).to(x.dtype)
