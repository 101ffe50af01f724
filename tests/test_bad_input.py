"""Bad input to ``videoreason fit`` stops before training with one error naming the problem (exit code 2) and
writes nothing into the run: each case of the README's fault table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from videoreason.cli import main
from videoreason.data.dataset import read_rows

CONFIGS = Path(__file__).resolve().parents[1] / "videoreason" / "configs" / "maze"


def fit(config: dict, tmp_path: Path, *extra: str) -> int:
    """Run ``fit`` on ``config`` (written to a YAML file); returns the exit code."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    try:
        code = main(["fit", "--config", str(path), *extra])
    except SystemExit as exit:  # LightningCLI's parser errors
        code = exit.code
    return code


def sft_config(run: Path, data: Path) -> dict:
    config = yaml.safe_load((CONFIGS / "sft_tiny_lora.yaml").read_text())
    config["trainer"].update(default_root_dir=str(run), max_steps=1, logger=False, enable_progress_bar=False)
    config["model"]["init_args"]["transformer"] = "tiny"
    config["data"]["init_args"].update(root=str(data), num_val_puzzles=0, num_workers=0)
    return config


def run_fit(config: dict, tmp_path: Path, capsys, *extra: str) -> str:
    code = fit(config, tmp_path, *extra)
    captured = capsys.readouterr()
    assert code == 2, captured.err[-2000:]
    assert not (Path(config["trainer"]["default_root_dir"]) / "checkpoints").exists()  # nothing was trained
    return " ".join((captured.err + captured.out).split())


def broken_copy(data: Path, tmp_path: Path) -> tuple[Path, dict]:
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    return copy, read_rows(copy, split="train")[0]


def test_misspelt_yaml_key_is_named(tmp_path, maze_dataset, capsys):
    config = sft_config(tmp_path / "run", maze_dataset)
    config["model"]["init_args"]["learning_rat"] = 1e-3
    assert "Option 'learning_rat' is not accepted" in run_fit(config, tmp_path, capsys)


def test_unknown_class_path_is_named(tmp_path, maze_dataset, capsys):
    config = sft_config(tmp_path / "run", maze_dataset)
    config["model"]["class_path"] = "videoreason.phases.sft.SFTModul"
    assert "has no attribute 'SFTModul'" in run_fit(config, tmp_path, capsys)


def test_missing_model_folder_is_named(tmp_path, maze_dataset, capsys):
    config = sft_config(tmp_path / "run", maze_dataset)
    config["model"]["init_args"]["transformer"] = str(tmp_path / "Wan2.1-T2V-1.3B")
    err = run_fit(config, tmp_path, capsys)
    assert "Wan2.1-T2V-1.3B" in err and "nothing is downloaded" in err


def test_missing_adapter_file_is_named(tmp_path, maze_dataset, capsys, varying_reward):
    config = yaml.safe_load((CONFIGS / "grpo_tiny.yaml").read_text())
    config["trainer"].update(default_root_dir=str(tmp_path / "run"), max_steps=1, logger=False, callbacks=[])
    config["model"]["init_args"].update(init_from=str(tmp_path / "sft" / "adapter"), transformer="tiny",
                                        reward=varying_reward)
    config["data"]["init_args"].update(root=str(maze_dataset), num_val_puzzles=0)
    err = run_fit(config, tmp_path, capsys)
    assert str(tmp_path / "sft" / "adapter") in err


def test_frames_the_codec_cannot_encode_name_both_keys(tmp_path, capsys):
    from videoreason.data.generate import generate_dataset
    from videoreason.tasks.render import RenderSpec

    data = generate_dataset("maze", tmp_path / "data8", 4, difficulty="tiny", spec=RenderSpec.tiny(num_frames=8),
                            workers=1, progress=False)
    config = sft_config(tmp_path / "run", data)
    config["model"]["init_args"]["codec"] = {"class_path": "videoreason.models.codec.WanVAECodec",
                                             "init_args": {"path_or_tiny": "tiny"}}
    err = run_fit(config, tmp_path, capsys)
    assert "`data.root`" in err and "`model.codec`" in err and "4k+1" in err


def test_empty_dataset_is_named(tmp_path, maze_dataset, capsys):
    data, _ = broken_copy(maze_dataset, tmp_path)
    meta = data / "metadata.csv"
    meta.write_text(meta.read_text().splitlines(keepends=True)[0])  # the header only
    assert "has no rows in split 'train'" in run_fit(sft_config(tmp_path / "run", data), tmp_path, capsys)


