"""The denoiser: diffusers' ``WanTransformer3DModel``, from a named config or a local diffusers folder.

Named configs (random init, nothing downloaded):

- ``tiny``: 2 layers, 2 heads x 16 dims, ffn 64, text_dim 32: for tests of the plumbing. Its width (32) is below
  a token's size (48 channels x 2 x 2 patch = 192), so it cannot carry the noise through and never denoises well.
- ``small``: 2 layers, 4 heads x 64 = 256 dims (>= the 192 values of a token), ffn 512, text_dim 32: the smallest
  model that can learn to generate; the CPU recipes use it.
  Both default to ``in_channels`` 48 (``PixelCodec(patch=4)`` latents); set it to the codec's ``latent_channels``.
- ``wan2.1-1.3b``: the published Wan2.1-T2V-1.3B transformer (30 layers, 12 heads x 128 = 1536, ffn 8960, 16 latent
  channels, UMT5-XXL text_dim 4096).
- ``wan2.2-ti2v-5b``: the published Wan2.2-TI2V-5B transformer (30 layers, 24 heads x 128 = 3072, ffn 14336, 48
  latent channels of the Wan2.2 VAE, text_dim 4096).

The two real configs are far too big for CPU training; build them on ``torch.device("meta")`` to inspect them.

Example::

    model = build_transformer("tiny", in_channels=codec.latent_channels)
    model = build_transformer("/ckpt/Wan2.2-TI2V-5B-Diffusers", dtype=torch.bfloat16)
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from videoreason.compat import fp32_module_names
from videoreason.models.local import component_folder

if TYPE_CHECKING:
    from diffusers import WanTransformer3DModel

_COMMON: dict[str, Any] = {
    "patch_size": (1, 2, 2),
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "image_dim": None,
    "added_kv_proj_dim": None,
    "rope_max_seq_len": 1024,
}

NAMED_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {
        **_COMMON,
        "num_attention_heads": 2,
        "attention_head_dim": 16,  # rope splits it into t/h/w = 8/4/4 (all even, as rope needs)
        "in_channels": 48,
        "out_channels": 48,
        "text_dim": 32,
        "freq_dim": 32,
        "ffn_dim": 64,
        "num_layers": 2,
    },
    "small": {
        **_COMMON,
        "num_attention_heads": 4,
        "attention_head_dim": 64,  # rope t/h/w = 24/20/20
        "in_channels": 48,
        "out_channels": 48,
        "text_dim": 32,
        "freq_dim": 64,
        "ffn_dim": 512,
        "num_layers": 2,
    },
    "medium": {  # `small` twice as deep and with a wider FFN: the CPU recipes' model when reasoning needs depth
        **_COMMON,
        "num_attention_heads": 4,
        "attention_head_dim": 64,
        "in_channels": 48,
        "out_channels": 48,
        "text_dim": 32,
        "freq_dim": 64,
        "ffn_dim": 1024,
        "num_layers": 4,
    },
    "wan2.1-1.3b": {
        **_COMMON,
        "num_attention_heads": 12,
        "attention_head_dim": 128,
        "in_channels": 16,
        "out_channels": 16,
        "text_dim": 4096,
        "freq_dim": 256,
        "ffn_dim": 8960,
        "num_layers": 30,
    },
    "wan2.2-ti2v-5b": {
        **_COMMON,
        "num_attention_heads": 24,
        "attention_head_dim": 128,
        "in_channels": 48,
        "out_channels": 48,
        "text_dim": 4096,
        "freq_dim": 256,
        "ffn_dim": 14336,
        "num_layers": 30,
    },
}


PUBLISHED = ("wan2.1-1.3b", "wan2.2-ti2v-5b")
"""Named configs with the published models' shapes: built from a name they are random, so building warns."""


def transformer_config(name: str, in_channels: int | None = None, text_dim: int | None = None) -> dict[str, Any]:
    """The ``WanTransformer3DModel`` config dict of a named config.

    Args:
        name: One of ``NAMED_CONFIGS`` (``tiny``, ``small``, ``medium``, ``wan2.1-1.3b``, ``wan2.2-ti2v-5b``).
        in_channels: Latent channels (input and output); ``None`` keeps the config's own. The codec decides.
        text_dim: Width of the prompt embeddings; ``None`` keeps the config's own.

    Returns:
        A fresh dict of keyword arguments for ``WanTransformer3DModel``.

    Raises:
        KeyError: ``name`` is not a named config.
    """
    if name not in NAMED_CONFIGS:
        raise KeyError(f"unknown transformer config {name!r}; named configs: {sorted(NAMED_CONFIGS)}")
    config = copy.deepcopy(NAMED_CONFIGS[name])
    if in_channels is not None:
        config["in_channels"] = config["out_channels"] = int(in_channels)
    if text_dim is not None:
        config["text_dim"] = int(text_dim)
    return config


