"""MLflow tracking: the embedded default store under a run directory, and artifact logging through the trainer.

The default is a local SQLite store ``<run dir>/mlflow.db`` with artifacts in ``<run dir>/mlartifacts``
(``mlflow ui --backend-store-uri sqlite:///<run dir>/mlflow.db`` shows it). ``MLFLOW_TRACKING_URI`` in the
environment, or ``tracking_uri`` in a logger config, points runs at a server instead. mlflow is imported only here,
when a run starts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import lightning as L
    from lightning.pytorch.loggers import MLFlowLogger


def local_tracking_uri(run_dir: str | os.PathLike[str]) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the SQLite store ``<run_dir>/mlflow.db``."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    path = Path(run_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / 'mlflow.db'}"


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


def logger_config(run_dir: str | os.PathLike[str], experiment_name: str, run_name: str | None = None) -> dict[str, Any]:
    """The ``class_path``/``init_args`` of the default ``MLFlowLogger`` for a run directory (LightningCLI form)."""
    uri = local_tracking_uri(run_dir)
    init_args: dict[str, Any] = {"experiment_name": experiment_name, "run_name": run_name, "tracking_uri": uri,
                                 "log_model": False}
    if uri.startswith("sqlite:"):
        init_args["artifact_location"] = (Path(run_dir).resolve() / "mlartifacts").as_uri()
    return {"class_path": "lightning.pytorch.loggers.MLFlowLogger", "init_args": init_args}


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
        run_dir: Directory whose local store is used (unless ``MLFLOW_TRACKING_URI`` is set).
        experiment_name: MLflow experiment.
        run_name: MLflow run name.
    """

    def __init__(self, run_dir: str | os.PathLike[str], experiment_name: str, run_name: str | None = None) -> None:
        from mlflow import MlflowClient

        config = logger_config(run_dir, experiment_name, run_name)["init_args"]
        self.client = MlflowClient(config["tracking_uri"])
        experiment = self.client.get_experiment_by_name(experiment_name)
        experiment_id = (experiment.experiment_id if experiment is not None else
                         self.client.create_experiment(experiment_name, config.get("artifact_location")))
        self.run_id = self.client.create_run(experiment_id, run_name=run_name).info.run_id
        self.tracking_uri = config["tracking_uri"]

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