def test_row_with_a_missing_video_is_named(tmp_path, maze_dataset, capsys):
    data, row = broken_copy(maze_dataset, tmp_path)
    (data / row["video"]).unlink()
    err = run_fit(sft_config(tmp_path / "run", data), tmp_path, capsys)
    assert row["id"] in err and "is missing" in err and "`data.bad_samples: skip`" in err


def test_row_with_a_corrupt_video_is_named(tmp_path, maze_dataset, capsys):
    data, row = broken_copy(maze_dataset, tmp_path)
    (data / row["video"]).write_bytes((data / row["video"]).read_bytes()[:300])  # truncated
    err = run_fit(sft_config(tmp_path / "run", data), tmp_path, capsys)
    assert row["id"] in err and "cannot read video" in err


def test_puzzle_json_that_does_not_validate_is_named(tmp_path, maze_dataset, capsys):
    data, row = broken_copy(maze_dataset, tmp_path)
    record = json.loads((data / row["puzzle"]).read_text())
    record["puzzle"]["walls"] = "everywhere"
    (data / row["puzzle"]).write_text(json.dumps(record))
    err = run_fit(sft_config(tmp_path / "run", data), tmp_path, capsys)
    assert row["id"] in err and "bad puzzle file" in err


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_bad_samples_skip_trains_on_the_rest(tmp_path, maze_dataset, damage):
    data, row = broken_copy(maze_dataset, tmp_path)
    if damage == "missing":
        (data / row["video"]).unlink()
    else:
        (data / row["video"]).write_bytes(b"\x00" * 100)
    config = sft_config(tmp_path / "run", data)
    config["data"]["init_args"]["bad_samples"] = "skip"
    with pytest.warns(UserWarning, match=rf"skipping 1 of 16 rows .*{row['id']}"):
        assert fit(config, tmp_path) == 0
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


def grpo_config(run: Path, data: Path, reward) -> dict:
    config = yaml.safe_load((CONFIGS / "grpo_tiny.yaml").read_text())
    config["trainer"].update(default_root_dir=str(run), max_steps=1, logger=False, callbacks=[])
    config["model"]["init_args"].update(init_from=None, transformer="tiny", reward=reward)
    config["data"]["init_args"].update(root=str(data), num_val_puzzles=0, num_workers=0)
    return config


@pytest.mark.parametrize(("group", "key", "value", "message"), [
    ("sampling", "noise_level", 0.0, "`sampling.noise_level` must be > 0"),
    ("loss", "adv_clip", 0.0, "`loss.adv_clip` must be > 0"),
    ("loss", "adv_clip", -1.0, "`loss.adv_clip` must be > 0"),
    ("optimization", "inner_epochs", 0, "`optimization.inner_epochs` must be >= 1"),
])
def test_grpo_settings_that_cannot_train_are_named(group, key, value, message, tmp_path, maze_dataset, capsys,
                                                    varying_reward):
    config = grpo_config(tmp_path / "run", maze_dataset, varying_reward)
    config["model"]["init_args"][group][key] = value
    assert message in run_fit(config, tmp_path, capsys)


@pytest.mark.parametrize(("key", "new"), [("beta", "loss.beta"), ("rollout_batch_size", "sampling.batch_size"),
                                          ("learning_rate", "optimization.learning_rate")])
def test_a_flat_key_from_before_the_grouping_names_its_new_key(key, new, tmp_path, maze_dataset, capsys,
                                                               varying_reward):
    config = grpo_config(tmp_path / "run", maze_dataset, varying_reward)
    config["model"]["init_args"][key] = 0.5
    assert f"`model.init_args.{key}` is now `model.init_args.{new}`" in run_fit(config, tmp_path, capsys)


def test_grpo_refuses_rotated_training_videos(tmp_path, maze_dataset, capsys, varying_reward):
    config = grpo_config(tmp_path / "run", maze_dataset, varying_reward)
    config["data"]["init_args"]["augment"] = True
    err = run_fit(config, tmp_path, capsys)
    assert "`data.augment`" in err and "GRPOModule" in err


def test_per_reward_normalization_needs_a_weighted_sum(tmp_path, maze_dataset, capsys):
    config = grpo_config(tmp_path / "run", maze_dataset, {"class_path": "videoreason.rewards.SuccessReward"})
    config["model"]["init_args"]["loss"]["per_reward_normalization"] = True
    err = run_fit(config, tmp_path, capsys)
    assert "`model.loss.per_reward_normalization`" in err and "SuccessReward" in err


