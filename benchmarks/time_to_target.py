"""Wall time to a held-out success rate, per GRPO variant, side by side (reference: all-steps Flow-GRPO).

From the same SFT start, puzzles and seeds, every variant is a real ``videoreason fit`` of one shipped GRPO config
with the variant's step plan and settings (``VARIANTS``); each validates every ``--every`` steps on the run's fixed
validation puzzles with fixed noise seeds. Per variant the script reports held-out (validation) SR against GRPO wall
time and rollouts, the GRPO wall time to reach a target SR (default: the start's validation SR + 20 points), and its
ratio to all-steps Flow-GRPO's.

- GRPO wall time is what the module logs per step, ``time/rollout_s + time/reward_s + time/train_s`` (validation,
  checkpoints and process start are left out, so no variant pays for being validated), summed up to each validation.
- Rollouts are steps x ``data.batch_size`` x ``sampling.group_size``; a step is one batch of puzzles (a variant with
  ``optimization.inner_epochs`` k takes k optimizer steps per batch, so its ``max_steps`` is k times as many).
- The start's SR is a ``videoreason validate`` of the start under the same config, data and overrides (``OUT/start``):
  the same validation puzzles and noise seeds as the runs' validations (the GRPO adapter starts at zero, so it is
  the start itself). Every run validates with the start's ``val_steps`` and ``val_shift``, so a variant that rolls
  out fewer steps is still judged by the same sampler.
- SR is ``val/<task>/success`` in %, with a 95% Wilson interval over the validation puzzles. Time to target is the
  wall time at the first validation at or above the target (never interpolated), "not reached" if none is.

Resumable: a variant whose folder holds ``time_to_target.json`` for these steps is skipped; a fit that stopped is
continued with ``--ckpt_path last`` (also to reach a larger ``--steps``); a finished fit is only read. ``OUT`` keeps
the settings its runs share (``settings.json``) and refuses others. Each fit's output goes to ``OUT/<variant>.log``.
Arguments this script does not know (``--model.init_args.optimization.learning_rate 3.0e-4``) are passed to every
fit and to the start's validation. Writes ``OUT/time_to_target.md|json|png``.

    python benchmarks/time_to_target.py --data runs/recipe/trapfield/data --out runs/time_to_target/trapfield \
        --model.init_args.optimization.learning_rate 3.0e-4
    python benchmarks/time_to_target.py --config configs/maze/grpo_tiny_fill_steps.yaml --start maze_fill_steps \
        --data runs/data/maze_tiny_fill2 --out runs/time_to_target/maze --variants all_steps esf_k3 esf_k3_tail
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from videoreason.eval.curves import logged_run, save_figure, validation_size
from videoreason.stats import Estimate, proportion_interval

REFERENCE = "all_steps"
RESULT_FILE = "time_to_target.json"
CALLBACKS = "videoreason.callbacks."
TIMES = ("time/rollout_s", "time/reward_s", "time/train_s")
EPS = 1e-9  # SRs are k / n in %: compare with a little slack for the float division


@dataclass(frozen=True)
class Variant:
    """A GRPO variant: its step-plan callback (replacing the config's) and its settings on top of the config.

    Attributes:
        plan: ``(class name in videoreason.callbacks, init_args)`` of the step plan.
        overrides: Extra ``fit`` arguments (``--model.init_args.<group>.<key> value``).
        inner_epochs: Optimizer steps per batch of rollouts (``optimization.inner_epochs``): ``max_steps`` counts
            optimizer steps, so it is scaled to give every variant the same number of batches.
    """

    plan: tuple[str, dict[str, Any]]
    overrides: tuple[str, ...] = ()
    inner_epochs: int = 1


def esf(k: int) -> tuple[str, dict[str, Any]]:
    return "EarlyStepFocus", {"num_sde_steps": k}


VARIANTS: dict[str, Variant] = {
    "all_steps": Variant(("AllSteps", {})),  # Flow-GRPO, the reference
    "esf_k3": Variant(esf(3)),  # the shipped configs' plan
    "esf_k1": Variant(esf(1)),
    "esf_k3_tail": Variant(esf(3), ("--model.init_args.sampling.tail", '{"steps": 2, "solver": "dpmpp_2m"}')),
    "fewer_steps": Variant(esf(3), ("--model.init_args.sampling.num_steps", "6")),
    "sliding_window": Variant(("SlidingWindow", {"size": 3, "advance_every": 5})),  # MixGRPO
    "random_subset": Variant(("RandomSubset", {"num_sde_steps": 3})),  # DanceGRPO
    "inner_epochs2": Variant(esf(3), ("--model.init_args.optimization.inner_epochs", "2"), inner_epochs=2),
    # the configs' 1e-3 x 3: does ESF (the loss averaged over 3 SDE steps, not 9) learn faster with a larger step?
    "esf_k3_lr3e-3": Variant(esf(3), ("--model.init_args.optimization.learning_rate", "3.0e-3")),
}


# ---------------------------------------------------------------- pure logic: curves, target, table


@dataclass(frozen=True)
class Point:
    """One validation of a run, after ``step`` GRPO steps (batches), ``rollouts`` rollouts and ``wall_s`` seconds of
    GRPO wall time; ``success`` in % with its Wilson interval."""

    step: int
    rollouts: int
    wall_s: float
    success: Estimate

    def to_json(self) -> dict[str, float]:
        return {"step": self.step, "rollouts": self.rollouts, "wall_s": self.wall_s, "sr": self.success.mean,
                "sr_low": self.success.low, "sr_high": self.success.high}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Point:
        return cls(int(d["step"]), int(d["rollouts"]), float(d["wall_s"]),
                   Estimate(float(d["sr"]), float(d["sr_low"]), float(d["sr_high"])))


def latest_per_step(entries: Iterable[tuple[int, int, float]]) -> dict[int, float]:
    """``(step, timestamp, value)`` entries as ``{step: value}``, the latest entry of a step winning (a resumed run
    logs again the steps after its last checkpoint; those are the ones its weights went on from)."""
    out: dict[int, tuple[int, float]] = {}
    for step, stamp, value in entries:
        if step not in out or stamp >= out[step][0]:
            out[step] = (stamp, value)
    return {step: value for step, (_, value) in out.items()}


def step_seconds(parts: Sequence[dict[int, float]]) -> dict[int, float]:
    """GRPO wall time per logged step: the sum of its parts (rollout, reward, train) at that step."""
    steps = set().union(*parts) if parts else set()
    return {s: sum(p.get(s, 0.0) for p in parts) for s in sorted(steps)}


def build_curve(success: dict[int, float], seconds: dict[int, float], rollouts_per_step: int, n_val: int
                ) -> list[Point]:
    """The validations as `Point` s. Lightning logs step ``k`` (counting from 1) and the validation after it both at
    logger step ``k - 1``, so a validation at logger step ``s`` has seen ``s + 1`` steps and their wall time.

    Args:
        success: Validation SR (a fraction) per logger step.
        seconds: GRPO wall time per logger step (`step_seconds`).
        rollouts_per_step: Puzzles per batch x rollouts per puzzle.
        n_val: Validation puzzles (for the interval).
    """
    points = []
    for s in sorted(success):
        wall = sum(v for k, v in seconds.items() if k <= s)
        points.append(Point(s + 1, (s + 1) * rollouts_per_step, wall,
                            proportion_interval(success[s], n_val).scaled(100)))
    return points


def first_at_target(points: Sequence[Point], target: float) -> Point | None:
    """The first validation (in steps) whose SR (%) is at or above ``target``, or ``None``: the wall time to the
    target is that validation's, not an interpolation between validations."""
    return next((p for p in sorted(points, key=lambda p: p.step) if p.success.mean >= target - EPS), None)


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value / reference``, or ``None`` when either is missing (or the reference is 0)."""
    if value is None or not reference:
        return None
    return value / reference


def default_target(start: Estimate, gain: float = 20.0, target: float | None = None) -> float:
    """The target SR in %: ``target`` if given, else the start's SR + ``gain`` points."""
    return float(target) if target is not None else start.mean + gain


@dataclass
class Row:
    """One variant's line of the summary."""

    variant: str
    steps: int
    rollouts: int
    wall_min: float
    final: Estimate | None
    target_step: int | None
    target_min: float | None
    ratio: float | None = None
    final_vs_reference: bool | None = None
    failed: bool = False

    def to_json(self) -> dict[str, Any]:
        final = self.final
        return {"variant": self.variant, "steps": self.steps, "rollouts": self.rollouts, "wall_min": self.wall_min,
                "sr_end": None if final is None else final.mean, "sr_end_low": None if final is None else final.low,
                "sr_end_high": None if final is None else final.high, "target_step": self.target_step,
                "time_to_target_min": self.target_min, "ratio_to_reference": self.ratio,
                "sr_end_at_least_reference": self.final_vs_reference, "failed": self.failed}


def summarise(curves: dict[str, list[Point]], target: float, reference: str = REFERENCE,
              failed: Sequence[str] = ()) -> list[Row]:
    """One `Row` per variant (in ``curves``' order, then the failed ones): steps, rollouts and GRPO wall time at its
    last validation, its final SR, the first validation at or above ``target`` and the wall time to it as a ratio to
    ``reference``'s, and whether its final SR is at least ``reference``'s."""
    rows = []
    for name, points in curves.items():
        last = max(points, key=lambda p: p.step) if points else None
        hit = first_at_target(points, target)
        rows.append(Row(name, last.step if last else 0, last.rollouts if last else 0,
                        last.wall_s / 60 if last else 0.0, last.success if last else None,
                        hit.step if hit else None, hit.wall_s / 60 if hit else None))
    rows += [Row(name, 0, 0, 0.0, None, None, None, failed=True) for name in failed if name not in curves]
    ref = next((r for r in rows if r.variant == reference and not r.failed), None)
    for row in rows:
        row.ratio = ratio(row.target_min, ref.target_min if ref else None)
        if ref is not None and ref.final is not None and row.final is not None:
            row.final_vs_reference = row.final.mean >= ref.final.mean - EPS
    return rows


def _fmt(value: float | None, spec: str = ".1f", missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def markdown_table(rows: Sequence[Row], start: Estimate, target: float, reference: str = REFERENCE) -> str:
    """The summary as markdown: a header line (start, target) and one table row per variant."""
    lines = [f"Start's validation SR: {start} %; target SR: {target:.1f} %. GRPO wall time = rollout + reward + "
             "train (no validation). Time to target = the GRPO wall time at the first validation at or above the "
             "target (not interpolated between validations).", "",
             f"| variant | steps | rollouts | GRPO wall min | SR at end % [95% CI] | first step at target | "
             f"time to target (min, at that validation) | ratio to {reference} | SR at end >= {reference}'s |",
             "|---" * 9 + "|"]
    for r in rows:
        if r.failed:
            lines.append(f"| {r.variant} | failed (see its log) | | | | | | | |")
            continue
        reached = _fmt(r.target_min, ".2f", "not reached")
        vs = "-" if r.final_vs_reference is None else ("yes" if r.final_vs_reference else "no")
        lines.append(f"| {r.variant} | {r.steps} | {r.rollouts} | {r.wall_min:.2f} | "
                     f"{r.final if r.final is not None else '-'} | {_fmt(r.target_step, 'd')} | {reached} | "
                     f"{_fmt(r.ratio, '.2f')} | {vs} |")
    return "\n".join(lines)


def plot(curves: dict[str, list[Point]], start: Estimate, target: float, out: str | Path) -> Path:
    """One PNG: validation SR against GRPO wall time (min) and against rollouts, one line per variant from the start
    (at 0), the target as a dashed horizontal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (label, x_of) in zip(axes, (("GRPO wall time (min)", lambda p: p.wall_s / 60),
                                        ("rollouts", lambda p: p.rollouts)), strict=True):
        for name, points in curves.items():
            ax.plot([0.0, *(x_of(p) for p in points)], [start.mean, *(p.success.mean for p in points)], "o-",
                    label=name, markersize=3)
        ax.axhline(target, linestyle="--", color="black", linewidth=1, label=f"target {target:.1f}%")
        ax.set_xlabel(label)
        ax.set_ylabel("validation SR %")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out)


# ---------------------------------------------------------------- runs: arguments, state, metrics


def plan_config(plan: tuple[str, dict[str, Any]]) -> str:
    """A ``--config`` JSON replacing the trainer's callbacks by this step plan and the curves (as ``recipe``)."""
    name, init_args = plan
    callback = {"class_path": CALLBACKS + name, **({"init_args": init_args} if init_args else {})}
    return json.dumps({"trainer": {"callbacks": [callback, {"class_path": CALLBACKS + "PlotCurves"}]}})


def common_args(config: str, start: str, data: str, run_dir: Path) -> list[str]:
    """The arguments every command of the benchmark shares: config, start, data, run folder."""
    return ["--config", config, "--model.init_args.init_from", start, "--data.init_args.root", data,
            "--trainer.default_root_dir", str(run_dir)]


def fit_args(variant: Variant, *, config: str, start: str, data: str, run_dir: Path, steps: int, every: int,
             validation: tuple[int, float], extra: Sequence[str] = (), resume: bool = False) -> list[str]:
    """``videoreason fit`` arguments of one variant: ``steps`` batches, a validation every ``every``, validated with
    ``validation = (val_steps, val_shift)``, every step logged; ``extra`` (the user's) before the variant's own
    overrides."""
    val_steps, val_shift = validation
    args = ["fit", *common_args(config, start, data, run_dir), "--config", plan_config(variant.plan),
            "--trainer.max_steps", str(steps * variant.inner_epochs), "--trainer.val_check_interval", str(every),
            "--trainer.check_val_every_n_epoch", "null", *extra, *variant.overrides,
            "--trainer.log_every_n_steps", "1",  # every step's time/* is logged: the wall time misses none
            "--model.init_args.val_steps", str(val_steps), "--model.init_args.val_shift", str(val_shift)]
    return args + (["--ckpt_path", "last"] if resume else [])


def run_state(run_dir: Path, steps: int, max_steps: int) -> str:
    """What to do with a variant's folder: ``done`` (its result for ``steps`` steps is written), ``read`` (its fit of
    ``max_steps`` optimizer steps finished: the adapter is exported), ``resume`` (a checkpoint to continue from) or
    ``new``."""
    result = run_dir / RESULT_FILE
    if result.is_file() and json.loads(result.read_text()).get("planned_steps") == steps:
        return "done"
    config = run_dir / "config.yaml"
    if ((run_dir / "adapter").is_dir() and config.is_file()
            and yaml.safe_load(config.read_text())["trainer"].get("max_steps") == max_steps):
        return "read"
    if (run_dir / "checkpoints" / "last.ckpt").is_file():
        return "resume"
    return "new"


def metric_history(run_dir: Path, keys: Sequence[str]) -> dict[str, dict[int, float]]:
    """``{key: {step: value}}`` of the latest MLflow run of ``run_dir`` (`latest_per_step`)."""
    client, run_id = logged_run(run_dir)
    return {key: latest_per_step((m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key))
            for key in keys}


@dataclass
class RunResult:
    """What a variant's run measured: its validations, and how many steps it was asked for and did."""

    points: list[Point]
    planned_steps: int
    steps_done: int
    rollouts_per_step: int
    n_val: int

    def to_json(self) -> dict[str, Any]:
        return {"planned_steps": self.planned_steps, "steps_done": self.steps_done,
                "rollouts_per_step": self.rollouts_per_step, "n_val": self.n_val,
                "curve": [p.to_json() for p in self.points]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunResult:
        return cls([Point.from_json(p) for p in d["curve"]], int(d["planned_steps"]), int(d["steps_done"]),
                   int(d["rollouts_per_step"]), int(d["n_val"]))


def read_run(run_dir: Path, task: str, planned_steps: int) -> RunResult:
    """Read a finished fit's validations and per-step GRPO wall time from its MLflow run."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    model, data = config["model"]["init_args"], config["data"]["init_args"]
    per_step = int(data.get("batch_size", 1)) * int(model["sampling"]["group_size"])
    n_val = validation_size(data)
    history = metric_history(run_dir, [f"val/{task}/success", *TIMES])
    seconds = step_seconds([history[key] for key in TIMES])
    points = build_curve(history[f"val/{task}/success"], seconds, per_step, n_val)
    return RunResult(points, planned_steps, max(seconds, default=-1) + 1, per_step, n_val)


def read_start(run_dir: Path, task: str) -> tuple[Estimate, tuple[int, float]]:
    """The start's validation SR (%, Wilson interval) and the ``(val_steps, val_shift)`` it was validated with."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    model = config["model"]["init_args"]
    sampling = model.get("sampling") or {}
    validation = (int(model.get("val_steps") or sampling.get("num_steps", 10)),
                  float(model.get("val_shift") or sampling.get("shift", 5.0)))
    success = metric_history(run_dir, [f"val/{task}/success"])[f"val/{task}/success"]
    if not success:
        raise RuntimeError(f"the start's validation in {run_dir} logged no val/{task}/success")
    n_val = validation_size(config["data"]["init_args"])
    return proportion_interval(success[max(success)], n_val).scaled(100), validation


# ---------------------------------------------------------------- running


def run_command(args: Sequence[str], log: Path) -> int:
    """``python -m videoreason.cli ARGS``, its output appended to ``log``; the exit status."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as stream:
        stream.write(f"\n$ videoreason {' '.join(args)}\n")
        stream.flush()
        return subprocess.run([sys.executable, "-m", "videoreason.cli", *args], stdout=stream,
                              stderr=subprocess.STDOUT, check=False).returncode


def log_tail(log: Path, lines: int = 15) -> str:
    return "".join(log.read_text(errors="replace").splitlines(keepends=True)[-lines:])


def measure_start(out: Path, *, config: str, start: str, data: str, task: str, extra: Sequence[str]
                  ) -> tuple[Estimate, tuple[int, float]]:
    """Validate the start once (``OUT/start``, kept in ``OUT/start/time_to_target.json``)."""
    run_dir = out / "start"
    result = run_dir / RESULT_FILE
    if result.is_file():
        d = json.loads(result.read_text())
        return Estimate(d["sr"], d["sr_low"], d["sr_high"]), (int(d["val_steps"]), float(d["val_shift"]))
    print(f"start: validate {start} -> {run_dir} (log {out / 'start.log'})", flush=True)
    code = run_command(["validate", *common_args(config, start, data, run_dir), *extra], out / "start.log")
    if code:
        raise RuntimeError(f"validating the start failed (exit {code}); log {out / 'start.log'}:\n"
                           f"{log_tail(out / 'start.log')}")
    sr, validation = read_start(run_dir, task)
    result.write_text(json.dumps({"sr": sr.mean, "sr_low": sr.low, "sr_high": sr.high, "val_steps": validation[0],
                                  "val_shift": validation[1]}, indent=1))
    print(f"start: validation SR {sr} %", flush=True)
    return sr, validation


def run_variant(name: str, variant: Variant, out: Path, *, steps: int, task: str, label: str,
                **kwargs: Any) -> RunResult | None:
    """Fit (or continue, or only read) one variant and keep its result in ``OUT/<name>/time_to_target.json``;
    ``None`` if its fit failed."""
    run_dir, log = out / name, out / f"{name}.log"
    state = run_state(run_dir, steps, steps * variant.inner_epochs)
    if state == "done":
        print(f"{label} {name}: done before, read {run_dir / RESULT_FILE}", flush=True)
        return RunResult.from_json(json.loads((run_dir / RESULT_FILE).read_text()))
    how = "read the finished fit"
    if state != "read":
        print(f"{label} {name}: {'continue' if state == 'resume' else 'fit'} {steps} steps -> {run_dir} (log {log})",
              flush=True)
        began = time.perf_counter()
        code = run_command(fit_args(variant, run_dir=run_dir, steps=steps, resume=state == "resume", **kwargs), log)
        if code:
            print(f"{label} {name}: FAILED (exit {code}), log {log}:\n{log_tail(log)}", flush=True)
            return None
        how = f"{(time.perf_counter() - began) / 60:.1f} min in all"
    result = read_run(run_dir, task, steps)
    (run_dir / RESULT_FILE).write_text(json.dumps(result.to_json(), indent=1))
    last = result.points[-1] if result.points else None
    print(f"{label} {name}: {how}; {result.steps_done} steps, GRPO wall {(last.wall_s / 60 if last else 0):.1f} "
          f"min, SR at end {last.success if last else '-'} %", flush=True)
    return result


def check_settings(out: Path, settings: dict[str, Any]) -> None:
    """Keep the settings the runs in ``out`` share in ``OUT/settings.json``; refuse other ones (runs of another
    config, start, data or validation interval would not compare). Only the number of steps may grow."""
    path = out / "settings.json"
    if path.is_file():
        before = json.loads(path.read_text())
        changed = sorted(k for k in settings if k != "steps" and before.get(k) != settings[k])
        if changed:
            raise SystemExit(f"{out} holds runs with other {', '.join(changed)} ({path}): pick another --out")
    path.write_text(json.dumps(settings, indent=1))


def infer_task(data: str) -> str:
    """The one task of a dataset's rows."""
    from videoreason.data.dataset import read_rows

    tasks = sorted({row["task"] for row in read_rows(data)})
    if len(tasks) != 1:
        raise SystemExit(f"{data} holds tasks {tasks}: name the one to score with --task")
    return tasks[0]


def write_outputs(out: Path, rows: list[Row], curves: dict[str, list[Point]], start: Estimate, target: float,
                  settings: dict[str, Any]) -> str:
    """``OUT/time_to_target.md|json|png``; returns the markdown."""
    table = markdown_table(rows, start, target)
    (out / "time_to_target.md").write_text(table + "\n")
    (out / "time_to_target.json").write_text(json.dumps({
        **settings, "start": {"sr": start.mean, "sr_low": start.low, "sr_high": start.high}, "target": target,
        "reference": REFERENCE, "variants": [r.to_json() for r in rows],
        "curves": {name: [p.to_json() for p in points] for name, points in curves.items()}}, indent=1))
    plot(curves, start, target, out / "time_to_target.png")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False,
                                     epilog="Other --key value arguments are passed to every fit and validate.")
    parser.add_argument("--data", required=True, help="dataset folder (its train and val splits)")
    parser.add_argument("--out", default="runs/time_to_target", help="folder of the runs and the results")
    parser.add_argument("--config", default="configs/trapfield/grpo_tiny_steps.yaml", help="a shipped GRPO config")
    parser.add_argument("--start", default="trapfield_plateau", help="the SFT start: packaged model name or export")
    parser.add_argument("--steps", type=int, default=60, help="GRPO steps (batches) per variant")
    parser.add_argument("--every", type=int, default=5, help="validate every this many steps")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--gain", type=float, default=20.0, help="target = the start's SR + this many points")
    parser.add_argument("--target", type=float, default=None, help="target SR in %% (instead of --gain)")
    parser.add_argument("--task", default=None, help="task whose val/<task>/success to read (default: the data's)")
    args, extra = parser.parse_known_args(argv)
    if args.steps < 1 or args.every < 1 or args.steps % args.every:
        parser.error(f"--steps ({args.steps}) must be a positive multiple of --every ({args.every}), so the last "
                     "validation is at the last step")
    out, task = Path(args.out), args.task or infer_task(args.data)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"config": args.config, "start_model": args.start, "data": args.data, "task": task,
                "steps": args.steps, "every": args.every, "extra_args": extra}
    check_settings(out, settings)
    shared = dict(config=args.config, start=args.start, data=args.data, extra=extra)
    start, validation = measure_start(out, task=task, **shared)
    target = default_target(start, args.gain, args.target)
    if target > 100:
        print(f"warning: the target {target:.1f}% is above 100%: no variant can reach it", flush=True)
    names = sorted(args.variants, key=lambda n: n != REFERENCE)  # the reference first
    curves, failed = {}, []
    for i, name in enumerate(names, 1):
        result = run_variant(name, VARIANTS[name], out, steps=args.steps, every=args.every, task=task,
                             validation=validation, label=f"[{i}/{len(names)}]", **shared)
        if result is None:
            failed.append(name)
        else:
            curves[name] = result.points
    rows = summarise(curves, target, failed=failed)
    print(write_outputs(out, rows, curves, start, target, settings))
    print(f"wrote {out / 'time_to_target.md'}, {out / 'time_to_target.json'}, {out / 'time_to_target.png'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