def cast_keep_fp32(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Cast floating parameters and buffers to ``dtype`` in place, keeping the model's ``_keep_in_fp32_modules``
    (rope, time embedder, scale/shift tables, norms) in float32, as diffusers' ``from_pretrained(torch_dtype=...)``
    does.

    Args:
        model: A diffusers model (``_keep_in_fp32_modules`` is read if present).
        dtype: Target dtype of everything else.

    Returns:
        ``model`` itself.
    """
    keep = fp32_module_names(model)
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if not tensor.is_floating_point():
            continue
        target = torch.float32 if keep.intersection(name.split(".")) else dtype
        if tensor.dtype != target and tensor.dtype != torch.float64:
            tensor.data = tensor.data.to(target)
    return model


def _skeleton(config: dict[str, Any], dtype: torch.dtype) -> WanTransformer3DModel:
    """``WanTransformer3DModel(**config)`` with its parameters on the meta device and its buffers real."""
    from accelerate import init_empty_weights
    from diffusers import WanTransformer3DModel

    with init_empty_weights(include_buffers=False):
        model = WanTransformer3DModel.from_config(config)
    return cast_keep_fp32(model, dtype)


def build_transformer(
    name_or_path: str,
    dtype: torch.dtype = torch.float32,
    in_channels: int | None = None,
    text_dim: int | None = None,
    init_seed: int = 0,
    empty: bool = False,
) -> WanTransformer3DModel:
    """Build a named config (seeded random init) or load a transformer from a local diffusers-format folder.

    Args:
        name_or_path: A named config (``tiny``, ``wan2.1-1.3b``, ``wan2.2-ti2v-5b``) or a local diffusers folder
            holding ``transformer/`` (a pipeline root) or the transformer folder itself (with ``config.json``).
        dtype: Parameter dtype.
        in_channels: Latent channels (input = output); must match the codec's ``latent_channels``. For a named
            config it overrides the default; for a folder it is checked against the loaded config.
        text_dim: Prompt-embedding width (named configs only; checked for a folder).
        init_seed: Seed of a named config's random weights, so the same name always gives the same base model (a
            LoRA trained on it can be reloaded onto it). The global RNG is left untouched.
        empty: Build the skeleton only: parameters on the meta device (no memory, nothing read), buffers real.
            Rank-0 loading (``videoreason.parallel``) fills it after sharding.

    Returns:
        The ``WanTransformer3DModel``, in ``dtype``, on the current default device.

    Raises:
        FileNotFoundError: ``name_or_path`` is neither a named config nor an existing folder.
        ValueError: A loaded model disagrees with ``in_channels`` / ``text_dim``.
    """
    from diffusers import WanTransformer3DModel

    if name_or_path in NAMED_CONFIGS:
        if name_or_path in PUBLISHED:
            warnings.warn(f"transformer {name_or_path!r} is the published architecture with RANDOM weights (nothing "
                          "is downloaded); to train the real model set `model.pretrained` (or `model.transformer`) "
                          f"to its local diffusers folder", UserWarning, stacklevel=2)
        config = transformer_config(name_or_path, in_channels=in_channels, text_dim=text_dim)
        if empty:
            return _skeleton(config, dtype)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            model = WanTransformer3DModel(**config)
        return cast_keep_fp32(model, dtype)

    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"transformer {name_or_path!r} is neither a named config {sorted(NAMED_CONFIGS)} nor an existing "
            f"local diffusers folder (path {str(path)!r} does not exist); nothing is downloaded"
        )
    folder = component_folder(path, "transformer", "Wan transformer")
    if empty:
        model = _skeleton(dict(WanTransformer3DModel.load_config(str(folder))), dtype)
    else:
        model = WanTransformer3DModel.from_pretrained(str(folder), torch_dtype=dtype, use_safetensors=True)
    for key, want in (("in_channels", in_channels), ("text_dim", text_dim)):
        if want is not None and model.config[key] != want:
            raise ValueError(f"transformer at {str(path)!r} has `{key}`={model.config[key]}, expected {want}")
    return model
