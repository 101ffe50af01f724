"""The whole recipe of one task: data -> SFT -> SDE-GRPO (variants) -> evaluation on the held-out test split -> one
table with 95% bootstrap confidence intervals over puzzles and wall time per phase.

Every phase is the ``videoreason`` command a user would type (``data generate``, ``fit --config``, ``eval``), run
in a subprocess and timed. The test puzzles are generated first; the validation and training puzzles skip their
boards and every rotation and reflection of them. A task with a packaged SFT model (``TaskRecipe.pretrained``, in
``videoreason/pretrained/``) starts GRPO from it, on the dataset seed it was trained with (its model card);
``--from_scratch`` trains that model too, with the same config and number of steps. GRPO variants start from the
same SFT model:

- ``grpo``: the task's GRPO config as shipped (dense decomposed reward, Early-Step Focus);
- ``sparse`` (``--ablate [reward]``): the same with the sparse success reward (``configs/rewards/<task>_sparse.yaml``);
- ``all_steps`` (``--ablate [plan]``): the same with every denoising step trained (``AllSteps``, Flow-GRPO).

Results land in ``OUT/results.{md,json}`` (with each trained model's learning curve: held-out SR and F1 at every
validation, also drawn in ``OUT/learning_curves.png``) and MLflow (``videoreason.tracking``: for ``OUT`` under
``runs/``, the project's ``runs/mlflow.db``, experiment ``recipe/<task>``: every phase's run and a summary run with
each GRPO run's reward curves and every model's sample test videos). The console shows each phase's live progress
(a training phase from its ``RUN/progress.jsonl`` journal: step / total, time left, loss or reward, validation SR;
the other commands from their progress bar); the full output is in ``OUT/logs/<phase>.log``.
``--reuse true`` keeps phases whose outputs exist and continues an interrupted training phase from its last
checkpoint (resume an interrupted recipe).

Two options make the comparison fair to SFT (the question "my SFT model has converged: does RL still add anything?"):

- ``--plateau true`` trains the SFT model (as ``--from_scratch``) until held-out validation success stops improving
  (``StopAtPlateau``, a checkpoint at every validation), then takes the checkpoint of the best validation, raw or
  EMA weights as validation decides (``videoreason.plateau``), exported to ``OUT/sft/plateau_model``: the SFT row
  and every GRPO start. ``results.json`` records the plateau (steps, samples, wall time, weights).
- ``sft_more`` (``--ablate [sft_more]``) continues plain SFT from the SFT model's weights (the SFT config, a fresh
  optimizer) for GRPO's measured wall time (``--trainer.max_time``): SFT given the same compute, scored on the same
  puzzles with the same noise seeds, and compared with GRPO by a paired interval.

``--ood true`` also scores every model out of distribution: on the task's larger boards or longer solutions
(``TaskRecipe.ood``, maze: 4x4 and 5x5 cells against the trained 3x3; TrapField: 6x6 fields against 5x5; Sokoban:
5-8 pushes against 1-4, and 7x7 rooms with 2 boxes), held out by construction (no such board is trained on), each
in its own table (``OUT/ood_<level>/`` the data, ``OUT/<model>/eval/ood_<level>/`` the evaluation).

    videoreason recipe --task maze --out runs/maze
    videoreason recipe --task maze --from_scratch true --out runs/maze_scratch
    videoreason recipe --task maze --ablate [reward,plan]
    videoreason recipe --task trapfield --plateau true --ablate [sft_more] --out runs/trapfield_fair
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from videoreason.atomic import write_atomic
from videoreason.callbacks.progress import JOURNAL_FILE, journal_line, read_journal
from videoreason.eval.curves import CurvePoint, curve_table, plot_curves, read_curve
from videoreason.eval.table import HEADLINE, LABELS, SAMPLES_FILE, read_sample_rows
from videoreason.resources import PretrainedModel, callback_root, config_root
from videoreason.stats import Estimate, bootstrap_mean, paired_difference

CONFIGS = config_root()  # the packaged configs/
PRESETS = CONFIGS / "rewards"  # reward presets (``videoreason.rewards.presets``, not imported: --help stays fast)
TIMES_FILE = "times.json"  # wall seconds per phase, so a --reuse run still reports the phases run before
PROGRESS = re.compile(r"\d+/\d+ \[")  # a tqdm bar: "... 27/60 [00:30<00:35, ...]"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # cursor moves of nested tqdm bars
CURVES_FILE = "learning_curves.png"  # held-out SR and F1 of every trained model at each of its validations
EVAL_BATCH = 32  # tiny videos per forward pass: 1.65x faster than eval's default 8 on 2 cores, same videos
PLATEAU_CALLBACKS = ("plateau.yaml", "checkpoint_every_250.yaml")  # callbacks/ presets of a --plateau SFT run
PLATEAU_MAX_STEPS = 20000  # a cap only: the plateau stops the run
PLATEAU_CHOICE = "plateau_model.json"  # in OUT/sft: the plateau model's step and weights, chosen on validation


@dataclass(frozen=True)
class TaskRecipe:
    """A task's tiny recipe: its dataset (``size`` pixels square, ``frames`` frames, the ``difficulty`` level and
    any further ``levels`` in the same folder, drawn at ``cell`` pixels a cell), its SFT and GRPO configs under
    ``configs/<task>/``, and the packaged SFT model (``videoreason.resources``) that the GRPO phases start from
    unless the recipe runs ``--from_scratch``. ``task`` names the task when the recipe's own name is not one."""

    size: int
    frames: int = 5
    difficulty: str = "tiny"
    levels: tuple[str, ...] = ()  # more levels trained and tested beside ``difficulty`` (mixed board sizes)
    cell: int | None = None  # `data generate --cell`: one cell size for boards of several sizes
    task: str | None = None
    num_train: int = 2000
    num_val: int = 16
    num_test: int = 200
    num_train_grpo: int = 400  # training puzzles when the SFT model is packaged: GRPO draws only a few hundred
    sft_config: str = "sft_tiny.yaml"
    grpo_config: str = "grpo_tiny.yaml"
    pretrained: str | None = None
    ood: tuple[tuple[str, int], ...] = ()  # (level, pixels square) of each out-of-distribution test split
    num_ood: int = 100
    num_val_plateau: int = 64  # validation puzzles of a --plateau run: its stop rule needs a narrow interval

    @property
    def render(self) -> list[str]:
        """The `data generate` flags of the frame size and count (and cell size)."""
        cell = [] if self.cell is None else ["--cell", str(self.cell)]
        return ["--height", str(self.size), "--width", str(self.size), "--frames", str(self.frames), *cell]


