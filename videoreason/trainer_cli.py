"""``videoreason fit|validate|test``: LightningCLI over our phase modules and data modules.

YAML picks the module and data module by ``class_path`` (``model: {class_path: videoreason.phases.sft.SFTModule,
init_args: ...}``); the typed ``__init__`` signatures are the schema and ``--help``. Defaults added here, so every
run directory (``trainer.default_root_dir``) looks the same::

    RUN/config.yaml         the resolved config (also an MLflow artifact)
    RUN/checkpoints/        last.ckpt (+ best, if a monitor is set)  -- RunCheckpoint (saves on SIGTERM too)
    RUN/adapter/            LoRA safetensors + module.yaml           -- ExportAdapter
    RUN/samples/            validation video grids (mp4 + png)       -- LogSampleVideos
    RUN/curves.png|csv      loss / reward / validation curves        -- PlotCurves
    (console)               optimizer steps out of max_steps         -- StepProgressBar

MLflow: the run logs into its project's store (``runs/mlflow.db`` for a run directory under ``runs/``, else
``RUN/mlflow.db``; see ``videoreason.tracking``) unless ``trainer.logger`` or ``MLFLOW_TRACKING_URI`` says otherwise.

The render spec (frames, resolution) lives in the dataset's ``spec.json`` and the module reads it from the data
module at setup, so nothing has to be kept in agreement by hand; a spec the codec cannot encode is an error naming
``data.root`` and ``model.codec``.

A callback in the config replaces the default of its kind (a ``ModelCheckpoint`` with ``every_n_train_steps`` replaces
the default ``RunCheckpoint``), and ``--ckpt_path`` checkpoints are read with ``torch.load(weights_only=True)``
(no pickle from a user-supplied path) unless ``--weights_only false`` says otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import lightning as L
from jsonargparse import Namespace
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from videoreason.atomic import write_atomic
from videoreason.callbacks.checkpoint import RunCheckpoint
from videoreason.callbacks.curves import PlotCurves
from videoreason.callbacks.export import ExportAdapter
from videoreason.callbacks.progress import ProgressJournal, StepProgressBar
from videoreason.callbacks.samples import LogSampleVideos
from videoreason.callbacks.step_plans import StepPlan
from videoreason.compat import cli_section
from videoreason.help_format import PlainHelp
from videoreason.imports import import_path
from videoreason.parallel import launch_rank, rank_zero_init
from videoreason.tracking import describe_run, log_artifact, prepared_logger_config

PHASES = {"SFTModule": "sft", "GRPOModule": "grpo"}
"""``videoreason.phase`` tag of a module class."""

# (kind, default): a callback of that kind in the config replaces the default
DEFAULT_CALLBACKS: tuple[tuple[type[Callback], Callable[[], Callback]], ...] = (
    (ModelCheckpoint, RunCheckpoint), (ExportAdapter, ExportAdapter), (LogSampleVideos, LogSampleVideos),
    (PlotCurves, PlotCurves), (ProgressBar, StepProgressBar), (ProgressJournal, ProgressJournal))


class TrackedSaveConfig(SaveConfigCallback):
    """Writes ``RUN/config.yaml`` (overwriting, so a run can be resumed in place), uploads it to MLflow and tags the
    MLflow run (``describe_run``).

    Runs on rank 0 only; the run directory is ``trainer.default_root_dir`` whatever the logger's own layout. A logger
    that the CLI chose (``default_logger``) is left out of the saved file, so ``fit --config RUN/config.yaml`` with
    another ``default_root_dir`` logs as a run of that directory, not into this run.
    """

    def __init__(self, *args: Any, default_logger: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_logger = default_logger

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        path = Path(trainer.default_root_dir) / self.config_filename
        config = self.config.clone()
        if self.default_logger:
            config.trainer.logger = None
        write_atomic(path, self.parser.dump(config, skip_none=False).encode())  # a crash keeps the old file
        log_artifact(trainer, path)
        phase = PHASES.get(type(pl_module).__name__, type(pl_module).__name__)
        describe_run(trainer, phase, pl_module.hparams.get("init_from"), self.config)


class PlainArgumentParser(LightningArgumentParser):
    """Lightning's parser with ``PlainHelp`` by default: also for the parsers that ``--model.help CLASS`` builds
    (of the same type)."""

    def __init__(self, *args: Any, formatter_class: type = PlainHelp, **kwargs: Any) -> None:
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        """jsonargparse's error, plus the new name of each refused key that moved into a settings group."""
        super().error(message + moved_key_hints(message), ex)


REFUSED_CLASS = re.compile(r"class_path '([\w.]+)'")
REFUSED_KEYS = (re.compile(r"Option '(\w+)' is not accepted"),
                re.compile(r"Group '(\w+)' does not accept option '(\w+)'"),
                re.compile(r"unrecognized arguments: --(\w+)\.(\w+)="))
GIVEN_INIT_ARGS = re.compile(r"Given value: .*?'init_args': \{(.*)")
KEY_OR_BRACKET = re.compile(r"'(\w+)':|[{}()\[\]]")


