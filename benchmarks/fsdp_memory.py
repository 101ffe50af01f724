"""Host memory per rank when FSDP2 builds the transformer: peak RSS of each process of a 2-rank gloo launch on CPU.

Reference: every rank builds the whole transformer in ``__init__`` before ``configure_model`` shards it (each rank
one full copy), as ``videoreason fit`` did before rank-0 loading. Rank-0 loading (what ``fit`` does now under
``FSDP2Strategy``): ranks > 0 build a weightless skeleton and receive their shards from rank 0 after sharding.
``model.base_dtype`` decides whether the copy is float32 or bfloat16. The model is a local diffusers folder with
Wan2.1-1.3B's width (1536, 12 heads, ffn 8960) and ``--layers`` blocks, large enough for the weights to dominate the
interpreter and libraries; each case runs one LoRA SFT step under ``FSDP2Strategy``.

    python benchmarks/fsdp_memory.py                # 2 ranks, 4 blocks (206M parameters): four cases

Prints a table: peak RSS of each rank after building and sharding the model and over the whole run (the training
step's all-gathers and activations come on top), and the ratio of ranks > 0's build peak to the reference (float32,
every rank loads).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

RESULT_TAG = "FSDP_MEMORY "
CASES = (("float32", False), ("bfloat16", False), ("float32", True), ("bfloat16", True))
"""(base_dtype, rank-0 loading)."""


def build_folder(root: Path, layers: int) -> int:
    """A random Wan transformer folder of Wan2.1-1.3B width with ``layers`` blocks; returns its parameter count."""
    import torch
    from diffusers import WanTransformer3DModel

    from videoreason.models.transformer import transformer_config

    config = {**transformer_config("wan2.1-1.3b", in_channels=48, text_dim=32), "num_layers": layers}
    torch.manual_seed(0)
    model = WanTransformer3DModel(**config)
    model.save_pretrained(str(root / "transformer"))
    return sum(p.numel() for p in model.parameters())


def worker(args: argparse.Namespace) -> None:
    """One rank: a 1-step LoRA SFT fit under FSDP2, then its peak RSS."""
    import contextlib

    import videoreason.trainer_cli
    from videoreason.cli import main
    from videoreason.phases.video_module import VideoModule

    if not args.rank_zero_init:  # the reference: every rank builds its own full copy
        videoreason.trainer_cli.rank_zero_init = lambda enabled=True: contextlib.nullcontext()
    built = {}
    configure = VideoModule.configure_model

    def measured_configure(module: VideoModule) -> None:  # the peak of building + sharding, before any step
        configure(module)
        built["peak_mib"] = peak_mib()

    VideoModule.configure_model = measured_configure
    code = main(["fit", "--config", args.config])
    print(RESULT_TAG + json.dumps({"rank": int(os.environ.get("RANK", 0)), "build_mib": built["peak_mib"],
                                   "peak_mib": peak_mib(), "code": code}))


def peak_mib() -> float:
    """This process's peak RSS so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux


def run_case(work: Path, folder: Path, data: Path, base_dtype: str, rank_zero: bool, nproc: int) -> list[dict]:
    run = work / f"{base_dtype}-{rank_zero}"
    config = {
        "seed_everything": 0,
        "trainer": {"default_root_dir": str(run), "accelerator": "cpu", "devices": nproc, "max_steps": 1,
                    "precision": "32-true", "logger": False,
                    "enable_progress_bar": False, "enable_model_summary": False, "limit_val_batches": 0,
                    "num_sanity_val_steps": 0, "strategy": {"class_path": "videoreason.parallel.FSDP2Strategy"},
                    "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                                   "init_args": {"save_last": False, "save_top_k": 0}}]},
        "model": {"class_path": "videoreason.phases.sft.SFTModule",
                  "init_args": {"transformer": str(folder), "lora": {"rank": 4}, "base_dtype": base_dtype}},
        "data": {"class_path": "videoreason.data.datamodule.PuzzleVideoDataModule",
                 "init_args": {"root": str(data), "batch_size": 1, "num_workers": 0, "num_val_puzzles": 0}},
    }
    run.mkdir(parents=True)
    (run / "run.yaml").write_text(yaml.safe_dump(config))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr",
           "127.0.0.1", "--master-port", str(port), __file__, "--worker", "--config", str(run / "run.yaml"),
           *(["--rank-zero-init"] if rank_zero else [])]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run(cmd, capture_output=True, text=True, env={**env, "OMP_NUM_THREADS": "1",
                                                                     "PYTHONWARNINGS": "ignore"})
    rows = [json.loads(line[len(RESULT_TAG):]) for line in done.stdout.splitlines() if line.startswith(RESULT_TAG)]
    if done.returncode or len(rows) != nproc or any(r["code"] for r in rows):
        raise RuntimeError(f"{base_dtype}, rank-0 loading {rank_zero}: failed:\n{done.stdout[-3000:]}\n"
                           f"{done.stderr[-5000:]}")
    return sorted(rows, key=lambda r: r["rank"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--rank-zero-init", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    from videoreason.data.generate import generate_dataset
    from videoreason.tasks.render import RenderSpec

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        params = build_folder(work / "model", args.layers)
        data = work / "data"
        generate_dataset("maze", data, 2, split="train", difficulty="tiny", workers=1, progress=False,
                         spec=RenderSpec(height=56, width=56, num_frames=5))
        results = {case: run_case(work, work / "model", data, *case, args.nproc) for case in CASES}
    reference = max(r["build_mib"] for r in results[CASES[0]][1:])
    print(f"\nFSDP2 on {args.nproc} gloo ranks, transformer of {params / 1e6:.0f}M parameters "
          f"({params * 4 / 2**20:.0f} MiB in float32), one LoRA SFT step. Peak RSS in MiB, interpreter and "
          "libraries included: after building and sharding (configure_model), and over the whole run\n")
    print("| base_dtype | weights | " + " | ".join(f"rank {i} built / run" for i in range(args.nproc))
          + " | rank > 0 built vs reference |")
    print("|---|---|" + "---:|" * (args.nproc + 1))
    for (dtype, rank_zero), rows in results.items():
        others = max(r["build_mib"] for r in rows[1:])
        print(f"| {dtype} | {'rank 0 loads, others get shards' if rank_zero else 'every rank loads'} | "
              + " | ".join(f"{r['build_mib']:.0f} / {r['peak_mib']:.0f}" for r in rows)
              + f" | {others / reference:.2f} |")


if __name__ == "__main__":
    main()
