"""Non-finite updates are skipped and counted; too many in a row stop the run with a clear error and a checkpoint
of the last finite weights (SFT through automatic optimisation, GRPO through its manual update)."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from videoreason.data.datamodule import PuzzleVideoDataModule
from videoreason.models.export import load_module
from videoreason.models.lora import LoraSpec
from videoreason.phases.grpo import GRPOModule
from videoreason.phases.settings import Optimization, PolicyOptimization, Sampling
from videoreason.phases.sft import SFTModule
from videoreason.phases.video_module import NonFiniteTrainingError


class PoisonedSFT(SFTModule):
    """SFT whose loss is NaN at the optimizer steps listed in ``poisoned``."""

    poisoned: set[int] = set()

    def flow_matching_loss(self, *args, **kwargs):
        loss = super().flow_matching_loss(*args, **kwargs)
        return loss * float("nan") if self.global_step in self.poisoned else loss


class PoisonedGRPO(GRPOModule):
    poisoned: set[int] = set()

    def policy_loss(self, *args, **kwargs):
        loss, stats = super().policy_loss(*args, **kwargs)
        return (loss * float("nan") if self.global_step in self.poisoned else loss), stats


def trainer(root, steps: int, **kwargs) -> L.Trainer:
    return L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_progress_bar=False,
                     enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                     default_root_dir=str(root), enable_checkpointing=False, **kwargs)


def lora_of(module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.transformer.named_parameters() if p.requires_grad}


def test_a_nan_sft_step_is_skipped_and_training_goes_on(tmp_path, maze_dataset):
    data = PuzzleVideoDataModule(str(maze_dataset), batch_size=2, num_val_puzzles=0)
    L.seed_everything(0)
    clean = PoisonedSFT(transformer="tiny", lora=LoraSpec(rank=2), optimization=Optimization(learning_rate=1e-2))
    trainer(tmp_path / "a", 1).fit(clean, datamodule=data)
    after_one = lora_of(clean)

    L.seed_everything(0)
    module = PoisonedSFT(transformer="tiny", lora=LoraSpec(rank=2), optimization=Optimization(learning_rate=1e-2))
    module.poisoned = {1}
    run = trainer(tmp_path / "b", 3)
    run.fit(module, datamodule=PuzzleVideoDataModule(str(maze_dataset), batch_size=2, num_val_puzzles=0))
    assert module.nonfinite_steps == 1 and run.global_step == 3
    weights = lora_of(module)
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert any(not torch.equal(weights[k], after_one[k]) for k in weights)  # step 3 trained again


def test_too_many_nan_steps_stop_with_a_clear_error_and_a_finite_checkpoint(tmp_path, maze_dataset):
    module = PoisonedSFT(transformer="tiny", lora=LoraSpec(rank=2), optimization=Optimization(learning_rate=1e-2),
                         max_nonfinite_steps=3)
    module.poisoned = set(range(1, 100))
    with pytest.raises(NonFiniteTrainingError, match="max_nonfinite_steps"):
        trainer(tmp_path, 10).fit(module, datamodule=PuzzleVideoDataModule(str(maze_dataset), batch_size=2,
                                                                            num_val_puzzles=0))
    kept = load_module(tmp_path / "checkpoints" / "nonfinite-stop.ckpt")
    weights = {n: p for n, p in kept.transformer.named_parameters() if "lora_" in n}
    assert weights and all(torch.isfinite(v).all() for v in weights.values())
    with pytest.raises(ValueError, match="max_nonfinite_steps"):
        SFTModule(transformer="tiny", max_nonfinite_steps=0)


def test_a_nan_grpo_update_is_skipped_without_touching_the_adapter(tmp_path, maze_dataset, varying_reward):
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--reward", type=torch.nn.Module)
    reward = parser.instantiate_classes(parser.parse_object({"reward": varying_reward})).reward
    module = PoisonedGRPO(transformer="tiny", lora=LoraSpec(rank=2), reward=reward,
                          sampling=Sampling(group_size=2, num_steps=3, reward_workers=1),
                          optimization=PolicyOptimization(learning_rate=1e-2))
    module.poisoned = {0}
    before = lora_of(module)
    # a skipped update does not count as a step: one batch, one (skipped) update
    trainer(tmp_path, 1, limit_train_batches=1, max_epochs=1).fit(
        module, datamodule=PuzzleVideoDataModule(str(maze_dataset), batch_size=1, num_val_puzzles=0))
    assert module.nonfinite_steps == 1 and module.global_step == 0
    assert all(torch.equal(before[k], v) for k, v in lora_of(module).items())
