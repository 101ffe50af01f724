"""Single-process pieces of multi-process training (the launches themselves are in test_distributed.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from videoreason.data.datamodule import TaskMixingSampler
from videoreason.models.lora import LoraSpec
from videoreason.parallel import data_parallel_mesh, gather_state, mixed_precision_policy

CONFIGS = Path(__file__).resolve().parents[1] / "videoreason" / "configs"


def test_ranks_together_draw_what_one_process_draws_per_global_batch():
    rows = {"maze": list(range(10)), "sokoban": list(range(10, 17))}
    weights = {"maze": 1.0, "sokoban": 2.0}
    one = list(TaskMixingSampler(rows, weights, num_samples=12, seed=3))
    ranks = [list(TaskMixingSampler(rows, weights, num_samples=12, seed=3, num_replicas=3, rank=r))
             for r in range(3)]
    assert [len(r) for r in ranks] == [4, 4, 4]
    for step in range(2):  # per-rank batch 2 = global batch 6
        together = sorted(i for r in ranks for i in r[2 * step: 2 * step + 2])
        assert together == sorted(one[6 * step: 6 * step + 6])


def test_uneven_draws_are_padded_so_every_rank_gets_as_many_batches():
    ranks = [TaskMixingSampler({"maze": list(range(5))}, {"maze": 1.0}, num_samples=5, num_replicas=2, rank=r)
             for r in range(2)]
    assert [len(r) for r in ranks] == [3, 3] and [len(list(r)) for r in ranks] == [3, 3]
    with pytest.raises(ValueError, match="`rank`"):
        TaskMixingSampler({"maze": [0]}, {"maze": 1.0}, num_samples=1, num_replicas=2, rank=2)


def test_mixed_precision_follows_the_trainer_precision():
    bf16 = mixed_precision_policy("bf16-mixed")
    assert (bf16.param_dtype, bf16.reduce_dtype) == (torch.bfloat16, torch.float32)
    assert mixed_precision_policy("16-mixed").param_dtype == torch.float16
    assert mixed_precision_policy("32-true") is None and mixed_precision_policy(None) is None


class FakeMesh:
    def __init__(self, sizes: dict[str, int]) -> None:
        self.mesh_dim_names, self.sizes = tuple(sizes), sizes

    def __getitem__(self, name: str) -> FakeMesh:
        return FakeMesh({name: self.sizes[name]})

    def size(self) -> int:
        return next(iter(self.sizes.values()))


def test_sharding_mesh_is_the_data_parallel_dimension_and_tensor_parallel_is_refused():
    assert data_parallel_mesh(FakeMesh({"data_parallel": 4, "tensor_parallel": 1})).mesh_dim_names == (
        "data_parallel",)
    hsdp = FakeMesh({"replicate": 2, "shard": 8})
    assert data_parallel_mesh(hsdp) is hsdp
    with pytest.raises(ValueError, match="tensor parallelism"):
        data_parallel_mesh(FakeMesh({"data_parallel": 1, "tensor_parallel": 2}))


def test_configure_model_without_a_mesh_leaves_the_model_alone():
    from videoreason.phases.sft import SFTModule

    module = SFTModule(transformer="tiny", lora=LoraSpec(rank=2))
    before = {n: type(p) for n, p in module.named_parameters()}
    module.configure_model()
    assert {n: type(p) for n, p in module.named_parameters()} == before


def test_full_finetune_exported_from_gathered_state_loads_back(tmp_path):
    """The path a sharded full fine-tune takes: gathered tensors -> diffusers folder -> load_module."""
    from videoreason.models.export import export_module, load_module
    from videoreason.phases.sft import SFTModule

    module = SFTModule(transformer="tiny")
    state = gather_state(module.transformer, trainable_only=False)
    assert state.keys() == module.transformer.state_dict().keys()
    state["proj_out.weight"] = state["proj_out.weight"] + 1.0  # what training would have changed
    loaded = load_module(export_module(module, tmp_path / "adapter", state))
    torch.testing.assert_close(loaded.transformer.proj_out.weight, state["proj_out.weight"])
    only_lora = gather_state(SFTModule(transformer="tiny", lora=LoraSpec(rank=2)).transformer, trainable_only=True)
    assert only_lora and all("lora_" in name for name in only_lora)


def test_ranks_other_than_zero_get_no_logger(tmp_path, monkeypatch, maze_dataset):
    """Loggers write from rank 0; the others must not open (and race to create) the MLflow store."""
    from videoreason.trainer_cli import VideoReasonCLI

    args = ["--config", str(CONFIGS / "maze" / "sft_tiny.yaml"), "--trainer.default_root_dir", str(tmp_path / "run"),
            "--data.init_args.root", str(maze_dataset), "--model.init_args.transformer", "tiny"]
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RANK", "1")
    assert VideoReasonCLI(args, run=False).trainer.loggers == []
    assert not (tmp_path / "run" / "mlflow.db").exists()
    monkeypatch.setenv("RANK", "0")
    from lightning.pytorch.loggers import MLFlowLogger

    assert isinstance(VideoReasonCLI(args, run=False).trainer.logger, MLFlowLogger)


@pytest.mark.parametrize("name", sorted(p.name for p in (CONFIGS / "trainer").glob("*.yaml")))
def test_trainer_configs_combine_with_a_run_config(name, tmp_path, maze_dataset):
    from videoreason.trainer_cli import VideoReasonCLI

    trainer = yaml.safe_load((CONFIGS / "trainer" / name).read_text())["trainer"]
    cli = VideoReasonCLI(["--config", str(CONFIGS / "maze" / "sft_tiny.yaml"),
                          "--config", str(CONFIGS / "trainer" / name),
                          "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.num_nodes", "1",
                          "--trainer.precision", "32-true", "--trainer.logger", "false",
                          "--trainer.default_root_dir", str(tmp_path), "--data.init_args.root", str(maze_dataset),
                          "--model.init_args.transformer", "tiny"], run=False)
    strategy = trainer["strategy"]["class_path"].rsplit(".", 1)[1]
    assert type(cli.trainer.strategy).__name__ == strategy
    if strategy == "FSDP2Strategy":
        assert cli.trainer.strategy.hybrid == trainer["strategy"]["init_args"].get("hybrid", False)


def test_ranks_above_zero_build_a_weightless_skeleton_under_rank_zero_init(monkeypatch, tiny_wan_dir):
    """What lets FSDP2 ranks > 0 skip the full copy: parameters on the meta device (nothing read or allocated),
    buffers real (the rope tables are in no state dict), and rank 0 unchanged."""
    from videoreason.models.lora import LoraSpec
    from videoreason.parallel import has_meta_parameters, rank_zero_init
    from videoreason.phases.sft import SFTModule

    with rank_zero_init():
        monkeypatch.setenv("RANK", "0")
        zero = SFTModule(pretrained=str(tiny_wan_dir), lora=LoraSpec(rank=2))
        monkeypatch.setenv("RANK", "1")
        one = SFTModule(pretrained=str(tiny_wan_dir), lora=LoraSpec(rank=2))
    assert zero.weights_from_rank_zero and one.weights_from_rank_zero
    assert not has_meta_parameters(zero) and has_meta_parameters(one)
    assert all(not b.is_meta for b in one.buffers())
    assert not has_meta_parameters(SFTModule(pretrained=str(tiny_wan_dir)))  # outside the block: as before
    with pytest.raises(ValueError, match="only FSDP2Strategy"):
        one.configure_model()  # no device mesh: nothing could fill it


def test_load_module_on_ranks_above_zero_reads_no_weights(monkeypatch, tmp_path):
    """GRPO's start under rank-0 loading: rank 0 loads it, the others only build its skeleton."""
    from videoreason.models.export import export_module, load_module
    from videoreason.models.lora import LoraSpec
    from videoreason.parallel import has_meta_parameters, rank_zero_init
    from videoreason.phases.sft import SFTModule

    out = export_module(SFTModule(transformer="tiny", lora=LoraSpec(rank=2)), tmp_path / "adapter")
    with rank_zero_init():
        monkeypatch.setenv("RANK", "1")
        assert has_meta_parameters(load_module(out))
        monkeypatch.setenv("RANK", "0")
        assert not has_meta_parameters(load_module(out))
