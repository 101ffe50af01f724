"""Codecs: exact PixelCodec round trip, tiny Wan VAE shapes and normalisation, shape checks."""

from __future__ import annotations

import pytest
import torch

from videoreason.models.codec import PixelCodec, WanVAECodec, to_model_video, to_uint8


@pytest.fixture(scope="module")
def vae_codec() -> WanVAECodec:
    return WanVAECodec("tiny")


@pytest.mark.parametrize("patch", [1, 2, 4])
def test_pixel_codec_round_trip_is_exact(patch):
    codec = PixelCodec(patch)
    video = torch.randint(0, 256, (2, 4, 8, 12, 3), dtype=torch.uint8)  # [B, F, H, W, 3]
    latents = codec.encode(video)
    assert latents.shape == (2, 3 * patch * patch, 4, 8 // patch, 12 // patch)
    assert latents.dtype == torch.float32 and latents.min() >= -1 and latents.max() <= 1
    decoded = codec.decode(latents)  # [B, 3, F, H, W]
    assert torch.equal(decoded, to_model_video(video))
    assert torch.equal(to_uint8(decoded), video)
    # channels-first float input and channels-last float [0, 255] input agree
    assert torch.equal(codec.encode(to_model_video(video)), latents)
    assert torch.equal(codec.encode(video.float()), latents)


def test_pixel_codec_patch_layout():
    # one latent cell holds exactly its own patch x patch pixels
    video = torch.zeros(1, 1, 4, 4, 3, dtype=torch.uint8)
    video[0, 0, 2:, 2:] = 255  # bottom-right 2x2 block white
    latents = PixelCodec(2).encode(video)  # [1, 12, 1, 2, 2]
    assert (latents[0, :, 0, 1, 1] == 1).all()
    assert (latents[0, :, 0, :1] == -1).all() and (latents[0, :, 0, 1, 0] == -1).all()


def test_pixel_codec_shape_errors():
    codec = PixelCodec(4)
    assert codec.latent_shape(7, 16, 8) == (48, 7, 4, 2)
    with pytest.raises(ValueError, match="`height`.*got 10"):
        codec.check_shape(5, 10, 16)
    with pytest.raises(ValueError, match="`width`.*got 6"):
        codec.encode(torch.zeros(1, 2, 8, 6, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="`num_frames`"):
        codec.check_shape(0, 8, 8)
    with pytest.raises(ValueError, match="latents"):
        codec.decode(torch.zeros(1, 12, 1, 2, 2))
    with pytest.raises(ValueError, match="video"):
        codec.encode(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="ambiguous"):
        codec.encode(torch.zeros(1, 3, 8, 8, 3))
    assert codec.encode(torch.zeros(1, 3, 8, 8, 3, dtype=torch.uint8)).shape == (1, 48, 3, 2, 2)


def test_wan_vae_round_trip_shapes(vae_codec):
    assert (vae_codec.latent_channels, vae_codec.temporal_factor, vae_codec.spatial_factor) == (4, 4, 8)
    video = torch.randint(0, 256, (2, 5, 16, 24, 3), dtype=torch.uint8)  # [B, F, H, W, 3]
    latents = vae_codec.encode(video)
    assert latents.shape == (2, 4, 2, 2, 3) == (2, *vae_codec.latent_shape(5, 16, 24))
    assert latents.dtype == torch.float32 and torch.isfinite(latents).all()
    decoded = vae_codec.decode(latents)
    assert decoded.shape == (2, 3, 5, 16, 24)
    assert decoded.min() >= -1 and decoded.max() <= 1


def test_wan_vae_normalisation_matches_pipeline(vae_codec):
    video = torch.rand(1, 3, 5, 16, 16) * 2 - 1  # [B, 3, F, H, W]
    raw = vae_codec.vae.encode(video).latent_dist.mode()
    mean = torch.tensor(vae_codec.vae.config.latents_mean).view(1, -1, 1, 1, 1)
    inv_std = 1.0 / torch.tensor(vae_codec.vae.config.latents_std).view(1, -1, 1, 1, 1)
    latents = vae_codec.encode(video)
    torch.testing.assert_close(latents, (raw - mean) * inv_std)  # WanImageToVideoPipeline.prepare_latents
    expected = vae_codec.vae.decode(latents / inv_std + mean, return_dict=False)[0].clamp(-1, 1)  # WanPipeline
    torch.testing.assert_close(vae_codec.decode(latents), expected)


def test_wan_vae_shape_errors(vae_codec):
    with pytest.raises(ValueError, match=r"`num_frames` must be 4k\+1 for the Wan VAE, got 10"):
        vae_codec.check_shape(10, 16, 16)
    with pytest.raises(ValueError, match="`height`.*got 12"):
        vae_codec.check_shape(5, 12, 16)
    with pytest.raises(ValueError, match="`width`.*got 20"):
        vae_codec.check_shape(9, 16, 20)
    with pytest.raises(ValueError, match="`num_frames`"):
        vae_codec.encode(torch.zeros(1, 4, 16, 16, 3, dtype=torch.uint8))


def test_wan_vae_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        WanVAECodec(str(tmp_path / "nope"))


def test_wan_vae_loads_local_folder(tmp_path, vae_codec):
    vae_codec.vae.save_pretrained(str(tmp_path / "vae"))
    loaded = WanVAECodec(str(tmp_path))
    video = torch.randint(0, 256, (1, 5, 16, 16, 3), dtype=torch.uint8)
    torch.testing.assert_close(loaded.encode(video), vae_codec.encode(video))
