"""`EmbeddingReward` on navigation: the reference ranks above its time-reversed, truncated, frozen and off-goal
variants on every test scene, and the reward's ranking of perturbed walks agrees with the exact checker; the frame
encoders (the Wan VAE from a folder, a transformers image model, TorchScript, pixels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from videoreason.rewards import EmbeddingReward, ImageModelFrames, PooledPixels, WanVAEFrames
from videoreason.rewards.base import reward_inputs
from videoreason.rewards.groups import RolloutGroups
from videoreason.tasks.agent import distances, straightest_shortest_path
from videoreason.tasks.navigation import Navigation, _scene
from videoreason.tasks.render import RenderSpec

TASK = Navigation()
SPEC = RenderSpec(height=40, width=40, num_frames=9)
SCENES = range(1000, 1012)  # seeds of the test scenes


def walk_video(puzzle, walk) -> np.ndarray:
    scene = _scene(puzzle)
    walk = [*walk, *[walk[-1]] * (SPEC.num_frames - len(walk))]
    return TASK.render(puzzle, np.stack([scene.view_at(c) for c in walk]), SPEC)


def variants(seed: int):
    """A scene, its reference video and the four variants a reward must rank below it, and perturbed walks."""
    puzzle = TASK.generate(np.random.default_rng(seed), "tiny")
    board = TASK.board(puzzle)
    walk = list(board.reference)
    from_start, to_goal = distances(board.moves, board.start), distances(board.moves, board.goal)
    elsewhere = max((c for c in from_start if from_start[c] < SPEC.num_frames and c != board.goal),
                    key=lambda c: (to_goal[c], c))  # the reachable cell farthest from the goal
    off_goal = straightest_shortest_path(board.moves, board.start, elsewhere)
    reference = walk_video(puzzle, walk)
    ranked = {"reversed": reference[::-1].copy(), "truncated": walk_video(puzzle, walk[:len(walk) // 2 + 1]),
              "frozen": walk_video(puzzle, walk[:1]), "off_goal": walk_video(puzzle, off_goal)}
    perturbed = [walk_video(puzzle, walk[:k]) for k in range(1, len(walk) + 1)]
    perturbed += [walk_video(puzzle, off_goal[:k]) for k in range(2, len(off_goal) + 1)]
    return puzzle, reference, ranked, perturbed


def score(reward: EmbeddingReward, videos: list[np.ndarray], reference: np.ndarray) -> np.ndarray:
    reward.reset()
    reward.update(RolloutGroups.of_samples(videos=torch.from_numpy(np.stack(videos)),
                  references=torch.from_numpy(np.repeat(reference[None], len(videos), axis=0))))
    return reward.compute().flatten().numpy()


@pytest.mark.parametrize("encoder", [WanVAEFrames("tiny"), PooledPixels(8)], ids=["wan_vae", "pixels"])
def test_reference_ranks_first_and_the_ranking_agrees_with_the_exact_checker(encoder, capsys):
    reward = EmbeddingReward(encoder)
    correlations = []
    for seed in SCENES:
        puzzle, reference, ranked, perturbed = variants(seed)
        scores = score(reward, [reference, *ranked.values()], reference)
        assert scores[0] == pytest.approx(1.0, abs=1e-5)
        assert all(scores[0] > s for s in scores[1:]), (seed, dict(zip(ranked, scores[1:], strict=True)))
        exact = [np.mean(list(TASK.verdict(v, puzzle, SPEC).components.values())) for v in perturbed]
        correlations.append(spearmanr(score(reward, perturbed, reference), exact).statistic)
    mean = float(np.mean(correlations))
    with capsys.disabled():
        print(f"\n{type(encoder).__name__}: Spearman rank correlation with the exact checker over "
              f"{len(correlations)} scenes: mean {mean:.3f}, min {min(correlations):.3f}")
    assert mean >= 0.8


def test_reward_reads_references_and_checks_its_arguments():
    reward = EmbeddingReward(PooledPixels(4))
    assert "references" in reward_inputs(reward)
    videos = np.zeros((2, 3, 16, 16, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="references"):
        reward.update(RolloutGroups.of_samples(videos=videos, references=videos[:1]))
    with pytest.raises(ValueError, match="weights"):
        EmbeddingReward(PooledPixels(4), weights={"speed": 1.0})
    with pytest.raises(ValueError, match="weights"):
        EmbeddingReward(PooledPixels(4), weights={"order": 0.0})


def test_wan_vae_from_a_folder_and_local_image_models(tiny_wan_dir, tmp_path):
    frames = TASK.render(*(lambda p: (p, TASK.states(p, TASK.solve(p), SPEC.num_frames)))(
        TASK.generate(np.random.default_rng(0), "tiny")), SPEC)  # [9, 40, 40, 3]
    tiny = WanVAEFrames("tiny")(frames)
    torch.testing.assert_close(WanVAEFrames(str(tiny_wan_dir))(frames), tiny)  # the folder holds the same weights
    assert tiny.shape == (9, 4 * 16)

    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       image_size=32, patch_size=8)).save_pretrained(tmp_path / "vit")
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "vit")
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 8, 8), torch.nn.Flatten())),
                   str(tmp_path / "encoder.pt"))
    for encoder in (ImageModelFrames(tmp_path / "vit"), ImageModelFrames(tmp_path / "encoder.pt", size=32)):
        embedded = encoder(frames)
        assert embedded.ndim == 2 and len(embedded) == 9
        torch.testing.assert_close(encoder(frames[:1]), embedded[:1])  # batch-independent
        assert not torch.allclose(embedded[0], embedded[-1])  # the start and the goal views differ
    with pytest.raises(FileNotFoundError, match="neither"):
        ImageModelFrames(tmp_path)


def test_navigation_embedding_preset_uses_the_wan_vae_and_logs_success():
    from videoreason.rewards import SuccessReward, load_reward

    reward = load_reward("navigation_embedding")
    assert isinstance(reward.rewards["embedding"].encoder, WanVAEFrames)
    assert isinstance(reward.rewards["success"], SuccessReward) and reward.weights["success"] == 0.0


def test_a_group_reads_its_reference_once():
    calls = []

    class Counting(PooledPixels):
        def __call__(self, frames):
            calls.append(len(frames))
            return super().__call__(frames)

    videos = torch.randint(0, 255, (2, 2, 3, 16, 16, 3), dtype=torch.uint8)  # two puzzles, two rollouts each
    references = videos[:, 0]
    grouped = EmbeddingReward(Counting(4))
    grouped.update(RolloutGroups(["p", "q"], videos=videos, references=references))
    assert calls == [12, 6]  # 4 videos x 3 frames, then 2 references x 3 frames
    separate = EmbeddingReward(PooledPixels(4))  # the same rollouts as independent samples, references repeated
    repeated = references.repeat_interleave(2, 0)
    separate.update(RolloutGroups.of_samples(videos=videos.flatten(0, 1), references=repeated))
    torch.testing.assert_close(grouped.compute().flatten(), separate.compute().flatten())
    assert grouped.compute()[:, 0].tolist() == pytest.approx([1.0, 1.0])  # rollout 0 is its puzzle's reference
