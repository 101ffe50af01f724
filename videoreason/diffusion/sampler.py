"""The rollout sampler: Wan 2.2 TI2V first-frame conditioning over a per-step plan.

Conditioning follows diffusers' ``WanImageToVideoPipeline`` with ``expand_timesteps=True`` (Wan2.2-TI2V-5B):

- latent frame 0 is the clean, normalised encoding of the first frame (``WanVAECodec.encode`` of that frame: the
  posterior mode, ``(z - latents_mean) / latents_std``, as the pipeline's ``sample_mode="argmax"``);
- before every transformer call the first latent frame of the noisy latents is replaced by that encoding (the
  pipeline's ``(1 - first_frame_mask) * condition + first_frame_mask * latents``), and the input is cast to the
  transformer's dtype;
- the timestep is per token, ``[B, seq_len]``: 0 for the tokens of latent frame 0, ``sigma * 1000`` elsewhere
  (tokens in the transformer's ``(f, h / p_h, w / p_w)`` patch order);
- the step is taken on all latents (an Euler step in float32, as ``FlowMatchEulerDiscreteScheduler.step``) and
  frame 0 is re-imposed after it. The pipeline instead lets frame 0 of its running latents drift and only overwrites
  it in each model input and once at the end; as steps are elementwise the results are identical.

The plan decides per step between that Euler step (``"ode"``) and a stochastic ``sde_step`` (``"sde"``) taken on
latent frames ``1..`` only (frame 0 is the condition and is re-imposed, so it gets no noise and no log-probability).
``FlowSampler.rollout`` keeps the SDE steps (latents before/after, log-prob) for GRPO; ``FlowSampler.step_log_prob``
re-evaluates one of them with gradients; an optional ``TailSpec`` replaces the ODE steps after the last SDE step by a
short deterministic solver run (``videoreason.diffusion.solvers``).

Classifier-free guidance as the pipeline: enabled when ``guidance_scale > 1``, ``v = v_u + g * (v_c - v_u)`` with
two transformer calls (conditional first).

One deliberate difference: ``ode_step`` returns the latents in their own dtype (float32 here), whereas the diffusers
scheduler casts them back to the transformer's output dtype after every step (bf16 latents with a bf16 model). With
a float32 transformer both agree to float32 rounding (see ``tests/diffusion/test_sampler_parity.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from videoreason.diffusion.noise import Generators, standard_normal
from videoreason.diffusion.plans import validate_plan
from videoreason.diffusion.schedule import NUM_TRAIN_TIMESTEPS
from videoreason.diffusion.solvers import TailSpec, run_tail, tail_sigmas
from videoreason.diffusion.steps import SDE_VARIANTS, ode_step, sde_step


def token_timesteps(
    sigma: torch.Tensor,
    latent_shape: Sequence[int],
    patch_size: Sequence[int],
    num_train_timesteps: int = NUM_TRAIN_TIMESTEPS,
) -> torch.Tensor:
    """Per-token timesteps ``[B, seq_len]``: 0 on latent frame 0, ``sigma * num_train_timesteps`` elsewhere.

    Args:
        sigma: Noise level: a float, a 0-d tensor, or one per sample ``[B]``.
        latent_shape: ``(B, C, f, h, w)`` of the latents.
        patch_size: The transformer's ``(p_t, p_h, p_w)``; ``p_t`` must be 1.
        num_train_timesteps: Timestep scale (1000 for Wan).
    """
    b, _, f, h, w = latent_shape
    p_t, p_h, p_w = patch_size
    if p_t != 1:
        raise ValueError(f"first-frame conditioning needs a temporal patch size of 1, got {p_t}")
    if h % p_h or w % p_w:
        raise ValueError(f"latent height/width ({h}, {w}) must be multiples of the patch size ({p_h}, {p_w})")
    t = torch.as_tensor(sigma, dtype=torch.float32) * num_train_timesteps
    mask = torch.ones(f, h // p_h, w // p_w, dtype=torch.float32, device=t.device)
    mask[0] = 0
    return (mask.flatten().unsqueeze(0) * t.reshape(-1, 1)).expand(b, -1)  # [B, seq_len]


def frame_timesteps(
    frame_sigmas: torch.Tensor,
    latent_shape: Sequence[int],
    patch_size: Sequence[int],
    num_train_timesteps: int = NUM_TRAIN_TIMESTEPS,
) -> torch.Tensor:
    """Per-token timesteps ``[B, seq_len]`` from one noise level per latent frame ``[B, f]`` (or ``[f]``): 0 on
    latent frame 0, ``frame_sigmas[:, k] * num_train_timesteps`` on the tokens of frame ``k``."""
    b, _, f, h, w = latent_shape
    ones = token_timesteps(torch.ones(b), latent_shape, patch_size, num_train_timesteps=1)  # validates the shapes
    sigma = torch.as_tensor(frame_sigmas, dtype=torch.float32).to(ones.device).expand(b, f)
    per_frame = (h // patch_size[1]) * (w // patch_size[2])
    return ones * sigma.repeat_interleave(per_frame, dim=1) * num_train_timesteps  # [B, seq_len]


def impose_first_frame(latents: torch.Tensor, first_frame_latent: torch.Tensor) -> torch.Tensor:
    """``latents`` with latent frame 0 replaced by ``first_frame_latent`` (a new tensor)."""
    return torch.cat([first_frame_latent.to(latents.dtype), latents[:, :, 1:]], dim=2)


@dataclass
class RolloutStep:
    """One SDE step of a rollout, detached (what GRPO trains on).

    Attributes:
        index: Step index in the plan.
        sigma: Noise level before the step (float32 0-d tensor).
        sigma_next: Noise level after it.
        latents: Latents before the step ``[B, C, f, h, w]`` (frame 0 imposed).
        next_latents: Latents after the step ``[B, C, f, h, w]`` (frame 0 imposed).
        log_prob: Log-probability of ``next_latents`` under the rollout policy, over frames ``1..`` ``[B]``.
    """

    index: int
    sigma: torch.Tensor
    sigma_next: torch.Tensor
    latents: torch.Tensor
    next_latents: torch.Tensor
    log_prob: torch.Tensor

    def slice(self, rows: slice) -> RolloutStep:
        """The same step restricted to samples ``rows``."""
        return dataclasses.replace(self, latents=self.latents[rows], next_latents=self.next_latents[rows],
                                   log_prob=self.log_prob[rows])

    def to(self, device: torch.device | str, pin: bool = False) -> RolloutStep:
        """The same step with its latents and log-prob on ``device``; ``pin`` puts them in page-locked host memory
        (``device`` must then be the CPU), so the copy back to the GPU runs asynchronously. Tensors already in
        place are not copied."""
        def move(t: torch.Tensor) -> torch.Tensor:
            t = t.to(device, non_blocking=t.is_pinned())
            return t.pin_memory() if pin and not t.is_pinned() else t

        return dataclasses.replace(self, latents=move(self.latents), next_latents=move(self.next_latents),
                                   log_prob=move(self.log_prob))

    @staticmethod
    def cat(steps: Sequence[RolloutStep]) -> RolloutStep:
        """One step of several sample chunks of the same plan, their samples in order."""
        return dataclasses.replace(steps[0], latents=torch.cat([s.latents for s in steps]),
                                   next_latents=torch.cat([s.next_latents for s in steps]),
                                   log_prob=torch.cat([s.log_prob for s in steps]))


@dataclass
class Rollout:
    """The result of ``FlowSampler.rollout``.

    Attributes:
        latents: Final latents ``[B, C, f, h, w]`` with frame 0 imposed.
        steps: One ``RolloutStep`` per ``"sde"`` step of the plan, in order (ODE steps store nothing).
        sigmas: The plan's sigmas ``[n + 1]`` (float32, CPU).
        tail_sigmas: The fast tail's grid when a ``TailSpec`` was given, else ``None``.
    """

    latents: torch.Tensor
    steps: list[RolloutStep]
    sigmas: torch.Tensor
    tail_sigmas: torch.Tensor | None = None

    def to(self, device: torch.device | str, pin: bool = False) -> Rollout:
        """The same rollout with its steps on ``device`` (``RolloutStep.to``); the final latents stay."""
        return dataclasses.replace(self, steps=[s.to(device, pin) for s in self.steps])

    @staticmethod
    def cat(parts: Sequence[Rollout]) -> Rollout:
        """One rollout of several sample chunks rolled out along the same plan, their samples in order."""
        return dataclasses.replace(parts[0], latents=torch.cat([p.latents for p in parts]),
                                   steps=[RolloutStep.cat(s) for s in zip(*(p.steps for p in parts), strict=True)])


@dataclass
class _Prepared:
    """What a rollout prepares once: validated inputs in the transformer's dtype/device."""

    first_frame_latent: torch.Tensor
    sigmas: torch.Tensor
    plan: list[str]
    prompt_embeds: torch.Tensor
    negative_prompt_embeds: torch.Tensor | None
    token_mask: torch.Tensor


