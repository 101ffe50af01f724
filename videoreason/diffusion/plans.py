"""Step plans: which of the ``N`` denoising steps are ``"sde"`` (noise injected, log-prob stored, trained) and which
are ``"ode"`` (deterministic, no grad). The last step is never ``"sde"``. This module owns plans: their builders,
their check (``validate_plan``, used by the sampler and the step-plan callbacks) and the GRPO default
(``default_plan``).

- ``early_plan``: Early-Step Focus, the first ``K`` steps (where the solution's structure is decided).
- ``all_sde_plan``: Flow-GRPO, every step but the last.
- ``window_plan``: MixGRPO, a contiguous window of ``size`` steps starting at ``start``.
- ``random_plan``: DanceGRPO, ``K`` steps drawn at random (without replacement) among the first ``N - 1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STEP_KINDS = ("ode", "sde")


def validate_plan(plan: Sequence[str] | None, num_steps: int) -> list[str]:
    """Check a per-step plan and return it as a list (``None`` means all ``"ode"``).

    Args:
        plan: One entry per denoising step: ``"ode"`` (deterministic Euler step, nothing stored) or ``"sde"``
            (stochastic step with a log-probability, stored for training). The last step is never ``"sde"``: it lands
            on the terminal sigma, the clean sample, where injected noise would stay in the output.
        num_steps: Steps of the sigma schedule (``len(sigmas) - 1``).

    Raises:
        ValueError: Wrong length, an entry that is not a step kind, or an ``"sde"`` last step (named with its index).
    """
    if plan is None:
        return ["ode"] * num_steps
    if isinstance(plan, str):
        raise ValueError(f"`plan` must be a sequence of step kinds, one per step, not the string {plan!r}")
    plan = list(plan)
    if len(plan) != num_steps:
        raise ValueError(f"`plan` has {len(plan)} entries but the sigmas define {num_steps} steps")
    for i, kind in enumerate(plan):
        if kind not in STEP_KINDS:
            raise ValueError(f"`plan[{i}]` is {kind!r}; supported step kinds: {list(STEP_KINDS)}")
    if plan and plan[-1] == "sde":
        raise ValueError(
            f"`plan[{len(plan) - 1}]` is 'sde' but the last step must be 'ode' (it lands on the clean sample)"
        )
    return plan



def _check_num_steps(num_steps: int) -> None:
    if num_steps < 1:
        raise ValueError(f"`num_steps` must be >= 1, got {num_steps}")


def _check_num_sde_steps(num_sde_steps: int, num_steps: int) -> None:
    if not 0 <= num_sde_steps <= num_steps - 1:
        raise ValueError(
            f"`num_sde_steps` must be in [0, {num_steps - 1}] for {num_steps} steps (the last step is never SDE), "
            f"got {num_sde_steps}"
        )


def early_plan(num_steps: int, num_sde_steps: int) -> list[str]:
    """The first ``num_sde_steps`` steps ``"sde"``, the rest ``"ode"`` (Early-Step Focus).

    Args:
        num_steps: Denoising steps ``N >= 1``.
        num_sde_steps: ``K`` in ``[0, N - 1]``.
    """
    _check_num_steps(num_steps)
    _check_num_sde_steps(num_sde_steps, num_steps)
    return ["sde"] * num_sde_steps + ["ode"] * (num_steps - num_sde_steps)


def all_sde_plan(num_steps: int) -> list[str]:
    """Every step ``"sde"`` but the last (Flow-GRPO).

    Args:
        num_steps: Denoising steps ``N >= 1``.
    """
    _check_num_steps(num_steps)
    return early_plan(num_steps, num_steps - 1)


def window_plan(num_steps: int, size: int, start: int) -> list[str]:
    """Steps ``start .. start + size - 1`` ``"sde"``, the rest ``"ode"`` (MixGRPO's sliding window).

    Args:
        num_steps: Denoising steps ``N >= 1``.
        size: Window length ``>= 1``.
        start: First step of the window, ``0 <= start <= N - 1 - size`` (the window never covers the last step).
    """
    _check_num_steps(num_steps)
    if not 1 <= size <= num_steps - 1:
        raise ValueError(f"`size` must be in [1, {num_steps - 1}] for {num_steps} steps, got {size}")
    if not 0 <= start <= num_steps - 1 - size:
        raise ValueError(
            f"`start` must be in [0, {num_steps - 1 - size}] for a window of {size} in {num_steps} steps, got {start}"
        )
    return ["ode"] * start + ["sde"] * size + ["ode"] * (num_steps - start - size)


def random_plan(
    num_steps: int, num_sde_steps: int, rng: np.random.Generator | int | Sequence[int] | None = None
) -> list[str]:
    """``num_sde_steps`` steps drawn uniformly without replacement among the first ``N - 1`` (DanceGRPO).

    Args:
        num_steps: Denoising steps ``N >= 1``.
        num_sde_steps: ``K`` in ``[0, N - 1]``.
        rng: A numpy ``Generator``, or a seed (an int or a sequence of ints, e.g. ``(seed, global_step)``) for
            ``numpy.random.default_rng``; ``None`` draws fresh entropy.
    """
    _check_num_steps(num_steps)
    _check_num_sde_steps(num_sde_steps, num_steps)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    chosen = set(rng.choice(num_steps - 1, size=num_sde_steps, replace=False).tolist())
    return ["sde" if i in chosen else "ode" for i in range(num_steps)]


def default_plan(num_steps: int) -> list[str]:
    """The plan a GRPO module trains with when no step-plan callback sets one: Flow-GRPO's ``all_sde_plan``."""
    return all_sde_plan(num_steps)
