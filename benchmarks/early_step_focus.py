"""Early-Step Focus: latency and peak memory of one GRPO iteration, all steps trained vs the first K = N/2.

One run times, on the same model (same named config, same init seed), data and GRPO settings, a full training
iteration (rollout + verification/rewards + advantages + policy update, exactly ``GRPOModule.training_step`` under a
Lightning ``Trainer``) for these step plans, set by the package's step-plan callbacks:

- ``all steps``: Flow-GRPO, ``AllSteps()`` = ``all_sde_plan(N)`` (N - 1 SDE steps trained);
- ``ESF K=N/2``: ``EarlyStepFocus(N // 2)`` = ``early_plan(N, N // 2)``, the rest plain Euler ODE steps;
- ``ESF K=N/2 + tail``: the same plus a fast deterministic tail ``TailSpec(steps=k, solver="dpmpp_2m")``.

Targets: >= 40% less latency per iteration for ESF K=N/2 than all steps, >= 60% with the fast tail.

It also measures the reward overlap: rollouts go in chunks of ``sampling.batch_size`` and each decoded chunk is
verified on a thread pool (``VerdictPool``) while the next chunk denoises. ESF + tail runs once chunked
(``--rollout-batch-size``, default one puzzle's group) and once unchunked (``sampling.batch_size=0``: verification
only starts after the whole rollout); the verification of one iteration's videos alone is timed serially
(``verdicts_for``, one thread) on the rollout's own videos, outside the iteration's timing.

Timing: one warm-up iteration, then the median over ``--iters`` iterations of the wall time between the trainer's
``on_train_batch_start`` and ``on_train_batch_end`` (CUDA synchronised); the rollout/reward/train split is the
module's own ``time/*`` logs. Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` (reset per case); on CPU the
peak process RSS (``psutil``, sampled every 5 ms from the start of ``fit``) minus the RSS at the start of ``fit``
(model, optimizer and data already built), i.e. what the training loop adds. On CPU every case runs in its own
subprocess by default (``--isolate``), since freed memory is not reliably returned to the OS and would hide the next
case's peak; on CUDA cases run in-process (a fresh module each) unless ``--isolate`` is given.

Data: a small maze dataset generated on the fly into a temporary folder (``difficulty="tiny"``, at
``RenderSpec.tiny()`` = 64x64x9 unless ``--height/--width/--frames`` are given). Codec: ``PixelCodec(patch=4)`` for
the CPU configs (``tiny``, ``small``). The real-size configs (``wan2.1-1.3b``: 16 latent channels, ``wan2.2-ti2v-5b``:
48) get random weights and a stand-in codec with the Wan VAEs' geometry (4x temporal causal, 8x / 16x spatial, 16 / 48
channels): a fixed random linear map of each pixel block and its pseudo-inverse. The transformer then sees exactly the
latent shapes of a real run at that resolution, while the VAE cost (the same for every plan, tiny next to the
transformer's) is left out; its decoded videos are noise, which is fine for timing (verification still runs on them).

CPU (the default: ``small`` transformer, N = 20, G = 4, B = 2, a few minutes on 2 cores)::

    python benchmarks/early_step_focus.py
    python benchmarks/early_step_focus.py --transformer tiny --num-steps 10 --iters 2

GPU (real-size transformer with random weights, bf16, Wan-like latents; 480x832x33 videos)::

    python benchmarks/early_step_focus.py --device cuda --transformer wan2.1-1.3b \\
        --height 480 --width 832 --frames 33 --batch-size 1 --group-size 4 --micro-batch-size 1 \\
        --gradient-checkpointing
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import StepTimer, fit_steps, make_codec, make_dataset, run_isolated

TARGETS = {"esf": 0.40, "esf_tail": 0.60}  # latency saved vs all steps
RESULT_TAG = "EARLY_STEP_FOCUS_RESULT "


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transformer", default="small",
                        choices=["tiny", "small", "wan2.1-1.3b", "wan2.2-ti2v-5b"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default=None,
                        help="Lightning precision (default: 32-true on CPU, bf16-mixed on CUDA)")
    parser.add_argument("--num-steps", type=int, default=20, help="denoising steps N")
    parser.add_argument("--num-sde-steps", type=int, default=0, help="K of Early-Step Focus (0: N // 2)")
    parser.add_argument("--tail-steps", type=int, default=3, help="steps k of the dpmpp_2m tail")
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=2, help="puzzles per iteration")
    parser.add_argument("--rollout-batch-size", type=int, default=0,
                        help="videos per rollout chunk of the chunked cases (0: the group size)")
    parser.add_argument("--micro-batch-size", type=int, default=0, help="samples per backward (0: all)")
    parser.add_argument("--reward-workers", type=int, default=2)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--beta", type=float, default=0.0,
                        help="KL weight (> 0 adds the reference policy's forward to every trained step)")
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--iters", type=int, default=3, help="timed iterations per case (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations per case")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: 1 on CPU, steady on a shared machine; 0: leave as is)")
    parser.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                        help="run each case in its own process (default: on CPU only)")
    parser.add_argument("--cases", default="all,esf,esf_tail,esf_tail_unchunked",
                        help="comma-separated subset of: all, esf, esf_tail, esf_tail_unchunked")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print its JSON
    parser.add_argument("--data", help=argparse.SUPPRESS)  # internal: dataset folder of --case
    args = parser.parse_args(argv)
    if args.num_steps < 3:
        parser.error("--num-steps must be >= 3")
    args.num_sde_steps = args.num_sde_steps or args.num_steps // 2
    if not 1 <= args.num_sde_steps <= args.num_steps - 1:
        parser.error(f"--num-sde-steps must be in [1, {args.num_steps - 1}]")
    args.precision = args.precision or ("bf16-mixed" if args.device == "cuda" else "32-true")
    if args.threads is None:
        args.threads = 1 if args.device == "cpu" else 0
    args.isolate = args.device == "cpu" if args.isolate is None else args.isolate
    args.chunk = args.rollout_batch_size or args.group_size
    return args


def case_settings(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Name -> label, SDE steps trained, tail steps (0: none), rollout chunk (``sampling.batch_size``)."""
    n, k = args.num_steps, args.num_sde_steps
    return {
        "all": {"label": "all steps (Flow-GRPO)", "sde": n - 1, "tail": 0, "rbs": args.chunk},
        "esf": {"label": f"Early-Step Focus K={k}", "sde": k, "tail": 0, "rbs": args.chunk},
        "esf_tail": {"label": f"ESF K={k} + dpmpp_2m tail k={args.tail_steps}", "sde": k,
                     "tail": args.tail_steps, "rbs": args.chunk},
        "esf_tail_unchunked": {"label": f"ESF K={k} + tail, sampling.batch_size=0", "sde": k,
                               "tail": args.tail_steps, "rbs": 0},
    }


