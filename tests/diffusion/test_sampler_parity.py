"""Our sampler against diffusers' ``WanImageToVideoPipeline(expand_timesteps=True)`` (Wan 2.2 TI2V conditioning) on a
tiny random transformer and the tiny Wan VAE: same noise, first frame, prompt embeddings and sigmas.

Details matched: the pipeline encodes the first frame alone (``[B, 3, 1, H, W]``) with the posterior mode and
normalises with ``(z - mean) * (1 / std)``; ``WanVAECodec.encode`` of that one frame does the same (dividing by std,
an ulp away). The image is handed to the pipeline as a ``[1, 3, H, W]`` tensor already in [-1, 1], which its
``VideoProcessor`` passes through unchanged (it skips normalising inputs with negative values).
"""

from __future__ import annotations

import warnings

import pytest
import torch

from videoreason.diffusion.sampler import FlowSampler, sample
from videoreason.diffusion.schedule import sampling_sigmas
from videoreason.media import to_model_video
from videoreason.models.codec import WanVAECodec
from videoreason.models.transformer import build_transformer

H = W = 32
NUM_FRAMES = 9  # 3 latent frames of 4 x 4 -> 12 tokens with the (1, 2, 2) patch
TEXT_DIM = 32


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    codec = WanVAECodec("tiny").eval()
    transformer = build_transformer("tiny", in_channels=codec.latent_channels, text_dim=TEXT_DIM).eval()
    frame = torch.randint(0, 256, (1, 1, H, W, 3), dtype=torch.uint8)  # [B, F=1, H, W, 3]
    first_latent = codec.encode(frame)  # [1, C, 1, h, w]
    c, f = codec.latent_channels, (NUM_FRAMES - 1) // codec.temporal_factor + 1
    noise = torch.randn(1, c, f, H // codec.spatial_factor, W // codec.spatial_factor)
    prompt = torch.randn(1, 8, TEXT_DIM)
    negative = torch.randn(1, 8, TEXT_DIM)
    image = to_model_video(frame)[:, :, 0]  # [1, 3, H, W] in [-1, 1]
    return codec, transformer, image, first_latent, noise, prompt, negative


def run_pipeline(codec, transformer, image, noise, prompt, negative, steps, shift, guidance):
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline

    pipe = WanImageToVideoPipeline(
        tokenizer=None,
        text_encoder=None,
        vae=codec.vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=shift, num_train_timesteps=1000),
        image_processor=None,
        image_encoder=None,
        transformer=transformer,
        expand_timesteps=True,
    )
    pipe.set_progress_bar_config(disable=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = pipe(
            image=image,
            prompt_embeds=prompt,
            negative_prompt_embeds=negative if guidance > 1 else None,
            height=H,
            width=W,
            num_frames=NUM_FRAMES,
            num_inference_steps=steps,
            guidance_scale=guidance,
            latents=noise.clone(),
            output_type="latent",
        )
    return out.frames


@pytest.mark.parametrize(("steps", "shift", "guidance"), [(4, 5.0, 1.0), (3, 3.0, 2.5)])
def test_matches_wan_i2v_pipeline(setup, steps, shift, guidance):
    codec, transformer, image, first_latent, noise, prompt, negative = setup
    expected = run_pipeline(codec, transformer, image, noise, prompt, negative, steps, shift, guidance)
    ours = sample(
        transformer,
        noise.clone(),
        first_latent,
        prompt,
        sampling_sigmas(steps, shift),
        guidance_scale=guidance,
        negative_prompt_embeds=negative,
    )
    assert ours.shape == expected.shape
    assert ours.dtype == torch.float32
    # the result moved away from the noise (the check is not vacuous) ...
    assert (ours[:, :, 1:] - noise[:, :, 1:]).abs().max() > 1e-2
    # ... and agrees with the pipeline to float32 rounding
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours[:, :, :1], first_latent, atol=1e-6, rtol=0)


def test_first_frame_latent_matches_pipeline_encoding(setup):
    codec, _, image, first_latent, *_ = setup
    vae = codec.vae
    z = vae.encode(image.unsqueeze(2)).latent_dist.mode()
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    torch.testing.assert_close(first_latent, (z - mean) * inv_std, atol=1e-6, rtol=1e-6)


def test_guidance_needs_negative_embeds(setup):
    _, transformer, _, first_latent, noise, prompt, _ = setup
    with pytest.raises(ValueError, match="negative_prompt_embeds"):
        FlowSampler(transformer, guidance_scale=3.0).sample(noise, first_latent, prompt, sampling_sigmas(2, 3.0))


def test_shape_errors(setup):
    _, transformer, _, first_latent, noise, prompt, _ = setup
    sampler = FlowSampler(transformer)
    with pytest.raises(ValueError, match="first_frame_latent"):
        sampler.sample(noise, first_latent[:, :2], prompt, sampling_sigmas(2))
    with pytest.raises(ValueError, match="latents_noise"):
        sampler.sample(noise[0], first_latent, prompt, sampling_sigmas(2))
