"""Atomic writes (videoreason/atomic.py): a file or folder is either the old one or the complete new one, whatever
happens during the write."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from videoreason.atomic import atomic_file, replace_folder


def test_a_checkpoint_folder_is_replaced_whole(tmp_path):
    target, new = tmp_path / "last.ckpt", tmp_path / ".last.ckpt.partial"
    target.mkdir()
    (target / "__0_0.distcp").write_text("old shard")
    (target / "meta.pt").write_text("old meta")
    new.mkdir()
    (new / "__0_0.distcp").write_text("new shard")
    replace_folder(new, target)
    assert sorted(p.name for p in target.iterdir()) == ["__0_0.distcp"]  # nothing of the old folder is left
    assert (target / "__0_0.distcp").read_text() == "new shard"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no staging or .old folder behind


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text("old")
    with pytest.raises(OSError, match="No space"), atomic_file(path) as handle:
        handle.write(b"new but cut short")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["spec.json"]


def test_a_crash_during_an_export_leaves_the_previous_export(tmp_path, monkeypatch):
    import safetensors.torch

    from videoreason.models.export import export_module
    from videoreason.models.lora import LoraSpec
    from videoreason.phases.sft import SFTModule

    module = SFTModule(transformer="tiny", lora=LoraSpec(rank=2))
    out = export_module(module, tmp_path / "adapter")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with torch.no_grad():
        for name, param in module.transformer.named_parameters():
            if "lora_B" in name:
                param.add_(1.0)

    def crash(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a safetensors file")
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(OSError, match="I/O error"):
        export_module(module, tmp_path / "adapter")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # no staging folder left behind
    assert all(float(v.abs().max()) == 0 for k, v in load_file(out / "pytorch_lora_weights.safetensors").items()
               if "lora_B" in k)  # still the old (untrained) adapter