# ---------------------------------------------------------------------------------------------------- one case
def run_case(args: argparse.Namespace, name: str, root: str) -> dict[str, Any]:
    """Train ``warmup + iters`` GRPO iterations of one case; its timings and peak memory."""
    import torch

    from videoreason.callbacks.step_plans import AllSteps, EarlyStepFocus
    from videoreason.diffusion.solvers import TailSpec
    from videoreason.models.transformer import build_transformer
    from videoreason.phases.grpo import GRPOModule
    from videoreason.phases.settings import PolicyLoss, PolicyOptimization, Sampling
    from videoreason.rewards.scoring import verdicts_for

    case = case_settings(args)[name]
    cuda = args.device == "cuda"
    codec = make_codec(args.transformer)
    dtype = torch.bfloat16 if cuda and "bf16" in args.precision else torch.float32
    transformer: Any = args.transformer  # on CPU the module builds it by name, as the CPU recipes do
    if cuda:  # a real-size random init is much faster on the GPU, and bf16 weights halve its memory
        with torch.device(args.device):
            transformer = build_transformer(args.transformer, dtype=dtype, in_channels=codec.latent_channels,
                                            init_seed=args.seed)
    videos_per_iter = args.batch_size * args.group_size
    module = GRPOModule(
        transformer=transformer, codec=codec,
        sampling=Sampling(group_size=args.group_size, num_steps=args.num_steps,
                          tail=TailSpec(steps=case["tail"], solver="dpmpp_2m") if case["tail"] else None,
                          batch_size=case["rbs"], reward_workers=args.reward_workers),
        loss=PolicyLoss(beta=args.beta), optimization=PolicyOptimization(micro_batch_size=args.micro_batch_size),
        gradient_checkpointing=args.gradient_checkpointing, num_sample_videos=videos_per_iter, seed=args.seed)
    record: dict[str, Any] = {"rollout": [], "reward": [], "train": [], "verify": [], "sde": []}

    class Timer(StepTimer):
        def after_step(self, trainer, pl_module, batch) -> None:
            metrics = trainer.callback_metrics
            for key in ("rollout", "reward", "train"):
                record[key].append(float(metrics[f"time/{key}_s"]))
            record["sde"].append(int(metrics["train/sde_steps"]))
            group = args.group_size
            puzzles = [p for p in batch["puzzle"] for _ in range(group)]
            tasks = [t for t in batch["task"] for _ in range(group)]
            start = time.perf_counter()
            verdicts_for([t.video for t in pl_module.rollouts], puzzles, tasks, pl_module.spec)
            record["verify"].append(time.perf_counter() - start)

    timer = Timer(args.warmup, cuda)
    plan = AllSteps() if name == "all" else EarlyStepFocus(args.num_sde_steps)
    fit_steps(module, root, batch_size=args.batch_size, steps=args.warmup + args.iters, device=args.device,
              precision=args.precision, callbacks=[plan, timer], seed=args.seed)
    if len(timer.walls) != args.iters:
        raise RuntimeError(f"case {name}: timed {len(timer.walls)} iterations, expected {args.iters}")
    record["iter"] = timer.walls
    summary = {key: statistics.median(values) for key, values in record.items() if key != "sde"}
    return {**summary, "sde": record["sde"][0], "peak_mem": timer.peak_mem, "skipped": module.nonfinite_steps}


