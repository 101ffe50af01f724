"""Reproducible initial noise: one seed per sample, so a sample's video does not depend on its batch."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def seeded_noise(seeds: Sequence[int], shape: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard normal noise ``[len(seeds), *shape]`` in float32; sample ``i`` is drawn from ``seeds[i]`` alone.

    Drawn on the CPU (identical across devices), then moved to ``device``.
    """
    if not seeds:
        raise ValueError("`seeds` must name at least one sample")
    draws = [torch.randn(*shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    return torch.stack(draws).to(device)
