"""Scale: step time, peak memory and model FLOPs utilisation (MFU) of SFT and SDE-GRPO on random weights.

Each case builds the package's own module (``SFTModule`` / ``GRPOModule``) on a random-weight transformer of
``--model`` with LoRA and trains real steps through a Lightning ``Trainer`` (``benchmarks/harness.py``, shared with
``early_step_focus.py``): an SFT step is one flow-matching batch with its optimizer step; a GRPO step is one iteration
(rollout of ``B x G`` videos, verification, rewards, advantages, the policy update over every SDE step). Cases: SFT
with AdamW (baseline) and 8-bit AdamW; GRPO with all steps trained (Flow-GRPO, baseline) and Early-Step Focus (first
K of N), each with AdamW and 8-bit AdamW.

- Step time: median wall time of the timed steps (CUDA synchronised).
- Peak memory: CUDA ``max_memory_allocated`` (weights included); CPU the process's peak RSS
  (``resource.getrusage``, interpreter and libraries included), so on CPU every case runs in its own process.
- MFU: model FLOPs of the step from ``videoreason.models.estimates`` (3x forward for trained passes, no
  recomputation) / step time / the device's dense bf16 peak (H100 SXM / H200 989e12, A100 312e12), or
  ``--peak-flops``, or on CPU large matmuls in ``--dtype`` timed in each case's process before and after its steps.

Real-size models get the ``LinearWanCodec`` stand-in (Wan VAE latent shapes, no VAE cost) and 512 prompt tokens.
``--estimate-only`` prints the analytic FLOPs/memory of the real-size run configs (``configs/wan*/``) instead.

    python benchmarks/scale.py                                     # CPU: `small`, 64x64x9, a few minutes
    python benchmarks/scale.py --estimate-only                     # real-size configs, nothing run
    python benchmarks/scale.py --device cuda --model wan2.2-ti2v-5b --frames 33 --height 480 --width 832
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import estimates as est
import torch
import yaml
from harness import StepTimer, fit_steps, make_codec, make_dataset, run_isolated

from videoreason.models.transformer import transformer_config

RESULT_TAG = "SCALE_RESULT "
REAL = ("wan2.1-1.3b", "wan2.2-ti2v-5b")
H100_PEAK = 989e12
PEAK_FLOPS = (("H200", 989e12), ("H100 PCIe", 756e12), ("H100", H100_PEAK), ("A100", 312e12))
"""Dense bf16 peak FLOP/s by device-name substring (first match)."""
CASES = {  # name -> phase, optimizer, plan
    "sft": ("sft", "adamw", "-"), "sft_8bit": ("sft", "adamw8bit", "-"),
    "grpo_all": ("grpo", "adamw", "all"), "grpo_esf": ("grpo", "adamw", "esf"),
    "grpo_all_8bit": ("grpo", "adamw8bit", "all"), "grpo_esf_8bit": ("grpo", "adamw8bit", "esf"),
}
BASELINES = {"sft": "sft", "grpo": "grpo_all"}
CONFIGS = Path(__file__).resolve().parents[1] / "videoreason" / "configs"
GIB = 2**30


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, choices=["tiny", "small", "medium", *REAL],
                        help="named transformer config (default: small on CPU, wan2.2-ti2v-5b on CUDA)")
    parser.add_argument("--frames", type=int, default=None, help="default: 9 for CPU configs, 33 for real-size")
    parser.add_argument("--height", type=int, default=None, help="default: 64, real-size 480")
    parser.add_argument("--width", type=int, default=None, help="default: 64, real-size 832")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16"],
                        help="weights and autocast (default: bfloat16 on CUDA, float32 on CPU)")
    parser.add_argument("--steps", type=int, default=2, help="timed GRPO steps per case (median reported)")
    parser.add_argument("--sft-steps", type=int, default=10, help="timed SFT steps per case (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per case")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {list(CASES)}")
    parser.add_argument("--batch-size", type=int, default=1, help="SFT videos / GRPO puzzles per step")
    parser.add_argument("--group-size", type=int, default=4, help="GRPO rollouts per puzzle G")
    parser.add_argument("--num-steps", type=int, default=10, help="GRPO denoising steps N")
    parser.add_argument("--num-sde-steps", type=int, default=0, help="Early-Step Focus K (0: N // 2)")
    parser.add_argument("--tail-steps", type=int, default=0, help="dpmpp_2m tail after ESF's SDE steps (0: none)")
    parser.add_argument("--micro-batch-size", type=int, default=0, help="GRPO videos per backward (0: all)")
    parser.add_argument("--rollout-batch-size", type=int, default=0, help="GRPO videos denoised at once (0: all)")
    parser.add_argument("--beta", type=float, default=0.004, help="GRPO KL weight (> 0: reference forward)")
    parser.add_argument("--lora-rank", type=int, default=32)
    parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=None,
                        help="default: on on CUDA, off on CPU")
    parser.add_argument("--peak-flops", type=float, default=None, help="peak FLOP/s for MFU (default: see above)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: 1 on CPU, else as is)")
    parser.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                        help="each case in its own process (default: on CPU; needed for its RSS peak)")
    parser.add_argument("--estimate-only", action="store_true", help="print the real-size configs' estimates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    args.model = args.model or ("wan2.2-ti2v-5b" if cuda else "small")
    real = args.model in REAL
    args.frames = args.frames or (33 if real else 9)
    args.height = args.height or (480 if real else 64)
    args.width = args.width or (832 if real else 64)
    args.dtype = args.dtype or ("bfloat16" if cuda else "float32")
    args.gradient_checkpointing = cuda if args.gradient_checkpointing is None else args.gradient_checkpointing
    args.threads = (1 if not cuda else 0) if args.threads is None else args.threads
    args.isolate = not cuda if args.isolate is None else args.isolate
    args.num_sde_steps = args.num_sde_steps or args.num_steps // 2
    args.text_tokens = est.TEXT_TOKENS if real else 32
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if unknown := sorted(set(args.cases) - set(CASES)):
        parser.error(f"unknown cases {unknown}; choose among {list(CASES)}")
    if not 1 <= args.num_sde_steps <= args.num_steps - 1:
        parser.error(f"--num-sde-steps must be in [1, {args.num_steps - 1}]")
    return args


# ---------------------------------------------------------------------------------------------------- one case
def run_case(args: argparse.Namespace, name: str, root: str) -> dict[str, Any]:
    """Train ``warmup + steps`` steps of one case; median step time and peak memory."""
    import resource

    from videoreason.callbacks.step_plans import AllSteps, EarlyStepFocus
    from videoreason.diffusion.solvers import TailSpec
    from videoreason.models.lora import LoraSpec
    from videoreason.models.text import HashTextEmbedder
    from videoreason.models.transformer import build_transformer
    from videoreason.phases.grpo import GRPOModule
    from videoreason.phases.settings import Optimization, PolicyLoss, PolicyOptimization, Sampling
    from videoreason.phases.sft import SFTModule

    phase, optimizer, plan = CASES[name]
    cuda = args.device == "cuda"
    steps = args.sft_steps if phase == "sft" else args.steps
    peak = [] if cuda or args.peak_flops else [matmul_flops(args.dtype)]  # the CPU's load now, and after
    codec = make_codec(args.model)
    with torch.device(args.device):  # a real-size random init is much faster on the GPU
        transformer = build_transformer(args.model, dtype=getattr(torch, args.dtype),
                                        in_channels=codec.latent_channels, init_seed=args.seed)
    common = dict(transformer=transformer, codec=codec, seed=args.seed,
                  text_embedder=HashTextEmbedder(dim=transformer.config.text_dim, max_tokens=args.text_tokens),
                  lora=LoraSpec(rank=args.lora_rank, alpha=args.lora_rank),
                  gradient_checkpointing=args.gradient_checkpointing)
    callbacks: list[Any] = []
    if phase == "sft":
        module: Any = SFTModule(**common, optimization=Optimization(optimizer=optimizer))
    else:
        tail = TailSpec(steps=args.tail_steps, solver="dpmpp_2m") if plan == "esf" and args.tail_steps else None
        module = GRPOModule(**common, sampling=Sampling(group_size=args.group_size, num_steps=args.num_steps,
                                                        tail=tail, batch_size=args.rollout_batch_size),
                            loss=PolicyLoss(beta=args.beta),
                            optimization=PolicyOptimization(optimizer=optimizer,
                                                            micro_batch_size=args.micro_batch_size),
                            num_sample_videos=0)
        callbacks.append(AllSteps() if plan == "all" else EarlyStepFocus(args.num_sde_steps))
    sde_steps: list[int] = []

    class Timer(StepTimer):
        def after_step(self, trainer: Any, pl_module: Any, batch: Any) -> None:
            if phase == "grpo":
                sde_steps.append(int(trainer.callback_metrics["train/sde_steps"]))

    timer = Timer(args.warmup, cuda)
    fit_steps(module, root, batch_size=args.batch_size, steps=args.warmup + steps, device=args.device,
              precision="bf16-mixed" if args.dtype == "bfloat16" else "32-true", callbacks=[*callbacks, timer],
              seed=args.seed)
    if len(timer.walls) != steps:
        raise RuntimeError(f"case {name}: timed {len(timer.walls)} steps, expected {steps}")
    want = args.num_sde_steps if plan == "esf" else args.num_steps - 1
    if phase == "grpo" and set(sde_steps) != {want}:
        raise RuntimeError(f"case {name}: trained {sorted(set(sde_steps))} SDE steps per iteration, expected {want}")
    mem = timer.peak_mem if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    peak.extend([] if cuda or args.peak_flops else [matmul_flops(args.dtype)])
    return {"step_s": statistics.median(timer.walls), "peak_mem": mem, "peak_flops": max(peak, default=0.0),
            "skipped": getattr(module, "nonfinite_steps", 0)}


# ---------------------------------------------------------------------------------------------------- FLOPs
def case_flops(args: argparse.Namespace, name: str) -> float:
    """Model FLOPs of one step of case ``name`` at the benchmark's settings."""
    phase, _, plan = CASES[name]
    config = transformer_config(args.model)
    tokens = est.num_tokens(config, args.frames, args.height, args.width, est.CODECS[args.model])
    kwargs = dict(text_tokens=args.text_tokens, lora_rank=args.lora_rank)
    if phase == "sft":
        return est.sft_step_flops(config, tokens, args.batch_size, **kwargs)
    k = args.num_sde_steps if plan == "esf" else args.num_steps - 1
    return est.grpo_step_flops(config, tokens, num_steps=args.num_steps, trained_steps=k,
                               group_size=args.group_size, batch_size=args.batch_size,
                               tail_steps=args.tail_steps if plan == "esf" else 0, reference=args.beta > 0,
                               **kwargs).total


