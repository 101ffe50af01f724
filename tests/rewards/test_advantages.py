"""Group-relative advantages of ``[B, G]`` rewards: zero mean per group, per-reward normalisation, the batch scale
gathered across ranks."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from videoreason.rewards.advantages import gather_groups, group_advantages, tied_group_fraction


def test_advantages_are_zero_mean_unit_std_per_group():
    rewards = torch.tensor([[1.0, 0.0, 0.5], [3.0, 3.0, 5.0], [2.0, 2.0, 2.0]])
    adv = group_advantages(rewards)
    assert adv.shape == (3, 3)
    for group in adv[:2]:
        assert abs(float(group.mean())) < 1e-6
        assert abs(float(group.std(unbiased=False)) - 1) < 1e-4
    assert adv[2].abs().max() == 0.0  # a tied group carries no signal
    assert tied_group_fraction(torch.tensor([[1.0, 1.0], [0.0, 2.0]])) == 0.5
    assert float(group_advantages(rewards * 10, clip=0.5).abs().max()) == 0.5
    with pytest.raises(ValueError, match="groups, group size"):
        group_advantages(rewards.flatten())


def test_batch_and_no_scaling_keep_a_nearly_tied_group_small():
    rewards = torch.tensor([[2.0, 2.0, 2.0, 1.99], [0.0, 2.0, 0.5, 1.5]])  # group 0: all solved, one a hair worse
    group, batch, none = (group_advantages(rewards, scale=s) for s in ("group", "batch", "none"))
    assert float(group[0].abs().max()) > 1  # GRPO's group std blows the 0.01 difference up to a full unit
    assert float(batch[0].abs().max()) < 0.02 < float(batch[1].abs().max())
    assert torch.allclose(none, rewards - torch.tensor([[1.9975], [1.0]]), atol=1e-6)
    with pytest.raises(ValueError, match="one of"):
        group_advantages(rewards, scale="batchwise")


def test_per_reward_normalisation_balances_scales():
    components = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 100.0], [1.0, 100.0]]])  # one group of 4
    weights = torch.tensor([1.0, 1.0])
    adv = group_advantages(components @ weights, components, weights)
    # each component contributes +-1 after its own normalisation, whatever its scale
    torch.testing.assert_close(adv, torch.tensor([[-2.0, 0.0, 0.0, 2.0]]))
    with pytest.raises(ValueError, match="weight"):
        group_advantages(components.sum(2), components, torch.tensor([1.0]))


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        # two groups of two rollouts on each rank; the batch scale needs the other rank's rewards
        rewards = torch.tensor([[0.0, 1.0], [4.0, 4.0]]) if rank == 0 else torch.tensor([[2.0, 3.0], [5.0, 9.0]])
        everyone, mine = gather_groups(rewards)
        torch.save({"batch": group_advantages(everyone, scale="batch")[mine],
                    "group": group_advantages(everyone)[mine]}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
def test_the_batch_scale_uses_every_ranks_groups(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_worker, args=(2, port, str(tmp_path)), nprocs=2, start_method="spawn")
    got = {r: torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)}
    everything = torch.tensor([[0.0, 1.0], [4.0, 4.0], [2.0, 3.0], [5.0, 9.0]])
    for scale in ("batch", "group"):
        torch.testing.assert_close(torch.cat([got[0][scale], got[1][scale]]), group_advantages(everything, scale=scale))
    # a rank alone would have seen another batch std; group statistics are each rank's own
    assert not torch.allclose(got[0]["batch"], group_advantages(everything[:2], scale="batch"))
    torch.testing.assert_close(got[0]["group"], group_advantages(everything[:2]))
