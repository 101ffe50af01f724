"""`ModelReward`: any scorer as a reward (objects, import paths, classes built from YAML arguments), its
checks, the foolable `ColourFractionScorer`, and a GRPO step that hands the judge its prompts and logs it beside
the verified success rate."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

from videoreason.data.datamodule import PuzzleVideoDataModule
from videoreason.models.lora import LoraSpec
from videoreason.phases.grpo import GRPOModule
from videoreason.phases.settings import PolicyOptimization, Sampling
from videoreason.rewards import ColourFractionScorer, ModelReward, SuccessReward, WeightedSum, load_reward
from videoreason.rewards.base import reward_inputs
from videoreason.rewards.groups import RolloutGroups

YELLOW = (250, 196, 20)


def videos_with_yellow(shares: list[float]) -> np.ndarray:
    """Videos ``[B, 3, 20, 20, 3]`` whose last frame is yellow in its top ``share`` of rows."""
    videos = np.full((len(shares), 3, 20, 20, 3), 236, dtype=np.uint8)
    for video, share in zip(videos, shares, strict=True):
        video[-1, :round(20 * share)] = YELLOW
    return videos


def test_colour_judge_scores_the_yellow_share_and_is_fooled_by_any_yellow():
    reward = ModelReward(ColourFractionScorer(saturation=0.5))
    reward.update(RolloutGroups.of_samples(videos=torch.from_numpy(videos_with_yellow([0.0, 0.25, 0.5, 1.0]))))
    torch.testing.assert_close(reward.compute().flatten(), torch.tensor([0.0, 0.5, 1.0, 1.0]))


def test_scorers_from_import_paths_classes_and_callables():
    by_path = ModelReward("videoreason.rewards.ColourFractionScorer", {"colour": [236, 236, 236]})
    by_path.update(RolloutGroups.of_samples(videos=videos_with_yellow([0.0, 1.0])))
    torch.testing.assert_close(by_path.compute().flatten(), torch.tensor([1.0, 0.0]))  # likes the floor colour instead
    seen = []
    judge = ModelReward(lambda videos, prompts: seen.extend(prompts) or [0.3] * len(videos), batch_size=2)
    judge.update(RolloutGroups.of_samples(videos=videos_with_yellow([0.0] * 3), prompts=["a", "b", "c"]))
    assert seen == ["a", "b", "c"]  # two calls of <= 2
    assert judge.compute().flatten().tolist() == pytest.approx([0.3] * 3)
    assert reward_inputs(judge) == {"videos"}  # prompts too, when the record has them


def test_bad_scorers_and_scores_are_named():
    with pytest.raises(ValueError, match="not an importable"):
        ModelReward("videoreason.rewards.NoSuchJudge")
    with pytest.raises(ValueError, match="must be callable"):
        ModelReward(42)
    with pytest.raises(ValueError, match="scorer_args"):
        ModelReward(lambda v, p: [0.0] * len(v), {"path": "/models/judge"})
    short = ModelReward(lambda videos, prompts: [0.5])
    with pytest.raises(ValueError, match="returned 1 scores for 2 videos"):
        short.update(RolloutGroups.of_samples(videos=videos_with_yellow([0.0, 0.0])))
    loud = ModelReward(lambda videos, prompts: [7.0] * len(videos))
    with pytest.warns(RuntimeWarning, match="clipped"):
        loud.update(RolloutGroups.of_samples(videos=videos_with_yellow([0.0])))
    assert loud.compute().flatten().tolist() == [1.0]
    with pytest.raises(ValueError, match="prompts"):
        RolloutGroups.of_samples(videos=videos_with_yellow([0.0, 0.0]), prompts=["one"])


def test_judge_preset_logs_success_beside_the_judge():
    reward = load_reward("maze_judge")
    assert isinstance(reward, WeightedSum) and reward.weights == {"judge": 1.0, "success": 0.0}
    assert isinstance(reward.rewards["success"], SuccessReward)
    assert isinstance(reward.rewards["judge"].scorer, ColourFractionScorer)


def test_grpo_hands_prompts_to_the_judge_and_logs_it_next_to_success(maze_dataset):
    prompts = []

    def judge(videos, batch_prompts):
        prompts.extend(batch_prompts)
        return ColourFractionScorer()(videos, batch_prompts)

    torch.manual_seed(0)
    reward = WeightedSum({"judge": ModelReward(judge), "success": SuccessReward()}, {"judge": 1.0, "success": 0.0})
    module = GRPOModule(transformer="tiny", lora=LoraSpec(rank=4, alpha=4), reward=reward,
                        sampling=Sampling(group_size=3, num_steps=4, reward_workers=1),
                        optimization=PolicyOptimization(learning_rate=1e-2))
    data = PuzzleVideoDataModule(str(maze_dataset), batch_size=2, num_val_puzzles=0, samples_per_epoch=4)
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(module, datamodule=data)
    assert len(prompts) == 6 and all("maze" in p for p in prompts)  # 2 puzzles x 3 rollouts, each with its prompt
    metrics = trainer.callback_metrics
    assert {"rewards/judge/mean", "rewards/success/mean", "success_rate"} <= set(metrics)


def save_tiny_clip(folder) -> None:
    """A 1-layer CLIP with a word-level tokenizer and an image processor, saved to ``folder`` (nothing downloaded)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, PreTrainedTokenizerFast

    words = ["<pad>", "<unk>", "a", "maze", "path", "yellow", "red", "green"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>").save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    small = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config={**small, "vocab_size": len(words), "max_position_embeddings": 16},
                         vision_config={**small, "image_size": 32, "patch_size": 8},
                         projection_dim=8)).save_pretrained(folder)


def test_local_image_text_model_judges_frames_against_prompts(tmp_path):
    from videoreason.rewards import ImageTextScorer

    save_tiny_clip(tmp_path / "clip")
    judge = ModelReward("videoreason.rewards.ImageTextScorer", {"path": str(tmp_path / "clip")})
    videos = videos_with_yellow([0.0, 0.5, 1.0])
    judge.update(RolloutGroups.of_samples(videos=videos, prompts=["a yellow path", "a yellow path", "a red maze"]))
    scores = judge.compute().flatten()
    assert scores.shape == (3,) and bool(((scores > 0) & (scores < 1)).all())
    assert len(set(scores.tolist())) == 3  # different frames or texts, different scores
    direct = ImageTextScorer(str(tmp_path / "clip"), text="a yellow path")(videos, None)
    assert direct[0] != direct[1] and direct[1] == pytest.approx(float(scores[1]), abs=1e-5)
    with pytest.raises(ValueError, match="prompts"):
        ImageTextScorer(str(tmp_path / "clip"))(videos, None)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        ImageTextScorer(str(tmp_path))
