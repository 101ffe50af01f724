"""SFT phase: the flow-matching loss falls, only LoRA weights move, validation generates and verifies."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from videoreason.data.datamodule import PuzzleVideoDataModule
from videoreason.data.generate import generate_dataset
from videoreason.models.lora import LoraSpec
from videoreason.phases.settings import FlowMatchingLoss, Optimization
from videoreason.phases.sft import SFTModule


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft") / "data"
    generate_dataset("maze", root, 8, split="train", difficulty="tiny", workers=1, progress=False)
    generate_dataset("maze", root, 2, split="val", difficulty="tiny", workers=1, progress=False)
    return root


def fixed_loss(module: SFTModule, batch: dict) -> float:
    """Loss at fixed sigmas and noise, so before/after compare the model, not the draw."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        x0 = module.codec.encode(batch["video"])
        noise = torch.randn(x0.shape, generator=gen)
        sigma = torch.linspace(0.2, 0.9, x0.shape[0])
        return module.flow_matching_loss(batch["video"], list(batch["prompt"]), sigma, noise).item()


def test_sft_loss_falls_and_only_lora_changes(dataset):
    torch.manual_seed(0)
    data = PuzzleVideoDataModule(str(dataset), batch_size=4, num_val_puzzles=2, samples_per_epoch=8)
    module = SFTModule(lora=LoraSpec(rank=8, alpha=8), optimization=Optimization(learning_rate=1e-2), val_steps=4)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    before = fixed_loss(module, batch)
    base = {n: p.detach().clone() for n, p in module.transformer.named_parameters()}
    trainer = L.Trainer(max_epochs=15, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, check_val_every_n_epoch=15)
    trainer.fit(module, datamodule=data)
    after = fixed_loss(module, batch)
    assert after < 0.9 * before  # deterministic: fixed data, sigmas and noise
    changed = {n for n, p in module.transformer.named_parameters() if not torch.equal(p, base[n])}
    assert changed and all("lora" in n for n in changed)
    metrics = trainer.callback_metrics
    for key in ("precision", "recall", "f1", "success", "exact_match"):
        assert 0.0 <= float(metrics[f"val/maze/{key}"]) <= 1.0


def test_generated_video_shape_and_bad_config():
    module = SFTModule(val_steps=2)
    first = torch.zeros(2, 3, 64, 64)
    video = module.generate(first, ["a", "b"], num_frames=9)
    assert video.shape == (2, 9, 64, 64, 3) and video.dtype == torch.uint8
    with pytest.raises(ValueError, match="`optimization.learning_rate` must be > 0"):
        SFTModule(optimization=Optimization(learning_rate=0))
    from videoreason.models.text import HashTextEmbedder

    with pytest.raises(ValueError, match="text_dim"):
        SFTModule(text_embedder=HashTextEmbedder(dim=7))


def test_change_weight_upweights_where_the_solution_is_drawn():
    module = SFTModule(loss=FlowMatchingLoss(change_weight=9.0))
    torch.nn.init.zeros_(module.transformer.proj_out.weight)
    torch.nn.init.zeros_(module.transformer.proj_out.bias)  # v = 0: the loss is the weighted mean of target^2
    video = torch.full((1, 3, 9, 64, 64), -1.0)
    sigma, gen = torch.tensor([0.5]), torch.Generator().manual_seed(0)
    noise = torch.randn(module.codec.encode(video).shape, generator=gen)
    static = module.flow_matching_loss(video, ["p"], sigma, noise)
    module.loss = FlowMatchingLoss(change_weight=0.0)
    assert torch.allclose(static, module.flow_matching_loss(video, ["p"], sigma, noise))  # nothing changes: plain
    video[:, :, 4:, :8, :8] = 1.0  # one 8x8 block painted from frame 4 on
    plain = module.flow_matching_loss(video, ["p"], sigma, noise)
    module.loss = FlowMatchingLoss(change_weight=9.0)
    weighted = module.flow_matching_loss(video, ["p"], sigma, noise)
    target = (noise - module.codec.encode(video))[:, :, 1:].square()
    changed = torch.zeros(1, 1, *target.shape[2:])
    changed[:, :, 3:, :2, :2] = 1.0  # latent frames 4.. (frame 0 excluded), PixelCodec patch 4: 2x2 cells
    weight = 1 + 9.0 * changed
    assert torch.allclose(plain, target.mean())
    assert torch.allclose(weighted, (target * weight).mean() / weight.mean())
    with pytest.raises(ValueError, match="`loss.change_weight` must be >= 0"):
        SFTModule(loss={"change_weight": -1})


def test_rising_frame_noise_draws_one_sorted_level_per_frame_and_noises_each_frame_at_it(dataset):
    module = SFTModule(loss=FlowMatchingLoss(frame_noise="rising", sigma_sampling="uniform", shift=1.0))
    data = PuzzleVideoDataModule(str(dataset), batch_size=4, num_val_puzzles=0)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    seen = {}
    real = module.flow_matching_loss

    def spy(video, prompts, sigma, noise=None):
        seen["sigma"], seen["noise"] = sigma, noise
        return real(video, prompts, sigma, noise)

    module.flow_matching_loss = spy
    assert torch.isfinite(module.training_step(batch, 0))
    sigma = seen["sigma"]  # [B, f]: 0 for the condition frame, then non-decreasing
    assert sigma.shape == (4, 9) and bool((sigma[:, 0] == 0).all())
    assert bool((sigma[:, 2:] >= sigma[:, 1:-1]).all()) and bool((sigma[:, 1:] > 0).all())
    assert len(set(sigma[0, 1:].tolist())) == 8  # independent draws, not one level repeated
    # per-frame levels reach the model: frame 1 clean and the rest pure noise is not the all-noise loss
    module.flow_matching_loss = real
    clean_first = torch.tensor([[0.0, 0.0] + [1.0] * 7])
    per_frame = module.flow_matching_loss(batch["video"][:1], batch["prompt"][:1], clean_first, seen["noise"][:1])
    shared = module.flow_matching_loss(batch["video"][:1], batch["prompt"][:1], torch.ones(1), seen["noise"][:1])
    assert not torch.allclose(per_frame, shared)  # frame 1 was not noised like the others
    with pytest.raises(ValueError, match="`loss.frame_noise` must be one of"):
        SFTModule(loss=FlowMatchingLoss(frame_noise="sometimes"))
    with pytest.raises(ValueError, match="frame_lag"):
        SFTModule(frame_lag=-1)