# One board block or cell = 8 pixels = one transformer token (codec patch 4 x Wan patch 2): 7x7 maze blocks, 4x4
# FlowFree cells, 6x6 Sokoban squares. Maze: the frame-by-frame `tiny-fill` videos (the puzzle, the dead ends shaded
# one cell deeper per frame, then the path), FlowFree: the `easy-forced` videos (the forced moves of each board
# painted frame by frame) and Sokoban: the `tiny-push` videos (one push per frame, the solved room held), all learned
# one step at a time.
RECIPES = {
    "maze": TaskRecipe(size=56, frames=9, difficulty="tiny-fill", num_train=4000, num_val=32,
                       sft_config="sft_tiny_fill_steps.yaml", grpo_config="grpo_tiny_fill_steps.yaml",
                       pretrained="maze_fill_steps", ood=(("easy-fill", 72), ("medium-fill", 88))),
    # `easy-forced` (5x5, 3-4 colours, 17 frames): 4x4 boards come in ~100 classes up to rotation and reflection,
    # which the 200 test boards nearly exhaust
    "flowfree": TaskRecipe(size=40, frames=17, difficulty="easy-forced", num_train=4000, num_val=32,
                           sft_config="sft_tiny_forced_steps.yaml", grpo_config="grpo_tiny_forced_steps.yaml"),
    "sokoban": TaskRecipe(size=48, difficulty="tiny-push", num_train=4000, num_val=32,
                          sft_config="sft_tiny_push_steps.yaml", grpo_config="grpo_tiny_push_steps.yaml",
                          ood=(("long-push", 48), ("easy-push", 56))),  # 5-8 pushes; a 7x7 room with 2 boxes
    # agent videos (one move per frame, 9 frames): a 5x5 trap field (8 pixels a cell), a 3x3-cell maze (7x7 blocks)
    "trapfield": TaskRecipe(size=40, frames=9, num_train=4000, num_val=32, sft_config="sft_tiny_steps.yaml",
                            grpo_config="grpo_tiny_steps.yaml", pretrained="trapfield_plateau",
                            ood=(("easy", 48),)),  # 6x6 fields, 25% traps, up to 16 moves (17 frames)
    "maze_agent": TaskRecipe(size=56, frames=9, num_train=4000, num_val=32, sft_config="sft_tiny_steps.yaml",
                             grpo_config="grpo_tiny_steps.yaml"),
    # two floors of 2x2-cell mazes in the oblique view (`ObliqueCodec`: one token per projected block);
    # out of distribution: VR-Bench's family at the same size (several ladders, loops, ends anywhere)
    "maze3d": TaskRecipe(size=64, frames=9, num_train=4000, num_val=32, sft_config="sft_tiny_steps.yaml",
                         grpo_config="grpo_tiny_steps.yaml", ood=(("vr-tiny", 64),)),
    # the maze on two board sizes at once (3x3 and 4x4 cells, 8 pixels a block in 72x72 frames, 17 frames), for a
    # size it never saw: 5x5 cells (88x88)
    "maze_mixed": TaskRecipe(task="maze", size=72, frames=17, difficulty="tiny-fill", levels=("easy-fill",), cell=8,
                             num_train=4000, num_val=32, sft_config="sft_tiny_fill_mixed.yaml",
                             grpo_config="grpo_tiny_fill_mixed.yaml", ood=(("medium-fill", 88),)),
    # a 7x7 road network (8 pixels a cell), a route through 3+ junctions in at most 8 moves
    "pathfinder": TaskRecipe(size=56, frames=9, num_train=4000, num_val=32, sft_config="sft_tiny_steps.yaml",
                             grpo_config="grpo_tiny_steps.yaml", ood=(("easy", 72),)),  # 9x9, 4+ junctions, 16 moves
    # the camera's 5x5 view, trained by GRPO on the embedding-level reward
    "navigation": TaskRecipe(size=40, frames=9, num_train=4000, num_val=32, sft_config="sft_tiny_steps.yaml",
                             grpo_config="grpo_tiny_steps.yaml"),
}
ALL_STEPS_CALLBACKS = ('{"trainer": {"callbacks": [{"class_path": "videoreason.callbacks.AllSteps"}, '
                       '{"class_path": "videoreason.callbacks.PlotCurves"}]}}')