def given_keys(message: str) -> list[str]:
    """The keys of the ``init_args`` a jsonargparse error prints (``beta``; a group's as ``sampling.batch_size``),
    read by bracket depth: its values may be reprs that are not Python literals (a parsed ``Namespace``)."""
    keys: list[str] = []
    for text in GIVEN_INIT_ARGS.findall(message):
        depth, last_key, group = 1, None, None
        for match in KEY_OR_BRACKET.finditer(text):
            token = match.group(0)
            if match.group(1):
                last_key = match.group(1)
                if depth == 1:
                    keys.append(last_key)
                elif depth == 2 and group:
                    keys.append(f"{group}.{last_key}")
            elif token in "{([":
                depth += 1
                if depth == 2:  # a group is a mapping right after a top-level key
                    group = last_key if token == "{" else None
                last_key = None
            else:
                depth -= 1
                if depth == 0:
                    break
    return keys


def refused_keys(message: str) -> list[str]:
    """The module keys a jsonargparse error ``message`` names or shows (``beta``, ``sampling.rollout_batch_size``):
    those it refused, and every key of the ``init_args`` it prints, since it stops at the first refusal."""
    keys = [".".join(m) if isinstance(m, tuple) else m for pattern in REFUSED_KEYS for m in pattern.findall(message)]
    return list(dict.fromkeys(keys + given_keys(message)))


def moved_key_hints(message: str) -> str:
    """``"\n  `model.init_args.beta` is now `model.init_args.loss.beta`"`` for each key of a module's old layout
    (configs written before the phases grouped their settings) that a parser ``message`` refuses or shows."""
    from videoreason.phases.settings import flat_key_hint

    hints = []
    for path in dict.fromkeys(REFUSED_CLASS.findall(message)):
        try:
            module_class = import_path(path)
        except ImportError:
            continue
        if isinstance(module_class, type):
            hints += [h for key in refused_keys(message) if (h := flat_key_hint(module_class, key))]
    return "".join(f"\n  {hint}" for hint in dict.fromkeys(hints))


