"""Confidence intervals over puzzles: percentile bootstrap of a mean, and of a paired difference of two models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A mean with its bootstrap confidence interval (same units as the values)."""

    mean: float
    low: float
    high: float

    def scaled(self, factor: float) -> Estimate:
        return Estimate(self.mean * factor, self.low * factor, self.high * factor)

    def overlaps(self, other: Estimate) -> bool:
        return self.low <= other.high and other.low <= self.high

    def __str__(self) -> str:
        return f"{self.mean:.1f} [{self.low:.1f}, {self.high:.1f}]"


def _check(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D sequence of per-puzzle values, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"`{name}` holds non-finite values")
    return array


def bootstrap_mean(
    values: Sequence[float] | np.ndarray, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> Estimate:
    """Mean of ``values`` and its percentile-bootstrap interval (puzzles resampled with replacement)."""
    if not 0 < confidence < 1 or resamples < 1:
        raise ValueError(f"need 0 < confidence < 1 and resamples >= 1, got {confidence} and {resamples}")
    array = _check(values, "values")
    rng = np.random.default_rng(seed)
    means = array[rng.integers(0, array.size, size=(resamples, array.size))].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return Estimate(float(array.mean()), float(low), float(high))


def paired_difference(
    after: Sequence[float] | np.ndarray, before: Sequence[float] | np.ndarray, confidence: float = 0.95,
    resamples: int = 2000, seed: int = 0,
) -> Estimate:
    """``mean(after - before)`` over the same puzzles, with its bootstrap interval (the sharper test of a gain)."""
    a, b = _check(after, "after"), _check(before, "before")
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same puzzles: {a.size} vs {b.size} values")
    return bootstrap_mean(a - b, confidence, resamples, seed)


def proportion_interval(rate: float, n: int, confidence: float = 0.95) -> Estimate:
    """A success rate over ``n`` puzzles with its Wilson score interval (for when only the rate was kept)."""
    if n < 1 or not 0 <= rate <= 1:
        raise ValueError(f"need n >= 1 and a rate in [0, 1], got n={n}, rate={rate}")
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Estimate(rate, max(0.0, centre - half), min(1.0, centre + half))