def matmul_flops(dtype: str, n: int = 2048, reps: int = 10) -> float:
    """FLOP/s of the best of ``reps`` ``n x n`` CPU matmuls in ``dtype`` (after one warm-up)."""
    a, b = torch.randn(n, n, dtype=getattr(torch, dtype)), torch.randn(n, n, dtype=getattr(torch, dtype))
    a @ b
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def peak_flops(args: argparse.Namespace) -> tuple[float | None, str]:
    """Peak FLOP/s of the device and where the number comes from (``None`` on CPU: measured per case)."""
    if args.peak_flops:
        return args.peak_flops, "--peak-flops"
    if args.device == "cuda":
        name = torch.cuda.get_device_name()
        for key, value in PEAK_FLOPS:
            if key in name:
                return value, f"{name}, dense bf16 spec"
        raise SystemExit(f"unknown peak FLOP/s of {name!r}: pass --peak-flops")
    return None, (f"per case, the better of a 2048x2048 {args.dtype} matmul benchmark (best of 10) run just before "
                  f"and just after its steps, {torch.get_num_threads()} thread(s)")


# ---------------------------------------------------------------------------------------------------- tables
def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table with aligned columns (text left, numbers right)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    numeric = [all(re.fullmatch(r"[-+0-9.,x%e ]+|-", r[i]) for r in rows) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if num else c.ljust(w)
                                 for c, w, num in zip(cells, widths, numeric, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if num else "-") for w, num in zip(widths, numeric, strict=True)) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def variant(args: argparse.Namespace, name: str) -> str:
    _, optimizer, plan = CASES[name]
    if plan == "all":
        return f"all {args.num_steps - 1} steps, {optimizer}"
    if plan == "esf":
        tail = f"+tail {args.tail_steps}" if args.tail_steps else ""
        return f"ESF K={args.num_sde_steps}{tail}, {optimizer}"
    return optimizer


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    peak, source = peak_flops(args)
    peaks = [peak or r["peak_flops"] for r in results.values()]
    shape = f"{args.model} {args.frames}x{args.height}x{args.width}"
    rows = []
    for (name, r), peak in zip(results.items(), peaks, strict=True):
        phase = CASES[name][0]
        base = results.get(BASELINES[phase])
        flops = case_flops(args, name)
        ratio = [f"{r[k] / base[k]:.2f}x" if base else "-" for k in ("step_s", "peak_mem")]
        rows.append([shape, phase.upper(), variant(args, name), f"{r['step_s']:.3f}", f"{r['peak_mem'] / GIB:.2f}",
                     f"{flops / 1e12:.3f}", f"{flops / r['step_s'] / 1e12:.3f}",
                     f"{100 * flops / r['step_s'] / peak:.1f}%", *ratio])
    gc = "on" if args.gradient_checkpointing else "off"
    print(f"\n{args.device} ({torch.get_num_threads()} torch threads), {args.dtype}, LoRA rank {args.lora_rank}, "
          f"gradient checkpointing {gc}; SFT batch {args.batch_size}; GRPO B={args.batch_size} x G={args.group_size},"
          f" N={args.num_steps}, beta={args.beta}, micro-batch {args.micro_batch_size or 'all'}; "
          f"median of {args.sft_steps} SFT / {args.steps} GRPO steps after {args.warmup} warm-up. Peak "
          f"{min(peaks) / 1e12:.3f}-{max(peaks) / 1e12:.3f} TFLOP/s ({source}).\n")
    print(table(["config", "phase", "variant", "step s", "peak mem GiB", "TFLOP/step", "TFLOP/s", "MFU",
                 "time vs base", "mem vs base"], rows))
    mem = "CUDA max_memory_allocated" if args.device == "cuda" else "process peak RSS (interpreter included)"
    print(f"\npeak mem: {mem}. Baselines: SFT adamw, GRPO all steps adamw. MFU counts model FLOPs: trained passes "
          f"as 3 forwards (+1 reference forward when beta > 0), though a LoRA backward executes ~1.8 forwards, so it "
          f"can over-state what the hardware did (and exceed 100% on a CPU whose load changes).")
    if skipped := {n: r["skipped"] for n, r in results.items() if r["skipped"]}:
        print(f"Warning: optimizer steps skipped (non-finite loss): {skipped}")


