"""Memory savers shared by the phases: gradient checkpointing, bitsandbytes 8-bit AdamW (plain and paged), and
prompt embeddings computed once at fit start so the text encoder is freed before training."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from conftest import CountingEmbedder

from videoreason.data.datamodule import PuzzleVideoDataModule
from videoreason.models.lora import LoraSpec
from videoreason.models.text import HashTextEmbedder
from videoreason.phases.settings import Optimization
from videoreason.phases.sft import SFTModule


def _batch(device: str = "cpu") -> tuple[torch.Tensor, list[str], torch.Tensor, torch.Tensor]:
    """Fixed video ``[2, 3, 5, 32, 32]``, prompts, sigmas and noise of PixelCodec(4) latents ``[2, 48, 5, 8, 8]``."""
    gen = torch.Generator().manual_seed(0)
    video = torch.rand(2, 3, 5, 32, 32, generator=gen) * 2 - 1
    noise = torch.randn(2, 48, 5, 8, 8, generator=gen)
    return video.to(device), ["solve the maze", "draw the path"], torch.tensor([0.3, 0.8]), noise.to(device)


def test_gradient_checkpointing_recomputes_blocks_with_the_same_gradients():
    video, prompts, sigma, noise = _batch()
    grads, calls, losses = {}, {}, {}
    for flag in (False, True):
        torch.manual_seed(0)
        module = SFTModule(transformer="tiny", lora=LoraSpec(rank=4, alpha=4), gradient_checkpointing=flag)
        gen = torch.Generator().manual_seed(1)
        for name, param in module.transformer.named_parameters():
            if "lora_B" in name:
                param.data.copy_(torch.randn(param.shape, generator=gen) * 0.1)  # so lora_A gets gradients too
        count = [0]
        module.transformer.blocks[0].register_forward_pre_hook(lambda *_, c=count: c.__setitem__(0, c[0] + 1))
        loss = module.flow_matching_loss(video, prompts, sigma, noise)
        loss.backward()
        losses[flag], calls[flag] = float(loss.detach()), count[0]
        grads[flag] = {n: p.grad.clone() for n, p in module.transformer.named_parameters() if p.requires_grad}
    assert calls == {False: 1, True: 2}  # the block ran again in the backward pass
    assert losses[True] == losses[False]
    assert grads[True].keys() == grads[False].keys() and all(g.abs().sum() > 0 for g in grads[False].values())
    for name, grad in grads[False].items():
        torch.testing.assert_close(grads[True][name], grad, rtol=1e-5, atol=1e-7)


def _train(
    optimizer: str, steps: int = 8, device: str = "cpu", lr: float = 5e-3
) -> tuple[list[float], torch.Tensor, SFTModule]:
    """``steps`` optimizer steps on a fixed batch; returns losses, the flat LoRA update and the module."""
    video, prompts, sigma, noise = _batch(device)
    torch.manual_seed(0)
    module = SFTModule(transformer="small", lora=LoraSpec(rank=16, alpha=16),
                       optimization=Optimization(learning_rate=lr, optimizer=optimizer)).to(device)
    params = [p for p in module.transformer.parameters() if p.requires_grad]
    start = torch.cat([p.detach().flatten() for p in params]).clone()
    opt = module._optimizer()
    losses = []
    for _ in range(steps):
        loss = module.flow_matching_loss(video, prompts, sigma, noise)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss.detach()))
    module.optimizer_for_test = opt
    return losses, torch.cat([p.detach().flatten() for p in params]) - start, module


@pytest.mark.parametrize("name", ["adamw8bit", "paged_adamw8bit"])
def test_8bit_adamw_trains_lora_like_torch_adamw(name):
    import bitsandbytes as bnb

    ref_losses, ref_update, _ = _train("adamw")
    losses, update, module = _train(name)
    opt = module.optimizer_for_test
    assert type(opt) is {"adamw8bit": bnb.optim.AdamW8bit, "paged_adamw8bit": bnb.optim.PagedAdamW8bit}[name]
    states = [s for s in opt.state.values() if s]
    assert states and all(s["state1"].dtype == torch.uint8 for s in states)  # 8-bit moments (LoRA rank 16 x 256)
    ref_drop, drop = ref_losses[0] - ref_losses[-1], losses[0] - losses[-1]
    assert losses[0] == ref_losses[0] and ref_drop > 0.05 * ref_losses[0]
    assert abs(drop - ref_drop) < 0.05 * ref_drop
    cosine = torch.nn.functional.cosine_similarity(update, ref_update, dim=0)
    assert cosine > 0.99 and abs(update.norm() / ref_update.norm() - 1) < 0.05


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["adamw8bit", "paged_adamw8bit"])
def test_8bit_adamw_on_cuda(name):
    ref_losses, ref_update, _ = _train("adamw", device="cuda")
    losses, update, module = _train(name, device="cuda")
    states = [s for s in module.optimizer_for_test.state.values() if s]
    assert all(s["state1"].dtype == torch.uint8 and s["state1"].is_cuda for s in states)
    assert losses[-1] < losses[0]
    assert torch.nn.functional.cosine_similarity(update, ref_update, dim=0) > 0.95


def test_prompts_are_embedded_once_at_fit_start(maze_dataset):
    data = PuzzleVideoDataModule(str(maze_dataset), batch_size=2, num_val_puzzles=2, samples_per_epoch=4)
    embedder = CountingEmbedder(dim=32)
    module = SFTModule(transformer="tiny", text_embedder=embedder, val_steps=2)
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=1,
                        val_check_interval=2)
    trainer.fit(module, datamodule=data)
    prompts = data.prompts()
    assert prompts and len(prompts) == len(set(prompts))
    rows = [*data.train_dataset.rows, *data.val_dataset.rows]
    assert set(prompts) == {r["prompt"] for r in rows}
    assert embedder.calls == [prompts] and embedder.released == 1  # training and validation only read memory
    torch.testing.assert_close(embedder.embed(prompts[:1]), HashTextEmbedder(dim=32).embed(prompts[:1]))


@pytest.mark.parametrize("phase", ["sft", "grpo"])
@pytest.mark.parametrize(("key", "value"), [
    ("optimization.learning_rate", 0.0), ("optimization.weight_decay", -1.0), ("optimization.warmup_steps", -1),
    ("optimization.optimizer", "sgd"), ("val_steps", 0), ("val_shift", 0.0), ("num_sample_videos", -1),
    ("max_nonfinite_steps", 0), ("clip_frames", 1),
])
def test_both_phases_check_the_shared_arguments_the_same_way(phase, key, value):
    from videoreason.phases.grpo import GRPOModule

    module = SFTModule if phase == "sft" else GRPOModule
    group, _, name = key.rpartition(".")
    with pytest.raises(ValueError, match=f"`{key}` must"):
        module(transformer="tiny", **({group: {name: value}} if group else {name: value}))
