"""The ``videoreason`` command end to end on CPU: fit (LoRA SFT) -> checkpoint, adapter, MLflow run -> eval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from videoreason.cli import main

CONFIG = Path(__file__).resolve().parents[1] / "videoreason" / "configs" / "maze" / "sft_tiny_lora.yaml"


def _fit_args(run: Path, data: Path, *extra: str) -> list[str]:
    return ["fit", "--config", str(CONFIG), "--trainer.default_root_dir", str(run), "--trainer.max_steps", "8",
            "--trainer.val_check_interval", "8", "--trainer.enable_progress_bar", "false",
            "--trainer.log_every_n_steps", "2",
            "--data.init_args.root", str(data), "--data.init_args.batch_size", "4",
            "--data.init_args.num_workers", "0", "--data.init_args.num_val_puzzles", "2",
            "--data.init_args.samples_per_epoch", "16", "--model.init_args.val_steps", "2",
            "--model.init_args.transformer", "tiny", "--model.init_args.lora.rank", "4", *extra]


def _mlflow_runs(run: Path, experiment: str):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{run.resolve() / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r} in {run}"
    return client, client.search_runs([exp.experiment_id])


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, maze_dataset) -> Path:
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(_fit_args(run, maze_dataset)) == 0
    return run


def test_fit_writes_checkpoint_adapter_config_and_mlflow_run(trained_run):
    run = trained_run
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / "config.yaml").is_file() and (run / "adapter" / "module.yaml").is_file()
    lora = load_file(run / "adapter" / "pytorch_lora_weights.safetensors")
    assert lora and all(k.startswith("transformer.") for k in lora)
    # peft initialises lora_B to zero: non-zero B matrices mean the adapter trained
    assert any(v.abs().sum() > 0 for k, v in lora.items() if "lora_B" in k)
    assert list((run / "samples").glob("val_step*.mp4")) and list((run / "samples").glob("val_step*.png"))
    curves = (run / "curves.csv").read_text()  # PlotCurves is a default: the loss and the validation
    assert "train/loss," in curves and "val/maze/success," in curves and (run / "curves.png").is_file()
    client, runs = _mlflow_runs(run, "videoreason")
    assert len(runs) == 1
    history = client.get_metric_history(runs[0].info.run_id, "train/loss")
    assert history and all(torch.isfinite(torch.tensor(m.value)) for m in history)
    assert all(m.value > 0 for m in client.get_metric_history(runs[0].info.run_id, "grad_norm"))
    rates = [m.value for m in client.get_metric_history(runs[0].info.run_id, "learning_rate")]
    assert rates and rates == sorted(rates) and rates[-1] <= 3e-3  # warm-up to the config's peak
    assert "val/maze/success" in runs[0].data.metrics
    artifacts = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    assert {"config.yaml", "adapter", "samples", "curves.png"} <= artifacts


def test_fit_refuses_to_overwrite_a_finished_run_unless_asked(trained_run, maze_dataset, tmp_path, capfd):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained_run, run)
    before = (run / "adapter" / "pytorch_lora_weights.safetensors").read_bytes()
    assert main(_fit_args(run, maze_dataset)) == 2
    err = capfd.readouterr().err
    assert "already holds a run" in err and "--ckpt_path last" in err and "--overwrite true" in err
    assert (run / "adapter" / "pytorch_lora_weights.safetensors").read_bytes() == before
    (run / "mlflow.db").unlink()  # a new store: MLflow's first-run notices are due
    assert main(_fit_args(run, maze_dataset, "--model.init_args.seed", "1", "--overwrite", "true")) == 0
    assert (run / "adapter" / "pytorch_lora_weights.safetensors").read_bytes() != before
    console = "".join(capfd.readouterr())
    for noise in ("litlogger", "Creating initial MLflow database", "not found. Creating it", "LeafSpec"):
        assert noise not in console  # nothing a user cannot act on


def test_a_requeued_slurm_job_is_not_refused(tmp_path):
    from videoreason.trainer_cli import refuse_finished_run

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    with pytest.raises(ValueError, match="already holds a run"):
        refuse_finished_run(tmp_path)
    (tmp_path / "hpc_ckpt_1.ckpt").write_bytes(b"x")  # Lightning resumes from it without --ckpt_path
    refuse_finished_run(tmp_path)


def test_a_fit_too_short_to_validate_still_leaves_a_sample_picture(maze_dataset, tmp_path):
    run = tmp_path / "short"
    assert main(_fit_args(run, maze_dataset, "--trainer.max_steps", "1", "--trainer.val_check_interval", "50",
                          "--trainer.logger", "false")) == 0
    assert [p.name for p in (run / "samples").glob("*.png")] == ["end_step000001.png"]


def test_eval_from_adapter_and_checkpoint_agree(trained_run, maze_dataset, capsys):
    out_a, out_c = trained_run / "eval_a", trained_run / "eval_c"
    assert main(["eval", "--ckpt", str(trained_run / "adapter"), "--data", str(maze_dataset), "--out", str(out_a),
                 "--steps", "2", "--batch_size", "4", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "| task | difficulty | n | P | R | F1 | SR | EM |" in printed and "| maze | tiny | 4 |" in printed
    assert main(["eval", "--ckpt", str(trained_run / "checkpoints" / "last.ckpt"), "--data", str(maze_dataset),
                 "--out", str(out_c), "--steps", "2", "--batch_size", "4", "--workers", "1", "--track", "false"]) == 0
    table = json.loads((out_a / "metrics.json").read_text())
    assert table == json.loads((out_c / "metrics.json").read_text())  # same weights, same videos
    for name in ("metrics.md", "metrics.csv", "samples.jsonl", "preview.png", "samples.mp4"):
        assert (out_a / name).is_file()
    videos = sorted(p.name for p in (out_a / "videos").iterdir())
    assert videos == sorted(p.name for p in (out_c / "videos").iterdir()) and len(videos) == 4
    assert all((out_a / "videos" / v).read_bytes() == (out_c / "videos" / v).read_bytes() for v in videos)
    client, runs = _mlflow_runs(trained_run, "videoreason")  # beside the run it evaluates, as its child
    (evaluation,) = [r for r in runs if r.data.tags.get("videoreason.phase") == "eval"]
    (trained,) = [r for r in runs if r.data.tags.get("videoreason.phase") == "sft"]
    assert evaluation.data.tags["mlflow.parentRunId"] == trained.info.run_id
    assert "test/maze/tiny/success" in evaluation.data.metrics


def test_eval_fuses_the_lora_and_generates_the_same_videos(trained_run, maze_dataset, tmp_path):
    import numpy as np

    from videoreason.data.dataset import read_rows
    from videoreason.eval.evaluate import evaluate, generate_videos
    from videoreason.media import decode_video
    from videoreason.models.export import load_module

    module = load_module(trained_run / "adapter", base_dtype="float32")
    assert module.transformer.peft_config  # a LoRA run: evaluated unfused here, fused by `evaluate`
    rows = read_rows(maze_dataset, split="test")
    generate_videos(module, maze_dataset, rows, tmp_path / "unfused", batch_size=4, steps=2)
    report = evaluate(maze_dataset, ckpt=trained_run / "adapter", out=tmp_path / "fused", steps=2, batch_size=4,
                      workers=1, track=False)
    for video in sorted((tmp_path / "unfused").iterdir()):
        fused = decode_video(report.out_dir / "videos" / video.name).astype(int)
        diff = np.abs(fused - decode_video(video).astype(int))
        assert diff.mean() < 0.05 and diff.max() <= 8, (video.name, diff.mean(), diff.max())  # H.264 rounding


def test_eval_in_bf16_halves_the_weights_and_stays_close(trained_run, maze_dataset):
    from videoreason.eval.evaluate import generate_videos, resolve_device
    from videoreason.media import decode_video
    from videoreason.models.export import load_module

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    out_32, out_16 = trained_run / "eval_32", trained_run / "eval_bf16"
    for out, precision in ((out_32, "32"), (out_16, "bf16")):
        assert main(["eval", "--ckpt", str(trained_run / "adapter"), "--data", str(maze_dataset), "--out", str(out),
                     "--steps", "2", "--limit", "2", "--workers", "1", "--track", "false",
                     "--precision", precision]) == 0
    for name in sorted(p.name for p in (out_32 / "videos").iterdir()):
        diff = decode_video(out_32 / "videos" / name).astype(int) - decode_video(out_16 / "videos" / name)
        assert abs(diff).mean() < 8  # bf16 rounding, not another model
    module = load_module(trained_run / "adapter")
    rows = [{"id": "x", "input_image": "images/" + next((maze_dataset / "images").iterdir()).name,
             "prompt": "p", "video": "videos/x.mp4"}]
    generate_videos(module, maze_dataset, rows, trained_run / "eval_one", steps=1, precision="bf16")
    weights = module.transformer.blocks[0].attn1.to_q.base_layer.weight
    assert weights.dtype == torch.bfloat16 and module.transformer.scale_shift_table.dtype == torch.float32


def test_eval_scores_external_videos(maze_dataset, tmp_path, capsys):
    # the dataset's own ground truth, as if another model had made it: everything verifies
    assert main(["eval", "--videos", str(maze_dataset / "videos"), "--data", str(maze_dataset), "--out",
                 str(tmp_path / "ext"), "--workers", "1", "--track", "false"]) == 0
    table = json.loads((tmp_path / "ext" / "metrics.json").read_text())
    assert table[0]["success"] == 100.0 and table[0]["n"] == 4


def test_bad_input_names_the_problem(maze_dataset, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(_fit_args(tmp_path / "r1", maze_dataset, "--model.init_args.learnig_rate", "1e-3"))
    assert "learnig_rate" in capsys.readouterr().err
    assert main(_fit_args(tmp_path / "r2", maze_dataset, "--model.init_args.transformer", str(tmp_path / "nope"))) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["eval", "--ckpt", str(tmp_path / "missing"), "--data", str(maze_dataset), "--track", "false"]) == 2
    assert "missing" in capsys.readouterr().err


def test_codec_that_cannot_encode_the_dataset_names_the_keys(maze_dataset, tmp_path, capsys):
    # the tiny VAE needs 4k+1 frames; a 6-frame dataset must be refused naming data.root and model.codec
    from videoreason.data.generate import generate_dataset
    from videoreason.tasks.render import RenderSpec

    data = tmp_path / "six"
    generate_dataset("maze", data, 2, split="train", difficulty="tiny", spec=RenderSpec.tiny(num_frames=6),
                     workers=1, progress=False)
    code = main(_fit_args(tmp_path / "r3", data, "--model.init_args.codec", "videoreason.models.codec.WanVAECodec",
                          "--model.init_args.transformer", "tiny", "--trainer.logger", "false",
                          "--data.init_args.num_val_puzzles", "0"))
    err = capsys.readouterr().err
    assert code == 2 and "`data.root`" in err and "`model.codec`" in err and "num_frames" in err


def test_help_takes_short_class_names_shows_defaults_and_no_rst_literals(capsys):
    for args in (["fit", "--model.help", "SFTModule"], ["fit", "--model.help", "GRPOModule"],
                 ["fit", "--data.help", "PuzzleVideoDataModule"]):
        with pytest.raises(SystemExit) as done:
            main(args)
        out = capsys.readouterr().out
        assert done.value.code == 0 and ("--model." in out or "--data." in out)
        assert "``" not in out
    with pytest.raises(SystemExit):
        main(["fit", "--model.help", "SFTModule"])
    assert "'pretrained', else 'tiny'" in capsys.readouterr().out  # a docstring literal, plain
    for args in (["eval", "--help"], ["data", "generate", "--help"], ["recipe", "--help"]):
        with pytest.raises(SystemExit):
            main(args)
        out = capsys.readouterr().out
        assert "default: " in out and "``" not in out


def test_grpo_built_by_the_cli_reads_its_starts_own_settings(maze_dataset, tmp_path):
    """The start module that GRPO loads inside LightningCLI's instantiation keeps its own hyperparameters (Lightning
    hands the module being built its config through a context variable, which the start used to take as its own)."""
    from videoreason.models.export import export_module
    from videoreason.phases.sft import SFTModule
    from videoreason.trainer_cli import VideoReasonCLI

    start = export_module(SFTModule(transformer="tiny", clip_frames=2, val_steps=3), tmp_path / "sft")
    config = CONFIG.parent / "grpo_tiny_fill_steps.yaml"
    cli = VideoReasonCLI(["--config", str(config), "--model.init_args.init_from", str(start),
                          "--data.init_args.root", str(maze_dataset), "--trainer.logger", "false",
                          "--trainer.default_root_dir", str(tmp_path / "grpo")], run=False)
    assert cli.model.hparams.clip_frames == 2  # the start's windows: rollouts go frame by frame
    assert cli.model.hparams.transformer == str(start / "transformer")  # the start's own record
