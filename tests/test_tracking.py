"""One MLflow store per project: where runs go, what they are tagged with, how they link, resume and re-runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from videoreason.cli import main
from videoreason.tracking import EXPERIMENT_KIND, RUN_DIR_TAG, experiment_name, store_dir

CONFIGS = Path(__file__).resolve().parents[1] / "videoreason" / "configs" / "maze"


def test_runs_under_a_runs_folder_share_its_store_and_are_grouped_by_folder(tmp_path):
    runs = tmp_path / "project" / "runs"
    assert store_dir(runs / "maze" / "sft") == runs.resolve()
    assert store_dir(runs / "recipe" / "maze" / "grpo") == runs.resolve()
    assert experiment_name(runs / "maze" / "sft") == "maze"
    assert experiment_name(runs / "recipe" / "maze" / "grpo") == "recipe/maze"
    assert experiment_name(runs / "quick") == "videoreason"
    elsewhere = tmp_path / "scratch" / "run"
    assert store_dir(elsewhere) == elsewhere.resolve() and experiment_name(elsewhere) == "videoreason"


def _sft_args(run: Path, data: Path, *extra: str) -> list[str]:
    return ["fit", "--config", str(CONFIGS / "sft_tiny_lora.yaml"), "--trainer.default_root_dir", str(run),
            "--trainer.max_steps", "2", "--trainer.val_check_interval", "2", "--trainer.enable_progress_bar", "false",
            "--trainer.log_every_n_steps", "1", "--data.init_args.root", str(data), "--data.init_args.batch_size", "2",
            "--data.init_args.num_workers", "0", "--data.init_args.num_val_puzzles", "1",
            "--model.init_args.val_steps", "1", "--model.init_args.transformer", "tiny",
            "--model.init_args.lora.rank", "2", *extra]


@pytest.fixture(scope="module")
def project(tmp_path_factory, maze_dataset):
    """A project folder with an SFT run, a GRPO run started from it and an eval of the SFT run."""
    import os

    root = tmp_path_factory.mktemp("project")
    before = os.environ.pop("MLFLOW_TRACKING_URI", None)
    runs = root / "runs" / "maze"
    assert main(_sft_args(runs / "sft", maze_dataset)) == 0
    assert main(["fit", "--config", str(CONFIGS / "grpo_tiny.yaml"), "--trainer.default_root_dir", str(runs / "grpo"),
                 "--model.init_args.init_from", str(runs / "sft" / "adapter"), "--trainer.max_steps", "1",
                 "--trainer.enable_progress_bar", "false", "--data.init_args.root", str(maze_dataset),
                 "--data.init_args.batch_size", "1", "--data.init_args.num_workers", "0",
                 "--data.init_args.num_val_puzzles", "0", "--model.init_args.sampling.group_size", "2",
                 "--model.init_args.sampling.num_steps", "6", "--model.init_args.sampling.batch_size", "2",
                 "--model.init_args.lora.rank", "2", "--model.init_args.sampling.reward_workers", "1"]) == 0
    assert main(["eval", "--ckpt", str(runs / "sft" / "adapter"), "--data", str(maze_dataset), "--limit", "1",
                 "--steps", "1", "--workers", "1"]) == 0
    yield root
    if before is not None:
        os.environ["MLFLOW_TRACKING_URI"] = before


def _client(root: Path):
    from mlflow import MlflowClient

    return MlflowClient(f"sqlite:///{root / 'runs' / 'mlflow.db'}")


def _runs(client, experiment: str) -> dict[str, object]:
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r}"
    assert exp.tags.get(EXPERIMENT_KIND[0]) == EXPERIMENT_KIND[1]  # opens as model training, not GenAI
    return {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}


def test_every_run_of_a_project_is_in_its_one_store_tagged_and_linked(project, maze_dataset):
    client = _client(project)
    assert not list(project.glob("runs/maze/*/mlflow.db"))  # no per-run stores
    runs = _runs(client, "maze")
    assert set(runs) == {"sft", "grpo", "eval-test"}
    sft, grpo, ev = runs["sft"], runs["grpo"], runs["eval-test"]
    assert sft.data.tags[RUN_DIR_TAG] == str((project / "runs" / "maze" / "sft").resolve())
    assert sft.data.tags["videoreason.phase"] == "sft" and grpo.data.tags["videoreason.phase"] == "grpo"
    assert sft.data.tags["videoreason.task"] == "maze"
    assert sft.data.tags["videoreason.config"].endswith("sft_tiny_lora.yaml")
    assert sft.data.tags["videoreason.dataset"] == str(maze_dataset.resolve())
    assert grpo.data.tags["videoreason.init_from_run"] == sft.info.run_id
    assert ev.data.tags["mlflow.parentRunId"] == sft.info.run_id and ev.data.tags["videoreason.phase"] == "eval"
    assert "test/maze/tiny/success" in ev.data.metrics
    # params: trainer settings and the reward, no private keys
    assert sft.data.params["trainer.max_steps"] == "2" and "_instantiator" not in sft.data.params
    assert "WeightedSum" in grpo.data.params["reward"] or "class_path" in grpo.data.params["reward"]
    (dataset,) = sft.inputs.dataset_inputs
    assert dataset.dataset.name == maze_dataset.name and dataset.tags[0].value == "train"


def test_eval_says_where_to_see_its_run_in_model_training_mode(project, maze_dataset, capsys):
    assert main(["eval", "--ckpt", str(project / "runs" / "maze" / "sft" / "adapter"), "--data", str(maze_dataset),
                 "--limit", "1", "--steps", "1", "--workers", "1", "--out", str(project / "second_eval")]) == 0
    out = capsys.readouterr().out
    assert "mlflow ui --backend-store-uri sqlite:///" in out and "?workflowType=machine_learning" in out


def test_a_rerun_of_a_saved_config_logs_as_its_own_run_and_a_resume_continues_the_run(project, maze_dataset):
    sft = project / "runs" / "maze" / "sft"
    saved = yaml.safe_load((sft / "config.yaml").read_text())
    assert saved["trainer"]["logger"] is None  # the store and run name are not pinned in the file
    again = project / "runs" / "maze" / "again"
    assert main(["fit", "--config", str(sft / "config.yaml"), "--trainer.default_root_dir", str(again),
                 "--trainer.max_steps", "1"]) == 0
    client = _client(project)
    runs = _runs(client, "maze")
    assert runs["again"].data.tags[RUN_DIR_TAG] == str(again.resolve())
    assert runs["sft"].data.params["trainer.max_steps"] == "2"  # the old run untouched
    before = runs["again"].info.run_id
    assert main(["fit", "--config", str(again / "config.yaml"), "--trainer.max_steps", "2",
                 "--ckpt_path", "last"]) == 0
    exp = client.get_experiment_by_name("maze").experiment_id
    (resumed,) = client.search_runs([exp], filter_string=f"tags.`{RUN_DIR_TAG}` = '{again.resolve()}'")
    assert resumed.info.run_id == before
    history = client.get_metric_history(before, "train/loss")
    assert sorted({m.step for m in history}) == [0, 1]  # both steps in one run


def test_fit_says_where_to_see_its_run(tmp_path, maze_dataset, capsys):
    assert main(_sft_args(tmp_path / "runs" / "maze" / "said", maze_dataset)) == 0
    out = capsys.readouterr().out
    assert f"MLflow: mlflow ui --backend-store-uri sqlite:///{(tmp_path / 'runs').resolve()}/mlflow.db" in out
    assert "?workflowType=machine_learning" in out


def test_parallel_first_runs_in_a_fresh_project_all_finish_with_their_metrics(tmp_path, maze_dataset):
    """Three `videoreason fit` processes started at once in a project without a store (a small sweep) each finish
    with their own run and every metric: the store and experiment are made once, under a lock."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    runs = tmp_path / "project" / "runs"
    procs = [subprocess.Popen([sys.executable, "-m", "videoreason.cli",
                               *_sft_args(runs / "maze" / f"run{i}", maze_dataset)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env) for i in range(3)]
    outputs = [p.communicate(timeout=600)[0].decode(errors="replace") for p in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]
    client = _client(tmp_path / "project")
    found = _runs(client, "maze")
    assert set(found) == {"run0", "run1", "run2"}
    for run in found.values():
        assert run.info.status == "FINISHED"
        assert {"train/loss", "val/maze/success"} <= set(run.data.metrics), sorted(run.data.metrics)


def test_a_fresh_run_with_ckpt_path_last_in_a_deleted_and_restarted_folder_is_a_new_run(project, maze_dataset):
    """`--ckpt_path last` with no last checkpoint (what a recipe passes to every phase) starts a new MLflow run: the
    folder's earlier run, deleted from disk, is neither continued nor a clash of changed parameters."""
    import shutil

    run = project / "runs" / "maze" / "restarted"
    assert main(_sft_args(run, maze_dataset, "--ckpt_path", "last")) == 0
    shutil.rmtree(run)
    assert main(_sft_args(run, maze_dataset, "--ckpt_path", "last", "--data.init_args.batch_size", "1")) == 0
    client = _client(project)
    exp = client.get_experiment_by_name("maze").experiment_id
    runs = client.search_runs([exp], filter_string=f"tags.`{RUN_DIR_TAG}` = '{run.resolve()}'")
    assert sorted(r.data.params["data.batch_size"] for r in runs) == ["1", "2"]


def test_the_data_module_meets_the_tracked_data_contract(tmp_path):
    from videoreason.data.datamodule import PuzzleVideoDataModule
    from videoreason.tracking import TrackedData

    assert isinstance(PuzzleVideoDataModule(root=str(tmp_path)), TrackedData)
    assert not isinstance(object(), TrackedData)  # no dataset tags for a data module without them
