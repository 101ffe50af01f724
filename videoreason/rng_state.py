"""The global random generators of this process (python, numpy, torch CPU and CUDA) as a checkpoint entry.

Training draws its noise from generators keyed by (seed, step, puzzle) and needs none of this; the global generators
still feed anything that does not take a generator (LoRA dropout, a user's module). Each rank's state is kept, in
plain tensors and ints only, so checkpoints load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


def capture() -> dict[str, Any]:
    """This process's generator states."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore(state: dict[str, Any]) -> None:
    """Set this process's generators to a ``capture()``."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def capture_all_ranks() -> list[dict[str, Any]]:
    """Every rank's ``capture()``, indexed by global rank (a collective when distributed)."""
    mine = capture()
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [mine]
    states: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(states, mine)
    return states


def restore_rank(states: list[dict[str, Any]]) -> None:
    """Restore this rank's entry of ``capture_all_ranks()``; a run resumed on more ranks than it saved from reuses
    rank 0's states for the new ranks (their draws then repeat rank 0's, which only matters for dropout)."""
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    restore(states[rank] if rank < len(states) else states[0])
