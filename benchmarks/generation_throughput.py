"""Generation and rollout throughput of trained tiny models, in videos/s, and the cost of an unmerged LoRA adapter.

For each model (a packaged name, an export folder or a ``.ckpt``), on the first frames and prompts of a dataset:

- **eval**: ``VideoModule.generate`` as ``videoreason eval`` runs it (LoRA fused into the base first);
- **adapter**: the same with the LoRA adapter left unmerged, as a GRPO run validates; the check is that it makes the
  same videos (to 1 uint8 level) at the merged speed (ratio to eval ~1, a LoRA branch costs little at rank 16);
- **rollout**: ``GRPOModule.rollout`` started from the model (its LoRA merged, a fresh zero GRPO adapter on top),
  ``G`` rollouts per puzzle with Early-Step Focus (``K`` SDE steps storing latents and log-probs), videos decoded:
  what a GRPO step spends before its reward and update.
- with ``--compile``, **eval, compiled** and the rollout with ``torch.compile`` of the transformer
  (``nn.Module.compile``, inductor): the lever of compiling; its one-off compile time is the warm-up, reported apart.

Each timing is the median of ``--repeats`` after one warm-up, the forms interleaved so that load drifts hit all alike.

    python benchmarks/generation_throughput.py --data runs/recipe/trapfield/data \
        --models trapfield_plateau runs/trapfield/grpo_tiny_steps/adapter
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from videoreason.data.dataset import load_spec, read_rows
from videoreason.diffusion.plans import early_plan
from videoreason.eval.evaluate import load_first_frame
from videoreason.models.export import load_module
from videoreason.models.lora import merge_lora


def median_seconds(runs: dict[str, Callable[[], Any]], repeats: int
                   ) -> tuple[dict[str, float], dict[str, Any], dict[str, float]]:
    """Median wall time of each callable over ``repeats`` interleaved calls after one warm-up; also the last
    outputs and the warm-up's seconds (compiling, for a compiled form)."""
    outputs: dict[str, Any] = {}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats + 1):  # the first round is the warm-up
        for name, fn in runs.items():
            start = time.perf_counter()
            outputs[name] = fn()
            times[name].append(time.perf_counter() - start)
    return ({name: statistics.median(t[1:]) for name, t in times.items()}, outputs,
            {name: t[0] for name, t in times.items()})


def batch_of(data: Path, count: int) -> tuple[torch.Tensor, list[str], list[str]]:
    """First frames ``[B, 3, H, W]``, prompts and ids of the first ``count`` validation (else test) puzzles."""
    rows = (read_rows(data, split="val") or read_rows(data, split="test"))[:count]
    if len(rows) < count:
        raise ValueError(f"{data} has {len(rows)} val/test puzzles, {count} asked for")
    return torch.stack([load_first_frame(data, r) for r in rows]), [r["prompt"] for r in rows], [r["id"] for r in rows]


def compiled(module: Any) -> Any:
    """A copy of ``module`` whose transformer runs through ``torch.compile``."""
    module = copy.deepcopy(module)
    module.transformer.compile()
    return module


def generation_rows(model: str, data: Path, batch: int, steps: int, repeats: int, compile_: bool = False,
                    device: str = "cpu") -> list[dict[str, Any]]:
    """The eval form (merged) and, for a model with a LoRA adapter, the unmerged form, with their agreement (and
    the merged form compiled)."""
    first, prompts, _ = batch_of(data, batch)
    first, frames = first.to(device), load_spec(data).num_frames
    adapted = load_module(model, base_dtype="float32").eval().to(device)
    forms = {"eval": adapted}
    if getattr(adapted.transformer, "peft_config", None):
        merged = copy.deepcopy(adapted)
        merge_lora(merged.transformer)
        forms = {"eval": merged, "adapter": adapted}
    if compile_:
        forms["eval, compiled"] = compiled(forms["eval"])
    runs = {name: (lambda m=m: m.generate(first, prompts, frames, steps=steps)) for name, m in forms.items()}
    with torch.no_grad():
        seconds, videos, warmups = median_seconds(runs, repeats)
    rows = []
    for name in forms:
        diff = (videos[name].int() - videos["eval"].int()).abs().max().item()
        rows.append({"model": model, "form": name, "videos": batch, "steps": steps, "seconds": seconds[name],
                     "videos_per_s": batch / seconds[name], "ratio": seconds[name] / seconds["eval"],
                     "max_diff": diff, "warmup": warmups[name]})
    return rows