def variants(task: str, ablate: Sequence[str]) -> dict[str, list[str]]:
    """GRPO variant name -> extra ``fit`` arguments on top of ``configs/<task>/grpo_tiny.yaml``."""
    out = {"grpo": []}
    if "reward" in ablate:
        out["sparse"] = ["--model.init_args.reward", str(PRESETS / f"{task}_sparse.yaml")]
    if "plan" in ablate:
        out["all_steps"] = ["--config", ALL_STEPS_CALLBACKS]
    return out


def run(command: list[str], log: Path, name: str = "", journal: Path | None = None) -> float:
    """Run one ``videoreason`` command, output to ``log`` and its live progress to the console (``watch``: from the
    training's ``journal`` for a ``fit``); its wall time in seconds. Fails loudly."""
    log.parent.mkdir(parents=True, exist_ok=True)
    print("$ videoreason " + " ".join(command), flush=True)
    start = time.perf_counter()
    with log.open("w") as stream:
        process = subprocess.Popen([sys.executable, "-m", "videoreason.cli", *command], stdout=stream,
                                   stderr=subprocess.STDOUT)
        code = watch(process, log, name or command[0], journal=journal)
    if code:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-20:])
        raise RuntimeError(f"`videoreason {command[0]}` failed (exit {code}); log {log}:\n{tail}")
    return time.perf_counter() - start


def latest_progress(text: str) -> str | None:
    """The last progress-bar state in a command's output (tqdm redraws with carriage returns), or ``None``: what a
    data or eval command shows (a training phase is shown from its journal)."""
    for segment in reversed(re.split(r"[\r\n]", ANSI.sub("", text))):
        if PROGRESS.search(segment):
            return " ".join(segment.split())
    return None


def tail(path: Path, size: int = 20000) -> str:
    """The last ``size`` bytes of a file, as text (the log a phase is still writing)."""
    with path.open("rb") as stream:
        stream.seek(max(stream.seek(0, 2) - size, 0))
        return stream.read().decode(errors="replace")


