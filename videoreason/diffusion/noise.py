"""Reproducible noise: one seed (or generator) per sample, so a sample's video does not depend on its batch, its
chunk or the rank that rolls it out."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

Generators = torch.Generator | Sequence[torch.Generator]
"""One RNG for a whole batch, or one per sample."""


def seeded_noise(seeds: Sequence[int], shape: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard normal noise ``[len(seeds), *shape]`` in float32; sample ``i`` is drawn from ``seeds[i]`` alone.

    Drawn on the CPU (identical across devices), then moved to ``device``.
    """
    if not seeds:
        raise ValueError("`seeds` must name at least one sample")
    return standard_normal([torch.Generator().manual_seed(int(s)) for s in seeds], shape, device)


def standard_normal(generator: Generators | None, shape: Sequence[int], device: torch.device | str) -> torch.Tensor:
    """Float32 standard normal noise on ``device``.

    Args:
        generator: ``None`` (global RNG), one generator for the whole tensor ``shape``, or a sequence of generators,
            one per sample: then the result is ``[len(generator), *shape]`` and sample ``i`` comes from
            ``generator[i]`` alone (each advances by its own draw).
        shape: Full shape with one generator or none, per-sample shape with a sequence.
        device: Device of the result (a single generator draws on its own device, a sequence on the CPU).
    """
    if generator is None or isinstance(generator, torch.Generator):
        where = generator.device if generator is not None else device
        return torch.randn(tuple(shape), generator=generator, device=where, dtype=torch.float32).to(device)
    draws = [torch.randn(tuple(shape), generator=g, device=g.device, dtype=torch.float32).to(device)
             for g in generator]
    if not draws:
        raise ValueError("an empty sequence of generators draws no samples")
    return torch.stack(draws)


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from any printable parts (ids, steps, seeds), the same in every process and Python run
    (``hash()`` of a string is salted per process)."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


def sample_generators(*parts: object, keys: Sequence[object]) -> list[torch.Generator]:
    """One CPU generator per key, seeded by ``stable_seed(*parts, key)``."""
    return [torch.Generator().manual_seed(stable_seed(*parts, key)) for key in keys]
