"""Rewards as torchmetrics metrics updated with a `RolloutGroups` record (per-rollout ``compute()``, ``[B, G]``),
their composition, and batch scoring.

``0.5 * F1Reward() + SuccessReward()`` composes element-wise; `WeightedSum` is the YAML form that keeps each
component's name. `FrameSimilarityReward` compares videos with reference videos, for domains without a parser;
`ModelReward` wraps a learned judge or any scorer.
`load_reward` reads a YAML preset (``configs/rewards/``).
`verdicts_for` / `VerdictPool` parse and verify a batch of videos once for all verdict rewards.
"""

from videoreason.rewards.base import Reward, RewardConfigError, VerdictReward
from videoreason.rewards.composition import WeightedSum
from videoreason.rewards.embedding import EmbeddingReward, FrameSimilarityReward
from videoreason.rewards.encoders import ImageModelFrames, PooledPixels, WanVAEFrames
from videoreason.rewards.groups import RolloutGroups
from videoreason.rewards.model import ColourFractionScorer, ImageTextScorer, ModelReward
from videoreason.rewards.presets import load_reward, preset_names
from videoreason.rewards.scoring import VerdictPool, verdict_of, verdicts_for
from videoreason.rewards.verdict_rewards import (
    ComponentReward,
    DenseReward,
    ExactMatchReward,
    F1Reward,
    PrecisionRecallF1Reward,
    SuccessReward,
)

__all__ = [
    "ColourFractionScorer",
    "ComponentReward",
    "DenseReward",
    "EmbeddingReward",
    "ExactMatchReward",
    "F1Reward",
    "FrameSimilarityReward",
    "ImageModelFrames",
    "ImageTextScorer",
    "ModelReward",
    "PooledPixels",
    "PrecisionRecallF1Reward",
    "Reward",
    "RolloutGroups",
    "RewardConfigError",
    "SuccessReward",
    "VerdictPool",
    "VerdictReward",
    "WanVAEFrames",
    "WeightedSum",
    "load_reward",
    "preset_names",
    "verdict_of",
    "verdicts_for",
]
