"""The Wan transformer: named configs, the tiny forward pass on codec latents, loading and its errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from videoreason.models.codec import PixelCodec
from videoreason.models.text import HashTextEmbedder
from videoreason.models.transformer import NAMED_CONFIGS, build_transformer, transformer_config


def test_models_import_stays_light():
    code = (
        "import sys, videoreason.models; print([m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_tiny_forward_on_pixel_codec_latents():
    codec = PixelCodec(patch=4)
    text = HashTextEmbedder(dim=32, max_tokens=8)
    model = build_transformer("tiny", in_channels=codec.latent_channels)
    video = torch.randint(0, 256, (2, 3, 16, 16, 3), dtype=torch.uint8)  # [B, F, H, W, 3]
    latents = codec.encode(video)  # [B, 48, 3, 4, 4]
    timestep = torch.tensor([0.0, 999.0])
    out = model(latents, timestep=timestep, encoder_hidden_states=text(["go", "stop"]), return_dict=False)[0]
    assert out.shape == latents.shape
    assert torch.isfinite(out).all()
    out.square().mean().backward()  # trainable end to end
    assert model.patch_embedding.weight.grad is not None


def test_tiny_accepts_per_token_timesteps():
    # Wan 2.2 TI2V conditioning: timestep per latent token, 0 on the clean first frame.
    model = build_transformer("tiny", in_channels=8, text_dim=16)
    latents = torch.randn(1, 8, 3, 4, 4)  # [B, C, f, h, w]; patch (1, 2, 2) -> 3 * 2 * 2 tokens
    timestep = torch.full((1, 12), 500.0)
    timestep[:, :4] = 0.0
    out = model(latents, timestep=timestep, encoder_hidden_states=torch.randn(1, 5, 16), return_dict=False)[0]
    assert out.shape == latents.shape


def test_bf16_keeps_fp32_modules():
    model = build_transformer("tiny", dtype=torch.bfloat16)
    assert model.patch_embedding.weight.dtype == torch.bfloat16
    assert model.scale_shift_table.dtype == torch.float32
    assert model.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32


@pytest.mark.parametrize(
    ("name", "layers", "heads", "ffn", "channels"),
    [("wan2.1-1.3b", 30, 12, 8960, 16), ("wan2.2-ti2v-5b", 30, 24, 14336, 48)],
)
def test_real_configs_match_published_dims(name, layers, heads, ffn, channels):
    cfg = transformer_config(name)
    assert (cfg["num_layers"], cfg["num_attention_heads"], cfg["attention_head_dim"]) == (layers, heads, 128)
    assert (cfg["ffn_dim"], cfg["in_channels"], cfg["out_channels"]) == (ffn, channels, channels)
    assert (cfg["text_dim"], cfg["freq_dim"], tuple(cfg["patch_size"])) == (4096, 256, (1, 2, 2))
    with torch.device("meta"):
        model = build_transformer(name)
    n = sum(p.numel() for p in model.parameters())
    assert {"wan2.1-1.3b": 1.42e9, "wan2.2-ti2v-5b": 5.0e9}[name] == pytest.approx(n, rel=0.01)


def test_unknown_name_or_missing_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match="nope") as info:
        build_transformer(str(missing))
    for name in NAMED_CONFIGS:
        assert name in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        build_transformer(str(tmp_path / "empty"))
    with pytest.raises(KeyError, match="tiny"):
        transformer_config("huge")


@pytest.mark.parametrize("layout", ["pipeline", "flat"])
def test_load_local_folder(tmp_path, layout):
    model = build_transformer("tiny", in_channels=12)
    target = tmp_path / "transformer" if layout == "pipeline" else tmp_path
    model.save_pretrained(str(target))
    loaded = build_transformer(str(tmp_path), in_channels=12)
    assert loaded.config.in_channels == 12
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="in_channels"):
        build_transformer(str(tmp_path), in_channels=16)
