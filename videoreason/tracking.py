"""MLflow tracking: one local store per project, experiments by folder, runs linked to what they came from.

Where runs go. A run directory under a folder named ``runs`` (``runs/maze/sft_tiny``) logs into that folder's
SQLite store ``runs/mlflow.db`` (artifacts in ``runs/mlartifacts``), so every run of a project is in one place:
``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``. A run directory elsewhere keeps its own
``<run dir>/mlflow.db``. ``MLFLOW_TRACKING_URI`` in the environment, or ``trainer.logger`` in a config, overrides.

What a run holds. The experiment is the run directory's parent below ``runs`` (``maze``, ``recipe/maze``;
``videoreason`` otherwise), the run name its folder name, and the experiment is marked as model training
(``mlflow.experimentKind``) so MLflow's UI opens it in that mode. Tags (``videoreason.*``): the run directory,
phase, task(s), config file(s), dataset; ``mlflow.source.git.commit`` when run from a git checkout; GRPO runs name
the run of their ``init_from`` (``videoreason.init_from_run``); ``eval`` runs are child runs of the run they
evaluate. The training data is logged as a dataset input. Resuming (``--ckpt_path``) continues the run directory's
latest MLflow run. mlflow itself is imported only when a run starts.

Concurrency. Runs started at once in a fresh project would each create and migrate ``runs/mlflow.db`` and its
experiment at the same time (``table _alembic_tmp_metrics already exists``); ``prepare_store`` does both under an
exclusive lock on ``runs/mlflow.db.lock`` before any run logs, so parallel runs (a sweep) all start.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from lightning.pytorch.loggers import MLFlowLogger

if TYPE_CHECKING:
    import lightning as L
    from jsonargparse import Namespace
    from mlflow import MlflowClient

STORE_FOLDER = "runs"
DEFAULT_EXPERIMENT = "videoreason"
RUN_DIR_TAG = "videoreason.run_dir"
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def store_dir(run_dir: str | os.PathLike[str]) -> Path:
    """The folder whose ``mlflow.db`` holds ``run_dir``'s runs: its nearest ancestor named ``runs``, else itself."""
    path = Path(run_dir).resolve()
    return next((parent for parent in path.parents if parent.name == STORE_FOLDER), path)


def local_tracking_uri(run_dir: str | os.PathLike[str]) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the SQLite store of ``store_dir(run_dir)``."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    path = store_dir(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / 'mlflow.db'}"


