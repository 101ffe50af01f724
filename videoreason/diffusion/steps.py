"""Single denoising steps.

- ``ode_step``: the Euler step of the flow ODE (what diffusers' ``FlowMatchEulerDiscreteScheduler.step`` does).
- ``sde_step``: a stochastic step that is a Gaussian policy ``N(mean, std^2)`` with a log-probability, in two forms:

  * ``"flow_grpo"`` (Flow-GRPO): with ``dt = sigma_next - sigma < 0`` and noise level ``a``,
    ``s = a * sqrt(sigma / (1 - sigma))`` (``sigma_next`` in that formula where ``sigma == 1``),
    ``std = s * sqrt(-dt)``, ``mean = x * (1 + s^2 / (2 sigma) * dt) + v * (1 + s^2 (1 - sigma) / (2 sigma)) * dt``.
    At ``a == 0`` the mean is the Euler step.
  * ``"cps"`` (coefficients-preserving sampling, Flow-CPS): ``x0 = x - sigma v``, ``eps = x + (1 - sigma) v``,
    ``std = sigma_next * sin(a pi / 2)``, ``mean = (1 - sigma_next) x0 + sqrt(sigma_next^2 - std^2) eps``, so the
    sample keeps the forward process's coefficients ``(1 - sigma_next, sigma_next)``.

  Both variants use the full Gaussian log-density ``-|x' - mean|^2 / (2 std^2) - log std - log(2 pi) / 2`` (the CPS
  paper drops the constants and the ``1 / (2 std^2)`` scale; we keep them so the two variants are interchangeable and
  ratios ``exp(log_prob - old_log_prob)`` are those of the actual policy), averaged over the non-batch dims.
- ``sde_kl``: the KL divergence between two such Gaussians with the same std.

All SDE arithmetic is float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SDE_VARIANTS = ("flow_grpo", "cps")
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


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


@dataclass
class SDEStepOutput:
    """One SDE step.

    Attributes:
        prev_sample: The latents at ``sigma_next`` ``[B, ...]`` in the input's dtype (the given ``prev_sample`` when
            one was passed).
        log_prob: Log-density of ``prev_sample`` under ``N(mean, std^2)``, averaged over non-batch dims, ``[B]``.
        mean: The Gaussian mean ``[B, ...]``, float32.
        std: The Gaussian std, float32, broadcastable to ``mean`` (``[]`` or ``[B, 1, ...]``).
    """

    prev_sample: torch.Tensor
    log_prob: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor


def _as_batch_sigma(sigma: torch.Tensor | float, x: torch.Tensor, name: str) -> torch.Tensor:
    """``sigma`` as a float32 tensor on ``x``'s device that broadcasts against ``x``: ``[]`` or ``[B, 1, ...]``."""
    s = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
    if s.ndim == 0:
        return s
    if s.ndim == 1 and s.shape[0] == x.shape[0]:
        return s.reshape(-1, *([1] * (x.ndim - 1)))  # [B, 1, ...]
    raise ValueError(
        f"`{name}` must be a float, a 0-d tensor or one value per sample [{x.shape[0]}], got shape {tuple(s.shape)}"
    )


