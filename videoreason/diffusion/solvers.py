"""A fast deterministic ODE tail for rollouts: after the last SDE step, the rest of the trajectory only has to be
*good*, not differentiable, so it may run on a coarser grid with a higher-order solver.

- ``TailSpec(steps, solver)``: what ``FlowSampler.rollout(..., tail=...)`` runs after the plan's last SDE step.
- ``tail_sigmas``: the tail's grid, from the sigma after the last SDE step down to the terminal sigma (0):

  * ``"uniform"`` (default): evenly spaced in sigma. DPM-Solver++(2M) is robust on it. The shifted Wan schedule ends
    with a tiny last nonzero sigma (~0.009 for shift 3), a huge step in ``lambda`` where the solver's linear
    extrapolation of ``x0`` overshoots; on the exact-velocity Gaussian toy of ``tests/diffusion/test_fast_tail.py``
    the uniform grid is the better one in most settings we tried, and by far with more than ~6 steps, where the
    schedule-shaped grid can even be worse than Euler.
  * ``"schedule"``: the remaining original sigmas ``sigmas[start:]`` linearly interpolated at ``steps + 1`` points
    evenly spaced in step index (keeps the schedule's shift; with as many steps as are left it *is* the original
    grid, so an Euler tail then reproduces the plain rollout).
- ``euler_tail``: Euler steps (the sampler's ODE step) on any grid.
- ``dpmpp_2m_tail``: DPM-Solver++(2M) for flow matching. With ``x_sigma = alpha x0 + sigma eps``, ``alpha = 1 - sigma``,
  the data prediction ``x0 = x - sigma v`` and ``lambda = log(alpha / sigma)``, ``h = lambda_next - lambda``::

      x_next = (sigma_next / sigma) x + alpha_next (1 - e^{-h}) D
      D = x0                                        (first step, or after a sigma == 1 step)
      D = (1 + 1 / (2 r)) x0 - 1 / (2 r) x0_prev,   r = h_prev / h   (multistep, second order)

  ``e^{-h} = (alpha sigma_next) / (sigma alpha_next)`` is formed without logs, so ``sigma == 1`` is exact (the step is
  then the Euler step). A final step to ``sigma_next == 0`` returns ``x0`` (lower order at the end, as diffusers).

Both solvers take a ``velocity(x, sigma)`` callable and an optional ``project(x)`` applied after every step (the
sampler re-imposes the clean first frame there). They run under ``torch.no_grad`` and compute in float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from videoreason.diffusion.steps import ode_step

TAIL_SOLVERS = ("dpmpp_2m", "euler")
TAIL_GRIDS = ("uniform", "schedule")

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ProjectFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TailSpec:
    """The deterministic tail of a rollout.

    Args:
        steps: Solver steps from the sigma after the last SDE step down to the terminal sigma (``>= 1``).
        solver: ``"dpmpp_2m"`` (DPM-Solver++(2M)) or ``"euler"``.
        grid: ``"uniform"`` (evenly spaced sigmas) or ``"schedule"`` (the remaining schedule, interpolated); see
            ``tail_sigmas``.
    """

    steps: int
    solver: str = "dpmpp_2m"
    grid: str = "uniform"

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"`steps` must be >= 1, got {self.steps}")
        if self.solver not in TAIL_SOLVERS:
            raise ValueError(f"`solver` must be one of {list(TAIL_SOLVERS)}, got {self.solver!r}")
        if self.grid not in TAIL_GRIDS:
            raise ValueError(f"`grid` must be one of {list(TAIL_GRIDS)}, got {self.grid!r}")


def tail_sigmas(sigmas: torch.Tensor, start: int, steps: int, grid: str = "uniform") -> torch.Tensor:
    """The tail's grid from ``sigmas[start]`` to ``sigmas[-1]`` (see the module docstring).

    Args:
        sigmas: The rollout's decreasing sigmas ``[n + 1]``.
        start: Index of the sigma the tail starts from (``0 <= start < n``).
        steps: Tail steps ``>= 1``.
        grid: ``"uniform"`` (evenly spaced sigmas) or ``"schedule"`` (``sigmas[start:]`` interpolated at ``steps + 1``
            points evenly spaced in step index).

    Returns:
        float32 ``[steps + 1]``, strictly decreasing, from exactly ``sigmas[start]`` to exactly ``sigmas[-1]``.
    """
    n = len(sigmas) - 1
    if not 0 <= start < n:
        raise ValueError(f"`start` must be in [0, {n}), got {start}")
    if steps < 1:
        raise ValueError(f"`steps` must be >= 1, got {steps}")
    if grid not in TAIL_GRIDS:
        raise ValueError(f"`grid` must be one of {list(TAIL_GRIDS)}, got {grid!r}")
    values = sigmas.detach().to(torch.float64).cpu().numpy()
    if grid == "uniform":
        points = np.linspace(values[start], values[-1], steps + 1)
    else:
        points = np.interp(np.linspace(start, n, steps + 1), np.arange(n + 1), values)
    points[0], points[-1] = values[start], values[-1]  # exact end points
    return torch.from_numpy(points).to(torch.float32)


def _check_grid(sigmas: torch.Tensor) -> list[float]:
    values = [float(s) for s in sigmas]
    if len(values) < 2 or any(values[i + 1] >= values[i] for i in range(len(values) - 1)):
        raise ValueError(f"`sigmas` must be strictly decreasing with at least 2 values, got {values}")
    return values


@torch.no_grad()
def euler_tail(
    velocity: VelocityFn, x: torch.Tensor, sigmas: torch.Tensor, project: ProjectFn | None = None
) -> torch.Tensor:
    """Euler steps of the flow ODE along ``sigmas`` (``len(sigmas) - 1`` velocity calls).

    Args:
        velocity: ``velocity(x, sigma) -> v`` (``sigma`` a float32 0-d tensor).
        x: Latents at ``sigmas[0]``.
        sigmas: Strictly decreasing grid.
        project: Applied to the latents after every step (e.g. re-impose the first frame).

    Returns:
        The latents at ``sigmas[-1]``.
    """
    _check_grid(sigmas)
    sigmas = sigmas.to(torch.float32).cpu()
    for i in range(len(sigmas) - 1):
        x = ode_step(x, velocity(x, sigmas[i]), sigmas[i], sigmas[i + 1])
        if project is not None:
            x = project(x)
    return x


@torch.no_grad()
def dpmpp_2m_tail(
    velocity: VelocityFn, x: torch.Tensor, sigmas: torch.Tensor, project: ProjectFn | None = None
) -> torch.Tensor:
    """DPM-Solver++(2M) along ``sigmas`` for a flow-matching velocity model (``len(sigmas) - 1`` velocity calls).

    Args:
        velocity: ``velocity(x, sigma) -> v`` (``sigma`` a float32 0-d tensor).
        x: Latents at ``sigmas[0]``.
        sigmas: Strictly decreasing grid in ``[0, 1]``.
        project: Applied to the latents after every step (e.g. re-impose the first frame).

    Returns:
        The latents at ``sigmas[-1]``, in ``x``'s dtype.
    """
    values = _check_grid(sigmas)
    if values[0] > 1 or values[-1] < 0:
        raise ValueError(f"`sigmas` must lie in [0, 1], got {values}")
    grid = sigmas.to(torch.float32).cpu()
    dtype = x.dtype
    x0_prev: torch.Tensor | None = None
    h_prev: float | None = None
    for i in range(len(values) - 1):
        sigma, sigma_next = values[i], values[i + 1]
        xf = x.to(torch.float32)
        x0 = xf - sigma * velocity(x, grid[i]).to(torch.float32)
        if sigma_next == 0:
            xf, h = x0, None
        else:
            alpha, alpha_next = 1 - sigma, 1 - sigma_next
            exp_neg_h = alpha * sigma_next / (sigma * alpha_next)
            h = None if alpha == 0 else math.log(alpha_next / sigma_next) - math.log(alpha / sigma)
            d = x0
            if x0_prev is not None and h_prev is not None and h is not None:
                r = h_prev / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
            xf = (sigma_next / sigma) * xf + alpha_next * (1 - exp_neg_h) * d
        x = xf.to(dtype)
        if project is not None:
            x = project(x)
        x0_prev, h_prev = x0, h
    return x


def run_tail(
    spec: TailSpec, velocity: VelocityFn, x: torch.Tensor, sigmas: torch.Tensor, project: ProjectFn | None = None
) -> torch.Tensor:
    """Run ``spec.solver`` along ``sigmas`` (already the tail's grid, see ``tail_sigmas``)."""
    solver = dpmpp_2m_tail if spec.solver == "dpmpp_2m" else euler_tail
    return solver(velocity, x, sigmas, project)
