"""What both phases share: the Wan backbone (transformer + codec + prompt embedder, LoRA), sampling videos from
first frames, validation that generates and verifies, and the optimizer. ``SFTModule`` and ``GRPOModule`` add their
training step on top; this is the only level of inheritance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from videoreason import rng_state
from videoreason.compat import attached_trainer
from videoreason.diffusion.noise import seeded_noise
from videoreason.diffusion.sampler import FlowSampler
from videoreason.diffusion.schedule import sampling_sigmas, staggered_sigmas
from videoreason.media import Tile, to_uint8
from videoreason.models.codec import Codec, PixelCodec, WanVAECodec
from videoreason.models.local import pretrained_folder
from videoreason.models.lora import LoraSpec, add_lora
from videoreason.models.recorded import absolute, recorded_config
from videoreason.models.text import HashTextEmbedder, TextEmbedder, UMT5Embedder
from videoreason.models.transformer import NAMED_CONFIGS, build_transformer, cast_keep_fp32
from videoreason.phases.settings import Optimization, group_flat_keys, settings_of
from videoreason.rewards.scoring import verdicts_for
from videoreason.tasks.render import RenderSpec
from videoreason.tasks.verdict import Verdict

VAL_METRICS = ("precision", "recall", "f1", "success", "exact_match")


def check_codec_fits(codec: Codec, spec: RenderSpec) -> None:
    """Raise ``ValueError`` naming the config keys when the dataset's videos do not fit the codec."""
    try:
        codec.check_shape(spec.num_frames, spec.height, spec.width)
    except ValueError as err:
        raise ValueError(f"the dataset (`data.root`) has {spec.num_frames}x{spec.height}x{spec.width} videos that "
                         f"`model.codec` cannot encode: {err}") from err


BASE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_base_dtype(base_dtype: str, lora: LoraSpec | None) -> torch.dtype:
    """The dtype of the frozen base weights: ``auto`` is bfloat16 on CUDA with a LoRA adapter, else float32.

    Raises:
        ValueError: An unknown name, or a half-precision base without LoRA (a full fine-tune trains the base).
    """
    if base_dtype == "auto":
        return torch.bfloat16 if torch.cuda.is_available() and lora is not None else torch.float32
    if base_dtype not in BASE_DTYPES:
        raise ValueError(f"`model.base_dtype` must be one of {['auto', *BASE_DTYPES]}, got {base_dtype!r}")
    if lora is None and base_dtype != "float32":
        raise ValueError(f"`model.base_dtype` {base_dtype!r} is for the frozen weights under a LoRA adapter; a full "
                         "fine-tune (`model.lora: null`) trains every weight in float32 (use `trainer.precision: "
                         "bf16-mixed` for bf16 compute)")
    return BASE_DTYPES[base_dtype]


class NonFiniteTrainingError(RuntimeError):
    """Too many optimizer steps in a row had non-finite gradients; a checkpoint of the last finite weights was kept."""


