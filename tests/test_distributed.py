"""Multi-process training on CPU (gloo), launched the way users launch it: ``torchrun -m videoreason fit``.

Proves that FSDP2 (``FSDP2Strategy``) and DDP synchronise gradients (N processes end where one process with an
N times larger batch ends), that sharded checkpoints resume, and that a 2-node launch completes a GRPO step.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

pytestmark = pytest.mark.distributed

FSDP2 = {"class_path": "videoreason.parallel.FSDP2Strategy"}
DDP = {"class_path": "lightning.pytorch.strategies.DDPStrategy"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """8 training mazes at 32x32x5 (an epoch is 2 steps at a global batch of 4)."""
    from videoreason.data.generate import generate_dataset
    from videoreason.tasks.render import RenderSpec

    root = tmp_path_factory.mktemp("dist") / "data"
    generate_dataset("maze", root, 8, split="train", difficulty="easy", workers=1, progress=False,
                     spec=RenderSpec(height=32, width=32, num_frames=5))
    return root


def write_config(folder: Path, phase: str, data: Path, *, devices: int, batch_size: int, steps: int,
                 strategy: dict | None, num_nodes: int = 1, **model_args: object) -> Path:
    """A tiny LoRA run config (``phase`` = ``sft`` or ``grpo``) in ``folder/run.yaml``; the run dir is ``folder``."""
    model = {"transformer": "tiny", "lora": {"rank": 4, "alpha": 4}, "optimization": {"learning_rate": 1e-2},
             **model_args}
    if phase == "grpo":
        model["sampling"] = {"group_size": 4, "num_steps": 4, "reward_workers": 1, "batch_size": 3}
    config = {
        "seed_everything": 0,
        "trainer": {"default_root_dir": str(folder), "accelerator": "cpu", "devices": devices, "num_nodes": num_nodes,
                    "max_steps": steps, "precision": "32-true", "num_sanity_val_steps": 0, "limit_val_batches": 0,
                    "log_every_n_steps": 1, "enable_progress_bar": False, "enable_model_summary": False,
                    **({"strategy": strategy} if strategy else {})},
        "model": {"class_path": f"videoreason.phases.{phase}.{phase.upper()}Module", "init_args": model},
        "data": {"class_path": "videoreason.data.datamodule.PuzzleVideoDataModule",
                 "init_args": {"root": str(data), "batch_size": batch_size, "num_workers": 0, "num_val_puzzles": 0}},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return {**out, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def launch(config: Path, *extra: str, nproc: int = 1) -> subprocess.CompletedProcess:
    """``videoreason fit`` in ``nproc`` processes (torchrun when > 1), ``tests/`` importable (``fault_injection``)."""
    cli = ["-m", "videoreason", "fit", "--config", str(config), *extra]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
               "--master-addr", "127.0.0.1", "--master-port", str(free_port()), *cli]
    else:
        cmd = [sys.executable, *cli]
    return subprocess.run(cmd, cwd=config.parent, env={**env(), "PYTHONPATH": str(Path(__file__).parent)},
                          capture_output=True, text=True, timeout=600)


def fit(config: Path, *extra: str, nproc: int = 1) -> None:
    """``launch``; fails the test with the output on error."""
    done = launch(config, *extra, nproc=nproc)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]


def adapter(run: Path) -> dict[str, torch.Tensor]:
    files = list((run / "adapter").glob("*.safetensors"))
    assert [f.name for f in files] == ["pytorch_lora_weights.safetensors"]  # one file, whatever the world size
    return load_file(files[0])


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def lora_b_size(weights: dict[str, torch.Tensor]) -> float:
    """Largest LoRA-B entry: 0 until a step has moved the adapter (B starts at zero)."""
    return max(float(v.abs().max()) for k, v in weights.items() if "lora_B" in k)


def test_fsdp2_sft_on_two_processes_ends_where_one_process_with_the_global_batch_ends(tmp_path, data):
    # with activation checkpointing per block on the sharded side: recomputation re-gathers each block
    two = write_config(tmp_path / "two", "sft", data, devices=2, batch_size=2, steps=3, strategy=FSDP2,
                       gradient_checkpointing=True)
    one = write_config(tmp_path / "one", "sft", data, devices=1, batch_size=4, steps=3, strategy=None)
    fit(two, nproc=2)
    fit(one)
    sharded, single = adapter(tmp_path / "two"), adapter(tmp_path / "one")
    assert lora_b_size(single) > 1e-3
    assert max_difference(sharded, single) < 1e-5
    shards = sorted(p.name for p in (tmp_path / "two" / "checkpoints" / "last.ckpt").iterdir())
    assert shards == [".metadata", "__0_0.distcp", "__1_0.distcp", "meta.pt"]


@pytest.mark.parametrize("strategy", [FSDP2, DDP], ids=["fsdp2", "ddp"])
def test_grpo_gradients_are_all_reduced_across_ranks(tmp_path, data, strategy, varying_reward):
    """Each rank rolls out its own puzzle; the update equals one process rolling out both, and differs from a
    process that saw one rank's puzzle only (what an un-synchronised rank would do)."""
    two = write_config(tmp_path / "two", "grpo", data, devices=2, batch_size=1, steps=2, strategy=strategy,
                       reward=varying_reward)
    one = write_config(tmp_path / "one", "grpo", data, devices=1, batch_size=2, steps=2, strategy=None,
                       reward=varying_reward)
    half = write_config(tmp_path / "half", "grpo", data, devices=1, batch_size=1, steps=2, strategy=None,
                       reward=varying_reward)
    for config, nproc in ((two, 2), (one, 1), (half, 1)):
        fit(config, nproc=nproc)
    synced, single, alone = (adapter(tmp_path / name) for name in ("two", "one", "half"))
    assert lora_b_size(single) > 1e-3
    assert max_difference(synced, single) < 1e-4
    assert max_difference(alone, single) > 100 * max_difference(synced, single)


