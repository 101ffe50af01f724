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

Classifier-free guidance as the pipeline: enabled when ``guidance_scale > 1``, ``v = v_u + g * (v_c - v_u)`` with
two transformer calls (conditional first).

One deliberate difference: ``ode_step`` returns the latents in their own dtype (float32 here), whereas the diffusers
scheduler casts them back to the transformer's output dtype after every step (bf16 latents with a bf16 model). With
a float32 transformer both agree to float32 rounding (see ``tests/diffusion/test_sampler_parity.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from videoreason.diffusion.schedule import NUM_TRAIN_TIMESTEPS
from videoreason.diffusion.steps import ode_step

STEP_KINDS = ("ode",)


def validate_plan(plan: Sequence[str] | None, num_steps: int) -> list[str]:
    """Check a per-step plan and return it as a list (``None`` means all ``"ode"``).

    Args:
        plan: One entry per denoising step; each must be ``"ode"`` for now (``"sde"`` steps arrive with the GRPO
            phase).
        num_steps: Steps of the sigma schedule (``len(sigmas) - 1``).

    Raises:
        ValueError: Wrong length, or an entry that is not a supported step kind (named with its index).
    """
    if plan is None:
        return ["ode"] * num_steps
    if isinstance(plan, str):
        raise ValueError(f"`plan` must be a sequence of step kinds, one per step, not the string {plan!r}")
    plan = list(plan)
    if len(plan) != num_steps:
        raise ValueError(f"`plan` has {len(plan)} entries but the sigmas define {num_steps} steps")
    for i, kind in enumerate(plan):
        if kind not in STEP_KINDS:
            hint = "; 'sde' steps arrive with the GRPO phase" if kind == "sde" else ""
            raise ValueError(f"`plan[{i}]` is {kind!r}; supported step kinds: {list(STEP_KINDS)}{hint}")
    return plan


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


def impose_first_frame(latents: torch.Tensor, first_frame_latent: torch.Tensor) -> torch.Tensor:
    """``latents`` with latent frame 0 replaced by ``first_frame_latent`` (a new tensor)."""
    return torch.cat([first_frame_latent.to(latents.dtype), latents[:, :, 1:]], dim=2)


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

    def velocity(
        self,
        latents: torch.Tensor,
        sigma: torch.Tensor,
        first_frame_latent: torch.Tensor,
        prompt_embeds: torch.Tensor,
        negative_prompt_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The (guided) velocity at ``latents`` / ``sigma``, frame 0 imposed, per-token timesteps.

        Returns:
            The velocity ``[B, C, f, h, w]`` in the transformer's output dtype.
        """
        if first_frame_latent.ndim == 4:
            first_frame_latent = first_frame_latent.unsqueeze(2)
        dtype = self._dtype()
        timestep = token_timesteps(sigma, latents.shape, self.transformer.config.patch_size, self.num_train_timesteps)
        negative = None if negative_prompt_embeds is None else negative_prompt_embeds.to(dtype)
        return self._velocity(
            impose_first_frame(latents, first_frame_latent).to(dtype),
            timestep.to(latents.device),
            prompt_embeds.to(dtype),
            negative,
        )

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

    @torch.no_grad()
    def sample(
        self,
        latents_noise: torch.Tensor,
        first_frame_latent: torch.Tensor,
        prompt_embeds: torch.Tensor,
        sigmas: torch.Tensor,
        plan: Sequence[str] | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Denoise ``latents_noise`` along ``sigmas``.

        Args:
            latents_noise: Initial noise ``[B, C, f, h, w]`` (the latents at ``sigmas[0]``); frame 0 is ignored.
            first_frame_latent: Clean normalised first-frame latent ``[B, C, 1, h, w]`` (or ``[B, C, h, w]``).
            prompt_embeds: ``[B, L, text_dim]``.
            sigmas: Decreasing float sigmas ``[n + 1]`` ending at the terminal value (``sampling_sigmas``).
            plan: Step kinds, one per step (``None``: all ``"ode"``).
            negative_prompt_embeds: ``[B, L', text_dim]``, needed when guidance is on.

        Returns:
            The final latents ``[B, C, f, h, w]``, float32 (or the noise's dtype), with frame 0 imposed.
        """
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
        # everything that does not change between steps is prepared once
        dtype, device = self._dtype(), latents_noise.device
        first_frame_latent = first_frame_latent.to(latents_noise.dtype)
        prompt_embeds = prompt_embeds.to(device=device, dtype=dtype)
        if negative_prompt_embeds is not None:
            negative_prompt_embeds = negative_prompt_embeds.to(device=device, dtype=dtype)
        token_mask = token_timesteps(
            torch.tensor(1.0), latents_noise.shape, self.transformer.config.patch_size, num_train_timesteps=1
        ).to(device)  # [B, seq_len]: 0 on frame 0, 1 elsewhere
        timesteps = (sigmas * self.num_train_timesteps).to(device)  # float32, as the scheduler's timesteps
        latents = impose_first_frame(latents_noise, first_frame_latent)
        for i, _kind in enumerate(plan):  # all "ode" for now
            # frame 0 of `latents` already holds the condition, so the model input is the latents themselves
            v = self._velocity(latents.to(dtype), token_mask * timesteps[i], prompt_embeds, negative_prompt_embeds)
            latents = ode_step(latents, v, sigmas[i], sigmas[i + 1])
            latents[:, :, :1] = first_frame_latent  # re-impose the clean first frame
        return latents


def sample(
    transformer: torch.nn.Module,
    latents_noise: torch.Tensor,
    first_frame_latent: torch.Tensor,
    prompt_embeds: torch.Tensor,
    sigmas: torch.Tensor,
    plan: Sequence[str] | None = None,
    guidance_scale: float = 1.0,
    negative_prompt_embeds: torch.Tensor | None = None,
) -> torch.Tensor:
    """Functional form of ``FlowSampler(transformer, guidance_scale).sample(...)``; see there."""
    return FlowSampler(transformer, guidance_scale=guidance_scale).sample(
        latents_noise,
        first_frame_latent,
        prompt_embeds,
        sigmas,
        plan=plan,
        negative_prompt_embeds=negative_prompt_embeds,
    )
