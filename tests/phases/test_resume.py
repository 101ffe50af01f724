"""Exact resume: a run stopped after step k and resumed from its last checkpoint ends bitwise where an
uninterrupted run ends (CPU, same seeds), mid-epoch and at an epoch boundary, for SFT and GRPO; stopped by SIGTERM,
killed by SIGKILL between periodic checkpoints, and requeued by SLURM's signal in the middle of an update
(subprocesses, ``slow``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from videoreason.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "videoreason" / "configs" / "maze"
TESTS = Path(__file__).resolve().parents[1]


def fit_args(run: Path, data: Path, phase: str, steps: int, *extra: str, reward: dict | None = None) -> list[str]:
    """``videoreason fit`` arguments of a tiny LoRA run (16 mazes; SFT: batch 4, 4 steps per epoch)."""
    config = CONFIGS / ("sft_tiny_lora.yaml" if phase == "sft" else "grpo_tiny.yaml")
    args = ["fit", "--config", str(config), "--trainer.default_root_dir", str(run),
            "--trainer.max_steps", str(steps), "--trainer.val_check_interval", "1000",
            "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
            "--trainer.logger", "false",
            "--data.init_args.root", str(data), "--data.init_args.num_workers", "0",
            "--data.init_args.num_val_puzzles", "0", "--model.init_args.transformer", "tiny"]
    if phase == "sft":
        args += ["--trainer.callbacks", "[]", "--data.init_args.batch_size", "4",
                 "--data.init_args.samples_per_epoch", "16", "--model.init_args.lora.rank", "4"]
    else:
        args += ["--data.init_args.batch_size", "2", "--model.init_args.init_from", "null",
                 "--model.init_args.sampling.group_size", "2", "--model.init_args.sampling.num_steps", "6",
                 "--model.init_args.sampling.batch_size", "2", "--model.init_args.lora.rank", "4",
                 "--model.init_args.reward", json.dumps(reward)]
    return args + list(extra)


def fit(run: Path, data: Path, phase: str, steps: int, *extra: str, reward: dict | None = None
        ) -> dict[str, torch.Tensor]:
    """Run ``fit_args`` in this process; returns the exported LoRA."""
    assert main(fit_args(run, data, phase, steps, *extra, reward=reward)) == 0
    return adapter(run)


def adapter(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "adapter" / "pytorch_lora_weights.safetensors")


def fit_in_subprocess(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m videoreason`` with ``args``; ``tests/`` importable for ``fault_injection``."""
    env = {**os.environ, **(env or {}), "PYTHONPATH": str(TESTS)}
    return subprocess.run([sys.executable, "-m", "videoreason", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def callbacks(*specs: tuple[str, dict]) -> list[str]:
    """``--trainer.callbacks+=`` arguments appending ``(class_path, init_args)`` callbacks to the config's list."""
    return [f"--trainer.callbacks+={json.dumps({'class_path': c, 'init_args': a})}" for c, a in specs]


def checkpoint_step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def assert_same_adapter(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert max(float(v.abs().max()) for k, v in a.items() if "lora_B" in k) > 0  # the adapter did train


@pytest.mark.parametrize("stop", [2, 4], ids=["mid-epoch", "epoch-end"])
def test_sft_resumed_from_its_checkpoint_ends_bitwise_where_an_uninterrupted_run_ends(tmp_path, maze_dataset, stop):
    straight = fit(tmp_path / "straight", maze_dataset, "sft", 6)
    fit(tmp_path / "resumed", maze_dataset, "sft", stop)
    checkpoint = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    resumed = fit(tmp_path / "resumed", maze_dataset, "sft", 6, "--ckpt_path", str(checkpoint))
    assert_same_adapter(straight, resumed)


def test_grpo_with_early_step_focus_resumed_mid_epoch_ends_bitwise_where_an_uninterrupted_run_ends(
        tmp_path, maze_dataset, varying_reward):
    straight = fit(tmp_path / "straight", maze_dataset, "grpo", 3, reward=varying_reward)
    fit(tmp_path / "resumed", maze_dataset, "grpo", 1, reward=varying_reward)
    checkpoint = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    resumed = fit(tmp_path / "resumed", maze_dataset, "grpo", 3, "--ckpt_path", str(checkpoint),
                  reward=varying_reward)
    assert_same_adapter(straight, resumed)


DROPOUT = ("--model.init_args.lora.dropout", "0.2")  # LoRA dropout draws from the global torch generator


@pytest.mark.slow
def test_sft_stopped_by_sigterm_saves_at_the_step_boundary_and_resumes_exactly(tmp_path, maze_dataset):
    straight = fit(tmp_path / "straight", maze_dataset, "sft", 6, *DROPOUT)
    run = tmp_path / "preempted"
    stopped = fit_in_subprocess(fit_args(run, maze_dataset, "sft", 6, *DROPOUT,
                                         *callbacks(("fault_injection.SignalAt", {"step": 2, "signal": "SIGTERM"}))))
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert "stopped by SIGTERM at step 2" in stopped.stderr + stopped.stdout
    assert checkpoint_step(run / "checkpoints" / "last.ckpt") == 2
    assert not (run / "adapter").exists()  # a pre-empted run exports nothing: its adapter would be half-trained
    # resumed the way a user would: the run's own resolved config (without the injected fault) + `--ckpt_path last`
    assert main(["fit", "--config", str(run / "config.yaml"), "--trainer.callbacks", "[]", "--ckpt_path", "last"]) == 0
    assert_same_adapter(straight, adapter(run))


@pytest.mark.slow
def test_grpo_stopped_by_sigterm_resumes_exactly(tmp_path, maze_dataset, varying_reward):
    straight = fit(tmp_path / "straight", maze_dataset, "grpo", 3, reward=varying_reward)
    run = tmp_path / "preempted"
    sigterm = callbacks(("fault_injection.SignalAt", {"step": 1, "signal": "SIGTERM"}))
    stopped = fit_in_subprocess(fit_args(run, maze_dataset, "grpo", 3, *sigterm, reward=varying_reward))
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert checkpoint_step(run / "checkpoints" / "last.ckpt") == 1
    assert_same_adapter(straight, fit(run, maze_dataset, "grpo", 3, "--ckpt_path", "last", reward=varying_reward))


@pytest.mark.slow
def test_sft_killed_between_periodic_checkpoints_resumes_from_the_last_one_exactly(tmp_path, maze_dataset):
    periodic = ("videoreason.callbacks.RunCheckpoint", {"every_n_train_steps": 2})
    straight = fit(tmp_path / "straight", maze_dataset, "sft", 6, *DROPOUT)
    run = tmp_path / "killed"
    killed = fit_in_subprocess(fit_args(run, maze_dataset, "sft", 6, *DROPOUT, *callbacks(
        periodic, ("fault_injection.SignalAt", {"step": 3, "signal": "SIGKILL"}))))
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert checkpoint_step(run / "checkpoints" / "last.ckpt") == 2  # step 3 was lost, step 2 is intact
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]  # no temp file left behind
    assert_same_adapter(straight, fit(run, maze_dataset, "sft", 6, *DROPOUT, "--ckpt_path", "last"))


@pytest.mark.slow
def test_grpo_killed_between_periodic_checkpoints_resumes_exactly(tmp_path, maze_dataset, varying_reward):
    straight = fit(tmp_path / "straight", maze_dataset, "grpo", 3, reward=varying_reward)
    run = tmp_path / "killed"
    faults = callbacks(("videoreason.callbacks.RunCheckpoint", {"every_n_train_steps": 1}),
                       ("fault_injection.SignalAt", {"step": 2, "signal": "SIGKILL", "when": "mid_update"}))
    killed = fit_in_subprocess(fit_args(run, maze_dataset, "grpo", 3, *faults, reward=varying_reward))
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert checkpoint_step(run / "checkpoints" / "last.ckpt") == 1  # killed inside step 2's update
    assert_same_adapter(straight, fit(run, maze_dataset, "grpo", 3, "--ckpt_path", "last", reward=varying_reward))


@pytest.mark.slow
def test_slurm_requeue_signal_mid_update_checkpoints_at_the_step_end_and_the_requeued_job_resumes_exactly(
        tmp_path, maze_dataset):
    """SLURM sends SIGUSR1 while a step is between its backward and its update; Lightning's requeue (HPC checkpoint,
    ``scontrol requeue``) happens at the end of that step; the fake ``scontrol`` then SIGTERMs the job as SLURM does;
    the requeued job (same environment, no ``--ckpt_path``) picks the HPC checkpoint up and ends where an
    uninterrupted run ends."""
    straight = fit(tmp_path / "straight", maze_dataset, "sft", 6, *DROPOUT)
    bin_dir, log = tmp_path / "bin", tmp_path / "scontrol.log"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {log}\nkill -TERM $PPID\n')
    (bin_dir / "scontrol").chmod(0o755)
    slurm = {"SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1", "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "4242",
             "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NODELIST": "localhost",
             "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    run = tmp_path / "slurm"
    first = fit_in_subprocess(fit_args(run, maze_dataset, "sft", 6, *DROPOUT, *callbacks(
        ("fault_injection.SignalAt", {"step": 3, "signal": "SIGUSR1", "when": "mid_update"}))), env=slurm)
    assert first.returncode == 143, first.stderr[-3000:]
    assert log.read_text().split() == ["requeue", "4242"]
    assert checkpoint_step(run / "hpc_ckpt_1.ckpt") == 3  # taken after step 3's update, not in the middle of it
    requeued = fit_in_subprocess(fit_args(run, maze_dataset, "sft", 6, *DROPOUT), env=slurm)
    assert requeued.returncode == 0, requeued.stderr[-3000:]
    assert "hpc_ckpt_1.ckpt" in requeued.stderr + requeued.stdout  # Lightning restored from the HPC checkpoint
    assert_same_adapter(straight, adapter(run))
