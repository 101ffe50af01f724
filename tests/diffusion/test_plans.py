"""Step plans: counts, positions, the last step never SDE, errors that name the argument, seeded randomness."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from videoreason.diffusion.plans import all_sde_plan, early_plan, random_plan, validate_plan, window_plan


def sde_steps(plan: list[str]) -> list[int]:
    return [i for i, kind in enumerate(plan) if kind == "sde"]


def test_early_plan():
    plan = early_plan(20, 10)
    assert len(plan) == 20 and sde_steps(plan) == list(range(10))
    assert early_plan(5, 0) == ["ode"] * 5
    assert sde_steps(early_plan(5, 4)) == [0, 1, 2, 3]
    validate_plan(early_plan(5, 4), 5)
    with pytest.raises(ValueError, match=r"`num_sde_steps` must be in \[0, 4\].*got 5"):
        early_plan(5, 5)
    with pytest.raises(ValueError, match="`num_sde_steps`"):
        early_plan(5, -1)
    with pytest.raises(ValueError, match="`num_steps`"):
        early_plan(0, 0)


def test_all_sde_plan():
    assert all_sde_plan(4) == ["sde", "sde", "sde", "ode"]
    assert all_sde_plan(1) == ["ode"]
    with pytest.raises(ValueError, match="`num_steps`"):
        all_sde_plan(0)


def test_window_plan():
    plan = window_plan(10, 3, 4)
    assert len(plan) == 10 and sde_steps(plan) == [4, 5, 6]
    assert sde_steps(window_plan(10, 3, 6)) == [6, 7, 8]  # the last allowed start
    with pytest.raises(ValueError, match=r"`start` must be in \[0, 6\]"):
        window_plan(10, 3, 7)
    with pytest.raises(ValueError, match="`start`"):
        window_plan(10, 3, -1)
    with pytest.raises(ValueError, match="`size`"):
        window_plan(10, 10, 0)
    with pytest.raises(ValueError, match="`size`"):
        window_plan(10, 0, 0)


def test_random_plan():
    plans = [random_plan(8, 3, rng=(0, step)) for step in range(400)]
    for plan in plans:
        assert len(plan) == 8 and len(sde_steps(plan)) == 3 and plan[-1] == "ode"
        validate_plan(plan, 8)
    # seeded: the same seed gives the same plan, the draws vary and cover every allowed step about evenly
    assert random_plan(8, 3, rng=(0, 5)) == plans[5]
    assert random_plan(8, 3, rng=np.random.default_rng((0, 5))) == plans[5]
    assert len({tuple(p) for p in plans}) > 20
    counts = Counter(i for p in plans for i in sde_steps(p))
    assert set(counts) == set(range(7))
    assert all(abs(c - 400 * 3 / 7) < 60 for c in counts.values())
    assert random_plan(8, 7, rng=1) == all_sde_plan(8)
    with pytest.raises(ValueError, match="`num_sde_steps`"):
        random_plan(8, 8, rng=0)
