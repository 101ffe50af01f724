"""Shared fixtures: a small maze dataset and a tiny diffusers-format Wan folder built on the spot."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from videoreason.models.text import HashTextEmbedder


class CountingEmbedder(HashTextEmbedder):
    """A hash embedder that records every batch it really embeds and every ``release()``."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls: list[list[str]] = []
        self.released = 0

    def _embed(self, prompts):
        self.calls.append(list(prompts))
        return super()._embed(prompts)

    def release(self):
        self.released += 1


def save_tiny_umt5(root: Path) -> None:
    """A 1-layer UMT5 encoder (d_model 16) and a word-level tokenizer in ``root/text_encoder`` + ``root/tokenizer``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    words = ["<pad>", "</s>", "<unk>", "solve", "the", "maze", "sokoban", "draw", "path"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(str(root / "tokenizer"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        config = UMT5Config(vocab_size=len(words), d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2,
                            relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
                            decoder_start_token_id=0)
        UMT5EncoderModel(config).save_pretrained(str(root / "text_encoder"))


@pytest.fixture(scope="session")
def tiny_wan_dir(tmp_path_factory) -> Path:
    """A diffusers pipeline root with a tiny transformer, VAE, UMT5 text encoder and tokenizer."""
    from videoreason.models.codec import build_tiny_vae
    from videoreason.models.transformer import build_transformer

    root = tmp_path_factory.mktemp("tiny_wan")
    vae = build_tiny_vae()
    vae.save_pretrained(str(root / "vae"))
    build_transformer("tiny", in_channels=vae.config.z_dim, text_dim=16).save_pretrained(str(root / "transformer"))
    save_tiny_umt5(root)
    return root


@pytest.fixture(scope="session")
def maze_dataset(tmp_path_factory) -> Path:
    """Tiny mazes at 64x64x9: 16 train, 2 val, 4 test."""
    from videoreason.data.generate import generate_dataset

    root = tmp_path_factory.mktemp("maze") / "data"
    for split, num in (("train", 16), ("val", 2), ("test", 4)):
        generate_dataset("maze", root, num, split=split, difficulty="tiny", workers=1, progress=False)
    return root


@pytest.fixture
def varying_reward() -> dict:
    """A GRPO reward config that varies on an untrained model's videos (frame similarity to the ground truth plus
    the dense verdict), so every GRPO step has non-zero advantages and moves the adapter. A fresh dict per test:
    jsonargparse fills in what it parses."""
    return {"class_path": "videoreason.rewards.WeightedSum", "init_args": {
        "rewards": {"similar": {"class_path": "videoreason.rewards.embedding.FrameSimilarityReward"},
                    "dense": {"class_path": "videoreason.rewards.DenseReward"}},
        "weights": {"similar": 1.0, "dense": 1.0}}}