def config_settings(path: Path) -> dict[str, Any]:
    """What the estimates need from a real-size run config (model and shape from its folder and file name)."""
    from videoreason.phases.settings import Optimization, PolicyLoss, PolicyOptimization, Sampling

    config = yaml.safe_load(path.read_text())
    init = config["model"]["init_args"]
    grpo = "grpo" in config["model"]["class_path"]
    optim = (PolicyOptimization if grpo else Optimization)(**init.get("optimization", {}))
    sampling, loss = Sampling(**init.get("sampling", {})), PolicyLoss(**init.get("loss", {}) if grpo else {})
    height, width, frames = (int(v) for v in re.search(r"(\d+)x(\d+)x(\d+)", path.stem).groups())
    plan = [c for c in config["trainer"].get("callbacks", []) if c["class_path"].endswith("EarlyStepFocus")]
    return {"model": path.parent.name.replace("_", "-"), "frames": frames, "height": height, "width": width,
            "phase": "grpo" if grpo else "sft",
            "batch": config["data"]["init_args"]["batch_size"], "rank": (init.get("lora") or {}).get("rank"),
            "optimizer": optim.optimizer, "gc": init.get("gradient_checkpointing", False),
            "group": sampling.group_size, "steps": sampling.num_steps, "beta": loss.beta,
            "k": plan[0]["init_args"]["num_sde_steps"] if plan else None,
            "tail": sampling.tail.steps if sampling.tail else 0,
            "micro": getattr(optim, "micro_batch_size", 0), "rollout": sampling.batch_size,
            "int8": bool(init.get("quantize_base", False)), "offload": sampling.offload}


