"""Shared fixtures: a small maze dataset and a tiny diffusers-format Wan folder built on the spot."""

from __future__ import annotations

from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def tiny_wan_dir(tmp_path_factory) -> Path:
    """A tiny diffusers Wan pipeline folder in the Wan2.1 layout (``tests/wan_folder.py``)."""
    from wan_folder import save_tiny_wan

    return save_tiny_wan(tmp_path_factory.mktemp("tiny_wan21"), "wan2.1")


@pytest.fixture(scope="session")
def tiny_wan22_dir(tmp_path_factory) -> Path:
    """A tiny diffusers Wan pipeline folder in the Wan2.2-TI2V layout (48-channel VAE with patch 2)."""
    from wan_folder import save_tiny_wan

    return save_tiny_wan(tmp_path_factory.mktemp("tiny_wan22"), "wan2.2")


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
