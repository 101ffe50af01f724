"""Analytic FLOPs / parameters / memory of the Wan transformer agree with the real model and scale as they should."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # as `python benchmarks/scale.py` does
import estimates as est  # noqa: E402

from videoreason.models.transformer import build_transformer, transformer_config  # noqa: E402


def _meta_model(name: str, lora_rank: int = 0) -> torch.nn.Module:
    from diffusers import WanTransformer3DModel

    from videoreason.models.lora import LoraSpec, add_lora

    with torch.device("meta"):
        model = WanTransformer3DModel(**transformer_config(name))
    if lora_rank:
        add_lora(model, LoraSpec(rank=lora_rank, alpha=lora_rank))
    return model


@pytest.mark.parametrize("name", ["tiny", "wan2.1-1.3b", "wan2.2-ti2v-5b"])
def test_param_count_matches_the_real_model(name):
    model = _meta_model(name, lora_rank=32)
    base = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
    lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    config = transformer_config(name)
    assert est.param_count(config) == pytest.approx(base, rel=0.02)
    assert est.lora_param_count(config, 32) == pytest.approx(lora, rel=0.02)
    if name == "wan2.1-1.3b":
        assert 1.3e9 < base < 1.5e9
    if name == "wan2.2-ti2v-5b":
        assert 4.9e9 < base < 5.1e9


def _counted_flops(model: torch.nn.Module, config: dict, frames: int, side: int, text_tokens: int,
                   backward: bool = False) -> int:
    """FLOPs torch's FlopCounterMode counts for one forward (+ backward) of ``model`` on a [1, C, f, side, side]
    latent (math SDPA, so attention's matmuls are visible to the counter)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from videoreason.diffusion.sampler import token_timesteps

    x = torch.randn(1, config["in_channels"], frames, side, side)
    timestep = token_timesteps(torch.tensor([0.5]), x.shape, config["patch_size"])
    text = torch.randn(1, text_tokens, config["text_dim"])
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH), torch.set_grad_enabled(backward):
        out = model(hidden_states=x, timestep=timestep, encoder_hidden_states=text, return_dict=False)[0]
        if backward:
            out.square().mean().backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_forward_flops_match_torch_flop_counter(name):
    config = transformer_config(name)
    model = build_transformer(name)
    frames, side, text_tokens = 3, 16, 20
    tokens = est.num_tokens(config, frames, 4 * side, 4 * side, est.PIXEL4)
    assert tokens == frames * (side // 2) ** 2
    counted = _counted_flops(model, config, frames, side, text_tokens)
    assert est.forward_flops(config, tokens, text_tokens=text_tokens) == pytest.approx(counted, rel=0.01)


def test_lora_flops_and_the_3x_training_convention():
    """LoRA branches are counted; a full fine-tune's forward + backward is 3 forwards, a LoRA one's less (the frozen
    base needs no weight gradients), which the 3x convention over-counts (documented)."""
    from videoreason.models.lora import LoraSpec, add_lora

    config, (frames, side, m) = transformer_config("small"), (3, 16, 20)
    tokens = frames * (side // 2) ** 2
    full = build_transformer("small")
    fwd = est.forward_flops(config, tokens, text_tokens=m)
    assert _counted_flops(full, config, frames, side, m, backward=True) == pytest.approx(3 * fwd, rel=0.02)
    lora = build_transformer("small")
    add_lora(lora, LoraSpec(rank=8, alpha=8))
    fwd_lora = est.forward_flops(config, tokens, text_tokens=m, lora_rank=8)
    assert fwd_lora > fwd
    assert _counted_flops(lora, config, frames, side, m) == pytest.approx(fwd_lora, rel=0.01)
    trained = _counted_flops(lora, config, frames, side, m, backward=True)
    assert 1.5 * fwd_lora < trained < 0.7 * 3 * fwd_lora  # ~1.8x: activation gradients only, frozen embedders
    assert est.sft_step_flops(config, tokens, 2, text_tokens=m) == pytest.approx(6 * fwd)


def test_real_size_token_counts():
    wan21, wan22 = transformer_config("wan2.1-1.3b"), transformer_config("wan2.2-ti2v-5b")
    assert est.num_tokens(wan21, 33, 480, 832, est.CODECS["wan2.1-1.3b"]) == 9 * 30 * 52
    assert est.num_tokens(wan21, 81, 480, 832, est.CODECS["wan2.1-1.3b"]) == 21 * 30 * 52
    assert est.num_tokens(wan22, 33, 480, 832, est.CODECS["wan2.2-ti2v-5b"]) == 9 * 15 * 26
    assert est.num_tokens(wan22, 81, 480, 832, est.CODECS["wan2.2-ti2v-5b"]) == 21 * 15 * 26


def test_codec_geometries_match_the_codecs_and_transformers():
    from videoreason.models.codec import PixelCodec, WanVAECodec

    assert est.PIXEL4.latent_shape(9, 64, 64) == PixelCodec(patch=4).latent_shape(9, 64, 64)
    vae = WanVAECodec("tiny")  # the Wan VAE with tiny widths: 4x temporal, 8x spatial as the Wan2.1 VAE
    geometry = est.Geometry(vae.temporal_factor, vae.spatial_factor, vae.latent_channels)
    assert geometry.latent_shape(33, 64, 96) == vae.latent_shape(33, 64, 96)
    assert (est.WAN21_VAE.temporal, est.WAN21_VAE.spatial) == (vae.temporal_factor, vae.spatial_factor)
    for name, codec in est.CODECS.items():  # each transformer takes its codec's latent channels
        assert codec.channels == transformer_config(name)["in_channels"]


def test_flops_linear_in_layers_and_quadratic_attention_in_tokens():
    config = transformer_config("wan2.1-1.3b")
    deeper = {**config, "num_layers": 2 * config["num_layers"]}
    none = {**config, "num_layers": 0}
    n = 14040
    per_layers = est.forward_flops(config, n) - est.forward_flops(none, n)
    assert est.forward_flops(deeper, n) - est.forward_flops(none, n) == pytest.approx(2 * per_layers)
    # second difference in n isolates the n^2 self-attention term: 4 d n^2 per layer
    d, layers = 12 * 128, config["num_layers"]
    f = [est.forward_flops(config, k * n) for k in (1, 2, 3)]
    assert f[2] - 2 * f[1] + f[0] == pytest.approx(layers * 4 * d * 2 * n**2, rel=1e-9)
    assert 2 < f[1] / f[0] < 4  # super-linear in tokens at real sizes, attention not yet everything


def test_early_step_focus_trains_k_of_n_minus_1_steps():
    config = transformer_config("wan2.2-ti2v-5b")
    n_tok, n, k = 3510, 20, 10
    kw = dict(num_steps=n, group_size=8, batch_size=2, reference=True)
    full = est.grpo_step_flops(config, n_tok, trained_steps=n - 1, **kw)
    esf = est.grpo_step_flops(config, n_tok, trained_steps=k, **kw)
    fwd = est.forward_flops(config, n_tok)
    assert esf.rollout == full.rollout == pytest.approx(16 * n * fwd)
    assert esf.train / full.train == pytest.approx(k / (n - 1))
    assert full.train == pytest.approx(16 * (n - 1) * 4 * fwd)  # 3x trained + 1 reference forward
    saved = 1 - esf.total / full.total
    assert saved == pytest.approx((n - 1 - k) * 4 / (n + (n - 1) * 4))
    tail = est.grpo_step_flops(config, n_tok, trained_steps=k, tail_steps=4, **kw)
    assert tail.rollout == pytest.approx(16 * (k + 4) * fwd) and tail.train == esf.train
    with pytest.raises(ValueError, match="trained_steps"):
        est.grpo_step_flops(config, n_tok, trained_steps=n, **kw)


def test_memory_savers_shrink_their_own_terms():
    config, tokens = transformer_config("wan2.2-ti2v-5b"), 3510
    base = est.training_memory(config, tokens, micro_batch_size=2, optimizer="adamw", gradient_checkpointing=False)
    eight = est.training_memory(config, tokens, micro_batch_size=2, optimizer="adamw8bit",
                                gradient_checkpointing=False)
    ckpt = est.training_memory(config, tokens, micro_batch_size=2, optimizer="adamw", gradient_checkpointing=True)
    assert eight.optimizer == base.optimizer / 4 and eight.activations == base.activations
    assert ckpt.activations < base.activations / 5 and ckpt.optimizer == base.optimizer
    lora = est.lora_param_count(config, 32)
    assert base.optimizer == 8 * lora and base.grads == 4 * lora and base.weights == 2 * est.param_count(config)
    full = est.training_memory(config, tokens, micro_batch_size=2, lora_rank=None)
    assert full.optimizer == 8 * est.param_count(config) and full.total > 75e9  # why the configs use LoRA
    one = est.training_memory(config, tokens, micro_batch_size=1, gradient_checkpointing=True)
    assert ckpt.activations == pytest.approx(2 * one.activations)


def test_wan22_5b_grpo_lora_480x832x33_fits_80gb():
    """The issue's target, by the estimate at the GRPO config's settings, even with fp32 base weights."""
    config, name = transformer_config("wan2.2-ti2v-5b"), "wan2.2-ti2v-5b"
    tokens = est.num_tokens(config, 33, 480, 832, est.CODECS[name])
    latent = est.CODECS[name].latent_shape(33, 480, 832)
    mem = est.grpo_memory(config, tokens, latent, trained_steps=10, videos=16, micro_batch_size=2,
                          rollout_batch_size=4, optimizer="adamw8bit", weight_bytes=4)
    assert mem.total < 70 * 2**30
    assert mem.rollout == pytest.approx(16 * (2 * 10 * 48 * 9 * 30 * 52 * 4 + 512 * 4096 * 4))
    assert dataclasses.replace(mem, rollout=0).total < mem.total


def test_activation_estimate_matches_what_autograd_saves():
    """Without checkpointing, the tensors autograd keeps for backward (LoRA on a frozen base, fp32 here so 2x the
    estimate's bf16 bytes) are within 25% of the estimate."""
    from videoreason.diffusion.sampler import token_timesteps
    from videoreason.models.lora import LoraSpec, add_lora

    config, model = transformer_config("medium"), build_transformer("medium")
    add_lora(model, LoraSpec(rank=8, alpha=8))
    x = torch.randn(1, config["in_channels"], 5, 32, 32)  # [B, C, f, h, w]: 5 x 16 x 16 tokens
    timestep = token_timesteps(torch.tensor([0.5]), x.shape, config["patch_size"])
    saved: dict[tuple, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved[(tensor.data_ptr(), tuple(tensor.shape))] = tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(hidden_states=x, timestep=timestep, encoder_hidden_states=torch.randn(1, 32, config["text_dim"]),
              return_dict=False)
    estimate = 2 * est.activation_bytes(config, 5 * 16 * 16, 1, gradient_checkpointing=False, text_tokens=32)
    assert sum(saved.values()) == pytest.approx(estimate, rel=0.25)


def test_offloaded_rollouts_keep_one_micro_batch_of_step_latents_on_the_device():
    config, latent = transformer_config("wan2.1-1.3b"), (16, 21, 60, 104)
    kw = dict(trained_steps=10, videos=16, micro_batch_size=1, rollout_batch_size=2)
    kept = est.grpo_memory(config, 32760, latent, **kw)
    offloaded = est.grpo_memory(config, 32760, latent, offload_rollouts=True, **kw)
    step_latents = 2 * 16 * 21 * 60 * 104 * 4  # before and after one step, fp32
    assert kept.rollout - offloaded.rollout == pytest.approx((16 * 10 - 1) * step_latents)