@contextmanager
def store_lock(tracking_uri: str) -> Iterator[None]:
    """An exclusive lock on a local SQLite store (``<db>.lock`` beside it), held across processes; a no-op for any
    other store (a server serialises its own writes)."""
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    lock = Path(tracking_uri.removeprefix("sqlite:///") + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare_store(tracking_uri: str, experiment: str, artifact_location: str | None = None) -> str:
    """Create and migrate the store and create ``experiment`` in it if they are missing, under ``store_lock``, so
    processes starting at once do not race; returns the experiment's id."""
    from mlflow import MlflowClient

    with store_lock(tracking_uri):
        client = MlflowClient(tracking_uri)  # creates and migrates a new SQLite store
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found is not None else client.create_experiment(
            experiment, artifact_location)
        mark_experiment(client, experiment_id)
    return experiment_id


def experiment_name(run_dir: str | os.PathLike[str]) -> str:
    """``run_dir``'s parent below its ``runs`` folder (``runs/recipe/maze/sft`` -> ``recipe/maze``), else
    ``videoreason``."""
    path = Path(run_dir).resolve()
    store = store_dir(path)
    if store == path or path.parent == store:
        return DEFAULT_EXPERIMENT
    return path.parent.relative_to(store).as_posix()


def find_run(client: MlflowClient, run_dir: str | os.PathLike[str]) -> str | None:
    """Id of the latest MLflow run tagged with ``run_dir`` in ``client``'s store, or ``None``."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return None
    path = str(Path(run_dir).resolve()).replace("'", "\\'")
    runs = client.search_runs(experiments, filter_string=f"tags.`{RUN_DIR_TAG}` = '{path}'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id if runs else None


def ui_hint(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """How to look at a run: the ``mlflow ui`` command for a local store and the run's page, opened in the UI's
    model-training mode (MLflow 3's UI starts in its GenAI mode, which files training runs under "Evaluation runs")."""
    page = f"#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"
    if tracking_uri.startswith("sqlite:"):
        return f"mlflow ui --backend-store-uri {tracking_uri}, then http://127.0.0.1:5000/{page}"
    return f"{tracking_uri.rstrip('/')}/{page}"


def run_dir_of(ckpt: str | os.PathLike[str]) -> Path:
    """The training run folder of an export folder (``RUN/adapter``) or a checkpoint (``RUN/checkpoints/x.ckpt``)."""
    ckpt = Path(ckpt)
    return ckpt.parent if ckpt.is_dir() else ckpt.parent.parent


def run_of(run_dir: str | os.PathLike[str]) -> str | None:
    """Id of ``run_dir``'s latest MLflow run in its store (``local_tracking_uri``), or ``None``."""
    from mlflow import MlflowClient

    return find_run(MlflowClient(local_tracking_uri(run_dir)), run_dir)


def run_seconds(run_dir: str | os.PathLike[str]) -> float | None:
    """Seconds between the start and the end of ``run_dir``'s latest MLflow run (the trainer's own time, without
    the process start and imports before it); ``None`` when there is no finished run."""
    from mlflow import MlflowClient

    client = MlflowClient(local_tracking_uri(run_dir))
    run_id = find_run(client, run_dir)
    if run_id is None:
        return None
    info = client.get_run(run_id).info
    return None if info.end_time is None else (info.end_time - info.start_time) / 1000


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """``HEAD`` of the git checkout around ``cwd`` (default: the working directory), or ``None``."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def mark_experiment(client: MlflowClient, experiment_id: str) -> None:
    """Mark the experiment as model training, so MLflow's UI opens it in that mode (not the GenAI views)."""
    client.set_experiment_tag(experiment_id, *EXPERIMENT_KIND)


def dataset_input(root: str | os.PathLike[str], context: str = "train") -> Any:
    """An MLflow ``DatasetInput`` for a dataset folder: its name, a digest of ``spec.json`` and ``metadata.csv``
    (so a changed dataset shows as another one), and its path as the source."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    root = Path(root).resolve()
    digest = hashlib.sha256()
    for name in ("spec.json", "metadata.csv"):
        if (root / name).is_file():
            digest.update((root / name).read_bytes())
    dataset = Dataset(name=root.name, digest=digest.hexdigest()[:16], source_type="local",
                      source=json.dumps({"uri": str(root)}))
    return DatasetInput(dataset=dataset, tags=[InputTag(key="mlflow.data.context", value=context)])


@contextmanager
def keep_tracking_uri() -> Iterator[None]:
    """Undo, on exit, the global tracking URI that Lightning's ``MLFlowLogger`` sets (``mlflow.set_tracking_uri``
    exports it as ``MLFLOW_TRACKING_URI``), so the next run in this process logs to its own store, not this one's."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        yield
    finally:
        if os.environ.get("MLFLOW_TRACKING_URI") != before and "mlflow" in sys.modules:
            sys.modules["mlflow"].set_tracking_uri(before)  # None unsets the variable too


class RunLogger(MLFlowLogger):
    """Lightning's ``MLFlowLogger`` without private hyperparameters (LightningCLI's ``_instantiator``)."""

    def log_hyperparams(self, params: Any) -> None:
        params = params if isinstance(params, dict) else vars(params)
        super().log_hyperparams({k: v for k, v in params.items() if not str(k).startswith("_")})


def logger_config(run_dir: str | os.PathLike[str], run_id: str | None = None) -> dict[str, Any]:
    """The ``class_path``/``init_args`` of the default logger of a run directory (LightningCLI form); ``run_id``
    continues that MLflow run."""
    uri = local_tracking_uri(run_dir)
    init_args: dict[str, Any] = {"experiment_name": experiment_name(run_dir), "run_name": Path(run_dir).resolve().name,
                                 "tracking_uri": uri, "log_model": False, "run_id": run_id}
    if uri.startswith("sqlite:"):
        init_args["artifact_location"] = (store_dir(run_dir) / "mlartifacts").as_uri()
    return {"class_path": f"{__name__}.RunLogger", "init_args": init_args}


def prepared_logger_config(run_dir: str | os.PathLike[str], resume: bool = False) -> dict[str, Any]:
    """``logger_config`` of a run about to start, its store and experiment made first (``prepare_store``);
    ``resume`` continues the directory's latest MLflow run."""
    config = logger_config(run_dir)
    init_args = config["init_args"]
    prepare_store(init_args["tracking_uri"], init_args["experiment_name"], init_args.get("artifact_location"))
    if resume:
        init_args["run_id"] = run_of(run_dir)
    return config


def mlflow_loggers(trainer: L.Trainer) -> list[MLFlowLogger]:
    """The trainer's MLflow loggers (empty when it logs elsewhere or not at all)."""
    from lightning.pytorch.loggers import MLFlowLogger

    return [lg for lg in trainer.loggers if isinstance(lg, MLFlowLogger)]


def log_artifact(trainer: L.Trainer, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Upload a file or a folder to every MLflow run of the trainer (rank 0 only; no-op without MLflow)."""
    if trainer.global_rank != 0:
        return
    for lg in mlflow_loggers(trainer):
        if Path(path).is_dir():
            lg.experiment.log_artifacts(lg.run_id, str(path), artifact_path)
        else:
            lg.experiment.log_artifact(lg.run_id, str(path), artifact_path)


class TrackedRun:
    """A standalone MLflow run (outside a Trainer, e.g. ``videoreason eval``) in a run directory's store.

    Args:
        run_dir: The run's directory (``videoreason.run_dir``), whose store (``store_dir``) is used.
        run_name: MLflow run name.
        experiment: MLflow experiment (default: ``experiment_name`` of the directory whose store is used).
        parent_run_id: Makes this a child run of that run (MLflow's ``mlflow.parentRunId``).
        tags: More run tags.
        store_of: Use this directory's store instead of ``run_dir``'s (an evaluation logs beside the run it
            evaluates).
    """

    def __init__(self, run_dir: str | os.PathLike[str], run_name: str | None = None, experiment: str | None = None,
                 parent_run_id: str | None = None, tags: dict[str, str] | None = None,
                 store_of: str | os.PathLike[str] | None = None) -> None:
        from mlflow import MlflowClient

        config = logger_config(run_dir if store_of is None else store_of)["init_args"]
        experiment_id = prepare_store(config["tracking_uri"], experiment or config["experiment_name"],
                                      config.get("artifact_location"))
        self.client = MlflowClient(config["tracking_uri"])
        tags = {RUN_DIR_TAG: str(Path(run_dir).resolve()), **(tags or {})}
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        if commit := git_commit():
            tags["mlflow.source.git.commit"] = commit
        self.run_id = self.client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id
        self.experiment_id = experiment_id
        self.tracking_uri = config["tracking_uri"]

    @property
    def hint(self) -> str:
        """Where to see this run (``ui_hint``)."""
        return ui_hint(self.tracking_uri, self.experiment_id, self.run_id)

    def log_params(self, params: dict[str, Any]) -> None:
        for key, value in params.items():
            self.client.log_param(self.run_id, key, value)

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        for key, value in metrics.items():
            self.client.log_metric(self.run_id, key, float(value), step=step)

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        if Path(path).is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)


@runtime_checkable
class TrackedData(Protocol):
    """What `describe_run` reads of a data module: its dataset folder and the training tasks' mixing weights."""

    root: Path
    task_weights: dict[str, float]


def describe_run(trainer: L.Trainer, phase: str, init_from: str | None, config: Namespace) -> None:
    """Tag each MLflow run of ``trainer`` (run folder, ``phase``, config files, dataset, tasks, git commit, the run
    ``init_from`` started from) and log the trainer settings, the reward config and the training dataset."""
    from jsonargparse import Namespace

    tags = {RUN_DIR_TAG: str(Path(trainer.default_root_dir).resolve()), "videoreason.phase": phase,
            "videoreason.config": ", ".join(str(getattr(p, "absolute", p)) for p in config.get("config") or [])}
    data = trainer.datamodule if isinstance(trainer.datamodule, TrackedData) else None
    if data is not None:
        tags["videoreason.dataset"] = str(Path(data.root).resolve())
        if data.task_weights:
            tags["videoreason.task"] = ", ".join(sorted(data.task_weights))
    if commit := git_commit():
        tags["mlflow.source.git.commit"] = commit
    params = {f"trainer.{k}": getattr(v, "class_path", v) for k, v in vars(config.trainer).items()
              if k not in ("callbacks", "logger", "plugins", "profiler") and v is not None}
    init = config.model.get("init_args") if isinstance(config.model, Namespace) else None
    if init is not None and init.get("reward") is not None:
        reward = init.reward
        reward = reward.clone().as_dict() if isinstance(reward, Namespace) else str(reward)
        if isinstance(reward, dict):
            reward.pop("__path__", None)  # the file it came from: the config tag names the config
        params["reward"] = json.dumps(reward, default=str)
    for logger in mlflow_loggers(trainer):
        client, run_id = logger.experiment, logger.run_id
        mark_experiment(client, logger.experiment_id)
        start = find_run(client, run_dir_of(init_from)) if init_from else None
        for key, value in {**tags, **({"videoreason.init_from_run": start} if start else {})}.items():
            client.set_tag(run_id, key, value)
        logged = client.get_run(run_id).data.params  # a resumed run keeps its params: MLflow params are immutable
        for key, value in params.items():
            if key not in logged:
                client.log_param(run_id, key, value)
        if data is not None:
            client.log_inputs(run_id, datasets=[dataset_input(data.root)])