def estimate_rows(s: dict[str, Any], weight_bytes: int = 2) -> list[tuple[str, float, est.MemoryEstimate]]:
    """(variant, FLOPs, memory) of a config's own settings and its ESF / optimizer alternatives."""
    config = transformer_config(s["model"])
    tokens = est.num_tokens(config, s["frames"], s["height"], s["width"], est.CODECS[s["model"]])
    mem_kw = dict(lora_rank=s["rank"], gradient_checkpointing=s["gc"], weight_bytes=1 if s["int8"] else weight_bytes)
    rows = []
    optimizers = [s["optimizer"], *(o for o in ("adamw8bit", "adamw") if o != s["optimizer"])]
    if s["phase"] == "sft":
        flops = est.sft_step_flops(config, tokens, s["batch"], lora_rank=s["rank"] or 0)
        for opt in optimizers:
            mem = est.training_memory(config, tokens, micro_batch_size=s["batch"], optimizer=opt, **mem_kw)
            rows.append((f"batch {s['batch']}, {opt}", flops, mem))
        return rows
    n, videos = s["steps"], s["batch"] * s["group"]
    latent = est.CODECS[s["model"]].latent_shape(s["frames"], s["height"], s["width"])
    plans = [(f"ESF K={s['k']}+tail {s['tail']}" if s["tail"] else f"ESF K={s['k']}", s["k"], s["tail"]),
             (f"all {n - 1} steps", n - 1, 0)]
    for opt in optimizers:
        for label, k, tail in plans:
            flops = est.grpo_step_flops(config, tokens, num_steps=n, trained_steps=k, group_size=s["group"],
                                        batch_size=s["batch"], tail_steps=tail, reference=s["beta"] > 0,
                                        lora_rank=s["rank"] or 0).total
            mem = est.grpo_memory(config, tokens, latent, trained_steps=k, videos=videos,
                                  micro_batch_size=s["micro"], rollout_batch_size=s["rollout"],
                                  offload_rollouts=s["offload"], optimizer=opt, **mem_kw)
            rows.append((f"{label}, {opt}", flops, mem))
    return rows