def rollout_rows(model: str, data: Path, puzzles: int, group: int, steps: int, sde_steps: int, repeats: int,
                 compile_: bool = False, device: str = "cpu") -> list[dict[str, Any]]:
    """GRPO rollouts from ``model``: ``puzzles x group`` videos with ``sde_steps`` of ``steps`` stochastic (and the
    same with the transformer compiled)."""
    from videoreason.phases.grpo import GRPOModule
    from videoreason.phases.settings import Sampling

    first, prompts, ids = batch_of(data, puzzles)
    first = first.to(device)
    module = GRPOModule(init_from=model, sampling=Sampling(group_size=group, num_steps=steps,
                                                           batch_size=puzzles * group)).to(device)
    module.spec = load_spec(data)
    module.step_plan = early_plan(steps, sde_steps)
    modules = {"rollout": module, **({"rollout, compiled": compiled(module)} if compile_ else {})}
    runs = {name: (lambda m=m: m.rollout(first, prompts, m._generators(ids))) for name, m in modules.items()}
    seconds, _, warmups = median_seconds(runs, repeats)
    videos = puzzles * group
    return [{"model": model, "form": f"{name} (G={group}, ESF K={sde_steps})", "videos": videos, "steps": steps,
             "seconds": seconds[name], "videos_per_s": videos / seconds[name],
             "ratio": seconds[name] / seconds["rollout"] if name != "rollout" else None, "max_diff": None,
             "warmup": warmups[name]} for name in modules]


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the measured rows."""
    lines = ["| model | form | videos x steps | s | videos/s | time vs eval (rollout) | max diff vs eval (uint8) "
             "| first call s |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        diff = "-" if r["max_diff"] is None else str(r["max_diff"])
        lines.append(f"| {r['model']} | {r['form']} | {r['videos']} x {r['steps']} | {r['seconds']:.2f} | "
                     f"{r['videos_per_s']:.2f} | {ratio} | {diff} | {r['warmup']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="dataset whose first frames and prompts to use")
    parser.add_argument("--models", nargs="+", required=True, help="packaged names, export folders or .ckpt files")
    parser.add_argument("--batch", type=int, default=8, help="videos generated at once")
    parser.add_argument("--steps", type=int, default=10, help="denoising steps")
    parser.add_argument("--group", type=int, default=8, help="rollouts per puzzle (G)")
    parser.add_argument("--puzzles", type=int, default=2, help="puzzles per rollout batch")
    parser.add_argument("--sde-steps", type=int, default=3, help="Early-Step Focus K")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--compile", action="store_true", help="also time the transformer under torch.compile")
    parser.add_argument("--device", default="cpu", help="torch device of the models (cpu, cuda)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    for model in args.models:
        rows += generation_rows(model, args.data, args.batch, args.steps, args.repeats, args.compile, args.device)
        rows += rollout_rows(model, args.data, args.puzzles, args.group, args.steps, args.sde_steps, args.repeats,
                             args.compile, args.device)
    print(f"{args.device}, {torch.get_num_threads()} threads, {args.data} ({load_spec(args.data).num_frames} frames), "
          f"median of {args.repeats}; 'time vs eval': the form's time over the merged model's (what `videoreason eval` "
          "runs), a compiled rollout's over the eager rollout's; 'first call': the warm-up (compiling, for "
          "compiled forms)")
    print(table(rows))


if __name__ == "__main__":
    main()