def watch(process: subprocess.Popen, log: Path, name: str, every: float = 1.0, journal: Path | None = None) -> int:
    """Wait for ``process``, showing its latest progress as one console line: its training ``journal``'s latest
    state (`ProgressJournal`) when given, else the latest progress bar of its ``log``; redrawn in place on a
    terminal, else printed when it changes at most every 30 s. Returns the exit code."""
    tty = sys.stdout.isatty()
    width = shutil.get_terminal_size((120, 20)).columns - 1
    shown, last_print, start = None, 0.0, time.perf_counter()
    while True:
        code = process.poll()
        if journal is not None:
            state = journal_line(read_journal(journal)) if journal.is_file() else None
        else:
            state = latest_progress(tail(log)) if log.is_file() else None
        line = f"[{name} {time.perf_counter() - start:5.0f}s] {state}"
        if state is not None and state != shown and (tty or code is not None or time.time() - last_print > 30):
            print(("\r" + line[:width].ljust(width)) if tty else line, end="" if tty else "\n", flush=True)
            shown, last_print = state, time.time()
        if code is not None:
            if tty and shown is not None:
                print(flush=True)
            return code
        time.sleep(every)


def per_puzzle(eval_dir: Path) -> dict[str, dict[str, float]]:
    """Puzzle id -> headline metrics, from an evaluation's ``samples.jsonl``."""
    return {r["id"]: {m: float(r[m]) for m in HEADLINE} for r in read_sample_rows(eval_dir)}


