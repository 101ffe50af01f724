"""Group-relative advantages of rewards shaped ``[B, G]``: ``B`` groups (one per puzzle drawn), ``G`` rollouts each.

``A = (r - mean_group) / (scale + eps)``, optionally per reward component before weighting. The scale is TRL's
``scale_rewards``: the group's std (``group``, GRPO), the std over the whole batch (``batch``) or 1 (``none``,
Dr. GRPO). With a dense reward, a group whose rollouts differ only slightly (all solved, say) gets unit-size
advantages under ``group`` scaling, so the update follows those small differences as hard as real ones; ``batch``
and ``none`` keep them small.

A group is a row: all ``G`` rollouts of a draw are made on one rank, so a group never spans ranks, and a puzzle drawn
twice is two groups, each normalised by its own rollouts (``GRPOModule`` gives the two draws different noise).
Only the batch-wide quantities (the ``batch`` scale, the tied fraction) involve every rank: ``gather_groups``
all-gathers the rows first, so one process and several compute the same advantages.
"""

from __future__ import annotations

import torch

SCALES = ("group", "batch", "none")
"""How advantages are scaled (TRL's ``GRPOConfig.scale_rewards``)."""


def group_advantages(
    rewards: torch.Tensor,
    components: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    eps: float = 1e-8,
    clip: float | None = None,
    scale: str = "group",
) -> torch.Tensor:
    """Advantages ``[B, G]`` of rewards ``[B, G]``.

    Args:
        rewards: Total reward of each rollout, one row per group.
        components: Optional ``[B, G, K]`` reward components: then each is normalised within its group first and the
            advantage is ``sum_k weights[k] * A_k`` (per-reward normalisation, robust to components of different
            scales); ``rewards`` is ignored.
        weights: ``[K]`` component weights (required with ``components``).
        eps: Added to the scale.
        clip: If set, advantages are clipped to ``[-clip, clip]``.
        scale: Divide by the group's std (``group``), the batch's (``batch``) or nothing (``none``).
    """
    if scale not in SCALES:
        raise ValueError(f"advantage scale must be one of {SCALES}, got {scale!r}")
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be shaped [groups, group size], got {tuple(rewards.shape)}")

    def normalised(values: torch.Tensor) -> torch.Tensor:  # [B, G, ...]
        centred = values - values.mean(dim=1, keepdim=True)
        if scale == "none":
            return centred
        if scale == "batch":
            std = values.flatten(0, 1).std(dim=0, unbiased=False)
        else:
            std = values.std(dim=1, unbiased=False, keepdim=True)
        return centred / (std + eps)

    if components is not None:
        if weights is None or components.shape[:2] != rewards.shape or weights.shape != components.shape[2:]:
            raise ValueError("per-reward normalisation needs [groups, group size, K] components and one weight per "
                             "component")
        adv = (normalised(components.double()) * weights.double()).sum(dim=2)
    else:
        adv = normalised(rewards.double())
    if clip is not None:
        adv = adv.clamp(-clip, clip)
    return adv.float()


def gather_groups(values: torch.Tensor) -> tuple[torch.Tensor, slice]:
    """All-gather the groups ``values`` ``[b, ...]`` of every rank of the default process group.

    Returns the rows of all ranks ``[W * b, ...]`` (rank order) and the slice of this rank's own. Every rank must
    contribute the same ``b``. Without an initialised process group it returns the input.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return values, slice(0, values.shape[0])
    world, rank, n = dist.get_world_size(), dist.get_rank(), values.shape[0]
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    parts = [torch.empty_like(values, device=device) for _ in range(world)]
    dist.all_gather(parts, values.to(device).contiguous())
    return torch.cat(parts).cpu(), slice(rank * n, (rank + 1) * n)


def tied_group_fraction(rewards: torch.Tensor) -> float:
    """Fraction of groups (rows of ``[B, G]`` rewards) whose rewards are all equal: they carry no learning signal."""
    if rewards.numel() == 0:
        return 0.0
    return float((rewards == rewards[:, :1]).all(dim=1).double().mean())