class VideoModule(L.LightningModule):
    """Backbone, generation, validation and optimizer of a phase (see the phases for the arguments)."""

    init_lora: tuple[LoraSpec, dict[str, torch.Tensor]] | None = None
    """The adapter merged into the base when this run started (GRPO from an SFT LoRA): exports stack it with the
    trained one, so their LoRA is relative to the stock base."""
    base_changed: bool = False
    """The base weights differ from the stock model ``hparams.transformer`` by more than ``init_lora`` (GRPO from
    a full fine-tune): exports then write the base transformer too."""
    weights_from_rank_zero: bool = False
    """Ranks > 0 built a weightless transformer that ``configure_model`` fills from rank 0 after sharding (set under
    ``videoreason.parallel.rank_zero_init``: ``videoreason fit`` with ``FSDP2Strategy``)."""
    trains_on_videos: bool = True
    """Training steps read the whole ground-truth ``video`` of a sample, not only its ``first_frame``."""
    scores_training_puzzles: bool = False
    """Training steps verify videos against the training items' puzzles (GRPO), so the data may not rotate or
    mirror the videos (``data.augment``)."""

    def __init__(
        self,
        *,
        optimization: Optimization,
        quantize_base: bool,
        clip_frames: int | None,
        val_steps: int,
        val_shift: float,
        num_sample_videos: int,
        seed: int,
        max_nonfinite_steps: int,
        frame_lag: int = 0,
    ) -> None:
        """The arguments both phases share, checked here once (see the phases for their meaning)."""
        super().__init__()
        for name, value, low in (("val_steps", val_steps, 1), ("num_sample_videos", num_sample_videos, 0),
                                 ("frame_lag", frame_lag, 0), ("max_nonfinite_steps", max_nonfinite_steps, 1)):
            if value < low:
                raise ValueError(f"`{name}` must be >= {low}, got {value}")
        if not val_shift > 0:
            raise ValueError(f"`val_shift` must be > 0, got {val_shift}")
        if clip_frames is not None and clip_frames < 2:
            raise ValueError(f"`clip_frames` must be >= 2 (a condition frame and a frame to learn), got {clip_frames}")
        self.optimization = settings_of(optimization, Optimization)
        self.quantize_base = quantize_base
        self.clip_frames, self.frame_lag = clip_frames, frame_lag
        self.val_steps, self.val_shift, self.num_sample_videos = val_steps, float(val_shift), num_sample_videos
        self.seed, self.max_nonfinite_steps = seed, max_nonfinite_steps
        self.spec: RenderSpec | None = None
        self.samples: list[Tile] = []  # the latest validation's first videos, verdicts and ground truths
        self.rollouts: list[Tile] = []  # the latest training step's first rollouts with their rewards (RL phases)
        self.nonfinite_steps = 0  # updates dropped for non-finite gradients, in all and in a row
        self.nonfinite_in_a_row = 0

    @classmethod
    def upgrade_init_args(cls, init_args: dict[str, Any]) -> dict[str, Any]:
        """The init arguments of a module saved before its settings were grouped, with each flat key in its group
        (``beta`` -> ``loss.beta``); current ones come back unchanged. ``load_module`` calls it."""
        return group_flat_keys(cls, init_args)

    def _build_backbone(
        self,
        transformer: str | torch.nn.Module | None,
        codec: Codec | None,
        text_embedder: TextEmbedder | None,
        lora: LoraSpec | None,
        gradient_checkpointing: bool,
        quantize_base: bool = False,
        pretrained: str | None = None,
        base_dtype: str = "auto",
        default_transformer: str = "tiny",
        source: str | None = None,
    ) -> None:
        """Set ``self.codec``, ``self.transformer`` (with LoRA if given, on an int8 base with ``quantize_base``) and
        ``self.text_embedder``, checking widths, and record what was built in ``hparams`` (``transformer`` as its
        source, ``codec`` / ``text_embedder`` as ``class_path`` + ``init_args``), so that checkpoints and exports
        rebuild this module (``None`` for a part given as an object that cannot say how it was built: such a module
        trains, but exporting it is refused).

        ``pretrained`` (a local diffusers Wan folder) is the default of the transformer, the VAE codec and the UMT5
        embedder; without it they default to ``default_transformer``, ``PixelCodec(patch=4)`` and a hash embedder.
        A transformer given as a module (GRPO's start) is recorded as ``source``.
        """
        if quantize_base and lora is None:
            raise ValueError("`model.quantize_base` freezes the base weights in int8, so it needs a LoRA adapter "
                             "(`model.lora`); it cannot be used for a full fine-tune")
        dtype = resolve_base_dtype(base_dtype, lora)
        root = str(pretrained_folder(pretrained)) if pretrained is not None else None
        if codec is None:
            codec = WanVAECodec(root) if root is not None else PixelCodec(patch=4)
        self.codec = codec
        if transformer is None:
            transformer = root or default_transformer
        from videoreason.parallel import builds_skeleton, rank_zero_init_enabled

        # the same on every rank: whether configure_model hands rank 0's weights to the others
        self.weights_from_rank_zero = rank_zero_init_enabled() and not quantize_base
        if isinstance(transformer, str):
            source = transformer if transformer in NAMED_CONFIGS else absolute(transformer)
            transformer = build_transformer(transformer, dtype=dtype, in_channels=self.codec.latent_channels,
                                            empty=self.weights_from_rank_zero and builds_skeleton())
        else:
            if int(transformer.config.in_channels) != self.codec.latent_channels:
                raise ValueError(f"`transformer` takes {transformer.config.in_channels} channels, `codec` makes "
                                 f"{self.codec.latent_channels}")
            cast_keep_fp32(transformer, dtype)
        self.transformer = transformer
        text_dim = int(self.transformer.config.text_dim)
        if text_embedder is None:
            text_embedder = UMT5Embedder(root, dtype=torch.bfloat16 if torch.cuda.is_available() else torch.float32
                                         ) if root is not None else HashTextEmbedder(dim=text_dim)
        self.text_embedder = text_embedder
        if self.text_embedder.dim != text_dim:
            raise ValueError(f"`text_embedder` width {self.text_embedder.dim} != transformer `text_dim` {text_dim}")
        if quantize_base:
            from videoreason.models.quantize import quantize_8bit

            quantize_8bit(self.transformer)
        if lora is not None:
            add_lora(self.transformer, lora)
            for name, param in self.transformer.named_parameters():
                if "lora_" in name:  # trained in float32 whatever the frozen base's dtype
                    param.data = param.data.float()
        if gradient_checkpointing:
            self.transformer.enable_gradient_checkpointing()
        self.hparams["pretrained"] = root
        self.hparams["transformer"] = source  # None: a transformer object of unknown origin
        self.hparams["codec"] = recorded_config(self.codec)
        self.hparams["text_embedder"] = recorded_config(self.text_embedder)

    def setup(self, stage: str) -> None:
        from videoreason.data.datamodule import PuzzleVideoDataModule

        datamodule = getattr(attached_trainer(self), "datamodule", None)
        puzzles = datamodule if isinstance(datamodule, PuzzleVideoDataModule) else None
        if self.spec is None and puzzles is not None:
            self.spec = puzzles.spec
        if self.spec is not None:
            check_codec_fits(self.codec, self.spec)
        if stage == "fit" and self.scores_training_puzzles and puzzles is not None and puzzles.augment:
            raise ValueError(f"`data.augment` rotates and mirrors training videos but not their puzzles, which "
                             f"{type(self).__name__} scores its rollouts against; set `data.init_args.augment: false`")

    def on_fit_start(self) -> None:
        """Embed every training and validation prompt of the datamodule once (``TextEmbedder.precompute``) and free
        the text encoder, so no training or validation step holds or reloads it."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if callable(getattr(datamodule, "prompts", None)):
            self.text_embedder.precompute(datamodule.prompts())

    def configure_model(self) -> None:
        """Under ``FSDP2Strategy`` (Lightning's ``ModelParallelStrategy``): shard the transformer (and a frozen
        reference copy, if any) per block over the data-parallel mesh. A no-op under other strategies (DDP, one
        device) and when already sharded (Lightning may call this hook more than once)."""
        from videoreason.parallel import (
            data_parallel_mesh,
            has_meta_parameters,
            is_sharded,
            load_from_rank_zero,
            shard_transformer,
        )

        mesh = self.device_mesh
        if mesh is None:
            if has_meta_parameters(self):
                raise ValueError("this module's transformer was built without weights for rank-0 loading, which "
                                 "only FSDP2Strategy (ModelParallelStrategy) completes")
            return

        if self.quantize_base:
            raise ValueError("`model.quantize_base` (int8 frozen weights) is a one-GPU memory saver; FSDP2 shards "
                             "float weights: set `model.quantize_base: false` or use one device / DDP")

        dp_mesh = data_parallel_mesh(mesh)
        precision = str(self.trainer.precision) if attached_trainer(self) is not None else None
        for model in (self.transformer, getattr(self, "reference", None)):
            if model is not None and not is_sharded(model):
                full = model.state_dict() if self.weights_from_rank_zero and mesh.get_rank() == 0 else None
                shard_transformer(model, dp_mesh, precision)
                if self.weights_from_rank_zero:  # ranks > 0 hold skeletons: rank 0's weights, shard by shard
                    load_from_rank_zero(model, full, self.trainer.strategy.root_device)

    @torch.no_grad()
    def generate(
        self,
        first_frames: torch.Tensor,
        prompts: list[str],
        num_frames: int,
        seeds: list[int] | None = None,
        steps: int | None = None,
        shift: float | None = None,
        guidance_scale: float = 1.0,
        negative_prompt: str = "",
    ) -> torch.Tensor:
        """Sample videos ``uint8 [B, F, H, W, 3]`` from first frames ``[B, 3, H, W]`` in [-1, 1].

        A model trained on clips shorter than the video (``clip_frames``) samples it window by window: each window
        is conditioned on the last frame of the one before, decoded to ``uint8`` and encoded again (as a pipeline
        extending a video from its last frame would).

        Args:
            first_frames: Conditioning images.
            prompts: One prompt per image.
            num_frames: Frames to generate (the first is the condition).
            seeds: One noise seed per sample (default: ``seed + i``); a sample's video does not depend on its batch.
            steps: Denoising steps (default ``val_steps``).
            shift: Sigma shift of the schedule (default ``val_shift``).
            guidance_scale: Classifier-free guidance weight (``> 1``: each step also runs the transformer on
                ``negative_prompt`` and moves away from it, as diffusers' Wan pipelines do; ``1``: off).
            negative_prompt: The prompt guidance steers away from.
        """
        batch, _, height, width = first_frames.shape
        first = self.codec.encode(first_frames.unsqueeze(2))  # [B, C, 1, h, w]
        seeds = [self.seed + i for i in range(batch)] if seeds is None else seeds
        embeds = self.text_embedder.embed(prompts).to(first.device)
        sampler = FlowSampler(self.transformer, guidance_scale)
        negative = self.text_embedder.embed([negative_prompt] * batch).to(first.device) if sampler.do_guidance else None
        sigmas = sampling_sigmas(steps or self.val_steps, shift=self.val_shift if shift is None else shift)
        clip, windows = self.clip_windows(num_frames)
        if windows == 1:
            noise = seeded_noise(seeds, self.codec.latent_shape(num_frames, height, width), first.device)
            return to_uint8(self.codec.decode(self._denoise(sampler, noise, first, embeds, sigmas, negative)))
        # a model trained on clips: window after window, each conditioned on the last frame of the one before
        noise = seeded_noise(seeds, self.codec.latent_shape(1 + windows * (clip - 1), height, width), first.device)
        fresh = self.codec.latent_shape(clip, height, width)[1] - 1  # latent frames each window adds
        pieces = []
        for w in range(windows):
            frames = noise[:, :, [0, *range(1 + w * fresh, 1 + (w + 1) * fresh)]]
            video = to_uint8(self.codec.decode(self._denoise(sampler, frames, first, embeds, sigmas, negative)))
            pieces.append(video if w == 0 else video[:, 1:])
            first = self.codec.encode(video[:, -1:])
        return torch.cat(pieces, dim=1)[:, :num_frames]

    def clip_windows(self, num_frames: int) -> tuple[int, int]:
        """Frames per generated window and windows per ``num_frames``-frame video: one window of the whole video
        unless the model was trained on shorter clips (``clip_frames``)."""
        clip = min(self.clip_frames or num_frames, num_frames)
        return clip, max(1, -(-(num_frames - 1) // max(clip - 1, 1)))

    def _denoise(self, sampler: FlowSampler, noise: torch.Tensor, first: torch.Tensor, embeds: torch.Tensor,
                 sigmas: torch.Tensor, negative: torch.Tensor | None) -> torch.Tensor:
        """Latents ``[B, C, f, h, w]`` from ``noise`` (frame 0 replaced by ``first``) by the ODE ``sampler``,
        staggered with ``frame_lag``."""
        lag = self.frame_lag
        if lag:  # a model trained with rising per-frame noise: frames denoised one after another
            return sampler.sample_staggered(noise, first, embeds, staggered_sigmas(sigmas, noise.shape[2], lag),
                                            negative)
        return sampler.sample(noise, first, embeds, sigmas, negative_prompt_embeds=negative)

    def on_validation_epoch_start(self) -> None:
        self.samples = []

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.validate_batch(batch)

    def validate_batch(self, batch: dict[str, Any], log: bool = True) -> tuple[list[Verdict], np.ndarray]:
        """Generate the batch's videos, verify them, keep the first as ``samples``, log ``val/{task}/{metric}``
        (unless ``log`` is false); returns verdicts and videos."""
        if self.spec is None:
            raise ValueError("validation needs the dataset's RenderSpec: use a PuzzleVideoDataModule")
        videos = self.generate(batch["first_frame"], list(batch["prompt"]), batch["video"].shape[2]).cpu().numpy()
        verdicts = verdicts_for(videos, batch["puzzle"], list(batch["task"]), self.spec, list(batch["id"]))
        room = max(self.num_sample_videos - len(self.samples), 0)
        if room:
            truths = to_uint8(batch["video"][:room]).cpu().numpy()  # the ground truth beside each sample
            self.samples += [Tile(v, i, d.success, t) for v, i, d, t in zip(
                videos[:room], list(batch["id"])[:room], verdicts[:room], truths, strict=True)]
        for verdict, name in zip(verdicts, batch["task"], strict=True) if log else ():
            for key in VAL_METRICS:
                self.log(f"val/{name}/{key}", verdict.metrics()[key], batch_size=1, on_epoch=True)
        return verdicts, videos

    # ------------------------------------------------------------------ optimisation
    def _optimizer(self) -> torch.optim.Optimizer:
        params = [p for p in self.transformer.parameters() if p.requires_grad]
        if not params:
            raise ValueError("no trainable transformer parameters")
        kwargs = dict(lr=self.optimization.learning_rate, weight_decay=self.optimization.weight_decay)
        if self.optimization.optimizer in ("adamw8bit", "paged_adamw8bit"):
            import bitsandbytes as bnb  # imported here: it prints warnings on import

            paged = self.optimization.optimizer == "paged_adamw8bit"
            return (bnb.optim.PagedAdamW8bit if paged else bnb.optim.AdamW8bit)(params, **kwargs)
        return torch.optim.AdamW(params, **kwargs)

    def skip_nonfinite_update(self, optimizer: torch.optim.Optimizer) -> bool:
        """Drop this update when any rank's gradients are non-finite: the gradients are set to ``None`` (the
        optimizer then leaves every weight and moment alone), the step is counted (``train/nonfinite_steps``) and
        ``True`` returned. After ``max_nonfinite_steps`` such steps in a row, save ``checkpoints/nonfinite-stop.ckpt``
        (the last finite weights) and raise ``NonFiniteTrainingError``. Every rank must call it (it all-reduces)."""
        from videoreason.parallel import local_tensor, on_any_rank

        grads = [local_tensor(p.grad) for p in self.parameters() if p.grad is not None]
        # one flag on the device, read once below (not one host sync per parameter)
        nonfinite = (~torch.stack([torch.isfinite(g).all() for g in grads]).all() if grads
                     else torch.tensor(False)).float().to(self.device)
        if not on_any_rank(nonfinite, self.trainer.world_size if attached_trainer(self) is not None else 1).item():
            self.nonfinite_in_a_row = 0
            return False
        optimizer.zero_grad(set_to_none=True)
        self.nonfinite_steps += 1
        self.nonfinite_in_a_row += 1
        limit = self.max_nonfinite_steps
        if attached_trainer(self) is not None:
            self.log("train/nonfinite_steps", float(self.nonfinite_steps), batch_size=1)
            if self.nonfinite_in_a_row >= limit:
                path = Path(self.trainer.default_root_dir) / "checkpoints" / "nonfinite-stop.ckpt"
                self.trainer.save_checkpoint(path)
                raise NonFiniteTrainingError(
                    f"{self.nonfinite_in_a_row} optimizer steps in a row had non-finite gradients (limit "
                    f"`model.max_nonfinite_steps` = {limit}; {self.nonfinite_steps} in all); the last finite weights "
                    f"are in {path}. Lower `model.optimization.learning_rate` or check the data.")
        return True

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep each rank's global random generators and the non-finite step counters (weights-only loadable)."""
        checkpoint["videoreason"] = {"rng": rng_state.capture_all_ranks(), "nonfinite_steps": self.nonfinite_steps,
                                     "nonfinite_in_a_row": self.nonfinite_in_a_row}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("videoreason")
        if saved is None:  # a checkpoint from before this entry existed
            return
        rng_state.restore_rank(saved["rng"])
        self.nonfinite_steps, self.nonfinite_in_a_row = saved["nonfinite_steps"], saved["nonfinite_in_a_row"]

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Automatic optimisation (SFT): a non-finite update is dropped (``skip_nonfinite_update``), a finite one
        logged (``log_optimizer_state``)."""
        if self.automatic_optimization and not self.skip_nonfinite_update(optimizer):
            self.log_optimizer_state(optimizer)

    def log_optimizer_state(self, optimizer: torch.optim.Optimizer) -> None:
        """Log ``grad_norm`` (the L2 norm of all gradients, before clipping; every rank must call it) and
        ``learning_rate``, as Hugging Face's trainers name them."""
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
        norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm  # sharded (FSDP2) gradients
        self.log("grad_norm", float(norm), batch_size=1)
        self.log("learning_rate", float(optimizer.param_groups[0]["lr"]), batch_size=1)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self._optimizer()
        warmup = self.optimization.warmup_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