class Recipe:
    """Runs and reports the recipe (see the module docstring)."""

    def __init__(self, task: str, out: Path, ablate: Sequence[str], seed: int, reuse: bool,
                 overrides: dict[str, list[str]], from_scratch: bool = False, ood: bool = False,
                 plateau: bool = False) -> None:
        if task not in RECIPES:
            raise ValueError(f"unknown task {task!r}; recipes exist for {sorted(RECIPES)}")
        self.recipe = RECIPES[task]
        self.name, task = task, self.recipe.task or task  # the recipe, and the task it trains
        for config in (self.recipe.sft_config, self.recipe.grpo_config):
            if not (CONFIGS / task / config).is_file():
                raise FileNotFoundError(f"missing recipe config {CONFIGS / task / config}")
        self.task, self.out, self.seed, self.reuse = task, out, seed, reuse
        self.plateau = plateau
        trains_sft = from_scratch or plateau or self.recipe.pretrained is None
        self.start = None if trains_sft else PretrainedModel(self.recipe.pretrained)
        self.variants = variants(task, ablate)
        self.sft_more = "sft_more" in ablate
        self.overrides = overrides
        self.ood = self.recipe.ood if ood else ()
        if ood and not self.ood:
            raise ValueError(f"the {self.name} recipe has no out-of-distribution splits; `--ood true` serves "
                             f"{sorted(t for t, r in RECIPES.items() if r.ood)}")
        times = out / TIMES_FILE
        self.times: dict[str, float] = json.loads(times.read_text()) if reuse and times.is_file() else {}

    @property
    def data_seed(self) -> int:
        """The seed of the dataset: the packaged start's own, so that its test puzzles stay held out from what it
        was trained on, else ``--seed``."""
        return self.seed if self.start is None else self.start.data_seed

    def phase(self, name: str, done: Path, command: list[str], journal: Path | None = None) -> None:
        if self.reuse and done.exists():
            print(f"reusing {done}")
            return
        self.times[name] = run(command, self.out / "logs" / f"{name}.log", name, journal)
        write_atomic(self.out / TIMES_FILE, json.dumps(self.times, indent=1).encode())

    def evaluate(self, name: str, model: Path) -> None:
        for split, data in (("test", self.out / "data"), *((f"ood_{level}", self.out / f"ood_{level}")
                                                            for level, _ in self.ood)):
            phase = f"eval_{name}" if split == "test" else f"eval_{name}_{split}"
            self.eval_phase(phase, model, data, "test", self.out / name / "eval" / split)

    def eval_phase(self, phase: str, model: Path, data: Path, split: str, out: Path) -> None:
        """Score ``model`` on ``data``'s ``split`` into ``out``, with the recipe's noise seed and batch."""
        self.phase(phase, out / SAMPLES_FILE, [
            "eval", "--ckpt", str(model), "--data", str(data), "--split", split,
            "--seed", str(self.seed), "--batch_size", str(EVAL_BATCH), "--out", str(out)])

    def fit(self, name: str, config: str, extra: list[str], evaluate: bool = True) -> Path:
        """Train phase ``name`` (SFT when ``config`` is the SFT config) and score its export; the export folder."""
        run_dir = self.out / name
        self.phase(name, run_dir / "adapter", [
            "fit", "--config", str(CONFIGS / self.task / config), "--seed_everything", str(self.seed),
            "--trainer.default_root_dir", str(run_dir), "--data.init_args.root", str(self.out / "data"),
            "--ckpt_path", "last",  # an interrupted phase continues from its last checkpoint (--reuse)
            *extra, *self.overrides["sft" if config == self.recipe.sft_config else "grpo"]], run_dir / JOURNAL_FILE)
        if evaluate:
            self.evaluate(name, run_dir / "adapter")
        return run_dir / "adapter"

    def fit_to_plateau(self) -> Path:
        """SFT until validation stops improving, then the best validation's model, raw or EMA weights as the
        validation puzzles decide (``videoreason.plateau``), exported to ``sft/plateau_model``; that folder."""
        from videoreason.models.export import export_module, load_module
        from videoreason.plateau import best_validation, checkpoint_at, raw_weights_checkpoint, read_plateau

        run_dir = self.out / "sft"
        self.fit("sft", self.recipe.sft_config, [
            *(f"--trainer.callbacks+={callback_root() / name}" for name in PLATEAU_CALLBACKS),
            "--trainer.max_steps", str(PLATEAU_MAX_STEPS), "--data.init_args.num_val_puzzles", str(self.num_val)],
            evaluate=False)
        chosen = run_dir / "plateau_model"
        if self.reuse and (run_dir / PLATEAU_CHOICE).is_file() and chosen.is_dir():
            return chosen
        best = best_validation(read_plateau(run_dir))
        saved = checkpoint_at(run_dir, int(best["step"]))
        raw = raw_weights_checkpoint(saved, run_dir / "checkpoints" / f"step{best['step']}-raw.ckpt")
        candidates = {"raw": saved} if raw is None else {"ema": saved, "raw": raw}
        rates = {}
        for weights, checkpoint in candidates.items():
            out = run_dir / "eval" / f"val_{weights}"
            self.eval_phase(f"eval_sft_val_{weights}", checkpoint, self.out / "data", "val", out)
            scores = per_puzzle(out)
            rates[weights] = sum(r["success"] for r in scores.values()) / len(scores)
        weights = max(rates, key=lambda w: (rates[w], w == "ema"))  # EMA on a tie: what validation ran on
        export_module(load_module(candidates[weights]), chosen)
        record = {**best, "weights": weights, "val_success": rates, "checkpoint": str(candidates[weights])}
        write_atomic(run_dir / PLATEAU_CHOICE, json.dumps(record, indent=1).encode())
        return chosen

    def fit_sft_more(self, sft: Path) -> None:
        """Plain SFT from ``sft``'s weights for GRPO's time: the baseline given the same compute. The time is GRPO's
        MLflow run (its trainer, process start and imports left out, as ``--trainer.max_time`` leaves them out),
        else the grpo phase's wall time."""
        from videoreason.tracking import run_seconds

        seconds = run_seconds(self.out / "grpo") or self.times.get("grpo")
        if seconds is None:
            raise ValueError("`sft_more` runs for GRPO's wall time, but the grpo phase's time is not recorded in "
                             f"{self.out / TIMES_FILE}; rerun the grpo phase")
        whole = int(round(seconds))
        budget = f"00:{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
        self.fit("sft_more", self.recipe.sft_config, [
            "--model.init_args.transformer", str(sft / "transformer"), "--trainer.max_steps", "-1",
            "--trainer.max_time", budget])

    def run_all(self) -> dict:
        data, root = self.recipe, self.out / "data"
        # the test puzzles first: later splits skip their boards (and every rotation and reflection of them)
        num_train = data.num_train if self.start is None else data.num_train_grpo
        for level in (data.difficulty, *data.levels):  # one folder: the levels' boards drawn alike
            suffix = f"_{level}" if data.levels else ""
            for split, num in (("test", data.num_test), ("val", self.num_val), ("train", num_train)):
                self.phase(f"data_{split}{suffix}", done := root / f".done_{split}_{num}{suffix}", [
                    "data", "generate", "--task", self.task, "--difficulty", level, "--num", str(num),
                    "--split", split, "--seed", str(self.data_seed), "--out", str(root), *data.render])
                done.touch()
        for level, size in self.ood:  # frames: what the level needs (`data generate` picks them)
            folder = self.out / f"ood_{level}"
            self.phase(f"data_ood_{level}", done := folder / f".done_test_{data.num_ood}", [
                "data", "generate", "--task", self.task, "--difficulty", level, "--num", str(data.num_ood),
                "--split", "test", "--seed", str(self.data_seed), "--out", str(folder), "--height", str(size),
                "--width", str(size)])
            folder.mkdir(parents=True, exist_ok=True)
            done.touch()
        if self.plateau:
            self.evaluate("sft", sft := self.fit_to_plateau())
        elif self.start is None:  # the packaged model's steps, so that this reproduces it
            steps = [] if data.pretrained is None else [
                "--trainer.max_steps", str(PretrainedModel(data.pretrained).card["optimizer_steps"])]
            sft = self.fit("sft", data.sft_config, steps)
        else:
            print(f"SFT model: the packaged {self.start.name} ({self.start.path}); "
                  "`videoreason recipe --from_scratch true` trains it")
            self.evaluate("sft", sft := self.start.path)
        for name, extra in self.variants.items():
            self.fit(name, data.grpo_config, ["--model.init_args.init_from", str(sft), *extra])
        if self.sft_more:
            self.fit_sft_more(sft)
        return self.report()

    @property
    def num_val(self) -> int:
        """Validation puzzles: more for a plateau run, whose stop rule compares validations."""
        return max(self.recipe.num_val, self.recipe.num_val_plateau) if self.plateau else self.recipe.num_val

    @property
    def comparisons(self) -> list[tuple[str, str]]:
        """(model, baseline) pairs whose SR difference the report gives with a paired interval."""
        pairs = [(m, "sft") for m in self.variants]
        return pairs + ([("sft_more", "sft"), ("grpo", "sft_more")] if self.sft_more else [])

    def plateau_record(self) -> dict:
        """Where the SFT run plateaued and which model was kept: steps, samples, wall time, weights."""
        import os

        from videoreason.plateau import read_plateau

        run_dir = self.out / "sft"
        choice, run = json.loads((run_dir / PLATEAU_CHOICE).read_text()), read_plateau(run_dir)
        per_step = (run.get("samples_seen") or 0) / max(run["step"], 1)
        wall = self.times.get("sft")
        return {"best_step": choice["step"], "best_val_success": choice["success"], "stopped_step": run["step"],
                "samples": round(choice["step"] * per_step), "weights": choice["weights"],
                "val_success": choice["val_success"], "sft_wall_s": wall,
                "cpu_hours": None if wall is None else wall * (os.cpu_count() or 1) / 3600}

    @property
    def models(self) -> list[str]:
        """Every scored model, in table order."""
        return ["sft", *self.variants, *(["sft_more"] if self.sft_more else [])]

    def report(self) -> dict:
        models = self.models
        scores = {m: per_puzzle(self.out / m / "eval" / "test") for m in models}
        ids = sorted(scores["sft"])
        for m in models:
            if sorted(scores[m]) != ids:
                raise ValueError(f"{m} was evaluated on other puzzles than sft ({len(scores[m])} vs {len(ids)})")
        table: dict[str, dict[str, Estimate]] = {
            m: {k: bootstrap_mean([scores[m][i][k] for i in ids], seed=self.seed).scaled(100) for k in HEADLINE}
            for m in models}
        gains = {(m, base): paired_difference([scores[m][i]["success"] for i in ids],
                                              [scores[base][i]["success"] for i in ids], seed=self.seed).scaled(100)
                 for m, base in self.comparisons}
        result = {"recipe": self.name, "task": self.task, "n": len(ids), "seed": self.seed, "times_s": self.times,
                  "metrics": {m: {k: vars(e) for k, e in row.items()} for m, row in table.items()},
                  "sr_gain": {m if base == "sft" else f"{m}-{base}": vars(e) for (m, base), e in gains.items()}}
        if (self.out / "sft" / PLATEAU_CHOICE).is_file():
            result["plateau"] = self.plateau_record()
        curves = self.curves(models)
        result["curves"] = {m: [dataclasses.asdict(p) for p in points] for m, points in curves.items()}
        ood = {f"ood_{level}": self.ood_table(f"ood_{level}", models) for level, _ in self.ood}
        result["ood"] = {split: {m: {k: vars(e) for k, e in row.items()} for m, row in rows.items()}
                         for split, (rows, _) in ood.items()}
        summary = self.markdown(table, gains, len(ids), result.get("plateau"))
        text = "\n\n".join([summary, *(text for _, text in ood.values()),
                             *(curve_table(f"learning curve of {m} (validation puzzles)", points)
                               for m, points in curves.items())])
        print(text)
        self.out.mkdir(parents=True, exist_ok=True)
        if curves:
            plot_curves({m: p for m, p in curves.items() if m == "sft"},
                        {m: p for m, p in curves.items() if m != "sft"}, self.out / CURVES_FILE)
        write_atomic(self.out / "results.md", (text + "\n").encode())
        write_atomic(self.out / "results.json", json.dumps(result, indent=1).encode())
        self.track(result, table)
        return result

    def ood_table(self, split: str, models: Sequence[str]) -> tuple[dict[str, dict[str, Estimate]], str]:
        """Every model's metrics on one out-of-distribution split (same puzzles, 95% bootstrap CIs) and its table."""
        scores = {m: per_puzzle(self.out / m / "eval" / split) for m in models}
        ids = sorted(scores[models[0]])
        rows = {m: {k: bootstrap_mean([scores[m][i][k] for i in ids], seed=self.seed).scaled(100) for k in HEADLINE}
                for m in models}
        head = ["model", *(LABELS[k] for k in HEADLINE)]
        lines = [f"{self.name} out of distribution, {split.removeprefix('ood_')}: {len(ids)} puzzles held out by "
                 "construction (larger or longer than any trained on), mean [95% bootstrap CI] in %", "",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                 *(f"| {m} | " + " | ".join(str(row[k]) for k in HEADLINE) + " |" for m, row in rows.items())]
        return rows, "\n".join(lines)

    def curves(self, models: Sequence[str]) -> dict[str, list[CurvePoint]]:
        """Each trained model's validation curve from its run's MLflow store (models not trained here have none)."""
        out = {}
        for m in models:
            try:
                points = read_curve(self.out / m, self.task)
            except FileNotFoundError:
                continue
            if points:
                out[m] = points
        return out

    def markdown(self, table: dict[str, dict[str, Estimate]], gains: dict[tuple[str, str], Estimate], n: int,
                 plateau: dict | None = None) -> str:
        head = ["model", *(LABELS[k] for k in HEADLINE), "train wall time"]
        lines = [f"{self.name}: {n} held-out test puzzles, mean [95% bootstrap CI] in %, seed {self.seed}", "",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for m, row in table.items():
            wall = self.times.get(m)
            if m == "sft" and self.start is not None:
                trained = f"{self.start.card['train_wall_minutes']:.0f} min (packaged)"
            else:
                trained = "-" if wall is None else f"{wall / 60:.1f} min"
            lines.append(f"| {m} | " + " | ".join(str(row[k]) for k in HEADLINE) + f" | {trained} |")
        lines.append("")
        for (m, base), gain in gains.items():
            disjoint = not table[m]["success"].overlaps(table[base]["success"])
            lines.append(f"- {m} SR - {base} SR: {gain.mean:+.1f} points, paired 95% CI [{gain.low:+.1f}, "
                         f"{gain.high:+.1f}]; the two SR intervals {'do not overlap' if disjoint else 'overlap'}")
        if plateau is not None:
            val = ", ".join(f"{w} {100 * r:.1f}%" for w, r in plateau["val_success"].items())
            wall = "" if plateau["sft_wall_s"] is None else (
                f", {plateau['sft_wall_s'] / 60:.1f} min of SFT (~{plateau['cpu_hours']:.1f} CPU-hours)")
            lines.append(f"- sft is the SFT run's plateau: best validation SR {100 * plateau['best_val_success']:.1f}% "
                         f"at step {plateau['best_step']} ({plateau['samples']} samples), stopped at step "
                         f"{plateau['stopped_step']}{wall}; {plateau['weights']} weights, chosen on validation "
                         f"({val})")
        if "all_steps" in table:
            sr = table["grpo"]["success"].mean - table["all_steps"]["success"].mean
            saved = (f"{1 - self.times['grpo'] / self.times['all_steps']:.1%} less GRPO wall time"
                     if {"grpo", "all_steps"} <= set(self.times) else "wall times not measured")
            lines.append(f"- Early-Step Focus vs all steps trained: SR {sr:+.1f} points, {saved}")
        if "sparse" in table:
            diff = {k: table["grpo"][k].mean - table["sparse"][k].mean for k in ("success", "f1")}
            lines.append(f"- dense vs sparse reward: SR {diff['success']:+.1f} points, F1 {diff['f1']:+.1f} points")
        total = sum(self.times.values())
        lines.append(f"- wall time of all phases: {total / 60:.1f} min: "
                     + ", ".join(f"{k} {v / 60:.1f}" for k, v in self.times.items()))
        return "\n".join(lines)

    def track(self, result: dict, table: dict[str, dict[str, Estimate]]) -> None:
        from videoreason.tracking import TrackedRun, experiment_name

        tracked = TrackedRun(self.out, run_name=f"summary_seed{self.seed}",
                             experiment=experiment_name(self.out / "sft"),
                             tags={"videoreason.phase": "recipe", "videoreason.task": self.task})
        tracked.log_params({"task": self.task, "seed": self.seed, "variants": ",".join(self.variants),
                            "n_test": result["n"]})
        tracked.log_metrics({f"{m}/{k}{suffix}": value for m, row in table.items() for k, e in row.items()
                             for suffix, value in (("", e.mean), ("_low", e.low), ("_high", e.high))})
        tracked.log_metrics({f"time/{k}_s": v for k, v in self.times.items()})
        for path in (self.out / "results.md", self.out / "results.json", self.out / CURVES_FILE):
            if path.is_file():
                tracked.log_artifact(path)
        for m in self.variants:
            curves = self.out / m / "curves.png"
            if curves.is_file():
                tracked.log_artifact(curves, f"curves/{m}")
        for m in self.models:
            for name in ("samples.mp4", "samples.png"):
                sample = self.out / m / "eval" / "test" / name
                if sample.is_file():
                    tracked.log_artifact(sample, f"samples/{m}")
        tracked.finish()
        print(f"MLflow: {tracked.hint}")


def recipe(task: str = "maze", out: Path | None = None,
           ablate: Sequence[Literal["reward", "plan", "sft_more"]] = (), seed: int = 0, reuse: bool = False,
           from_scratch: bool = False, sft_args: str = "", grpo_args: str = "", ood: bool = False,
           plateau: bool = False) -> dict:
    """Run a task's tiny recipe: data -> SFT -> GRPO -> held-out evaluation, with 95% confidence intervals.

    The phases and their outputs are described in ``videoreason.recipe``.

    Args:
        task: The task whose tiny recipe to run (maze, flowfree, sokoban, trapfield, maze_agent, maze3d,
            navigation, pathfinder).
        out: Output folder (default runs/recipe/<task>).
        ablate: Also run GRPO with the sparse reward (reward) and/or with all steps trained (plan), and/or
            continue SFT for GRPO's wall time (sft_more), e.g. ``[reward, plan, sft_more]``.
        seed: Seed of data, training and evaluation.
        reuse: Skip phases whose outputs already exist and continue an interrupted one.
        from_scratch: Train the SFT model too, instead of starting GRPO from the task's packaged SFT model.
        sft_args: Extra `fit` arguments of the SFT phase (one string).
        grpo_args: Extra `fit` arguments of every GRPO phase (one string).
        ood: Also score every model on the task's larger boards (out of distribution), each in its own table.
        plateau: Train the SFT model until validation success stops improving and start GRPO from its best
            validation's model (implies ``from_scratch``).

    Returns:
        The results (also in ``OUT/results.json``).
    """
    out = Path(out) if out is not None else Path("runs", "recipe", task)
    if out.exists() and any(out.iterdir()) and not reuse:
        raise ValueError(f"{out} already holds a recipe run; pass --reuse true to continue it or choose another --out")
    runner = Recipe(task, out, list(ablate), seed, reuse, {"sft": sft_args.split(), "grpo": grpo_args.split()},
                    from_scratch, ood, plateau)
    return runner.run_all()
