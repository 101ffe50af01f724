"""SFT: supervised flow-matching fine-tuning of the Wan transformer on ground-truth solution videos.

Per batch: encode the video to latents ``x0`` ``[B, C, f, h, w]``, draw one sigma per sample (uniform or
logit-normal, then shifted), noise ``x_s = (1 - s) x0 + s e``, keep latent frame 0 clean (it is the condition, with
timestep 0 on its tokens, as Wan 2.2 TI2V), and regress the velocity ``e - x0`` on frames 1.. with an MSE.
Validation samples videos from the first frame of fixed validation puzzles and logs the verifier's P/R/F1/SR/EM per
task.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from videoreason.diffusion.noise import sample_generators, standard_normal
from videoreason.diffusion.sampler import frame_timesteps, token_timesteps
from videoreason.diffusion.schedule import add_noise, sample_training_sigmas, velocity_target
from videoreason.models.codec import Codec
from videoreason.models.export import make_hparams_portable
from videoreason.models.lora import LoraSpec
from videoreason.models.text import TextEmbedder
from videoreason.phases.settings import FlowMatchingLoss, Optimization, settings_of
from videoreason.phases.video_module import VideoModule, check_codec_fits

__all__ = ["SFTModule", "check_codec_fits"]

CHANGE_THRESHOLD = 0.05
"""A latent cell counts as changed when some channel moves more than this from the first frame (normalised units)."""


DEFAULT_OPTIMIZATION = Optimization()
DEFAULT_LOSS = FlowMatchingLoss()


def random_windows(video: torch.Tensor, length: int, generators: list[torch.Generator]) -> torch.Tensor:
    """One window of ``length`` consecutive frames per sample of ``video [B, 3, F, H, W]``, its start drawn from
    the sample's generator: ``[B, 3, length, H, W]``."""
    frames = video.shape[2]
    if length > frames:
        raise ValueError(f"`clip_frames` ({length}) is longer than the training videos ({frames} frames)")
    starts = [int(torch.randint(frames - length + 1, (), generator=g)) for g in generators]
    return torch.stack([v[:, s:s + length] for v, s in zip(video, starts, strict=True)])