def test_incomplete_pretrained_folder_is_named(tmp_path, maze_dataset, capsys, tiny_wan_dir):
    folder = tmp_path / "Wan2.2-TI2V-5B-Diffusers"
    shutil.copytree(tiny_wan_dir, folder)
    shutil.rmtree(folder / "tokenizer")
    config = sft_config(tmp_path / "run", maze_dataset)
    del config["model"]["init_args"]["transformer"]
    config["model"]["init_args"]["pretrained"] = str(folder)
    err = run_fit(config, tmp_path, capsys)
    assert "`model.pretrained`" in err and "tokenizer/" in err


def test_half_precision_base_needs_lora(tmp_path, maze_dataset, capsys):
    config = sft_config(tmp_path / "run", maze_dataset)
    config["model"]["init_args"].update(lora=None, base_dtype="bfloat16")
    assert "`model.base_dtype` 'bfloat16' is for the frozen weights under a LoRA" in run_fit(config, tmp_path, capsys)


def test_module_and_data_seeds_are_logged_apart(tmp_path, maze_dataset, capsys):
    """Both the module and the data module take a `seed`: MLflow records `seed` and `data.seed`, no clash."""
    from mlflow import MlflowClient

    run = tmp_path / "run"
    config = sft_config(run, maze_dataset)
    del config["trainer"]["logger"]
    assert fit(config, tmp_path, "--data.seed", "1") == 0, capsys.readouterr().err[-2000:]
    client = MlflowClient(f"sqlite:///{run / 'mlflow.db'}")
    (found,) = client.search_runs([client.get_experiment_by_name("videoreason").experiment_id])
    assert found.info.status == "FINISHED"
    assert found.data.params["seed"] == "0" and found.data.params["data.seed"] == "1"


def test_a_sample_whose_scoring_raises_scores_zero_and_the_error_is_named(tmp_path, maze_dataset, capsys,
                                                                         monkeypatch):
    """``data verify`` scores through the same path as validation: an exception costs its sample, not the run."""
    from videoreason.tasks.maze import Maze

    data, row = broken_copy(maze_dataset, tmp_path)
    verify = Maze.verify

    def verify_or_raise(self, parsed, puzzle):
        if puzzle.to_dict() == json.loads((data / row["puzzle"]).read_text())["puzzle"]:
            raise RuntimeError("boom")
        return verify(self, parsed, puzzle)

    monkeypatch.setattr(Maze, "verify", verify_or_raise)
    assert main(["data", "verify", str(data), "--split", "train", "--workers", "1", "--out", str(tmp_path / "v")]) == 0
    err = capsys.readouterr().err
    assert "1 of 16 videos error" in err and f"first error ({row['id']}): RuntimeError: boom" in err
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "v" / "samples.jsonl").read_text().splitlines())}
    assert rows[row["id"]]["status"] == "error" and rows[row["id"]]["success"] == 0
    assert sum(r["success"] for r in rows.values()) == 15


def test_every_old_key_of_a_config_is_named_at_once(tmp_path, maze_dataset, capsys, varying_reward):
    config = grpo_config(tmp_path / "run", maze_dataset, varying_reward)
    init = config["model"]["init_args"]
    init.update(beta=0.5, group_size=4)
    init["sampling"]["rollout_batch_size"] = init["sampling"].pop("batch_size")
    err = run_fit(config, tmp_path, capsys)
    for old, new in (("beta", "loss.beta"), ("group_size", "sampling.group_size"),
                     ("sampling.rollout_batch_size", "sampling.batch_size")):
        assert f"`model.init_args.{old}` is now `model.init_args.{new}`" in err


def test_a_checkpoint_saved_with_flat_keys_resumes_with_its_settings(tmp_path, maze_dataset):
    import torch

    run = tmp_path / "run"
    config = sft_config(run, maze_dataset)
    config["model"]["init_args"]["optimization"] = {"learning_rate": 1e-3}
    assert fit(config, tmp_path) == 0
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    hparams = saved["hyper_parameters"]
    for group in ("loss", "optimization"):  # the layout checkpoints had before the grouping
        hparams.update(hparams.pop(group))
    hparams["learning_rate"] = 2e-3  # the checkpoint's own value wins over the config's, as LightningCLI does
    old = tmp_path / "old.ckpt"
    torch.save(saved, old)
    config["trainer"]["max_steps"] = 2
    assert fit(config, tmp_path, "--ckpt_path", str(old), "--overwrite", "true") == 0
    resumed = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["global_step"] == 2
    assert resumed["hyper_parameters"]["optimization"]["learning_rate"] == 2e-3
    assert resumed["hyper_parameters"]["loss"]["change_weight"] == hparams["change_weight"]
