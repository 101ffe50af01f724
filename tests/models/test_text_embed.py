"""Prompt embedders: the hash embedder, the disk cache, and UMT5 from a tiny local folder."""

from __future__ import annotations

import pytest
import torch
from conftest import CountingEmbedder
from wan_folder import save_tiny_umt5

from videoreason.models.text import HashTextEmbedder, TextEmbedder, UMT5Embedder


def test_hash_embedder_deterministic_and_distinct():
    a, b = HashTextEmbedder(dim=32, max_tokens=8), HashTextEmbedder(dim=32, max_tokens=8)
    prompts = ["solve the maze", "solve the sokoban", "Solve the maze"]
    ea = a.embed(prompts)
    assert ea.shape == (3, 8, 32) and ea.dtype == torch.float32
    assert torch.equal(ea, b.embed(prompts))
    assert torch.equal(ea[0], ea[2])  # lower-cased
    assert not torch.equal(ea[0], ea[1])
    assert (ea[0, 3:] == 0).all() and (ea[0, :3] != 0).any(dim=-1).all()  # 3 words, zero padding
    assert not torch.equal(ea, HashTextEmbedder(dim=32, max_tokens=8, seed=1).embed(prompts))
    assert a.embed("x " * 20).shape == (1, 8, 32)  # truncated


def test_cache_round_trip(tmp_path):
    emb = CountingEmbedder(dim=16, max_tokens=4, cache_dir=str(tmp_path))
    first = emb.embed(["a b", "c", "a b"])
    assert emb.calls == [["a b", "c"]] and emb.released == 1
    assert len(list(tmp_path.glob("*.safetensors"))) == 2
    assert emb.cache_path("c").name == emb.cache_key("c") + ".safetensors"
    again = CountingEmbedder(dim=16, max_tokens=4, cache_dir=str(tmp_path))
    assert torch.equal(again.embed(["c", "a b", "new"]), torch.cat([first[1:2], first[:1], emb._embed(["new"])]))
    assert again.calls == [["new"]]
    # a different model (seed) never reads another's entries
    other = CountingEmbedder(dim=16, max_tokens=4, seed=3, cache_dir=str(tmp_path))
    other.embed(["c"])
    assert other.calls == [["c"]]
    assert not list(tmp_path.glob("*.tmp"))


def test_umt5_embedder_with_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    save_tiny_umt5(tmp_path / "umt5")
    emb = UMT5Embedder(str(tmp_path / "umt5"), max_tokens=6, cache_dir=str(tmp_path / "cache"))
    assert isinstance(emb, TextEmbedder) and emb.dim == 16
    out = emb.embed(["solve the maze", "draw path"])
    assert out.shape == (2, 6, 16) and out.dtype == torch.float32
    assert (out[0, 4:] == 0).all() and (out[0, :4] != 0).any(dim=-1).all()  # 3 words + </s>, then zeros
    assert (out[1, 3:] == 0).all() and (out[1, :3] != 0).any(dim=-1).all()
    assert emb._encoder is None  # freed after filling the cache
    again = UMT5Embedder(str(tmp_path / "umt5"), max_tokens=6, cache_dir=str(tmp_path / "cache"))
    torch.testing.assert_close(again.embed(["draw path"]), out[1:])
    assert again._encoder is None and again._tokenizer is None  # served from the cache, nothing loaded
    fresh = UMT5Embedder(str(tmp_path / "umt5"), max_tokens=6).embed(["draw path", "solve the maze"])
    torch.testing.assert_close(fresh, out.flip(0))


def test_umt5_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        UMT5Embedder(str(tmp_path / "nope"))


def _count_loads(monkeypatch) -> list[int]:
    """Count ``UMT5EncoderModel.from_pretrained`` calls (reads of the encoder weights from disk)."""
    from transformers import UMT5EncoderModel

    loads = [0]
    original = UMT5EncoderModel.from_pretrained.__func__

    def counting(cls, *args, **kwargs):
        loads[0] += 1
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(UMT5EncoderModel, "from_pretrained", classmethod(counting))
    return loads


def test_precompute_keeps_embeddings_in_memory_and_frees_the_encoder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    save_tiny_umt5(tmp_path / "umt5")
    want = UMT5Embedder(str(tmp_path / "umt5"), max_tokens=6).embed(["solve the maze", "draw path", "the maze"])
    loads = _count_loads(monkeypatch)
    emb = UMT5Embedder(str(tmp_path / "umt5"), max_tokens=6)  # no disk cache: precomputed prompts stay in memory
    assert emb.precompute(["solve the maze", "draw path", "solve the maze"], batch_size=1) == 2
    assert emb._encoder is None and loads == [1]  # embedded, then freed
    torch.testing.assert_close(emb.embed(["draw path", "solve the maze", "draw path"]), want[[1, 0, 1]])
    assert emb._encoder is None and loads == [1]  # served from memory, nothing reloaded
    assert emb.precompute(["draw path"]) == 0 and loads == [1]
    torch.testing.assert_close(emb.embed(["the maze"]), want[2:])  # a new prompt still works (loads lazily)
    assert loads == [2]


def test_precompute_fills_the_disk_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    save_tiny_umt5(tmp_path / "umt5")
    loads = _count_loads(monkeypatch)
    emb = UMT5Embedder(str(tmp_path / "umt5"), max_tokens=6, cache_dir=str(tmp_path / "cache"))
    assert emb.precompute(["solve the maze", "draw path"]) == 2
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2 and emb._encoder is None
    assert not emb._memory  # the disk holds them
    again = UMT5Embedder(str(tmp_path / "umt5"), max_tokens=6, cache_dir=str(tmp_path / "cache"))
    assert again.precompute(["draw path", "solve the maze"]) == 0
    assert again.embed(["draw path"]).shape == (1, 6, 16) and loads == [1] and again._encoder is None


def test_offload_keeps_the_encoder_in_cpu_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    save_tiny_umt5(tmp_path / "umt5")
    want = UMT5Embedder(str(tmp_path / "umt5"), max_tokens=6).embed(["solve the maze", "draw path"])
    loads = _count_loads(monkeypatch)
    emb = UMT5Embedder(str(tmp_path / "umt5"), max_tokens=6, cache_dir=str(tmp_path / "cache"), offload=True)
    assert emb.precompute(["solve the maze"]) == 1
    assert emb._encoder is not None and next(emb._encoder.parameters()).device.type == "cpu"  # kept, on the CPU
    torch.testing.assert_close(emb.embed(["solve the maze", "draw path"]), want)  # "draw path" is new
    assert loads == [1]  # encoded again from host memory, not from disk


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_encoder_leaves_the_gpu_after_precompute(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    save_tiny_umt5(tmp_path / "umt5")
    want = UMT5Embedder(str(tmp_path / "umt5"), max_tokens=6).embed(["solve the maze", "draw path"])
    for offload in (False, True):
        torch.cuda.empty_cache()
        start = torch.cuda.memory_allocated()
        emb = UMT5Embedder(str(tmp_path / "umt5"), max_tokens=6, device="cuda", offload=offload)
        emb.precompute(["solve the maze", "draw path"])
        assert torch.cuda.memory_allocated() == start  # the encoder is off the GPU
        torch.testing.assert_close(emb.embed(["solve the maze", "draw path"]), want, atol=1e-4, rtol=1e-4)
        assert (emb._encoder is not None) == offload