def estimate_only(budget: float = 70 * GIB) -> None:
    """Print the analytic FLOPs/memory table of every real-size run config; a config fits one 80 GB GPU when its
    estimate stays under ``budget`` (10 GiB left for the VAE, CUDA context and allocator slack)."""
    paths = sorted(p for p in CONFIGS.glob("wan*/*.yaml") if re.search(r"\d+x\d+x\d+", p.stem))
    rows, verdicts = [], []
    for path in paths:
        s = config_settings(path)
        tokens = est.num_tokens(transformer_config(s["model"]), s["frames"], s["height"], s["width"],
                                est.CODECS[s["model"]])
        bf16, fp32 = estimate_rows(s), estimate_rows(s, weight_bytes=4)
        for (label, flops, mem), (_, _, mem32) in zip(bf16, fp32, strict=True):
            rows.append([path.relative_to(CONFIGS).with_suffix("").as_posix(), s["phase"].upper(), label,
                         f"{tokens}", f"{flops / 1e12:.0f}", f"{flops / bf16[0][1]:.2f}x", f"{mem.weights / GIB:.1f}",
                         f"{(mem.trainable + mem.grads + mem.optimizer) / GIB:.2f}", f"{mem.activations / GIB:.1f}",
                         f"{mem.rollout / GIB:.2f}", f"{mem.total / GIB:.1f}", f"{mem32.total / GIB:.1f}",
                         f"{flops / (0.4 * H100_PEAK):.{0 if flops > 1e15 else 2}f}"])
        if s["model"] == "wan2.2-ti2v-5b" and s["phase"] == "grpo" and s["frames"] == 33:
            label, _, mem = bf16[0]
            verdicts.append(f"Wan2.2-TI2V-5B GRPO with LoRA at 480x832x33 ({path.name}: {label}): "
                            f"{mem.total / GIB:.1f} GiB with bf16 weights, {fp32[0][2].total / GIB:.1f} GiB with fp32 "
                            f"weights -> {'fits' if fp32[0][2].total <= budget else 'does NOT fit'} one 80 GB GPU "
                            f"by the estimate (<= {budget / GIB:.0f} GiB: VAE, CUDA context and slack not counted).")
    print("Analytic estimates of the real-size run configs (videoreason.models.estimates; nothing run).\n"
          "FLOPs: one SFT batch / one GRPO iteration (rollout + update), trained passes 3x forward, +1 reference "
          "forward when beta > 0.\nMemory (GiB): bf16 frozen weights ('fp32-w': the total with fp32 weights, as the "
          "modules load a local model today), LoRA fp32 + grads + optimizer states, bf16 activations (+-30%), "
          "rollout buffers.\nThe first row of each config is its own settings; 's @40% MFU H100' is the step time "
          "at 40% of 989 TFLOP/s.\n")
    print(table(["config", "phase", "variant", "tokens", "TFLOP/step", "FLOPs vs config", "weights GiB",
                 "LoRA+opt GiB", "activ. GiB", "rollout GiB", "total GiB", "fp32-w GiB", "s @40% MFU H100"], rows))
    print("\n" + "\n".join(verdicts))


def main() -> None:
    args = parse_args()
    if args.estimate_only:
        estimate_only()
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.case:
        import warnings

        warnings.filterwarnings("ignore", module="lightning")
        print(RESULT_TAG + json.dumps(run_case(args, args.case, args.data)), flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="scale_") as tmp:
        root = Path(tmp) / "maze"
        make_dataset(root, args.frames, args.height, args.width, (args.warmup + args.steps) * args.batch_size)
        results = {}
        for name in args.cases:
            start = time.perf_counter()
            results[name] = (run_isolated(__file__, sys.argv[1:], name, root, RESULT_TAG) if args.isolate
                             else run_case(args, name, str(root)))
            gc.collect()  # in-process cases: free the last case's model before the next one's peak is reset
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            print(f"case {name}: {results[name]['step_s']:.3f} s/step ({time.perf_counter() - start:.0f} s with "
                  f"setup)", file=sys.stderr, flush=True)
    report(args, results)


if __name__ == "__main__":
    main()
