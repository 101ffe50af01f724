"""Bootstrap intervals: contain the mean, shrink with more puzzles, detect a real paired gain, reject bad input."""

from __future__ import annotations

import numpy as np
import pytest

from videoreason.stats import bootstrap_mean, paired_difference


def test_interval_contains_mean_and_shrinks_with_more_puzzles():
    rng = np.random.default_rng(0)
    small = bootstrap_mean(rng.random(50) < 0.3)
    large = bootstrap_mean(rng.random(2000) < 0.3)
    for est in (small, large):
        assert est.low <= est.mean <= est.high
    assert large.high - large.low < (small.high - small.low) / 3
    assert large.low < 0.3 < large.high


def test_constant_values_have_a_point_interval_and_seed_fixes_the_draw():
    est = bootstrap_mean([1.0] * 20)
    assert (est.mean, est.low, est.high) == (1.0, 1.0, 1.0)
    values = np.arange(30) % 3 == 0
    assert bootstrap_mean(values, seed=1) == bootstrap_mean(values, seed=1)


def test_paired_gain_is_detected_and_overlap_reported():
    before = np.zeros(200)
    after = before.copy()
    after[:40] = 1.0  # 20 points more on the same puzzles
    gain = paired_difference(after, before).scaled(100)
    assert gain.mean == pytest.approx(20.0) and gain.low > 10
    assert not bootstrap_mean(after).overlaps(bootstrap_mean(before))
    assert str(gain).startswith("20.0 [")


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_mean([])
    with pytest.raises(ValueError, match="non-finite"):
        bootstrap_mean([0.0, float("nan")])
    with pytest.raises(ValueError, match="same puzzles"):
        paired_difference([1.0, 0.0], [1.0])
