"""SDE-GRPO: reinforcement learning of the video model against rule-based, verifiable rewards.

One training step (manual optimisation), for a batch of puzzles:

1. Rollout: ``sampling.group_size`` videos per puzzle from its first frame and prompt, different noise, following
   ``step_plan`` (set by a step-plan callback such as ``EarlyStepFocus``): ``"sde"`` steps are stochastic and keep
   latents + log-probs, ``"ode"`` steps run without grad or storage (optionally a fast multistep tail). A model
   trained on clips (``clip_frames``) rolls a video out window by window, each window conditioned on the last frame
   of the one before and denoised along the whole plan: a video's SDE steps are those of all its windows.
   Rollouts go in chunks of ``sampling.batch_size``; each decoded chunk is verified on a CPU thread pool while the
   next chunk denoises.
2. Rewards: the step's `RolloutGroups` record (per puzzle: id, task, puzzle, prompt, reference video; per rollout
   ``[B, G]``: videos and verdicts, each video parsed and verified once) is scored by the reward metric
   (``WeightedSum`` etc.): rewards and components ``[B, G]``.
3. Advantages: ``A = (r - mean_group) / (std_group + 1e-8)`` over each row of the record (a puzzle drawn, its ``G``
   rollouts, all on one rank), optionally per reward component before weighting, optionally clipped.
4. Policy update, for every SDE step of the plan and every micro-batch: ratio ``rho = exp(log p_theta - log p_old)``,
   loss ``mean(max(-A rho, -A clip(rho, 1 - eps, 1 + eps))) + beta KL(p_theta || p_ref)``, gradients accumulated over
   steps and micro-batches, one optimizer step per inner epoch.

The reference policy is the model at the start of RL: with ``lora`` it is the base under the GRPO adapter (the SFT
model, its own LoRA merged in by ``init_from``), reached with ``disable_adapters()``; without LoRA a frozen copy.
``beta = 0`` skips the reference pass.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import torch
from torchmetrics import Metric
from tqdm.auto import tqdm

from videoreason.compat import attached_trainer, never_sync
from videoreason.diffusion.noise import sample_generators, standard_normal
from videoreason.diffusion.plans import default_plan, validate_plan
from videoreason.diffusion.sampler import FlowSampler, Rollout, RolloutStep
from videoreason.diffusion.schedule import sampling_sigmas
from videoreason.diffusion.steps import sde_kl
from videoreason.media import Tile, to_uint8
from videoreason.models.codec import Codec
from videoreason.models.export import make_hparams_portable
from videoreason.models.lora import LoraSpec, lora_layers, lora_spec_of, merge_lora
from videoreason.models.text import TextEmbedder
from videoreason.phases.settings import PolicyLoss, PolicyOptimization, Sampling, settings_of
from videoreason.phases.video_module import VideoModule
from videoreason.rewards.advantages import gather_groups, group_advantages, tied_group_fraction
from videoreason.rewards.base import Reward, check_finite, reward_inputs
from videoreason.rewards.composition import WeightedSum
from videoreason.rewards.groups import RolloutGroups
from videoreason.rewards.scoring import VerdictPool
from videoreason.rewards.verdict_rewards import DenseReward, SuccessReward

DEFAULT_LORA = LoraSpec()
"""The GRPO adapter unless configured: rank 16 on attention and FFN."""
DEFAULT_SAMPLING, DEFAULT_LOSS, DEFAULT_OPTIMIZATION = Sampling(), PolicyLoss(), PolicyOptimization()


def default_reward() -> WeightedSum:
    """Sparse success plus the dense decomposed reward at half weight."""
    return WeightedSum({"success": SuccessReward(), "dense": DenseReward()}, {"success": 1.0, "dense": 0.5})


class GRPOModule(VideoModule):
    """SDE-GRPO with verifiable rewards (see the module docstring).

    Args:
        pretrained: A local diffusers-format Wan pipeline folder: the default transformer, VAE codec and UMT5
            embedder when there is no ``init_from`` (see ``SFTModule``).
        transformer: Named config or local diffusers folder (default ``pretrained``, else ``small``); ignored when
            ``init_from`` is given (the start's is recorded instead).
        codec: Video codec (default: ``init_from``'s, else ``pretrained``'s VAE, else ``PixelCodec(patch=4)``).
        text_embedder: Prompt embedder (default: ``init_from``'s, else ``pretrained``'s UMT5, else a hash embedder).
        init_from: Export folder or ``.ckpt`` of the SFT run to start from; its LoRA is merged into the base. It is
            read once, here: this run's exports stack the start's LoRA with the GRPO one and stand alone. A relative
            path is relative to the working directory, like every other path argument (``data.root``, ...).
        clip_frames: Frames per rollout window for a model trained on clips (``SFTModule(clip_frames)``); default
            the start's. ``None`` (a start trained on whole videos): whole videos at once.
        lora: The GRPO adapter; ``None`` trains every weight (the reference is then a frozen copy).
        base_dtype: Dtype of the frozen base weights under ``lora`` (see ``SFTModule``).
        reward: Reward metric; default ``success + 0.5 * dense``. Given as a YAML file, the one exception to paths
            relative to the working directory: a file named inside a config is read relative to that config
            (jsonargparse), so the packaged configs find their packaged reward files wherever they are installed.
        sampling: How the groups of videos are rolled out (`Sampling`: group size, denoising steps, SDE noise,
            chunking, offloading).
        loss: The clipped objective and its advantages (`PolicyLoss`: clip range, KL weight, reward scaling).
        optimization: The optimizer, inner epochs, micro-batches and gradient clip (`PolicyOptimization`).
        gradient_checkpointing: Recompute transformer blocks in backward.
        quantize_base: Int8 frozen base weights under the GRPO adapter (``videoreason.models.quantize``); needs
            ``lora``. The reference policy (adapter disabled) is then the int8 base too.
        val_steps: Denoising steps of validation videos (default ``sampling.num_steps``).
        val_shift: Sigma shift of validation sampling (default ``sampling.shift``).
        num_sample_videos: Videos kept for logging (validation and rollouts).
        seed: Seed of rollout and validation noise.
        max_nonfinite_steps: Stop (with a checkpoint of the last finite weights) after this many optimizer steps in
            a row whose gradients were non-finite; each such step is skipped and counted.
    """

    scores_training_puzzles = True

    def __init__(
        self,
        pretrained: str | None = None,
        transformer: str | None = None,
        codec: Codec | None = None,
        text_embedder: TextEmbedder | None = None,
        init_from: str | None = None,
        clip_frames: int | None = None,
        lora: LoraSpec | None = DEFAULT_LORA,
        base_dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto",
        reward: Reward | None = None,
        sampling: Sampling = DEFAULT_SAMPLING,
        loss: PolicyLoss = DEFAULT_LOSS,
        optimization: PolicyOptimization = DEFAULT_OPTIMIZATION,
        gradient_checkpointing: bool = False,
        quantize_base: bool = False,
        val_steps: int | None = None,
        val_shift: float | None = None,
        num_sample_videos: int = 8,
        seed: int = 0,
        max_nonfinite_steps: int = 20,
    ) -> None:
        sampling, loss = settings_of(sampling, Sampling), settings_of(loss, PolicyLoss)
        super().__init__(optimization=settings_of(optimization, PolicyOptimization), quantize_base=quantize_base,
                         clip_frames=clip_frames, val_steps=sampling.num_steps if val_steps is None else val_steps,
                         val_shift=sampling.shift if val_shift is None else val_shift,
                         num_sample_videos=num_sample_videos, seed=seed, max_nonfinite_steps=max_nonfinite_steps)
        self.sampling, self.loss = sampling, loss
        reward = reward if reward is not None else default_reward()
        if loss.per_reward_normalization and not isinstance(reward, WeightedSum):
            raise ValueError(f"`model.loss.per_reward_normalization` normalises the components of a WeightedSum "
                             f"reward; `model.reward` is a {type(reward).__name__}")
        self.save_hyperparameters(ignore=["codec", "text_embedder", "reward"])
        self.hparams.update(sampling=sampling, loss=loss, optimization=self.optimization)  # every field, recorded
        make_hparams_portable(self)
        self.hparams.val_steps, self.hparams.val_shift = self.val_steps, self.val_shift  # what validation uses
        source = None
        if init_from is not None:
            transformer, source, codec, text_embedder = self._start_from(init_from, codec, text_embedder)
            if clip_frames is None:
                self.hparams.clip_frames = self.clip_frames = self.start_clip_frames
            if quantize_base and self.base_changed:
                raise ValueError("`model.quantize_base` keeps an int8 copy of a stock base; the start "
                                 f"({init_from}) is a full fine-tune, whose base no export could name: set "
                                 "`model.quantize_base: false`")
            transformer.requires_grad_(lora is None).train()  # load_module hands it over in eval mode
        self._build_backbone(transformer, codec, text_embedder, lora, gradient_checkpointing, quantize_base,
                             pretrained=pretrained, base_dtype=base_dtype, default_transformer="small",
                             source=source)
        if lora is None and loss.beta > 0:
            self.reference = copy.deepcopy(self.transformer).requires_grad_(False).eval()
        self.reward = reward
        for metric in self.reward.modules():
            if isinstance(metric, Metric):
                never_sync(metric)  # groups are gathered explicitly (gather_groups)
        # ground-truth videos are a large copy per step (B x G videos): made only for rewards that read them
        self.reward_reads_references = "references" in reward_inputs(self.reward)
        self.trains_on_videos = self.reward_reads_references  # else the data module decodes first frames only
        self.automatic_optimization = False
        self.step_plan = default_plan(sampling.num_steps)

    @property
    def num_steps(self) -> int:
        """Denoising steps of a rollout (``sampling.num_steps``)."""
        return self.sampling.num_steps

    @property
    def step_plan(self) -> list[str]:
        """``"sde"``/``"ode"`` per denoising step for the next rollout; set by a step-plan callback, checked here."""
        return self._step_plan

    @step_plan.setter
    def step_plan(self, plan: list[str]) -> None:
        self._step_plan = validate_plan(plan, self.sampling.num_steps)

    def _start_from(self, init_from: str, codec: Codec | None, text_embedder: TextEmbedder | None
                    ) -> tuple[torch.nn.Module, str, Codec, TextEmbedder]:
        """Load the start (an SFT export or checkpoint), merge its LoRA into the base and keep a copy of that LoRA
        (``init_lora``) for the exports. Returns its transformer, the transformer's recorded source, and the codec
        and embedder (the start's unless given)."""
        from videoreason.models.export import load_module

        start = load_module(init_from)
        self.start_clip_frames = start.hparams.get("clip_frames")
        transformer = start.transformer
        has_lora = bool(getattr(transformer, "peft_config", None))
        if has_lora and not start.base_changed:
            self.init_lora = (lora_spec_of(transformer), lora_layers(transformer))
        self.base_changed = self.init_lora is None  # a fully fine-tuned start is no stock base
        if has_lora:
            merge_lora(transformer)
        return (transformer, start.hparams["transformer"], codec if codec is not None else start.codec,
                text_embedder if text_embedder is not None else start.text_embedder)

    # ------------------------------------------------------------------ rollout
    def _generators(self, ids: list[str]) -> list[torch.Generator]:
        """Rollout RNG of the ``G`` copies of each puzzle drawn (``ids``: one per group), rows ``b * G + g``, from
        (seed, optimizer step, puzzle id, copy number): resumable, and a rollout is the same whatever rank, batch or
        chunk it lands in (so 1 and N processes agree). A puzzle drawn again in the same batch continues its copy
        numbers (``G .. 2G - 1``): its second group is rolled out with other noise."""
        group, draws = self.sampling.group_size, Counter()
        keys = []
        for i in ids:
            keys += [f"{i}#{draws[i] * group + g}" for g in range(group)]
            draws[i] += 1
        return sample_generators(self.seed, self.global_step, keys=keys)

    @torch.no_grad()
    def rollout(
        self, first_frames: torch.Tensor, prompts: list[str], generators: list[torch.Generator], scorer: Any = None,
        progress: tqdm | None = None,
    ) -> tuple[Rollout, torch.Tensor, np.ndarray, list[Any]]:
        """Roll out ``G = len(generators) // B`` videos of each of ``B`` puzzles (``first_frames`` ``[B, 3, H, W]``,
        ``prompts`` ``[B]``; ``generators`` one per rollout, rows ``b * G + g``) in chunks of ``sampling.batch_size``
        rows; ``scorer(chunk_videos, rows)`` is called on each decoded chunk (returns a future).

        Returns the merged rollout (its rows ``b * G + g``), the prompt embedding of each row, the uint8 videos
        ``[B, G, F, H, W, 3]`` and the scorer's results. ``progress`` advances by the videos of each chunk."""
        draws, n = len(prompts), len(generators)
        if n % draws:
            raise ValueError(f"{n} generators for {draws} puzzles: expected G per puzzle")
        puzzle_of_row = torch.arange(draws).repeat_interleave(n // draws)  # the transformer's batch is flat
        embeds = self.text_embedder.embed(prompts).to(self.device)[puzzle_of_row.to(self.device)]
        chunk = self.sampling.batch_size or n
        parts, videos, futures = [], [], []
        for start in range(0, n, chunk):
            rows = slice(start, min(start + chunk, n))
            part, video = self._rollout_videos(first_frames[puzzle_of_row[rows]], embeds[rows], generators[rows])
            if self.sampling.offload:  # free the chunk's step latents on the device right away
                part = part.to("cpu")
            if scorer is not None:
                futures.append(scorer(video, rows))
            parts.append(part)
            videos.append(video)
            if progress is not None:
                progress.update(len(video))
        merged = Rollout.cat(parts)
        if self.sampling.offload and torch.cuda.is_available():
            merged = merged.to("cpu", pin=True)  # async copies back in _update
        videos = np.concatenate(videos)
        return merged, embeds, videos.reshape(draws, n // draws, *videos.shape[1:]), futures

    def _rollout_videos(self, first_frames: torch.Tensor, embeds: torch.Tensor, generators: list[torch.Generator]
                        ) -> tuple[Rollout, np.ndarray]:
        """One chunk's rollout and its uint8 videos ``[n, F, H, W, 3]``. A clip-trained model rolls out window by
        window (each conditioned on the decoded last frame of the one before); the rollout then holds every
        window's SDE steps in order, and its ``latents`` are the last window's."""
        _, _, height, width = first_frames.shape
        frames = self.spec.num_frames
        clip, windows = self.clip_windows(frames)
        first = self.codec.encode(first_frames.unsqueeze(2))  # [n, C, 1, h, w]
        sigmas = sampling_sigmas(self.sampling.num_steps, shift=self.sampling.shift)
        sampler = FlowSampler(self.transformer)
        shape = self.codec.latent_shape(clip, height, width)
        steps, pieces = [], []
        for w in range(windows):
            noise = standard_normal(generators, shape, first.device)  # [n, C, f, h, w]; frame 0 unused
            part = sampler.rollout(noise, first, embeds, sigmas, self.step_plan, noise_level=self.sampling.noise_level,
                                   variant=self.sampling.sde_variant, generator=generators, tail=self.sampling.tail)
            video = to_uint8(self.codec.decode(part.latents))  # [n, clip, H, W, 3]
            steps += part.steps
            pieces.append(video if w == 0 else video[:, 1:])
            if w + 1 < windows:
                first = self.codec.encode(video[:, -1:])
        video = torch.cat(pieces, dim=1)[:, :frames].cpu().numpy()
        return dataclasses.replace(part, steps=steps), video

    # ------------------------------------------------------------------ rewards
    def score(self, groups: RolloutGroups) -> RolloutGroups:
        """``groups`` with ``rewards`` ``[B, G]`` and named ``components`` (a ``WeightedSum``'s, else ``{}``) set."""
        self.reward.reset()
        self.reward.update(groups)
        name = f"`model.reward` ({type(self.reward).__name__})"
        total = self.reward.compute().cpu().float()
        if total.numel() != groups.size * groups.group_size:
            raise ValueError(f"{name} returned shape {tuple(total.shape)} for {groups.size} puzzles x "
                             f"{groups.group_size} rollouts; a reward scores each rollout, shape {groups.shape}")
        total = total.reshape(groups.shape)  # a composition of one rollout comes back as a scalar
        check_finite(total, groups, name)
        components = self.reward.components() if isinstance(self.reward, WeightedSum) else {}
        return groups.with_scores(rewards=total, components={k: v.cpu().float() for k, v in components.items()})

    def advantages(self, groups: RolloutGroups) -> tuple[RolloutGroups, float]:
        """``groups`` with group-normalised ``advantages`` ``[B, G]`` set (over this rank's rows, with every rank's
        groups for batch-wide scales), and the fraction of all ranks' groups whose rewards all tie
        (``videoreason.rewards.advantages``)."""
        stacked = torch.stack([groups.rewards, *groups.components.values()], dim=2)  # [B, G, 1 + K]
        everyone, mine = gather_groups(stacked)
        weights = None
        if self.loss.per_reward_normalization and groups.components:
            weights = torch.tensor([self.reward.weights[k] for k in groups.components])
        adv = group_advantages(everyone[..., 0], everyone[..., 1:] if weights is not None else None, weights,
                               clip=self.loss.adv_clip, scale=self.loss.scale_rewards)
        return groups.with_scores(advantages=adv[mine]), tied_group_fraction(everyone[..., 0])

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Verified metrics as every phase, plus ``val/reward``: the training reward on held-out puzzles (the
        same record and path as training, one rollout per puzzle)."""
        verdicts, videos = self.validate_batch(batch)
        groups = RolloutGroups.of_samples(list(batch["id"]), videos=videos, verdicts=verdicts,
                                          prompts=list(batch["prompt"]), references=self._references(batch))
        self.log("val/reward", self.score(groups).rewards.mean(), batch_size=len(verdicts), on_epoch=True)

    def _references(self, batch: dict[str, Any]) -> torch.Tensor | None:
        """The batch's ground-truth videos, uint8 ``[B, F, H, W, 3]``, when a reward reads them."""
        return to_uint8(batch["video"]).cpu() if self.reward_reads_references else None

    # ------------------------------------------------------------------ policy update
    @contextmanager
    def reference_policy(self) -> Iterator[torch.nn.Module]:
        """The reference transformer: the base under the disabled GRPO adapter, or the frozen copy."""
        if hasattr(self, "reference"):
            yield self.reference
            return
        self.transformer.disable_adapters()
        try:
            yield self.transformer
        finally:
            self.transformer.enable_adapters()

    def policy_loss(
        self, step: RolloutStep, embeds: torch.Tensor, adv: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Clipped GRPO loss (+ beta KL) of one SDE step for the samples in ``step``; returns loss and stats. The
        condition frame is the step's own latent frame 0 (a window's, in a window-by-window rollout)."""
        first = step.latents[:, :, :1]
        kwargs = dict(noise_level=self.sampling.noise_level, variant=self.sampling.sde_variant)
        log_prob, mean, std = FlowSampler(self.transformer).step_log_prob(step, first, embeds, **kwargs)
        ratio = torch.exp(log_prob - step.log_prob.to(log_prob))
        eps = self.loss.clip_range
        loss = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - eps, 1 + eps)).mean()
        kl = torch.zeros((), device=loss.device)
        if self.loss.beta > 0:
            with torch.no_grad(), self.reference_policy() as reference:
                _, ref_mean, _ = FlowSampler(reference).step_log_prob(step, first, embeds, **kwargs)
            kl = sde_kl(mean, ref_mean, std).mean()
            loss = loss + self.loss.beta * kl
        clipped = ((ratio - 1).abs() > eps).float().mean()
        return loss, {"kl": kl.detach(), "clip_fraction": clipped.detach(), "ratio": ratio.detach()}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if self.spec is None:
            raise ValueError("GRPO needs the dataset's RenderSpec: use a PuzzleVideoDataModule")
        ids, group = list(batch["id"]), self.sampling.group_size
        tasks, puzzles, prompts = list(batch["task"]), list(batch["puzzle"]), list(batch["prompt"])

        t0 = time.perf_counter()
        with VerdictPool(self.sampling.reward_workers) as pool, self._step_progress(len(ids) * group) as progress:
            def scorer(videos: np.ndarray, rows: slice) -> Any:  # rows b * G + g of the sampler's flat batch
                flat = range(rows.start, rows.stop)
                return pool.submit(videos, [puzzles[r // group] for r in flat], [tasks[r // group] for r in flat],
                                   self.spec, [f"{ids[r // group]}#{r % group}" for r in flat])

            rollout, embeds, videos, futures = self.rollout(batch["first_frame"], prompts, self._generators(ids),
                                                            scorer, progress)
            t1 = time.perf_counter()
            progress.set_description(f"step {self.global_step + 1}: scoring")
            verdicts = [v for f in futures for v in f.result()]
            groups = RolloutGroups(ids, videos=videos, prompts=prompts, tasks=tasks, puzzles=puzzles,
                                   references=self._references(batch),
                                   verdicts=[verdicts[b * group:(b + 1) * group] for b in range(len(ids))])
            groups, tied = self.advantages(self.score(groups))
            t2 = time.perf_counter()
            progress.set_description(f"step {self.global_step + 1}: update")
            stats = self._update(rollout, embeds, groups.flat_rows(groups.advantages).to(self.device), progress)
            t3 = time.perf_counter()
        self._log_step(groups, tied, rollout, stats, times=(t1 - t0, t2 - t1, t3 - t2))

    def _log_step(self, groups: RolloutGroups, tied: float, rollout: Rollout, stats: dict,
                  times: tuple[float, float, float]) -> None:
        """Keep the first rollouts for the sample videos and log the step as TRL's ``GRPOTrainer`` names it
        (README, "GRPO metrics")."""
        rewards, names = groups.rewards, groups.rollout_ids()
        shown = [(b, g) for b in range(groups.size) for g in range(groups.group_size)][:self.num_sample_videos]
        self.rollouts = [Tile(groups.videos[b, g], f"{names[b][g]} reward {float(rewards[b, g]):.2f}",
                              groups.verdicts[b][g].success) for b, g in shown]
        log = {"reward_std": rewards.std(unbiased=False), "success_rate": groups.success().mean(),
               "frac_reward_zero_std": tied, "time/rollout_s": times[0], "time/reward_s": times[1],
               "time/train_s": times[2], "train/sde_steps": float(len(rollout.steps)), **stats}
        for name, values in groups.components.items():
            log[f"rewards/{name}/mean"] = values.mean()
            log[f"rewards/{name}/std"] = values.std(unbiased=False)
        rollouts = groups.size * groups.group_size
        self.log_dict({k: float(v) for k, v in log.items()}, on_step=True, prog_bar=False, batch_size=rollouts)
        self.log("reward", float(rewards.mean()), prog_bar=True, batch_size=rollouts)

    @contextmanager
    def _step_progress(self, videos: int) -> Iterator[tqdm]:
        """A progress bar inside one optimizer step (rollout videos, then policy-loss terms), on rank 0 when the
        trainer shows progress bars."""
        trainer = attached_trainer(self)
        show = trainer is not None and trainer.progress_bar_callback is not None and trainer.is_global_zero
        windows = self.clip_windows(self.spec.num_frames)[1]
        terms = self.optimization.inner_epochs * self.step_plan.count("sde") * windows * -(-videos // (
            self.optimization.micro_batch_size or videos))
        with tqdm(total=videos + terms, desc=f"step {self.global_step + 1}: rollout", leave=False, disable=not show,
                  unit="it", dynamic_ncols=True) as bar:
            yield bar

    def _update(self, rollout: Rollout, embeds: torch.Tensor, adv: torch.Tensor,
                progress: tqdm | None = None) -> dict:
        """Accumulate the loss over SDE steps and micro-batches; one optimizer step per inner epoch. ``progress``
        advances by one per policy-loss term."""
        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        n = adv.shape[0]
        size = self.optimization.micro_batch_size or n
        chunks = [slice(i, min(i + size, n)) for i in range(0, n, size)]
        terms = max(len(rollout.steps) * len(chunks), 1)
        kl, clip, ratios, losses = [], [], [], []
        for _ in range(self.optimization.inner_epochs):
            total = 0.0
            for step in rollout.steps:
                for rows in chunks:
                    part = step.slice(rows).to(self.device)  # a no-op unless `sampling.offload`
                    loss, stat = self.policy_loss(part, embeds[rows], adv[rows])
                    # every backward runs, finite or not, so all ranks take part in the same collectives
                    self.manual_backward(loss / terms)
                    total += float(loss.detach()) / terms
                    kl.append(stat["kl"])
                    clip.append(stat["clip_fraction"])
                    ratios.append(stat["ratio"])
                    if progress is not None:
                        progress.update()
            if not rollout.steps:
                continue
            if not math.isfinite(total):  # a non-finite loss must not slip through as finite gradients
                for p in self.parameters():
                    if p.grad is not None:
                        p.grad.fill_(math.nan)
            if self.skip_nonfinite_update(optimizer):
                continue
            self.log_optimizer_state(optimizer)
            if self.optimization.max_grad_norm:
                self.clip_gradients(optimizer, gradient_clip_val=self.optimization.max_grad_norm,
                                    gradient_clip_algorithm="norm")
            optimizer.step()
            optimizer.zero_grad()
            scheduler.step()
            losses.append(total)
        ratio = torch.cat(ratios) if ratios else torch.ones(1)
        return {"train/loss": float(np.mean(losses)) if losses else math.nan,
                "kl": float(torch.stack(kl).mean()) if kl else 0.0,
                "clip_ratio": float(torch.stack(clip).mean()) if clip else 0.0,
                "ratio/mean": float(ratio.mean()), "ratio/min": float(ratio.min()),
                "ratio/max": float(ratio.max()), "train/skipped_steps": float(self.nonfinite_steps)}