def test_sharded_checkpoint_written_by_two_processes_resumes_on_two_processes(tmp_path, data):
    from videoreason.models.export import load_module

    straight = write_config(tmp_path / "straight", "sft", data, devices=2, batch_size=2, steps=3, strategy=FSDP2)
    fit(straight, nproc=2)
    stopped = write_config(tmp_path / "resumed", "sft", data, devices=2, batch_size=2, steps=2, strategy=FSDP2)
    fit(stopped, nproc=2)
    checkpoint = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    at_two = load_module(checkpoint)  # one process reads the shards of two
    fit(stopped, "--trainer.max_steps", "3", "--ckpt_path", str(checkpoint), nproc=2)
    resumed, reference = adapter(tmp_path / "resumed"), adapter(tmp_path / "straight")
    assert max_difference(resumed, reference) < 1e-6  # weights, optimizer moments, step and data order restored
    moved = {n: p.detach() for n, p in at_two.transformer.named_parameters() if "lora_B" in n}
    assert max(float((p - resumed[f"transformer.{n.replace('.default', '')}"]).abs().max())
               for n, p in moved.items()) > 1e-4  # the step-2 state is not the step-3 one


@pytest.mark.parametrize("sharded", [True, False], ids=["sharded", "full"])
def test_sigterm_on_one_rank_stops_both_at_the_same_step_and_the_run_resumes_exactly(tmp_path, data, sharded):
    """Only rank 1 receives SIGTERM (in the middle of step 2's update): both ranks finish the step, write the
    checkpoint together (sharded folder, or one full file) and stop; the resumed run ends on the uninterrupted run's
    weights."""
    strategy = {**FSDP2, "init_args": {"save_distributed_checkpoint": sharded}}
    straight = write_config(tmp_path / "straight", "sft", data, devices=2, batch_size=2, steps=4, strategy=strategy)
    fit(straight, nproc=2)
    run = write_config(tmp_path / "preempted", "sft", data, devices=2, batch_size=2, steps=4, strategy=strategy)
    signal_rank_1 = {"class_path": "fault_injection.SignalAt",
                     "init_args": {"step": 2, "signal": "SIGTERM", "when": "mid_update", "rank": 1}}
    done = launch(run, f"--trainer.callbacks+={json.dumps(signal_rank_1)}", nproc=2)
    assert done.returncode != 0 and "stopped by SIGTERM at step 2" in done.stdout + done.stderr
    checkpoint = tmp_path / "preempted" / "checkpoints" / "last.ckpt"
    assert checkpoint.is_dir() == sharded
    meta = torch.load(checkpoint / "meta.pt" if sharded else checkpoint, weights_only=True)
    assert meta["global_step"] == 2
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["last.ckpt"]  # no staging file or folder left
    fit(run, "--ckpt_path", "last", nproc=2)
    assert max_difference(adapter(tmp_path / "preempted"), adapter(tmp_path / "straight")) < 1e-6


@pytest.mark.parametrize("hybrid", [False, True], ids=["fsdp2", "hsdp"])
def test_two_node_launch_on_localhost_completes_a_grpo_step(tmp_path, data, hybrid, varying_reward):
    strategy = {**FSDP2, "init_args": {"hybrid": hybrid}}
    config = write_config(tmp_path, "grpo", data, devices=1, batch_size=1, steps=1, strategy=strategy, num_nodes=2,
                          reward=varying_reward)
    port = free_port()
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(rank),
         "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", str(port),
         "-m", "videoreason", "fit", "--config", str(config)],
        cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    for node, output in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, output[-5000:]
    assert lora_b_size(adapter(tmp_path)) > 0  # one optimizer step moved the adapter
    assert (tmp_path / "checkpoints" / "last.ckpt" / "__1_0.distcp").is_file()  # the second node wrote its shard


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fsdp2_bf16_on_cuda_trains_and_exports_fp32_lora(tmp_path, data):
    """On the GPU: bf16 compute through the FSDP2 mixed precision policy, fp32 LoRA master weights exported."""
    config = write_config(tmp_path, "sft", data, devices=torch.cuda.device_count(), batch_size=2, steps=2,
                          strategy=FSDP2, gradient_checkpointing=True)
    fit(config, "--trainer.accelerator", "gpu", "--trainer.precision", "bf16-mixed",
        nproc=torch.cuda.device_count())
    weights = adapter(tmp_path)
    assert {v.dtype for v in weights.values()} == {torch.float32}
    assert lora_b_size(weights) > 0
