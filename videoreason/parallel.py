"""FSDP2 through Lightning: the strategy, how a phase module shards its transformer, and gathering the trained weights.

``FSDP2Strategy`` is Lightning's ``ModelParallelStrategy`` with every process in one data-parallel (sharding)
dimension, whatever the number of nodes. Under it Lightning calls the phase module's ``configure_model``, which calls
``shard_transformer``: ``fully_shard`` per Wan block, then the root, with a bf16-params / fp32-reduce mixed precision
policy when the trainer's precision is bf16. Checkpoints are then sharded folders (one file per rank + Lightning's
``meta.pt``) that resume with the same number of processes; ``gather_state`` assembles full tensors for the
single-file export. On the CPU everything runs with gloo, which is how the tests prove it.

Rank-0 loading: under ``rank_zero_init()`` (``videoreason fit`` turns it on for ``FSDP2Strategy``) a phase module
built on a rank > 0 gets a weightless transformer (parameters on the meta device); only rank 0 reads or builds the
weights. ``configure_model`` shards the skeletons and ``load_from_rank_zero`` streams rank 0's tensors into every
rank's shards, so no rank but 0 ever holds a full copy.
"""

from __future__ import annotations

import contextvars
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.collectives.torch_collective import default_pg_timeout
from lightning.pytorch.strategies import ModelParallelStrategy

from videoreason.compat import launcher_rank, non_persistent_buffers, set_data_parallel_size, use_device_mesh

_RANK_ZERO_INIT = contextvars.ContextVar("videoreason_rank_zero_init", default=False)


@contextmanager
def rank_zero_init(enabled: bool = True) -> Iterator[None]:
    """Within the block, phase modules take their transformer weights from rank 0 (see the module docstring)."""
    token = _RANK_ZERO_INIT.set(enabled)
    try:
        yield
    finally:
        _RANK_ZERO_INIT.reset(token)


def rank_zero_init_enabled() -> bool:
    """Whether modules built now take their weights from rank 0 (the same answer on every rank)."""
    return _RANK_ZERO_INIT.get()


def builds_skeleton() -> bool:
    """Whether this process builds modules without weights now: a rank > 0 under ``rank_zero_init``."""
    return rank_zero_init_enabled() and launch_rank() > 0


def launch_rank() -> int:
    """This process's global rank as the launcher (torchrun, SLURM, Lightning's own) set it in the environment."""
    return launcher_rank()


def has_meta_parameters(module: torch.nn.Module) -> bool:
    """Whether any parameter of ``module`` is on the meta device (a skeleton waiting for its weights)."""
    return any(p.is_meta for p in module.parameters())


def load_from_rank_zero(module: torch.nn.Module, full_state: dict[str, torch.Tensor] | None,
                        device: torch.device) -> None:
    """Fill a sharded module (``shard_transformer`` of a skeleton on ranks > 0, of the real model on rank 0) with
    rank 0's full tensors, broadcast one at a time: each rank keeps only its shards. A collective.

    Args:
        module: The sharded module; meta parameters are allocated on ``device`` first.
        full_state: Rank 0: the module's full state dict taken before sharding; other ranks: ``None``.
        device: Where the shards live.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    if has_meta_parameters(module):
        # to_empty also wipes buffers, which the skeleton built for real (the rope tables are in no state dict)
        kept = {name: b for name, b in module.named_buffers() if not b.is_meta}
        module.to_empty(device=device)
        for name, buffer in kept.items():
            owner_name, _, leaf = name.rpartition(".")
            owner = module.get_submodule(owner_name)
            owner.register_buffer(leaf, buffer.to(device), persistent=leaf not in non_persistent_buffers(owner))
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    set_model_state_dict(module, full_state or {}, options=options)


def local_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a ``DTensor`` (``to_local()``); any other tensor as it is."""
    from torch.distributed.tensor import DTensor

    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


def on_any_rank(flags: torch.Tensor, world_size: int) -> torch.Tensor:
    """``flags`` (a float tensor of 0/1) OR-ed over the ranks: one all-reduce when there are several, none when one.
    Every rank must call it."""
    if world_size > 1:
        import torch.distributed as dist

        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return flags


