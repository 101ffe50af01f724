"""Analytic FLOPs, parameter counts and training memory of the Wan transformer, from its config alone.

Nothing is built: the numbers come from ``transformer_config(name)`` (the ``WanTransformer3DModel`` kwargs) and the
video shape. Conventions:

- A multiply-add is 2 FLOPs. One sample's forward: each linear layer ``2 x weights x tokens it sees`` (video tokens;
  the cross-attention keys/values and the text projection see the ``text_tokens`` = 512 UMT5 tokens), plus per layer
  ``4 n^2 d`` for self-attention (``QK^T`` and ``AV``) and ``4 n m d`` for cross-attention. The timestep MLP runs per
  video token (first-frame conditioning gives every token its own timestep). Norms, rope, softmax and modulation are
  left out (< 1%).
- A trained forward costs 3 forwards (backward = 2 forwards), also with LoRA, where the frozen base needs no weight
  gradients and the backward really does ~1 forward of linear work (activation gradients) + 2 of attention (torch's
  flop counter: forward + backward = 1.8 forwards on ``small``). 3x is the usual model-FLOPs convention and keeps MFU
  comparable with full fine-tuning; for LoRA it over-states the executed FLOPs (by 3 / 1.8 = 1.7x on ``small``).
  Recomputation by gradient checkpointing is not counted either (model FLOPs, not hardware FLOPs).
- Memory: frozen weights in ``weight_bytes`` (bf16: 2), trainable parameters, their gradients and optimizer states
  in fp32 (AdamW 8 bytes/param, bitsandbytes 8-bit AdamW 2), bf16 activations of ``act_width`` values per token and
  layer (a rough count of what a Wan block saves for backward with memory-efficient attention, +-30%); with gradient
  checkpointing only each block's input plus one block being recomputed. CUDA context, allocator slack, the VAE and
  the text encoder are not counted.

Example::

    config = transformer_config("wan2.2-ti2v-5b")
    n = num_tokens(config, 33, 480, 832, CODECS["wan2.2-ti2v-5b"])       # 3510
    forward_flops(config, n) / 1e12                                        # TFLOPs of one forward
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

from videoreason.models.lora import DEFAULT_TARGET_MODULES

TEXT_TOKENS = 512
"""Prompt tokens of the Wan pipelines (UMT5, padded to 512)."""

OPTIMIZER_BYTES = {"adamw": 8, "adamw8bit": 2, "paged_adamw8bit": 2}
"""Optimizer state bytes per trainable parameter (two moments, fp32 or 8-bit; paged states count where they live)."""


@dataclasses.dataclass(frozen=True)
class Geometry:
    """How a codec shrinks a video: ``f = (F - 1) // temporal + 1``, ``h = H // spatial``, ``channels`` latents."""

    temporal: int
    spatial: int
    channels: int

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """``(C, f, h, w)`` of a ``frames x height x width`` video."""
        return self.channels, (frames - 1) // self.temporal + 1, height // self.spatial, width // self.spatial


WAN21_VAE = Geometry(temporal=4, spatial=8, channels=16)
WAN22_VAE = Geometry(temporal=4, spatial=16, channels=48)
PIXEL4 = Geometry(temporal=1, spatial=4, channels=48)  # PixelCodec(patch=4), the CPU recipes' codec
CODECS = {"tiny": PIXEL4, "small": PIXEL4, "medium": PIXEL4, "wan2.1-1.3b": WAN21_VAE, "wan2.2-ti2v-5b": WAN22_VAE}
"""The codec geometry each named transformer config is used with."""


def _width(config: dict[str, Any]) -> int:
    return int(config["num_attention_heads"]) * int(config["attention_head_dim"])