def gaussian_log_prob(sample: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``log N(sample; mean, std^2)`` per element, averaged over the non-batch dims -> ``[B]`` (float32)."""
    sample, mean = sample.to(torch.float32), mean.to(torch.float32)
    log_density = -((sample - mean) ** 2) / (2 * std**2) - torch.log(std) - _HALF_LOG_2PI
    return log_density.mean(dim=tuple(range(1, log_density.ndim)))


def sde_step(
    x: torch.Tensor,
    v: torch.Tensor,
    sigma: torch.Tensor | float,
    sigma_next: torch.Tensor | float,
    noise_level: float,
    *,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    prev_sample: torch.Tensor | None = None,
    variant: str = "flow_grpo",
) -> SDEStepOutput:
    """A stochastic denoising step with its log-probability (see the module docstring for the formulas).

    With ``prev_sample`` the step draws nothing and only evaluates that sample's log-probability (how training
    recomputes the policy's log-prob of a stored rollout). With ``noise_level == 0`` the step is deterministic (the
    Euler step for ``"flow_grpo"``) and ``log_prob`` is NaN: a point mass has no density.

    Args:
        x: Current latents ``[B, ...]`` at ``sigma``.
        v: Predicted velocity, same shape (any float dtype; upcast to float32).
        sigma: Current noise level: a float, a 0-d tensor or per sample ``[B]``.
        sigma_next: Next, strictly lower noise level, same forms.
        noise_level: The noise scale ``a >= 0`` (0.7 in Flow-GRPO).
        noise: Standard normal noise of ``x``'s shape; drawn with ``generator`` when omitted.
        generator: RNG for the noise (its device is used; the noise is then moved to ``x``'s device).
        prev_sample: A sample at ``sigma_next`` whose log-probability to evaluate instead of drawing one.
        variant: ``"flow_grpo"`` or ``"cps"``.

    Returns:
        ``SDEStepOutput(prev_sample, log_prob [B], mean, std)``.
    """
    if x.shape != v.shape:
        raise ValueError(f"`x` and `v` must have the same shape, got {tuple(x.shape)} and {tuple(v.shape)}")
    if noise_level < 0:
        raise ValueError(f"`noise_level` must be >= 0, got {noise_level}")
    if variant not in SDE_VARIANTS:
        raise ValueError(f"`variant` must be one of {list(SDE_VARIANTS)}, got {variant!r}")
    sig, sig_next = _as_batch_sigma(sigma, x, "sigma"), _as_batch_sigma(sigma_next, x, "sigma_next")
    dt = sig_next - sig
    if not bool((dt < 0).all()):
        raise ValueError(f"`sigma_next` must be < `sigma` (dt < 0), got sigma={sigma} and sigma_next={sigma_next}")
    xf, vf = x.to(torch.float32), v.to(torch.float32)
    if variant == "flow_grpo":
        sig_s = torch.where(sig >= 1, sig_next, sig)  # sigma / (1 - sigma) is infinite at sigma == 1
        s = noise_level * torch.sqrt(sig_s / (1 - sig_s))
        std = s * torch.sqrt(-dt)
        mean = xf * (1 + s**2 / (2 * sig) * dt) + vf * (1 + s**2 * (1 - sig) / (2 * sig)) * dt
    else:  # cps
        std = sig_next * math.sin(noise_level * math.pi / 2)
        x0_pred = xf - sig * vf
        eps_pred = xf + (1 - sig) * vf
        mean = (1 - sig_next) * x0_pred + torch.sqrt((sig_next**2 - std**2).clamp_min(0)) * eps_pred
    if prev_sample is None:
        if noise is None:
            device = generator.device if generator is not None else x.device
            noise = torch.randn(x.shape, generator=generator, device=device, dtype=torch.float32).to(x.device)
        elif noise.shape != x.shape:
            raise ValueError(f"`noise` must have the shape of `x` {tuple(x.shape)}, got {tuple(noise.shape)}")
        # the log-prob is that of the returned sample, after the cast to the latents' dtype
        prev_sample = (mean + std * noise.to(torch.float32)).to(x.dtype)
    elif prev_sample.shape != x.shape:
        raise ValueError(f"`prev_sample` must have the shape of `x` {tuple(x.shape)}, got {tuple(prev_sample.shape)}")
    if noise_level == 0:
        log_prob = torch.full((x.shape[0],), float("nan"), device=x.device)
    else:
        log_prob = gaussian_log_prob(prev_sample, mean, std)
    return SDEStepOutput(prev_sample=prev_sample, log_prob=log_prob, mean=mean, std=std)


def sde_kl(mean: torch.Tensor, mean_ref: torch.Tensor, std: torch.Tensor | float) -> torch.Tensor:
    """``KL(N(mean, std^2) || N(mean_ref, std^2)) = |mean - mean_ref|^2 / (2 std^2)``, averaged over non-batch dims.

    Args:
        mean: Policy mean ``[B, ...]``.
        mean_ref: Reference mean, same shape.
        std: The shared std (broadcastable: ``[]`` or ``[B, 1, ...]``).

    Returns:
        float32 ``[B]``.
    """
    if mean.shape != mean_ref.shape:
        raise ValueError(
            f"`mean` and `mean_ref` must have the same shape, got {tuple(mean.shape)} and {tuple(mean_ref.shape)}"
        )
    std = torch.as_tensor(std, dtype=torch.float32, device=mean.device)
    kl = (mean.to(torch.float32) - mean_ref.to(torch.float32)) ** 2 / (2 * std**2)
    return kl.mean(dim=tuple(range(1, kl.ndim)))