class FSDP2Strategy(ModelParallelStrategy):
    """``ModelParallelStrategy`` for pure FSDP2 data parallelism: one mesh dimension spanning all ranks.

    ``ModelParallelStrategy``'s defaults split the mesh into nodes x devices for 2-D (FSDP x tensor) parallelism;
    here the data-parallel size is always ``num_nodes * devices`` and the tensor-parallel size 1, so the same config
    runs on 1 GPU, 8 GPUs or 4 nodes.

    With ``hybrid`` (HSDP) the mesh is ``nodes x devices``: weights are sharded within a node and replicated across
    nodes, so the per-block all-gathers stay on the fast intra-node links and only gradients cross nodes.

    Args:
        hybrid: Shard within each node, replicate across nodes (multi-node runs); ``False`` shards over all ranks.
        save_distributed_checkpoint: Each rank writes its shard (a checkpoint folder); ``False`` gathers full
            weights and optimizer state on rank 0 into one file.
        process_group_backend: ``nccl`` / ``gloo`` (default: by device).
        timeout: Collective timeout.
    """

    def __init__(
        self,
        hybrid: bool = False,
        save_distributed_checkpoint: bool = True,
        process_group_backend: str | None = None,
        timeout: timedelta | None = default_pg_timeout,
    ) -> None:
        super().__init__(data_parallel_size="auto", tensor_parallel_size=1,
                         save_distributed_checkpoint=save_distributed_checkpoint,
                         process_group_backend=process_group_backend, timeout=timeout)
        self.hybrid = hybrid

    def setup_environment(self) -> None:
        set_data_parallel_size(self, self.num_nodes * self.num_processes)
        super().setup_environment()
        if self.hybrid:
            from torch.distributed.device_mesh import init_device_mesh

            use_device_mesh(self, init_device_mesh(self.root_device.type, (self.num_nodes, self.num_processes),
                                                   mesh_dim_names=HSDP_DIMS))

    def save_checkpoint(self, checkpoint: dict[str, Any], filepath: Any, storage_options: Any | None = None) -> None:
        """Write the checkpoint (a sharded folder, or one full file with ``save_distributed_checkpoint: false``) to a
        staging name next to ``filepath``, then swap it in with renames (rank 0, after every rank has written), so a
        crash during a save leaves the previous checkpoint whole."""
        from videoreason.atomic import replace_file, replace_folder

        final = Path(self.broadcast(str(filepath)))
        staging = final.with_name(f".{final.name}.partial")
        if self.global_rank == 0:
            shutil.rmtree(staging, ignore_errors=True)
            staging.unlink(missing_ok=True)
        self.barrier("checkpoint-staging")
        super().save_checkpoint(checkpoint, staging, storage_options)
        self.barrier("checkpoint-written")
        if self.global_rank == 0:
            (replace_folder if staging.is_dir() else replace_file)(staging, final)
        self.barrier("checkpoint-swapped")

    @property
    def distributed_sampler_kwargs(self) -> dict[str, Any]:
        return {"num_replicas": self.world_size, "rank": self.global_rank}  # every rank is data-parallel


HSDP_DIMS = ("replicate", "shard")
"""Mesh dimension names of hybrid sharding; ``fully_shard`` on a 2-D mesh replicates over the first."""


def data_parallel_mesh(mesh: Any) -> Any:
    """The mesh to ``fully_shard`` over: the 2-D HSDP mesh as it is, else its ``data_parallel`` dimension.

    Raises:
        ValueError: The mesh asks for tensor parallelism, which the Wan modules here do not implement.
    """
    names = tuple(mesh.mesh_dim_names or ())
    if names == HSDP_DIMS:
        return mesh
    if "tensor_parallel" in names and mesh["tensor_parallel"].size() > 1:
        raise ValueError("tensor parallelism is not supported: use `trainer.strategy: "
                         "videoreason.parallel.FSDP2Strategy` (every rank data-parallel)")
    return mesh["data_parallel"] if "data_parallel" in names else mesh


def mixed_precision_policy(precision: str | None) -> Any:
    """FSDP2 ``MixedPrecisionPolicy`` for a Lightning precision string: bf16 (or fp16) parameters for compute and
    fp32 gradient reduction for ``bf16-*`` (``16-*``); ``None`` (full precision) otherwise."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    precision = str(precision or "")
    if precision.startswith("bf16"):
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    if precision.startswith("16"):
        return MixedPrecisionPolicy(param_dtype=torch.float16, reduce_dtype=torch.float32)
    return None


def shard_transformer(transformer: torch.nn.Module, mesh: Any, precision: str | None = None) -> torch.nn.Module:
    """Apply ``fully_shard`` to each Wan transformer block, then to the root (in place; returns it).

    Per-block units are all-gathered one at a time in forward and backward, so peak memory holds one block's full
    weights; the root unit holds the patch/text/time embedders and the head. LoRA and frozen weights share units
    (FSDP2 allows mixed ``requires_grad``); only trainable ones get gradients and optimizer state. Activation
    checkpointing (``gradient_checkpointing``) recomputes each block, re-gathering its weights in backward.

    Args:
        transformer: A ``WanTransformer3DModel`` (``.blocks``), with or without peft LoRA layers.
        mesh: 1-D ``DeviceMesh`` to shard over, or a 2-D one to replicate over its first dimension (HSDP).
        precision: Lightning precision string, for ``mixed_precision_policy``.
    """
    from torch.distributed.fsdp import fully_shard

    blocks = getattr(transformer, "blocks", None)
    if blocks is None:
        raise TypeError(f"{type(transformer).__name__} has no `blocks`: expected a Wan transformer")
    policy = mixed_precision_policy(precision)
    kwargs = {"mesh": mesh, **({"mp_policy": policy} if policy is not None else {})}
    for block in blocks:
        fully_shard(block, **kwargs)
    fully_shard(transformer, **kwargs)
    return transformer


def is_sharded(module: torch.nn.Module) -> bool:
    """Whether any parameter of ``module`` is a DTensor (sharded by FSDP2)."""
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in module.parameters())


def gather_state(module: torch.nn.Module, trainable_only: bool) -> dict[str, torch.Tensor]:
    """Full, unsharded CPU tensors of ``module``'s trainable parameters (``trainable_only``) or its whole state dict.

    A collective when ``module`` is sharded: every rank must call it; every rank gets the result.
    """
    from torch.distributed.tensor import DTensor

    if trainable_only:
        items = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    else:
        items = list(module.state_dict().items())
    return {name: (t.full_tensor() if isinstance(t, DTensor) else t).detach().cpu() for name, t in items}