class FlowSampler:
    """Samples latents from noise with a Wan transformer and first-frame conditioning.

    Args:
        transformer: A ``WanTransformer3DModel`` (or anything with its call signature and ``config.patch_size``).
        guidance_scale: Classifier-free guidance weight; ``<= 1`` disables it (one transformer call per step).
        num_train_timesteps: Timestep scale of the transformer (1000 for Wan).
    """

    def __init__(
        self, transformer: torch.nn.Module, guidance_scale: float = 1.0, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS
    ) -> None:
        self.transformer = transformer
        self.guidance_scale = float(guidance_scale)
        self.num_train_timesteps = int(num_train_timesteps)

    @property
    def do_guidance(self) -> bool:
        return self.guidance_scale > 1.0

    def _dtype(self) -> torch.dtype:
        return getattr(self.transformer, "dtype", None) or next(self.transformer.parameters()).dtype

    def _velocity(
        self,
        model_input: torch.Tensor,
        timestep: torch.Tensor,
        prompt_embeds: torch.Tensor,
        negative_prompt_embeds: torch.Tensor | None,
    ) -> torch.Tensor:
        """Transformer call(s) on a prepared input (frame 0 imposed, transformer dtype) and per-token timesteps."""
        v = self.transformer(
            hidden_states=model_input, timestep=timestep, encoder_hidden_states=prompt_embeds, return_dict=False
        )[0]
        if self.do_guidance:
            if negative_prompt_embeds is None:
                raise ValueError(f"`guidance_scale` {self.guidance_scale} > 1 needs `negative_prompt_embeds`")
            v_uncond = self.transformer(
                hidden_states=model_input,
                timestep=timestep,
                encoder_hidden_states=negative_prompt_embeds,
                return_dict=False,
            )[0]
            v = v_uncond + self.guidance_scale * (v - v_uncond)
        return v

    def _prepare(
        self,
        latents_noise: torch.Tensor,
        first_frame_latent: torch.Tensor,
        prompt_embeds: torch.Tensor,
        sigmas: torch.Tensor,
        plan: Sequence[str] | None,
        negative_prompt_embeds: torch.Tensor | None,
    ) -> _Prepared:
        """Validate the inputs of a rollout and prepare what does not change between steps."""
        if latents_noise.ndim != 5:
            raise ValueError(f"`latents_noise` must be [B, C, f, h, w], got shape {tuple(latents_noise.shape)}")
        if first_frame_latent.ndim == 4:
            first_frame_latent = first_frame_latent.unsqueeze(2)
        b, c, _, h, w = latents_noise.shape
        if tuple(first_frame_latent.shape) != (b, c, 1, h, w):
            raise ValueError(
                f"`first_frame_latent` must be [{b}, {c}, 1, {h}, {w}] to match the noise, "
                f"got {tuple(first_frame_latent.shape)}"
            )
        sigmas = torch.as_tensor(sigmas, dtype=torch.float32).cpu()
        if sigmas.ndim != 1 or len(sigmas) < 2:
            raise ValueError(f"`sigmas` must be 1-D with at least 2 values, got shape {tuple(sigmas.shape)}")
        plan = validate_plan(plan, len(sigmas) - 1)
        if self.do_guidance and negative_prompt_embeds is None:
            raise ValueError(f"`guidance_scale` {self.guidance_scale} > 1 needs `negative_prompt_embeds`")
        dtype, device = self._dtype(), latents_noise.device
        if negative_prompt_embeds is not None:
            negative_prompt_embeds = negative_prompt_embeds.to(device=device, dtype=dtype)
        token_mask = token_timesteps(
            torch.tensor(1.0), latents_noise.shape, self.transformer.config.patch_size, num_train_timesteps=1
        ).to(device)  # [B, seq_len]: 0 on frame 0, 1 elsewhere
        return _Prepared(
            first_frame_latent=first_frame_latent.to(latents_noise.dtype),
            sigmas=sigmas,
            plan=plan,
            prompt_embeds=prompt_embeds.to(device=device, dtype=dtype),
            negative_prompt_embeds=negative_prompt_embeds,
            token_mask=token_mask,
        )

    def _step_velocity(self, latents: torch.Tensor, sigma: torch.Tensor, prep: _Prepared) -> torch.Tensor:
        """The velocity at ``latents`` (frame 0 already imposed) and the 0-d float32 ``sigma``."""
        timestep = prep.token_mask * (sigma * self.num_train_timesteps).to(latents.device)  # float32, as the scheduler
        return self._velocity(latents.to(self._dtype()), timestep, prep.prompt_embeds, prep.negative_prompt_embeds)

    @torch.no_grad()
    def rollout(
        self,
        latents_noise: torch.Tensor,
        first_frame_latent: torch.Tensor,
        prompt_embeds: torch.Tensor,
        sigmas: torch.Tensor,
        plan: Sequence[str] | None = None,
        *,
        noise_level: float = 0.7,
        variant: str = "flow_grpo",
        generator: Generators | None = None,
        negative: torch.Tensor | None = None,
        tail: TailSpec | None = None,
    ) -> Rollout:
        """Denoise along ``sigmas`` following ``plan`` and keep what GRPO trains on (the SDE steps).

        ``"ode"`` steps are the Euler steps of ``sample`` and store nothing. ``"sde"`` steps are ``sde_step`` on latent
        frames ``1..`` only: frame 0 is the clean condition, re-imposed after every step, so it gets no noise and no
        log-probability (``log_prob`` is the mean over the noisy frames ``[C, f - 1, h, w]``). With ``tail``, the
        plan's steps after its last ``"sde"`` step are replaced by ``tail.steps`` steps of ``tail.solver`` on the grid
        ``tail_sigmas(sigmas, last_sde + 1, tail.steps, tail.grid)`` (from the start if the plan has no ``"sde"``
        step).

        Args:
            latents_noise: Initial noise ``[B, C, f, h, w]`` (the latents at ``sigmas[0]``); frame 0 is ignored.
            first_frame_latent: Clean normalised first-frame latent ``[B, C, 1, h, w]`` (or ``[B, C, h, w]``).
            prompt_embeds: ``[B, L, text_dim]``.
            sigmas: Decreasing float sigmas ``[n + 1]`` ending at the terminal value (``sampling_sigmas``).
            plan: Step kinds, one per step (``None``: all ``"ode"``); see ``validate_plan``.
            noise_level: SDE noise scale ``a`` (see ``sde_step``).
            variant: SDE form, ``"flow_grpo"`` or ``"cps"``.
            generator: RNG of the SDE noise (same generator state and inputs -> same rollout), or one generator per
                sample (then a sample's rollout does not depend on the rest of the batch).
            negative: Negative prompt embeddings ``[B, L', text_dim]``, needed when guidance is on.
            tail: Optional fast deterministic tail after the last SDE step.

        Returns:
            A ``Rollout``: final latents (frame 0 imposed), one ``RolloutStep`` per SDE step, the sigmas.
        """
        prep = self._prepare(latents_noise, first_frame_latent, prompt_embeds, sigmas, plan, negative)
        sigmas, plan, first = prep.sigmas, prep.plan, prep.first_frame_latent
        if noise_level < 0:
            raise ValueError(f"`noise_level` must be >= 0, got {noise_level}")
        if variant not in SDE_VARIANTS:
            raise ValueError(f"`variant` must be one of {list(SDE_VARIANTS)}, got {variant!r}")
        last_sde = max((i for i, kind in enumerate(plan) if kind == "sde"), default=-1)
        num_plan_steps = len(plan) if tail is None else last_sde + 1
        latents = impose_first_frame(latents_noise, first)
        steps: list[RolloutStep] = []
        for i in range(num_plan_steps):
            # frame 0 of `latents` already holds the condition, so the model input is the latents themselves
            v = self._step_velocity(latents, sigmas[i], prep)
            if plan[i] == "sde":
                noisy = latents[:, :, 1:]  # [B, C, f - 1, h, w]: the noisy frames only
                shape = noisy.shape if generator is None or isinstance(generator, torch.Generator) else noisy.shape[1:]
                out = sde_step(noisy, v[:, :, 1:], sigmas[i], sigmas[i + 1], noise_level,
                               noise=standard_normal(generator, shape, noisy.device), variant=variant)
                next_latents = torch.cat([latents[:, :, :1], out.prev_sample], dim=2)  # [B, C, f, h, w]
                steps.append(RolloutStep(i, sigmas[i], sigmas[i + 1], latents, next_latents, out.log_prob))
                latents = next_latents
            else:
                latents = ode_step(latents, v, sigmas[i], sigmas[i + 1])
                latents[:, :, :1] = first  # re-impose the clean first frame
        tail_grid = None
        if tail is not None:
            tail_grid = tail_sigmas(sigmas, num_plan_steps, tail.steps, tail.grid)
            latents = run_tail(
                tail,
                lambda x, sigma: self._step_velocity(x, sigma, prep),
                latents,
                tail_grid,
                project=lambda x: impose_first_frame(x, first),
            )
        return Rollout(latents=latents, steps=steps, sigmas=sigmas, tail_sigmas=tail_grid)

    def step_log_prob(
        self,
        step: RolloutStep,
        first_frame_latent: torch.Tensor,
        prompt_embeds: torch.Tensor,
        *,
        noise_level: float,
        variant: str = "flow_grpo",
        negative: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Re-evaluate a stored SDE step under the current transformer: the log-probability of ``step.next_latents``
        given ``step.latents``.

        Runs in the caller's grad mode (with grad by default: the GRPO loss back-propagates through ``log_prob`` and
        ``mean``; wrap the reference policy's call in ``torch.no_grad``). With the transformer that made the rollout
        and the same ``noise_level`` / ``variant`` it reproduces ``step.log_prob``.

        Args:
            step: A step of ``Rollout.steps``.
            first_frame_latent: The rollout's first-frame latent ``[B, C, 1, h, w]`` (or ``[B, C, h, w]``).
            prompt_embeds: The rollout's prompt embeddings ``[B, L, text_dim]``.
            noise_level: The rollout's SDE noise scale.
            variant: The rollout's SDE form.
            negative: Negative prompt embeddings, needed when guidance is on.

        Returns:
            ``(log_prob [B], mean [B, C, f - 1, h, w], std)``: float32, over latent frames ``1..`` (feed ``mean`` and
            ``std`` with the reference's ``mean`` to ``sde_kl``).
        """
        sigmas = torch.stack([step.sigma, step.sigma_next])  # [2]: one step
        prep = self._prepare(step.latents, first_frame_latent, prompt_embeds, sigmas, ["ode"], negative)
        latents = impose_first_frame(step.latents, prep.first_frame_latent)  # a no-op on a stored step's values
        v = self._step_velocity(latents, prep.sigmas[0], prep)
        out = sde_step(
            latents[:, :, 1:],  # [B, C, f - 1, h, w]
            v[:, :, 1:],
            prep.sigmas[0],
            prep.sigmas[1],
            noise_level,
            prev_sample=step.next_latents[:, :, 1:],
            variant=variant,
        )
        return out.log_prob, out.mean, out.std

    @torch.no_grad()
    def sample_staggered(
        self,
        latents_noise: torch.Tensor,
        first_frame_latent: torch.Tensor,
        prompt_embeds: torch.Tensor,
        frame_sigmas: torch.Tensor,
        negative_prompt_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Euler sampling with one noise level per latent frame and step (``staggered_sigmas``), frame 0 imposed.

        Args:
            latents_noise: Initial noise ``[B, C, f, h, w]``; frame 0 is ignored.
            first_frame_latent: Clean normalised first-frame latent ``[B, C, 1, h, w]`` (or ``[B, C, h, w]``).
            prompt_embeds: ``[B, L, text_dim]``.
            frame_sigmas: ``[G + 1, f]``, non-increasing down every column.
            negative_prompt_embeds: ``[B, L', text_dim]``, needed when guidance is on.

        Returns:
            The final latents ``[B, C, f, h, w]``, float32 (or the noise's dtype), with frame 0 imposed.
        """
        frame_sigmas = torch.as_tensor(frame_sigmas, dtype=torch.float32)
        f = latents_noise.shape[2]
        if frame_sigmas.ndim != 2 or frame_sigmas.shape[1] != f or len(frame_sigmas) < 2:
            raise ValueError(f"`frame_sigmas` must be [steps + 1, {f}], got shape {tuple(frame_sigmas.shape)}")
        if bool((frame_sigmas[1:] > frame_sigmas[:-1]).any()):
            raise ValueError("`frame_sigmas` must not increase from one step to the next")
        # the shared checks and casts; the last frame's column stands in for the 1-D grid they validate
        prep = self._prepare(latents_noise, first_frame_latent, prompt_embeds, frame_sigmas[:, -1], None,
                             negative_prompt_embeds)
        latents = impose_first_frame(latents_noise, prep.first_frame_latent)
        patch = self.transformer.config.patch_size
        for sigma, sigma_next in zip(frame_sigmas[:-1], frame_sigmas[1:], strict=True):
            timestep = frame_timesteps(sigma, latents.shape, patch, self.num_train_timesteps).to(latents.device)
            v = self._velocity(latents.to(self._dtype()), timestep, prep.prompt_embeds, prep.negative_prompt_embeds)
            latents = ode_step(latents, v, sigma.view(1, 1, f, 1, 1), sigma_next.view(1, 1, f, 1, 1))
            latents[:, :, :1] = prep.first_frame_latent  # re-impose the clean first frame
        return latents

    def sample(
        self,
        latents_noise: torch.Tensor,
        first_frame_latent: torch.Tensor,
        prompt_embeds: torch.Tensor,
        sigmas: torch.Tensor,
        plan: Sequence[str] | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        *,
        noise_level: float = 0.7,
        variant: str = "flow_grpo",
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Denoise ``latents_noise`` along ``sigmas``: ``rollout(...).latents`` (see ``rollout``).

        Args:
            latents_noise: Initial noise ``[B, C, f, h, w]`` (the latents at ``sigmas[0]``); frame 0 is ignored.
            first_frame_latent: Clean normalised first-frame latent ``[B, C, 1, h, w]`` (or ``[B, C, h, w]``).
            prompt_embeds: ``[B, L, text_dim]``.
            sigmas: Decreasing float sigmas ``[n + 1]`` ending at the terminal value (``sampling_sigmas``).
            plan: Step kinds, one per step (``None``: all ``"ode"``, the pipeline's Euler sampler).
            negative_prompt_embeds: ``[B, L', text_dim]``, needed when guidance is on.
            noise_level: SDE noise scale of ``"sde"`` steps.
            variant: SDE form of ``"sde"`` steps.
            generator: RNG of the SDE noise.

        Returns:
            The final latents ``[B, C, f, h, w]``, float32 (or the noise's dtype), with frame 0 imposed.
        """
        return self.rollout(
            latents_noise,
            first_frame_latent,
            prompt_embeds,
            sigmas,
            plan,
            noise_level=noise_level,
            variant=variant,
            generator=generator,
            negative=negative_prompt_embeds,
        ).latents


def sample(
    transformer: torch.nn.Module,
    latents_noise: torch.Tensor,
    first_frame_latent: torch.Tensor,
    prompt_embeds: torch.Tensor,
    sigmas: torch.Tensor,
    plan: Sequence[str] | None = None,
    guidance_scale: float = 1.0,
    negative_prompt_embeds: torch.Tensor | None = None,
    *,
    noise_level: float = 0.7,
    variant: str = "flow_grpo",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Functional form of ``FlowSampler(transformer, guidance_scale).sample(...)``; see there."""
    return FlowSampler(transformer, guidance_scale=guidance_scale).sample(
        latents_noise,
        first_frame_latent,
        prompt_embeds,
        sigmas,
        plan=plan,
        negative_prompt_embeds=negative_prompt_embeds,
        noise_level=noise_level,
        variant=variant,
        generator=generator,
    )