def block_linears(config: dict[str, Any]) -> list[tuple[str, int, int, bool]]:
    """The linear layers of one ``WanTransformerBlock``: ``(name, in, out, on_text_tokens)``."""
    d, f = _width(config), int(config["ffn_dim"])
    if config.get("added_kv_proj_dim"):
        raise ValueError("image-conditioned (I2V) Wan configs with `added_kv_proj_dim` are not modelled")
    attn = [("to_q", d, d), ("to_k", d, d), ("to_v", d, d), ("to_out.0", d, d)]
    return ([(f"attn1.{n}", i, o, False) for n, i, o in attn]
            + [(f"attn2.{n}", i, o, n in ("to_k", "to_v")) for n, i, o in attn]
            + [("ffn.net.0.proj", d, f, False), ("ffn.net.2", f, d, False)])


def num_tokens(config: dict[str, Any], frames: int, height: int, width: int, codec: Geometry) -> int:
    """Transformer tokens of one video: latent ``f x h x w`` divided by the patch size."""
    _, f, h, w = codec.latent_shape(frames, height, width)
    pt, ph, pw = config["patch_size"]
    return (f // pt) * (h // ph) * (w // pw)


def param_count(config: dict[str, Any]) -> int:
    """Parameters of ``WanTransformer3DModel(**config)`` (text-to-video / TI2V configs), counted analytically."""
    d, layers = _width(config), int(config["num_layers"])
    patch = math.prod(config["patch_size"])
    embed = int(config["in_channels"]) * patch * d + d  # patch_embedding (Conv3d)
    embed += int(config["freq_dim"]) * d + d + d * d + d  # time_embedder
    embed += d * 6 * d + 6 * d  # time_proj
    embed += int(config["text_dim"]) * d + d + d * d + d  # text_embedder
    block = sum(i * o + o for _, i, o, _ in block_linears(config))
    block += 2 * 2 * d  # norm_q, norm_k of both attentions (across heads)
    block += 2 * d if config.get("cross_attn_norm") else 0  # norm2 (affine)
    block += 6 * d  # scale_shift_table
    out = int(config["out_channels"]) * patch
    head = d * out + out + 2 * d  # proj_out, scale_shift_table
    return embed + layers * block + head


def _targeted(name: str, target_modules: Sequence[str]) -> bool:
    return any(name == t or name.endswith("." + t) for t in target_modules)


def lora_param_count(config: dict[str, Any], rank: int,
                     target_modules: Sequence[str] = DEFAULT_TARGET_MODULES) -> int:
    """LoRA parameters ``rank x (in + out)`` on the block linears matched by ``target_modules`` (peft's suffix rule)."""
    per_block = sum(rank * (i + o) for n, i, o, _ in block_linears(config) if _targeted(n, target_modules))
    return int(config["num_layers"]) * per_block


def forward_flops(config: dict[str, Any], tokens: int, text_tokens: int = TEXT_TOKENS, lora_rank: int = 0,
                  target_modules: Sequence[str] = DEFAULT_TARGET_MODULES) -> float:
    """FLOPs of one sample's forward pass (see the module docstring for what is counted).

    Args:
        config: ``WanTransformer3DModel`` kwargs.
        tokens: Video tokens ``n`` (``num_tokens``).
        text_tokens: Prompt tokens ``m``.
        lora_rank: Add the LoRA branches' FLOPs (0: none).
        target_modules: Modules carrying LoRA.
    """
    d, n, m = _width(config), tokens, text_tokens
    layer = 0.0
    for name, i, o, on_text in block_linears(config):
        weights = i * o + (lora_rank * (i + o) if lora_rank and _targeted(name, target_modules) else 0)
        layer += 2 * weights * (m if on_text else n)
    layer += 4 * n * n * d + 4 * n * m * d  # self- and cross-attention scores and values
    patch = math.prod(config["patch_size"])
    outside = 2 * n * (int(config["in_channels"]) * patch * d + int(config["out_channels"]) * patch * d)
    outside += 2 * n * (int(config["freq_dim"]) * d + 7 * d * d)  # per-token timestep MLP + 6-way projection
    outside += 2 * m * (int(config["text_dim"]) * d + d * d)  # text projection
    return int(config["num_layers"]) * layer + outside


def sft_step_flops(config: dict[str, Any], tokens: int, batch_size: int, **kwargs: Any) -> float:
    """Model FLOPs of one SFT step: ``3 x forward`` per sample (``kwargs`` go to ``forward_flops``)."""
    return 3 * batch_size * forward_flops(config, tokens, **kwargs)


@dataclasses.dataclass(frozen=True)
class StepFlops:
    """FLOPs of one GRPO iteration, split into rollout (no grad) and policy update."""

    rollout: float
    train: float

    @property
    def total(self) -> float:
        return self.rollout + self.train


def grpo_step_flops(config: dict[str, Any], tokens: int, *, num_steps: int, trained_steps: int, group_size: int,
                    batch_size: int, tail_steps: int = 0, reference: bool = False, inner_epochs: int = 1,
                    **kwargs: Any) -> StepFlops:
    """Model FLOPs of one GRPO iteration of ``batch_size`` puzzles x ``group_size`` rollouts.

    Rollout: ``num_steps`` forwards per video (``trained_steps + tail_steps`` with a fast tail after the last SDE
    step). Update: per video and trained SDE step 3 forwards, plus 1 for the reference policy when ``reference``
    (``beta > 0``). Early-Step Focus trains ``K`` of the ``N - 1`` trainable steps (the last step is never SDE).

    Args:
        config: ``WanTransformer3DModel`` kwargs.
        tokens: Video tokens per video.
        num_steps: Denoising steps ``N``.
        trained_steps: SDE steps ``K`` (``N - 1`` for all steps).
        group_size: Rollouts per puzzle ``G``.
        batch_size: Puzzles per iteration ``B``.
        tail_steps: Steps of the fast deterministic tail (0: the remaining ``N - K`` Euler steps).
        reference: Count the reference forward of the KL term.
        inner_epochs: Optimizer passes over the rollouts.
        **kwargs: Passed to ``forward_flops`` (``text_tokens``, ``lora_rank``, ``target_modules``).
    """
    if not 0 <= trained_steps <= num_steps - 1:
        raise ValueError(f"`trained_steps` must be in [0, {num_steps - 1}], got {trained_steps}")
    fwd = forward_flops(config, tokens, **kwargs)
    videos = group_size * batch_size
    rollout_steps = trained_steps + tail_steps if tail_steps else num_steps
    train = videos * trained_steps * (3 + int(reference)) * inner_epochs * fwd
    return StepFlops(rollout=videos * rollout_steps * fwd, train=train)


ACT_BYTES = 2
"""bf16 activations."""


def act_width(config: dict[str, Any]) -> int:
    """Values a Wan block saves per token for backward: ~12 d for self-attention (q/k/v before and after norm and rope,
    output), ~4 d for cross-attention, ~4 d for norms/modulation/residuals, and the FFN's input and 2 x ffn_dim hidden
    values (before and after GELU). Rough (+-30%), with memory-efficient attention (no ``n^2`` scores)."""
    return 21 * _width(config) + 2 * int(config["ffn_dim"])


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of a training step's peak, by kind."""

    weights: float
    trainable: float
    grads: float
    optimizer: float
    activations: float
    rollout: float = 0.0

    @property
    def total(self) -> float:
        return self.weights + self.trainable + self.grads + self.optimizer + self.activations + self.rollout


def activation_bytes(config: dict[str, Any], tokens: int, samples: int, gradient_checkpointing: bool,
                     text_tokens: int = TEXT_TOKENS) -> float:
    """Activations kept for backward of ``samples`` videos: every block's, or with gradient checkpointing each block's
    input plus one block's recomputed activations; plus the per-token timestep projection (``6 d``, fp32) and the
    projected prompt."""
    d, layers = _width(config), int(config["num_layers"])
    per_layer = tokens * act_width(config) * ACT_BYTES + text_tokens * 3 * d * ACT_BYTES  # + cross-attn text k/v
    kept = (layers * tokens * d * ACT_BYTES + per_layer) if gradient_checkpointing else layers * per_layer
    shared = tokens * 6 * d * 4 + text_tokens * d * ACT_BYTES
    return samples * (kept + shared)


def training_memory(config: dict[str, Any], tokens: int, *, micro_batch_size: int, lora_rank: int | None = 32,
                    optimizer: Literal["adamw", "adamw8bit", "paged_adamw8bit"] = "adamw",
                    gradient_checkpointing: bool = True, weight_bytes: int = 2, text_tokens: int = TEXT_TOKENS,
                    target_modules: Sequence[str] = DEFAULT_TARGET_MODULES) -> MemoryEstimate:
    """Peak memory of a training step (an SFT step; GRPO's update of one micro-batch).

    Args:
        config: ``WanTransformer3DModel`` kwargs.
        tokens: Video tokens per sample.
        micro_batch_size: Samples per backward.
        lora_rank: LoRA rank; ``None`` trains every weight (fp32 weights, gradients and states).
        optimizer: ``adamw`` (8 bytes of state per trainable parameter) or ``adamw8bit`` / ``paged_adamw8bit`` (2).
        gradient_checkpointing: Recompute blocks in backward.
        weight_bytes: Bytes per frozen base weight (bf16 2, fp32 4, int8 1).
        text_tokens: Prompt tokens.
        target_modules: Modules carrying LoRA.
    """
    params = param_count(config)
    if lora_rank is None:
        trained, weights = params, params * 4
    else:
        trained, weights = lora_param_count(config, lora_rank, target_modules), params * weight_bytes
    return MemoryEstimate(
        weights=weights, trainable=0 if lora_rank is None else trained * 4, grads=trained * 4,
        optimizer=trained * OPTIMIZER_BYTES[optimizer],
        activations=activation_bytes(config, tokens, micro_batch_size, gradient_checkpointing, text_tokens))


def grpo_memory(config: dict[str, Any], tokens: int, latent_shape: Sequence[int], *, trained_steps: int,
                videos: int, micro_batch_size: int, rollout_batch_size: int, offload_rollouts: bool = False,
                **kwargs: Any) -> MemoryEstimate:
    """Peak memory of a GRPO iteration: ``training_memory`` of one micro-batch, or the rollout's no-grad forward of a
    chunk if larger, plus the rollout buffers (fp32 latents before/after each SDE step and the prompt embeddings of
    every video, kept until the update; with ``offload_rollouts`` the step latents wait in host memory and only one
    micro-batch's are on the device).

    Args:
        config: ``WanTransformer3DModel`` kwargs.
        tokens: Video tokens per video.
        latent_shape: ``(C, f, h, w)`` of one video's latents.
        trained_steps: SDE steps stored.
        videos: Rollouts per iteration ``B x G``.
        micro_batch_size: Videos per backward (0: all).
        rollout_batch_size: Videos denoised at once (0: all).
        offload_rollouts: Step latents kept in host memory until the update.
        **kwargs: Passed to ``training_memory``.
    """
    train = training_memory(config, tokens, micro_batch_size=micro_batch_size or videos, **kwargs)
    chunk = rollout_batch_size or videos
    inference = chunk * tokens * (2 * int(config["ffn_dim"]) + 8 * _width(config)) * ACT_BYTES
    text = kwargs.get("text_tokens", TEXT_TOKENS) * int(config["text_dim"]) * 4
    on_device = (micro_batch_size or videos) if offload_rollouts else videos * trained_steps
    buffers = on_device * 2 * math.prod(latent_shape) * 4 + videos * text
    return dataclasses.replace(train, activations=max(train.activations, inference), rollout=buffers)