def test_frame_lag_samples_frames_one_after_another():
    torch.manual_seed(0)
    together, staggered = SFTModule(val_steps=3), SFTModule(val_steps=3, frame_lag=3)
    staggered.transformer.load_state_dict(together.transformer.state_dict())
    first = torch.rand(1, 3, 64, 64) * 2 - 1
    a, b = together.generate(first, ["p"], num_frames=5), staggered.generate(first, ["p"], num_frames=5)
    assert a.shape == b.shape == (1, 5, 64, 64, 3)
    assert torch.equal(a[:, 0], b[:, 0]) and not torch.equal(a, b)
    calls = []
    staggered.transformer.register_forward_hook(lambda *args: calls.append(1))
    staggered.generate(first, ["p"], num_frames=5)
    assert len(calls) == 3 + 3 * 3  # 3 steps per frame, each of frames 2..4 starting 3 steps later


def test_export_keeps_the_staggered_sampler(tmp_path):
    from videoreason.models.export import export_module, load_module

    module = SFTModule(val_steps=2, loss=FlowMatchingLoss(frame_noise="rising"), frame_lag=1)
    loaded = load_module(export_module(module, tmp_path / "adapter"))
    assert loaded.loss.frame_noise == "rising" and loaded.hparams.frame_lag == 1
    first = torch.rand(1, 3, 64, 64) * 2 - 1
    assert torch.equal(module.generate(first, ["p"], num_frames=5), loaded.generate(first, ["p"], num_frames=5))


def test_clip_training_learns_from_random_windows_of_consecutive_frames(dataset):
    module = SFTModule(clip_frames=2)
    data = PuzzleVideoDataModule(str(dataset), batch_size=4, num_val_puzzles=0)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    seen = []
    real = module.flow_matching_loss
    module.flow_matching_loss = lambda video, prompts, sigma, noise=None: (seen.append(video), real(
        video, prompts, sigma, noise))[1]
    assert torch.isfinite(module.training_step(batch, 0))
    module.training_step(batch, 0)
    windows = seen[0]
    assert windows.shape == (4, 3, 2, *batch["video"].shape[3:])
    starts = []
    for video, window in zip(batch["video"], windows, strict=True):  # each window is two consecutive frames
        start = next(s for s in range(video.shape[1] - 1) if torch.equal(video[:, s:s + 2], window))
        starts.append(start)
    assert torch.equal(seen[0], seen[1])  # drawn from (seed, step, id): the same step draws the same windows
    assert len(set(starts)) > 1 or batch["video"].shape[2] == 2
    with pytest.raises(ValueError, match="clip_frames"):
        SFTModule(clip_frames=1)
    with pytest.raises(ValueError, match="longer than the training videos"):
        SFTModule(clip_frames=99).training_step(batch, 0)


def test_a_clip_model_generates_window_by_window_from_the_last_frame():
    torch.manual_seed(0)
    module = SFTModule(val_steps=2, clip_frames=3)
    first = torch.randint(0, 256, (2, 3, 64, 64)) / 127.5 - 1  # whole uint8 levels, as a decoded frame has
    conditions = []
    module.transformer.register_forward_hook(lambda mod, args, kwargs, out: conditions.append(
        kwargs["hidden_states"][:, :, 0].clone()), with_kwargs=True)
    video = module.generate(first, ["p", "q"], num_frames=6)
    assert video.shape == (2, 6, 64, 64, 3)
    assert len(conditions) == 3 * 2  # ceil(5 new frames / 2 per window) windows of 2 steps
    for window, frame in enumerate((0, 2, 4)):  # window w is conditioned on frame 2w, as generated
        expected = module.codec.encode(video[:, frame:frame + 1])[:, :, 0]
        assert torch.allclose(conditions[2 * window], expected, atol=1e-6)
    assert torch.equal(video, module.generate(first, ["p", "q"], num_frames=6))  # seeded
    whole = SFTModule(val_steps=2)
    whole.transformer.load_state_dict(module.transformer.state_dict())
    assert torch.equal(whole.generate(first, ["p", "q"], num_frames=3), module.generate(first, ["p", "q"], 3))


def test_a_palette_codec_model_exports_and_reloads_as_the_same_model(tmp_path):
    from videoreason.models.codec import PaletteCodec
    from videoreason.models.export import export_module, load_module

    colours = ["wall", "floor", "start", "goal", "path", "dead_end"]
    module = SFTModule(transformer="tiny", codec=PaletteCodec(colours), val_steps=2, clip_frames=2)
    assert module.transformer.config.in_channels == 6  # one channel per colour
    loaded = load_module(export_module(module, tmp_path / "adapter"))
    assert isinstance(loaded.codec, PaletteCodec) and loaded.codec.config() == module.codec.config()
    first = module.codec.decode(torch.randn(2, 6, 1, 16, 16))[:, :, 0]  # [2, 3, 64, 64] painted in the palette
    assert torch.equal(module.generate(first, ["p", "q"], num_frames=3), loaded.generate(first, ["p", "q"], 3))