# ---------------------------------------------------------------------------------------------------- driver
def mem(value: float, cuda: bool) -> str:
    return f"{value / 2**30:.2f} GiB" if cuda else f"+{value / 2**20:.0f} MiB RSS"


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    cases, cuda = case_settings(args), args.device == "cuda"
    import torch

    _, f, h, w = make_codec(args.transformer).latent_shape(args.frames, args.height, args.width)
    tokens = f * (h // 2) * (w // 2)
    print(f"\nGRPO iteration, transformer `{args.transformer}` on {args.device} ({args.precision}, "
          f"{torch.get_num_threads()} torch threads), N={args.num_steps} steps, G={args.group_size}, "
          f"B={args.batch_size} puzzles ({args.batch_size * args.group_size} videos of "
          f"{args.frames}x{args.height}x{args.width}, {tokens} tokens each), rollout chunks of {args.chunk}, "
          f"median of {args.iters} after {args.warmup} warm-up\n")
    ref = results.get("all")
    print("| plan | SDE steps trained | s/iter (median) | rollout s | train s | peak mem | ratio vs all-steps "
          "| latency saved % |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("all", "esf", "esf_tail"):
        if name not in results:
            continue
        r = results[name]
        ratio = f"{r['iter'] / ref['iter']:.3f}" if ref else "-"
        saved = f"{100 * (1 - r['iter'] / ref['iter']):.1f}" if ref else "-"
        print(f"| {cases[name]['label']} | {r['sde']} | {r['iter']:.3f} | {r['rollout']:.3f} | {r['train']:.3f} | "
              f"{mem(r['peak_mem'], cuda)} | {ratio} | {saved} |")
    if ref:
        verdicts = []
        for name, target in TARGETS.items():
            if name in results:
                saved = 1 - results[name]["iter"] / ref["iter"]
                verdicts.append(f"{cases[name]['label']}: {100 * saved:.1f}% saved vs target >= "
                                f"{100 * target:.0f}% -> {'MET' if saved >= target else 'NOT MET'}")
        print("\nTargets: " + "; ".join(verdicts))
    if ref:
        cost_model(args, ref)
    skipped = {name: r["skipped"] for name, r in results.items() if r["skipped"]}
    if skipped:
        print(f"\nWarning: optimizer steps skipped (non-finite loss): {skipped}")

    pair = [name for name in ("esf_tail_unchunked", "esf_tail") if name in results]
    if pair:
        print("\nReward overlap (ESF + tail): verification of each rollout chunk runs on the VerdictPool while the "
              "next chunk denoises; reward s = wait for the verdicts + scoring + advantages after the rollout.\n")
        print("| sampling.batch_size | rollout s | reward s | rollout + reward s | s/iter (median) | verify alone s |")
        print("|---|---|---|---|---|---|")
        for name in pair:
            r = results[name]
            rbs = cases[name]["rbs"]
            label = f"0 (all {args.batch_size * args.group_size} at once, no overlap)" if rbs == 0 else str(rbs)
            print(f"| {label} | {r['rollout']:.3f} | {r['reward']:.3f} | {r['rollout'] + r['reward']:.3f} | "
                  f"{r['iter']:.3f} | {r['verify']:.3f} |")
        print("\nverify alone: serial `verdicts_for` (one thread) over the iteration's videos, timed separately.")


def cost_model(args: argparse.Namespace, ref: dict[str, Any]) -> None:
    """What the all-steps case's per-step costs allow: predicted savings for other K and tails, and the bound.

    An iteration costs ``rollout_steps * r + trained_steps * t + other`` (``r``: one no-grad rollout step of all
    videos, ``t``: one trained SDE step, ``other``: rewards, optimizer, loop). However expensive training is
    (``t / r -> inf``), training K of the N - 1 trainable steps saves at most ``1 - K / (N - 1)``.
    """
    n, tail = args.num_steps, args.tail_steps
    r, t = ref["rollout"] / n, ref["train"] / (n - 1)
    other = ref["iter"] - ref["rollout"] - ref["train"]
    print(f"\nCost model from the all-steps case: rollout step r = {r:.3f} s, trained step t = {t:.3f} s "
          f"(t / r = {t / r:.2f}), other {other:.3f} s per iteration.\n")
    print("| plan | predicted s/iter | predicted saving % | bound as t/r -> inf % |")
    print("|---|---|---|---|")
    for k in sorted({args.num_sde_steps, max(n // 4, 1)}, reverse=True):
        for steps, label in ((n, f"ESF K={k}"), (k + tail, f"ESF K={k} + tail k={tail}")):
            cost = steps * r + k * t + other
            print(f"| {label} | {cost:.3f} | {100 * (1 - cost / ref['iter']):.1f} | {100 * (1 - k / (n - 1)):.1f} |")


def main() -> None:
    args = parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.case:
        import warnings

        warnings.filterwarnings("ignore", module="lightning")
        result = run_case(args, args.case, args.data)
        print(RESULT_TAG + json.dumps(result), flush=True)
        return
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = sorted(set(names) - set(case_settings(args)))
    if unknown:
        raise SystemExit(f"unknown cases {unknown}; choose among {sorted(case_settings(args))}")
    with tempfile.TemporaryDirectory(prefix="early_step_focus_") as tmp:
        root = Path(tmp) / "maze"
        make_dataset(root, args.frames, args.height, args.width, (args.warmup + args.iters) * args.batch_size)
        results = {}
        for name in names:
            start = time.perf_counter()
            results[name] = (run_isolated(__file__, sys.argv[1:], name, root, RESULT_TAG) if args.isolate
                             else run_case(args, name, str(root)))
            print(f"case {name}: {results[name]['iter']:.3f} s/iter ({time.perf_counter() - start:.0f} s with "
                  f"setup)", file=sys.stderr, flush=True)
    report(args, results)


if __name__ == "__main__":
    main()
