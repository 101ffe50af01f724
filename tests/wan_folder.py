"""Tiny diffusers-format Wan pipeline folders, built and saved by the tests (nothing is downloaded).

Both layouts of the published models, at toy sizes:

- ``wan2.1``: the Wan2.1 VAE (4x temporal, 8x spatial; ``z_dim`` 4 here, 16 in Wan2.1-T2V-1.3B);
- ``wan2.2``: the Wan2.2 VAE (residual, ``patch_size`` 2, 16x spatial, 48 latent channels as Wan2.2-TI2V-5B).

Each folder has what ``model.pretrained`` reads and what ``WanImageToVideoPipeline.from_pretrained`` reads:
``transformer/``, ``vae/``, ``text_encoder/`` (a 1-layer UMT5, ``d_model`` 16), ``tokenizer/`` (word level, works
offline), ``scheduler/`` and ``model_index.json``.
"""

from __future__ import annotations

from pathlib import Path

import torch

TEXT_DIM = 16
WORDS = ["<pad>", "</s>", "<unk>", "a", "maze", "draw", "the", "path", "from", "green", "dot", "to", "red", "in",
         "yellow", "one", "block", "at", "time", "never", "crossing", "dark", "wall", ",", ".", "solve", "sokoban"]

WAN22_VAE = {
    "base_dim": 8, "decoder_base_dim": 8, "z_dim": 48, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1,
    "temperal_downsample": [False, True, True], "is_residual": True, "in_channels": 12, "out_channels": 12,
    "patch_size": 2, "scale_factor_spatial": 16, "scale_factor_temporal": 4,
    "latents_mean": [0.02 * (i % 7) - 0.06 for i in range(48)],
    "latents_std": [1.0 + 0.05 * (i % 5) for i in range(48)],
}
"""A toy Wan2.2 VAE: the published layout (residual, patch 2, 16x spatial, 48 channels) with 8 base channels."""


def save_tiny_umt5(root: Path) -> None:
    """A 1-layer UMT5 encoder (``d_model`` 16) and a word-level tokenizer in ``root/text_encoder`` + ``tokenizer``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(str(root / "tokenizer"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        config = UMT5Config(vocab_size=len(WORDS), d_model=TEXT_DIM, d_kv=4, d_ff=32, num_layers=1, num_heads=2,
                            relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
                            decoder_start_token_id=0)
        UMT5EncoderModel(config).save_pretrained(str(root / "text_encoder"))


def save_tiny_wan(root: Path, layout: str = "wan2.1") -> Path:
    """Write a tiny Wan pipeline folder of ``layout`` (``wan2.1`` or ``wan2.2``) to ``root``; returns ``root``."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel

    from videoreason.models.codec import TINY_VAE_CONFIG
    from videoreason.models.transformer import transformer_config

    if layout not in ("wan2.1", "wan2.2"):
        raise ValueError(f"layout must be 'wan2.1' or 'wan2.2', got {layout!r}")
    root.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vae = AutoencoderKLWan(**(TINY_VAE_CONFIG if layout == "wan2.1" else WAN22_VAE))
        transformer = WanTransformer3DModel(**transformer_config("tiny", in_channels=vae.config.z_dim,
                                                                 text_dim=TEXT_DIM))
    vae.save_pretrained(str(root / "vae"))
    transformer.save_pretrained(str(root / "transformer"))
    save_tiny_umt5(root)
    FlowMatchEulerDiscreteScheduler(shift=5.0).save_pretrained(str(root / "scheduler"))
    pipeline = "WanImageToVideoPipeline" if layout == "wan2.2" else "WanPipeline"
    index = {"_class_name": pipeline, "_diffusers_version": "0.35.0",
             "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
             "text_encoder": ["transformers", "UMT5EncoderModel"],
             "tokenizer": ["transformers", "PreTrainedTokenizerFast"],
             "transformer": ["diffusers", "WanTransformer3DModel"], "vae": ["diffusers", "AutoencoderKLWan"]}
    if layout == "wan2.2":
        index["expand_timesteps"] = True
    import json

    (root / "model_index.json").write_text(json.dumps(index, indent=2))
    return root
