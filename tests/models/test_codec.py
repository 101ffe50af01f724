"""Codecs: exact PixelCodec round trip, PaletteCodec on task renders, tiny Wan VAE shapes and normalisation, shape
checks."""

from __future__ import annotations

import pytest
import torch

from videoreason.media import to_model_video, to_uint8
from videoreason.models.codec import PaletteCodec, PixelCodec, WanVAECodec

MAZE_COLOURS = ["wall", "floor", "start", "goal", "path", "dead_end"]


def test_palette_codec_encodes_blocks_as_one_hot_colours_and_round_trips_tiny_renders():
    import numpy as np

    from videoreason.tasks.maze import Maze
    from videoreason.tasks.render import RenderSpec

    codec, task, spec = PaletteCodec(MAZE_COLOURS), Maze(), RenderSpec(height=56, width=56, num_frames=9)
    rng = np.random.default_rng(0)
    for _ in range(20):
        puzzle = task.generate(rng, "tiny-fill")
        video = task.render(puzzle, task.states(puzzle, task.solve(puzzle), 9), spec)  # [F, H, W, 3]
        latents = codec.encode(torch.from_numpy(video)[None])
        assert latents.shape == (1, 6, 9, 14, 14) and set(latents.unique().tolist()) == {-1.0, 1.0}
        assert (latents == 1).sum(1).eq(1).all()  # one colour per latent cell
        assert torch.equal(to_uint8(codec.decode(latents))[0], torch.from_numpy(video))  # the render is flat
    assert torch.equal(codec.encode(to_uint8(codec.decode(latents))), latents)


def test_palette_codec_takes_each_blocks_majority_colour():
    codec = PaletteCodec(["floor", [0, 0, 0]], patch=2)
    video = torch.full((1, 1, 2, 4, 3), 236, dtype=torch.uint8)  # floor
    video[0, 0, 0, 0] = 10  # one near-black pixel of four: the block stays floor
    video[0, 0, :, 2:] = 5  # a whole block near black
    latents = codec.encode(video)  # [1, 2, 1, 1, 2]
    assert latents[0, :, 0, 0].tolist() == [[1.0, -1.0], [-1.0, 1.0]]
    assert to_uint8(codec.decode(latents))[0, 0, :, 2:].eq(0).all()
    assert codec.config() == {"class_path": "videoreason.models.codec.PaletteCodec",
                              "init_args": {"colours": ["floor", [0, 0, 0]], "patch": 2}}


def test_palette_codec_names_bad_colours():
    with pytest.raises(ValueError, match="unknown colour name 'mauve'"):
        PaletteCodec(["floor", "mauve"])
    with pytest.raises(ValueError, match="at least 2 distinct"):
        PaletteCodec(["floor", [236, 236, 228]])
    with pytest.raises(ValueError, match=r"\[r, g, b\]"):
        PaletteCodec(["floor", [300, 0, 0]])


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


def _spy(monkeypatch, obj, name: str) -> list[int]:
    calls = [0]
    original = getattr(obj, name)

    def counting(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, counting)
    return calls


def test_wan_vae_slicing_gives_the_same_latents_and_video(vae_codec, monkeypatch):
    sliced = WanVAECodec("tiny", slicing=True)
    decoded = _spy(monkeypatch, sliced.vae, "_decode")
    video = torch.rand(3, 3, 5, 16, 24) * 2 - 1  # [B, 3, F, H, W]
    latents = vae_codec.encode(video)
    torch.testing.assert_close(sliced.encode(video), latents, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sliced.decode(latents), vae_codec.decode(latents), atol=1e-5, rtol=1e-5)
    assert decoded == [3]  # one video at a time


def test_wan_vae_tiling_matches_the_plain_codec(vae_codec, monkeypatch):
    tiled = WanVAECodec("tiny", tiling=True, tile_size=64, tile_stride=48)
    assert tiled.vae.use_tiling and tiled.vae.tile_sample_min_width == 64 and tiled.vae.tile_sample_stride_width == 48
    encoded, decoded = _spy(monkeypatch, tiled.vae, "tiled_encode"), _spy(monkeypatch, tiled.vae, "tiled_decode")
    gen = torch.Generator().manual_seed(0)
    small = torch.randn(1, 4, 2, 8, 8, generator=gen)  # 64 x 64 px, one tile: tiling does not kick in
    assert torch.equal(tiled.decode(small), vae_codec.decode(small)) and decoded == [0]
    video = torch.rand(1, 3, 5, 64, 96, generator=gen) * 2 - 1  # overlapping 64 px tiles, stride 48
    latents, tiled_latents = vae_codec.encode(video), tiled.encode(video)  # [1, 4, 2, 8, 12]
    assert encoded == [1] and tiled_latents.shape == latents.shape
    assert (tiled_latents - latents).abs().mean() < 0.1 * latents.abs().mean()
    tiled_video = tiled.decode(latents)
    assert decoded == [1]
    # the codec's normalisation wraps diffusers' tiled path exactly ...
    raw = latents * tiled.latents_std + tiled.latents_mean
    torch.testing.assert_close(tiled_video, tiled.vae.tiled_decode(raw, return_dict=False)[0].clamp(-1, 1))
    # ... and tiles agree with the whole frame up to the seams (a random VAE is no trained one: loose bounds,
    # diffusers' own tiling test allows 0.5)
    plain_video = vae_codec.decode(latents)
    assert tiled_video.shape == plain_video.shape == (1, 3, 5, 64, 96)
    assert (tiled_video - plain_video).abs().max() < 0.5 and (tiled_video - plain_video).abs().mean() < 0.03


def test_wan_vae_tile_settings_name_the_key():
    with pytest.raises(ValueError, match="`tile_size` must be a positive multiple of 8"):
        WanVAECodec("tiny", tiling=True, tile_size=60)
    with pytest.raises(ValueError, match="`tile_stride`"):
        WanVAECodec("tiny", tiling=True, tile_size=64, tile_stride=72)
    assert not WanVAECodec("tiny", tile_size=60).vae.use_tiling  # only checked when tiling is on
