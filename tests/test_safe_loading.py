"""Safe loading: no pickle from a user-supplied path. A checkpoint carrying a code-executing pickle is refused by
``fit --ckpt_path`` and by ``eval --ckpt`` without running the payload; model folders load safetensors only."""

from __future__ import annotations

import pathlib
from pathlib import Path

import pytest
import torch

from videoreason.cli import main

CONFIG = Path(__file__).resolve().parents[1] / "videoreason" / "configs" / "maze" / "sft_tiny_lora.yaml"


class Payload:
    """Unpickling this creates ``marker``: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


@pytest.fixture
def evil_checkpoint(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "global_step": 0, "hyper_parameters": {"x": Payload(marker)}}, path)
    return path, marker


def test_fit_refuses_a_pickle_checkpoint_without_running_it(tmp_path, maze_dataset, evil_checkpoint, capsys):
    path, marker = evil_checkpoint
    code = main(["fit", "--config", str(CONFIG), "--trainer.default_root_dir", str(tmp_path / "run"),
                 "--trainer.max_steps", "1", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
                 "--data.init_args.root", str(maze_dataset), "--data.init_args.num_val_puzzles", "0",
                 "--model.init_args.transformer", "tiny", "--ckpt_path", str(path)])
    assert code == 2
    assert "Weights only load failed" in capsys.readouterr().err
    assert not marker.exists()


def test_eval_refuses_a_pickle_checkpoint_without_running_it(tmp_path, maze_dataset, evil_checkpoint, capsys):
    path, marker = evil_checkpoint
    assert main(["eval", "--ckpt", str(path), "--data", str(maze_dataset), "--out", str(tmp_path / "eval"),
                 "--track", "false", "--workers", "1"]) == 2
    assert "Weights only load failed" in capsys.readouterr().err
    assert not marker.exists()


def test_model_folders_load_safetensors_only(tmp_path):
    from videoreason.models.transformer import build_transformer

    folder = tmp_path / "wan" / "transformer"
    build_transformer("tiny").save_pretrained(str(folder), safe_serialization=False)  # a pickle .bin only
    assert not list(folder.glob("*.safetensors"))
    with pytest.raises(OSError, match="safetensors"):
        build_transformer(str(tmp_path / "wan"))
