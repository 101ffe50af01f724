"""RunCheckpoint and AtomicCheckpointIO: only last.ckpt, the final step saved, atomic writes that survive a crash
in the middle of a save, stale temp files cleared, and the run's folder found by ``ckpt_path="last"``."""

from __future__ import annotations

import errno

import lightning as L
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

from videoreason.callbacks.checkpoint import RunCheckpoint
from videoreason.checkpoint_io import AtomicCheckpointIO


def trainer(root, max_steps: int = 7, **kwargs) -> L.Trainer:
    callback = RunCheckpoint(**kwargs)
    return L.Trainer(default_root_dir=root, max_steps=max_steps, limit_train_batches=4, limit_val_batches=0,
                     callbacks=[callback], logger=False, enable_progress_bar=False, enable_model_summary=False)


def step_of(path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def test_keeps_only_last_ckpt_saves_periodically_and_at_the_final_step(tmp_path):
    saved = []
    t = trainer(tmp_path, every_n_train_steps=3)
    save = t.save_checkpoint
    t.save_checkpoint = lambda path, *a, **k: (saved.append(t.global_step), save(path, *a, **k))
    t.fit(BoringModel())
    assert saved == [3, 6, 7]  # every 3 steps, then the final step 7 (Lightning alone would stop at 6)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["last.ckpt"]
    assert step_of(tmp_path / "checkpoints" / "last.ckpt") == 7
    assert isinstance(t.strategy.checkpoint_io, AtomicCheckpointIO)


def test_epoch_end_saves_without_a_period(tmp_path):
    saved = []
    t = trainer(tmp_path)
    save = t.save_checkpoint
    t.save_checkpoint = lambda path, *a, **k: (saved.append(t.global_step), save(path, *a, **k))
    t.fit(BoringModel())
    assert saved == [4, 7]  # end of epoch 0, then the final step


def test_a_crash_in_the_middle_of_a_save_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 1, "w": torch.ones(1000)}, path)
    before = path.read_bytes()

    def disk_full(obj, handle):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint({"global_step": 2, "w": torch.zeros(1000)}, path)
    assert path.read_bytes() == before and step_of(path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # the partial temp file is gone


def test_temp_files_of_a_killed_save_are_removed_and_last_is_found_before_setup(tmp_path):
    first = trainer(tmp_path)
    first.fit(BoringModel())
    stale = tmp_path / "checkpoints" / ".last.ckpt.tmp12345"
    stale.write_bytes(b"a save killed half way")
    t = trainer(tmp_path, max_steps=9)
    t.fit(BoringModel(), ckpt_path="last")  # resolved before RunCheckpoint.setup: the folder is the run's
    assert not stale.exists()
    assert step_of(tmp_path / "checkpoints" / "last.ckpt") == 9


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np

    from videoreason import rng_state

    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    path = tmp_path / "state.pt"
    torch.save(rng_state.capture(), path)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    rng_state.restore(torch.load(path, weights_only=True))
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1]) and random.random() == expected[2]
