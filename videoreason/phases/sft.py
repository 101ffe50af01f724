"""SFT: supervised flow-matching fine-tuning of the Wan transformer on ground-truth solution videos.

Per batch: encode the video to latents ``x0`` ``[B, C, f, h, w]``, draw one sigma per sample (uniform or
logit-normal, then shifted), noise ``x_s = (1 - s) x0 + s e``, keep latent frame 0 clean (it is the condition, with
timestep 0 on its tokens, as Wan 2.2 TI2V), and regress the velocity ``e - x0`` on frames 1.. with an MSE.
Validation samples videos from the first frame of fixed validation puzzles and logs the verifier's P/R/F1/SR/EM per
task.
"""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
import numpy as np
import torch

from videoreason.diffusion.noise import seeded_noise
from videoreason.diffusion.sampler import FlowSampler, token_timesteps
from videoreason.diffusion.schedule import add_noise, sample_training_sigmas, sampling_sigmas, velocity_target
from videoreason.models.codec import Codec, PixelCodec, to_uint8
from videoreason.models.lora import LoraSpec, add_lora
from videoreason.models.text import HashTextEmbedder, TextEmbedder
from videoreason.models.transformer import build_transformer
from videoreason.phases.export import make_hparams_portable
from videoreason.tasks.base import resolve_task
from videoreason.tasks.render import RenderSpec


def check_codec_fits(codec: Codec, spec: RenderSpec) -> None:
    """Raise ``ValueError`` naming the config keys when the dataset's videos do not fit the codec."""
    try:
        codec.check_shape(spec.num_frames, spec.height, spec.width)
    except ValueError as err:
        raise ValueError(f"the dataset (`data.root`) has {spec.num_frames}x{spec.height}x{spec.width} videos that "
                         f"`model.codec` cannot encode: {err}") from err


