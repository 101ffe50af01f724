"""Group-relative advantages: ``A = (r - mean_group) / (scale + eps)``, optionally per reward before weighting. The
scale is TRL's ``scale_rewards``: the group's std (``group``, GRPO), the std over the whole batch (``batch``) or 1
(``none``, Dr. GRPO). With a dense reward, a group whose rollouts differ only slightly (all solved, say) gets
unit-size advantages under ``group`` scaling, so the update follows those small differences as hard as real ones;
``batch`` and ``none`` keep them small.

Groups are identified by integer keys (one per puzzle), so a group may be spread over a batch, or over ranks:
``gather_group_rewards`` all-gathers rewards and keys first, so every rank normalises with the statistics of the
whole group and keeps its own slice.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import torch


def group_keys(ids: Sequence[str]) -> torch.Tensor:
    """Stable int64 group keys from puzzle ids (the same id on any rank gives the same key)."""
    return torch.tensor([zlib.crc32(str(i).encode()) for i in ids], dtype=torch.int64)


def group_stats(values: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample mean and (population) std of its group. ``values`` ``[N]`` or ``[N, K]``, ``keys`` ``[N]``."""
    if values.shape[0] != keys.shape[0]:
        raise ValueError(f"{values.shape[0]} values but {keys.shape[0]} group keys")
    _, inverse = torch.unique(keys, return_inverse=True)
    groups = int(inverse.max()) + 1 if len(inverse) else 0
    shape = (groups, *values.shape[1:])
    count = torch.zeros(groups, dtype=values.dtype).index_add_(0, inverse, torch.ones_like(inverse, dtype=values.dtype))
    count = count.view(-1, *([1] * (values.dim() - 1)))
    mean = torch.zeros(shape, dtype=values.dtype).index_add_(0, inverse, values) / count
    var = torch.zeros(shape, dtype=values.dtype).index_add_(0, inverse, (values - mean[inverse]) ** 2) / count
    return mean[inverse], var.sqrt()[inverse]


SCALES = ("group", "batch", "none")
"""How advantages are scaled (TRL's ``GRPOConfig.scale_rewards``)."""


def group_advantages(
    rewards: torch.Tensor,
    keys: torch.Tensor,
    components: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    eps: float = 1e-8,
    clip: float | None = None,
    scale: str = "group",
) -> torch.Tensor:
    """Advantages ``[N]`` of rewards ``[N]`` grouped by ``keys`` ``[N]``.

    Args:
        rewards: Total reward per sample.
        keys: Group of each sample (``group_keys``).
        components: Optional ``[N, K]`` reward components: then each is normalised within its group first and the
            advantage is ``sum_k weights[k] * A_k`` (per-reward normalisation, robust to components of different
            scales); ``rewards`` is ignored.
        weights: ``[K]`` component weights (required with ``components``).
        eps: Added to the scale.
        clip: If set, advantages are clipped to ``[-clip, clip]``.
        scale: Divide by the group's std (``group``), the batch's (``batch``) or nothing (``none``).
    """
    if scale not in SCALES:
        raise ValueError(f"advantage scale must be one of {SCALES}, got {scale!r}")

    def normalised(values: torch.Tensor) -> torch.Tensor:
        mean, std = group_stats(values, keys)
        if scale == "batch":
            std = values.std(dim=0, unbiased=False).expand_as(values)
        return (values - mean) / (std + eps) if scale != "none" else values - mean

    if components is not None:
        if weights is None or weights.shape != components.shape[1:]:
            raise ValueError("per-reward normalisation needs one weight per component")
        adv = (normalised(components.double()) * weights.double()).sum(dim=1)
    else:
        adv = normalised(rewards.double())
    if clip is not None:
        adv = adv.clamp(-clip, clip)
    return adv.float()


def gather_group_rewards(values: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, slice]:
    """All-gather ``values`` ``[n, ...]`` and ``keys`` ``[n]`` from every rank of the default process group.

    Returns the global values ``[W * n, ...]``, keys ``[W * n]`` (rank order) and the slice of this rank's own
    samples. Every rank must contribute the same ``n``. Without an initialised process group it returns the inputs.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return values, keys, slice(0, values.shape[0])
    world, rank, n = dist.get_world_size(), dist.get_rank(), values.shape[0]
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    gathered = []
    for tensor in (values, keys):
        parts = [torch.empty_like(tensor, device=device) for _ in range(world)]
        dist.all_gather(parts, tensor.to(device).contiguous())
        gathered.append(torch.cat(parts).cpu())
    return gathered[0], gathered[1], slice(rank * n, (rank + 1) * n)


def tied_group_fraction(rewards: torch.Tensor, keys: torch.Tensor) -> float:
    """Fraction of groups whose rewards are all equal (they carry no learning signal)."""
    _, std = group_stats(rewards.double(), keys)
    return len(keys[std == 0].unique()) / max(len(keys.unique()), 1)