class SFTModule(VideoModule):
    """Flow-matching fine-tuning with LoRA (or full fine-tuning).

    Args:
        pretrained: A local diffusers-format Wan pipeline folder (``transformer/``, ``vae/``, ``text_encoder/``,
            ``tokenizer/``, e.g. ``/models/Wan2.2-TI2V-5B-Diffusers``): the default of the three next arguments.
        transformer: Named config (``tiny``, ``small``, ``medium``; ``wan2.1-1.3b`` / ``wan2.2-ti2v-5b`` are random
            weights of the published shapes) or a local diffusers folder; default ``pretrained``, else ``tiny``.
        codec: Video codec; default ``WanVAECodec(pretrained)``, else ``PixelCodec(patch=4)`` (lossless, tiny CPU
            runs).
        text_embedder: Prompt embedder; default ``UMT5Embedder(pretrained)``, else a ``HashTextEmbedder`` as wide as
            the transformer's ``text_dim``.
        lora: LoRA adapter spec; ``None`` fine-tunes every transformer weight.
        base_dtype: Dtype of the frozen base weights under ``lora`` (``float32``, ``bfloat16``, ``float16``); ``auto``
            is bfloat16 on CUDA with LoRA, else float32. The adapter trains in float32.
        loss: Training noise levels and loss weights (`FlowMatchingLoss`).
        optimization: Learning rate, weight decay, warm-up and optimizer (`Optimization`).
        gradient_checkpointing: Recompute transformer blocks in the backward pass to save memory.
        quantize_base: Store the frozen base weights of the transformer blocks in int8 (bitsandbytes LLM.int8,
            ``videoreason.models.quantize``) under the LoRA adapter: about half the transformer's memory of bf16.
            Needs ``lora``.
        frame_lag: Sampling (validation, ``eval``): each latent frame starts denoising this many steps after the
            one before (``staggered_sigmas``; 0: all frames together). Use with ``loss.frame_noise: rising``.
        clip_frames: Train on windows of this many consecutive frames (a random window per sample; its first frame is
            the condition) and generate videos window by window, each conditioned on the last frame of the one
            before (``VideoModule.generate``). ``2`` learns one step of a video whose every frame follows from the
            one before (maze ``fill``) at a fraction of a whole video's tokens. ``None``: whole videos. With a
            temporally compressing codec it must be ``1 + k * temporal_factor``.
        val_steps: Denoising steps when sampling validation videos (per frame, with ``frame_lag``).
        val_shift: Sigma shift of the validation sampling schedule.
        num_sample_videos: Validation videos kept in ``sample_videos`` for logging (``LogSampleVideos``).
        seed: Seed of the training noise (drawn per sample from seed, step and id) and of the validation noise.
        max_nonfinite_steps: Stop (with a checkpoint of the last finite weights) after this many optimizer steps in
            a row whose gradients were non-finite; each such step is skipped and counted.
    """

    def __init__(
        self,
        pretrained: str | None = None,
        transformer: str | None = None,
        codec: Codec | None = None,
        text_embedder: TextEmbedder | None = None,
        lora: LoraSpec | None = None,
        base_dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto",
        loss: FlowMatchingLoss = DEFAULT_LOSS,
        optimization: Optimization = DEFAULT_OPTIMIZATION,
        frame_lag: int = 0,
        clip_frames: int | None = None,
        gradient_checkpointing: bool = False,
        quantize_base: bool = False,
        val_steps: int = 10,
        val_shift: float = 5.0,
        num_sample_videos: int = 8,
        seed: int = 0,
        max_nonfinite_steps: int = 20,
    ) -> None:
        super().__init__(optimization=optimization, quantize_base=quantize_base, clip_frames=clip_frames,
                         val_steps=val_steps, val_shift=val_shift, num_sample_videos=num_sample_videos, seed=seed,
                         max_nonfinite_steps=max_nonfinite_steps, frame_lag=frame_lag)
        self.loss = settings_of(loss, FlowMatchingLoss)
        self.save_hyperparameters(ignore=["codec", "text_embedder"])
        self.hparams.update(optimization=self.optimization, loss=self.loss)  # every field, recorded
        make_hparams_portable(self)
        self._build_backbone(transformer, codec, text_embedder, lora, gradient_checkpointing, quantize_base,
                             pretrained=pretrained, base_dtype=base_dtype, default_transformer="tiny")
        if clip_frames is not None and (clip_frames - 1) % self.codec.temporal_factor:
            raise ValueError(f"`clip_frames` must be 1 + k * {self.codec.temporal_factor} for this codec (whole latent "
                             f"frames), got {clip_frames}")

    # ------------------------------------------------------------------ loss
    def flow_matching_loss(
        self, video: torch.Tensor, prompts: list[str], sigma: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """MSE between predicted and target velocity on latent frames 1.. (frame 0 is the clean condition).

        Args:
            video: ``[B, 3, F, H, W]`` in [-1, 1].
            prompts: One prompt per sample.
            sigma: Noise level per sample ``[B]``, or per sample and latent frame ``[B, f]`` (frame 0 unused).
            noise: Optional fixed noise like the latents (default: fresh Gaussian).
        """
        x0 = self.codec.encode(video)  # [B, C, f, h, w]
        noise = torch.randn_like(x0) if noise is None else noise
        sigma = sigma.to(x0.device, torch.float32)
        patch = self.transformer.config.patch_size
        if sigma.ndim == 2:  # one level per latent frame
            xt = add_noise(x0, noise, sigma.view(*sigma.shape[:1], 1, sigma.shape[1], 1, 1))
            timestep = frame_timesteps(sigma, xt.shape, patch)  # [B, seq_len]
        else:
            xt = add_noise(x0, noise, sigma.view(-1, 1, 1, 1, 1))
            timestep = token_timesteps(sigma, xt.shape, patch)  # [B, seq_len]
        xt[:, :, :1] = x0[:, :, :1]  # the condition frame stays clean
        embeds = self.text_embedder.embed(prompts).to(x0.device, self.transformer.dtype)
        v = self.transformer(hidden_states=xt.to(self.transformer.dtype), timestep=timestep,
                             encoder_hidden_states=embeds, return_dict=False)[0]
        target = velocity_target(x0, noise)
        error = (v[:, :, 1:].float() - target[:, :, 1:]).square()
        if not self.loss.change_weight:
            return error.mean()
        changed = (x0[:, :, 1:] - x0[:, :, :1]).abs().amax(dim=1, keepdim=True) > CHANGE_THRESHOLD
        weight = 1.0 + self.loss.change_weight * changed.float()  # [B, 1, f - 1, h, w]
        return (error * weight).mean() / weight.mean()

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        video = batch["video"]  # [B, 3, F, H, W]
        # noise and sigma per sample, keyed by (seed, step, id): the same whatever rank or batch a sample is in
        generators = sample_generators(self.seed, self.global_step, keys=list(batch["id"]))
        if self.clip_frames:
            video = random_windows(video, self.clip_frames, generators)
        latent_shape = self.codec.latent_shape(*video.shape[2:])
        per_frame = self.loss.frame_noise == "rising"
        draws = latent_shape[1] - 1 if per_frame else 1  # latent frames 1.. (frame 0 is the condition)
        sigma = torch.stack([sample_training_sigmas(draws, mode=self.loss.sigma_sampling, shift=self.loss.shift,
                                                    generator=g) for g in generators])  # [B, draws]
        # rising: sorted, so later frames are noisier; column 0 (the condition frame) is never used
        sigma = torch.cat([torch.zeros(len(sigma), 1), sigma.sort(dim=1).values], dim=1) if per_frame else sigma[:, 0]
        noise = standard_normal(generators, latent_shape, video.device)
        loss = self.flow_matching_loss(video, list(batch["prompt"]), sigma, noise)
        self.log("train/loss", loss, prog_bar=True, batch_size=video.shape[0])
        return loss