class SFTModule(L.LightningModule):
    """Flow-matching fine-tuning with LoRA (or full fine-tuning).

    Args:
        transformer: Named config (``tiny``, ``wan2.1-1.3b``, ``wan2.2-ti2v-5b``) or a local diffusers folder.
        codec: Video codec; default ``PixelCodec(patch=4)`` (lossless, for tiny CPU runs).
        text_embedder: Prompt embedder; default a ``HashTextEmbedder`` as wide as the transformer's ``text_dim``.
        lora: LoRA adapter spec; ``None`` fine-tunes every transformer weight.
        learning_rate: Peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: Linear warm-up steps, then constant.
        optimizer: ``adamw`` (torch) or ``adamw8bit`` (bitsandbytes, GPU).
        sigma_sampling: Training sigma distribution, ``uniform`` or ``logit_normal``.
        shift: Sigma shift applied to training sigmas.
        gradient_checkpointing: Recompute transformer blocks in the backward pass to save memory.
        val_steps: Denoising steps when sampling validation videos.
        val_shift: Sigma shift of the validation sampling schedule.
        num_sample_videos: Validation videos kept in ``sample_videos`` for logging (``LogSampleVideos``).
        seed: Seed of the validation noise (the same videos every validation).
    """

    def __init__(
        self,
        transformer: str = "tiny",
        codec: Codec | None = None,
        text_embedder: TextEmbedder | None = None,
        lora: LoraSpec | None = None,
        learning_rate: float = 1e-4,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        optimizer: Literal["adamw", "adamw8bit"] = "adamw",
        sigma_sampling: Literal["uniform", "logit_normal"] = "logit_normal",
        shift: float = 3.0,
        gradient_checkpointing: bool = False,
        val_steps: int = 10,
        val_shift: float = 5.0,
        num_sample_videos: int = 8,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if learning_rate <= 0:
            raise ValueError(f"`learning_rate` must be > 0, got {learning_rate}")
        if warmup_steps < 0:
            raise ValueError(f"`warmup_steps` must be >= 0, got {warmup_steps}")
        if val_steps < 1:
            raise ValueError(f"`val_steps` must be >= 1, got {val_steps}")
        self.save_hyperparameters(ignore=["codec", "text_embedder"])
        make_hparams_portable(self)
        self.codec = codec if codec is not None else PixelCodec(patch=4)
        self.transformer = build_transformer(transformer, in_channels=self.codec.latent_channels)
        text_dim = int(self.transformer.config.text_dim)
        self.text_embedder = text_embedder if text_embedder is not None else HashTextEmbedder(dim=text_dim)
        if self.text_embedder.dim != text_dim:
            raise ValueError(f"`text_embedder` width {self.text_embedder.dim} != transformer `text_dim` {text_dim}")
        self.lora = lora
        if lora is not None:
            add_lora(self.transformer, lora)
        if gradient_checkpointing:
            self.transformer.enable_gradient_checkpointing()
        self.spec: RenderSpec | None = None
        self.sample_videos: list[np.ndarray] = []

    # ------------------------------------------------------------------ loss
    def flow_matching_loss(
        self, video: torch.Tensor, prompts: list[str], sigma: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """MSE between predicted and target velocity on latent frames 1.. (frame 0 is the clean condition).

        Args:
            video: ``[B, 3, F, H, W]`` in [-1, 1].
            prompts: One prompt per sample.
            sigma: Noise level per sample ``[B]``.
            noise: Optional fixed noise like the latents (default: fresh Gaussian).
        """
        x0 = self.codec.encode(video)  # [B, C, f, h, w]
        noise = torch.randn_like(x0) if noise is None else noise
        sigma = sigma.to(x0.device, torch.float32)
        xt = add_noise(x0, noise, sigma.view(-1, 1, 1, 1, 1))
        xt[:, :, :1] = x0[:, :, :1]  # the condition frame stays clean
        timestep = token_timesteps(sigma, xt.shape, self.transformer.config.patch_size)  # [B, seq_len]
        embeds = self.text_embedder.embed(prompts).to(x0.device, self.transformer.dtype)
        v = self.transformer(hidden_states=xt.to(self.transformer.dtype), timestep=timestep,
                             encoder_hidden_states=embeds, return_dict=False)[0]
        target = velocity_target(x0, noise)
        return torch.nn.functional.mse_loss(v[:, :, 1:].float(), target[:, :, 1:])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        video = batch["video"]
        sigma = sample_training_sigmas(video.shape[0], mode=self.hparams.sigma_sampling, shift=self.hparams.shift,
                                       device=video.device)
        loss = self.flow_matching_loss(video, list(batch["prompt"]), sigma)
        self.log("train/loss", loss, prog_bar=True, batch_size=video.shape[0])
        return loss

    # ------------------------------------------------------------------ validation: generate and verify
    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if self.spec is None and datamodule is not None and hasattr(datamodule, "root"):
            from videoreason.data.dataset import load_spec

            self.spec = load_spec(datamodule.root)
        if self.spec is not None:
            check_codec_fits(self.codec, self.spec)

    @torch.no_grad()
    def generate(
        self,
        first_frames: torch.Tensor,
        prompts: list[str],
        num_frames: int,
        seeds: list[int] | None = None,
        steps: int | None = None,
        shift: float | None = None,
    ) -> torch.Tensor:
        """Sample videos ``uint8 [B, F, H, W, 3]`` from first frames ``[B, 3, H, W]`` in [-1, 1].

        Args:
            first_frames: Conditioning images.
            prompts: One prompt per image.
            num_frames: Frames to generate (the first is the condition).
            seeds: One noise seed per sample (default: ``seed + i``); a sample's video does not depend on its batch.
            steps: Denoising steps (default ``val_steps``).
            shift: Sigma shift of the schedule (default ``val_shift``).
        """
        batch, _, height, width = first_frames.shape
        first = self.codec.encode(first_frames.unsqueeze(2))  # [B, C, 1, h, w]
        seeds = [self.hparams.seed + i for i in range(batch)] if seeds is None else seeds
        noise = seeded_noise(seeds, self.codec.latent_shape(num_frames, height, width), first.device)
        embeds = self.text_embedder.embed(prompts).to(first.device)
        sigmas = sampling_sigmas(steps or self.hparams.val_steps,
                                 shift=self.hparams.val_shift if shift is None else shift)
        latents = FlowSampler(self.transformer).sample(noise, first, embeds, sigmas)
        return to_uint8(self.codec.decode(latents))

    def on_validation_epoch_start(self) -> None:
        self.sample_videos = []

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if self.spec is None:
            raise ValueError("validation needs the dataset's RenderSpec: use a PuzzleVideoDataModule")
        videos = self.generate(batch["first_frame"], list(batch["prompt"]), batch["video"].shape[2]).cpu().numpy()
        room = self.hparams.num_sample_videos - len(self.sample_videos)
        self.sample_videos.extend(list(videos[:max(room, 0)]))
        for video, name, puzzle in zip(videos, batch["task"], batch["puzzle"], strict=True):
            task = resolve_task(name)
            verdict = task.score(video, task.puzzle_from_dict(puzzle), self.spec)
            for key in ("precision", "recall", "f1", "success", "exact_match"):
                self.log(f"val/{name}/{key}", verdict.metrics()[key], batch_size=1, on_epoch=True)

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.transformer.parameters() if p.requires_grad]
        if not params:
            raise ValueError("no trainable transformer parameters")
        kwargs = dict(lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay)
        if self.hparams.optimizer == "adamw8bit":
            import bitsandbytes as bnb

            optimizer = bnb.optim.AdamW8bit(params, **kwargs)
        else:
            optimizer = torch.optim.AdamW(params, **kwargs)
        warmup = self.hparams.warmup_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
