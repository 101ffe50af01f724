"""Prompt embedders: the hash embedder, the disk cache, and UMT5 from a tiny local folder."""

from __future__ import annotations

import pytest
import torch
from conftest import save_tiny_umt5

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


class _Counting(HashTextEmbedder):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls: list[list[str]] = []
        self.released = 0

    def _embed(self, prompts):
        self.calls.append(list(prompts))
        return super()._embed(prompts)

    def release(self):
        self.released += 1


def test_cache_round_trip(tmp_path):
    emb = _Counting(dim=16, max_tokens=4, cache_dir=str(tmp_path))
    first = emb.embed(["a b", "c", "a b"])
    assert emb.calls == [["a b", "c"]] and emb.released == 1
    assert len(list(tmp_path.glob("*.safetensors"))) == 2
    assert emb.cache_path("c").name == emb.cache_key("c") + ".safetensors"
    again = _Counting(dim=16, max_tokens=4, cache_dir=str(tmp_path))
    assert torch.equal(again.embed(["c", "a b", "new"]), torch.cat([first[1:2], first[:1], emb._embed(["new"])]))
    assert again.calls == [["new"]]
    # a different model (seed) never reads another's entries
    other = _Counting(dim=16, max_tokens=4, seed=3, cache_dir=str(tmp_path))
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
