"""The step progress bar counts optimizer steps out of max_steps across epochs, and fits show it by default; the
progress journal is what the recipe shows."""

from __future__ import annotations

import re

import lightning as L
import torch

from videoreason.callbacks.progress import StepProgressBar


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).square().mean()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        data = torch.utils.data.TensorDataset(torch.randn(6, 2))
        return torch.utils.data.DataLoader(data, batch_size=2)  # 3 batches an epoch


def test_the_bar_counts_steps_out_of_max_steps_across_epochs(tmp_path, capfd):
    trainer = L.Trainer(max_steps=7, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_model_summary=False, callbacks=[StepProgressBar()], default_root_dir=tmp_path)
    trainer.fit(Tiny())
    err = "".join(capfd.readouterr())  # Lightning's tqdm bars write to stdout
    assert "7/7" in err and "Epoch 2" in err and "/-" not in err
    assert [int(n) for n in re.findall(r"(\d+)/7 \[", err)] == sorted(int(n) for n in re.findall(r"(\d+)/7 \[", err))


def test_fit_uses_it_unless_progress_bars_are_off():
    from videoreason.trainer_cli import VideoReasonCLI

    config = "videoreason/configs/maze/sft_tiny.yaml"
    bars = VideoReasonCLI(["--config", config, "--trainer.logger", "false"], run=False).trainer.progress_bar_callback
    assert isinstance(bars, StepProgressBar)
    off = VideoReasonCLI(["--config", config, "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"],
                         run=False).trainer
    assert off.progress_bar_callback is None


def test_a_real_phase_writes_the_journal_the_recipe_shows(tmp_path, maze_dataset, capsys):
    from videoreason.callbacks.progress import JOURNAL_FILE, journal_line, read_journal
    from videoreason.recipe import run
    from videoreason.resources import config_root

    run_dir = tmp_path / "sft"
    run(["fit", "--config", str(config_root() / "maze" / "sft_tiny_lora.yaml"), "--trainer.default_root_dir",
         str(run_dir), "--trainer.max_steps", "3", "--trainer.val_check_interval", "3",
         "--trainer.logger", "false", "--data.init_args.root", str(maze_dataset), "--data.init_args.batch_size", "2",
         "--data.init_args.num_workers", "0", "--data.init_args.num_val_puzzles", "1",
         "--model.init_args.val_steps", "1", "--model.init_args.transformer", "tiny", "--model.init_args.lora.rank",
         "2"], tmp_path / "sft.log", "sft", journal=run_dir / JOURNAL_FILE)
    records = read_journal(run_dir / JOURNAL_FILE)
    steps = [r for r in records if "elapsed_s" in r]
    assert steps[-1]["step"] == steps[-1]["max_steps"] == 3 and "train/loss" in steps[-1]["metrics"]
    assert [r["step"] for r in records if "validation" in r] == [3]
    shown = capsys.readouterr().out.strip().splitlines()[-1]  # not a terminal: printed once it changed
    assert shown.startswith("[sft") and journal_line(records) in shown and "step 3/3 (100%)" in shown
    assert journal_line([]) is None
