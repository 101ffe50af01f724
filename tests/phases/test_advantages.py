"""Group-relative advantages: zero mean per group, per-reward normalisation, groups gathered across ranks."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from videoreason.phases.advantages import (
    gather_group_rewards,
    group_advantages,
    group_keys,
    tied_group_fraction,
)


def test_advantages_are_zero_mean_unit_std_per_group():
    rewards = torch.tensor([1.0, 0.0, 0.5, 3.0, 3.0, 5.0, 2.0])
    keys = group_keys(["a", "a", "a", "b", "b", "b", "c"])
    adv = group_advantages(rewards, keys)
    for members in ([0, 1, 2], [3, 4, 5]):
        assert abs(float(adv[members].mean())) < 1e-6
        assert abs(float(adv[members].std(unbiased=False)) - 1) < 1e-4
    assert float(adv[6]) == 0.0  # a group of one carries no signal
    assert tied_group_fraction(torch.tensor([1.0, 1.0, 0.0, 2.0]), group_keys(["a", "a", "b", "b"])) == 0.5
    assert float(group_advantages(rewards * 10, keys, clip=0.5).abs().max()) == 0.5


def test_batch_and_no_scaling_keep_a_nearly_tied_group_small():
    rewards = torch.tensor([2.0, 2.0, 2.0, 1.99, 0.0, 2.0, 0.5, 1.5])  # group a: all solved, one a hair worse
    keys = group_keys(["a"] * 4 + ["b"] * 4)
    group, batch, none = (group_advantages(rewards, keys, scale=s) for s in ("group", "batch", "none"))
    assert float(group[:4].abs().max()) > 1  # GRPO's group std blows the 0.01 difference up to a full unit
    assert float(batch[:4].abs().max()) < 0.02 < float(batch[4:].abs().max())
    assert torch.allclose(none, rewards - torch.tensor([1.9975] * 4 + [1.0] * 4), atol=1e-6)
    with pytest.raises(ValueError, match="one of"):
        group_advantages(rewards, keys, scale="batchwise")


def test_per_reward_normalisation_balances_scales():
    keys = group_keys(["g"] * 4)
    components = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 100.0], [1.0, 100.0]])
    weights = torch.tensor([1.0, 1.0])
    adv = group_advantages(components @ weights, keys, components, weights)
    # each component contributes +-1 after its own normalisation, whatever its scale
    torch.testing.assert_close(adv, torch.tensor([-2.0, 0.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="weight"):
        group_advantages(components.sum(1), keys, components, torch.tensor([1.0]))


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        # every group is split over both ranks: each holds two of its four rollouts
        rewards = torch.tensor([0.0, 1.0, 4.0, 4.0]) if rank == 0 else torch.tensor([2.0, 3.0, 5.0, 9.0])
        keys = group_keys(["p", "p", "q", "q"])
        values, all_keys, mine = gather_group_rewards(rewards, keys)
        torch.save(group_advantages(values, all_keys)[mine], f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
def test_groups_spanning_ranks_are_normalised_with_global_statistics(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_worker, args=(2, port, str(tmp_path)), nprocs=2, start_method="spawn")
    got = {r: torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)}
    everything = torch.tensor([0.0, 1.0, 4.0, 4.0, 2.0, 3.0, 5.0, 9.0])
    want = group_advantages(everything, group_keys(["p", "p", "q", "q", "p", "p", "q", "q"]))
    torch.testing.assert_close(torch.cat([got[0], got[1]]), want)
    # a rank alone would have seen different statistics
    assert not torch.allclose(got[0], group_advantages(everything[:4], group_keys(["p", "p", "q", "q"])))