class VideoReasonCLI(LightningCLI):
    """LightningCLI with the module and data module chosen by ``class_path`` and MLflow as the default logger."""

    def __init__(self, args: Sequence[str] | None = None, run: bool = True) -> None:
        super().__init__(
            L.LightningModule,
            L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=TrackedSaveConfig,
            save_config_kwargs={"overwrite": True, "save_to_log_dir": False},
            parser_class=PlainArgumentParser,
            auto_configure_optimizers=False,
            args=list(args) if args is not None else None,
            run=run,
        )

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        """The configured callbacks, then each default whose kind (``DEFAULT_CALLBACKS``) none of them is (no
        progress bar under ``enable_progress_bar: false``)."""
        trainer = cli_section(self, self.config_init, "trainer", default={})
        configured = trainer.get("callbacks") or []
        configured = configured if isinstance(configured, list) else [configured]
        kinds = [(kind, make) for kind, make in DEFAULT_CALLBACKS
                 if not (kind is ProgressBar and trainer.get("enable_progress_bar") is False)]
        defaults = [make() for kind, make in kinds if not any(isinstance(c, kind) for c in configured)]
        plans = [c for c in configured if isinstance(c, StepPlan)]
        if len(plans) > 1:  # `--trainer.callbacks+=callbacks/all_steps.yaml` on a config with EarlyStepFocus
            rank_zero_info(f"step plan: {type(plans[-1]).__name__}, given last, replaces "
                           f"{', '.join(type(p).__name__ for p in plans[:-1])}")
            configured = [c for c in configured if not isinstance(c, StepPlan) or c is plans[-1]]
        return super().instantiate_trainer(callbacks=[*configured, *defaults], **kwargs)

    def instantiate_classes(self) -> None:
        """Under ``FSDP2Strategy`` (or Lightning's ``ModelParallelStrategy``) ranks > 0 build a weightless
        transformer and receive rank 0's weights shard by shard once it is sharded (``videoreason.parallel``)."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        strategy = config.trainer.strategy
        name = str(getattr(strategy, "class_path", strategy))
        with rank_zero_init(name.endswith(("FSDP2Strategy", "ModelParallelStrategy"))):
            super().instantiate_classes()

    def after_fit(self) -> None:
        """Say where the run is in MLflow (as ``eval`` and ``recipe`` do)."""
        from videoreason.tracking import mlflow_loggers, ui_hint

        if self.trainer.is_global_zero:
            for logger in mlflow_loggers(self.trainer):
                hint = ui_hint(logger.experiment.tracking_uri, logger.experiment_id, logger.run_id)
                print(f"MLflow: {hint}", flush=True)

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--overwrite", type=bool, default=False,
                            help="fit: train into a run directory that already holds a run's checkpoint or export, "
                                 "replacing them (without it such a directory is refused unless --ckpt_path resumes)")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        group_saved_flat_keys(config.model)
        if "weights_only" in config and config.weights_only is None:
            config.weights_only = True  # resume without unpickling arbitrary objects
        trainer = config.trainer
        if self.subcommand == "fit" and not config.get("ckpt_path") and not config.get("overwrite"):
            refuse_finished_run(Path(trainer.default_root_dir or "."))
        if trainer.logger is None or trainer.logger is True:
            if launch_rank() > 0:  # loggers write from rank 0 only; others must not race it creating the store
                trainer.logger = False
                return
            root = Path(trainer.default_root_dir or ".")
            # a resumed fit continues the directory's latest MLflow run
            logger = prepared_logger_config(root, resume=resumes(config.get("ckpt_path"), root))
            trainer.logger = Namespace(class_path=logger["class_path"], init_args=Namespace(**logger["init_args"]))
            self.save_config_kwargs["default_logger"] = True


def group_saved_flat_keys(model: Any) -> None:
    """Move flat settings that ``--ckpt_path FILE`` brought in into their groups. LightningCLI reads a checkpoint's
    hyperparameters into the module's config, and those it has no option for (the flat keys of a checkpoint saved
    before the phases grouped their settings, ``learning_rate``) it keeps in ``dict_kwargs``; each goes to its group
    (``optimization.learning_rate``), over the config's value, as the checkpoint's hyperparameters do."""
    from videoreason.phases.settings import flat_keys

    kwargs = model.get("dict_kwargs") if isinstance(model, Namespace) else None
    if not kwargs:
        return
    moves = flat_keys(import_path(model.class_path))
    for key in [k for k in kwargs if k in moves]:
        group, field = moves[key]
        settings = model.init_args.get(group)
        if settings is None:
            settings = model.init_args[group] = Namespace()
        settings[field] = kwargs.pop(key)


def resumes(ckpt_path: str | None, root: Path) -> bool:
    """Whether ``fit --ckpt_path`` continues a run: a checkpoint path, or ``last`` with a last checkpoint in the run's
    ``checkpoints/`` (a fresh run with ``last``, e.g. in a folder deleted and started again, is a new run)."""
    if not ckpt_path:
        return False
    return ckpt_path != "last" or any((root / "checkpoints").glob("last*.ckpt"))


def refuse_finished_run(root: Path) -> None:
    """Raise if ``root`` holds another run's checkpoint or export, which a fresh ``fit`` would replace. A folder
    with an HPC checkpoint (``hpc_ckpt_*.ckpt``, a SLURM requeue) passes: Lightning resumes from it by itself."""
    if any(root.glob("hpc_ckpt_*.ckpt")):
        return
    found = [p for p in (root / "checkpoints" / "last.ckpt", root / "adapter") if p.exists()]
    if found:
        raise ValueError(f"{root} already holds a run ({', '.join(str(p) for p in found)}); a new fit would "
                         "overwrite it: continue it with `--ckpt_path last`, pick another "
                         "`--trainer.default_root_dir`, or pass `--overwrite true`")


PACKAGED_FLAGS = ("--config", "-c", "--trainer.callbacks", "--trainer.callbacks+")
"""Flags whose value may name a packaged file (``configs/...``, ``callbacks/...``)."""


def packaged_configs(args: Sequence[str]) -> list[str]:
    """``args`` with each ``--config`` / ``-c`` / ``--trainer.callbacks[+]`` path that is no file here but names a
    packaged config or callback preset (``configs/maze/sft_tiny.yaml``, ``callbacks/ema.yaml``) replaced by that
    file's installed path."""
    from videoreason.resources import resolve_config

    out = list(args)
    for i, arg in enumerate(out):
        flag, sep, value = arg.partition("=")
        if sep and flag in PACKAGED_FLAGS:
            out[i] = f"{flag}={resolve_config(value)}"
        elif arg in PACKAGED_FLAGS and i + 1 < len(out):
            out[i + 1] = resolve_config(out[i + 1])
    return out


def run_lightning_cli(args: Sequence[str]) -> int:
    """Run a LightningCLI subcommand (``fit``, ``validate``, ``test``). A run stopped by SIGTERM (its checkpoint
    saved by ``RunCheckpoint``) returns 143, the status a shell reports for a process SIGTERM ended."""
    import sys

    from videoreason.tracking import keep_tracking_uri

    args = packaged_configs(args)
    if any(a.endswith(".help") or a.startswith(("--model.help", "--data.help")) for a in args):
        # `--model.help SFTModule`: short class names resolve among the subclasses imported so far
        import videoreason.data.datamodule  # noqa: F401
        import videoreason.phases.grpo  # noqa: F401
        import videoreason.phases.sft  # noqa: F401
    try:
        with keep_tracking_uri():
            VideoReasonCLI(None if args == sys.argv[1:] else args)
    except SIGTERMException:
        return 143
    finally:
        _leave_process_group()
    return 0


def _leave_process_group() -> None:
    """Destroy the process group torchrun's ranks joined, while the interpreter is whole: left to interpreter
    shutdown, gloo's worker threads can abort a rank that has finished (``terminate called without an active
    exception``, SIGABRT) after its run succeeded."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
