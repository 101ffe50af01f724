"""Models: the Wan transformer (``transformer``), video codecs (``codec``) and prompt embedders (``text``)
and LoRA adapters in the diffusers format (``lora``).

Submodules are imported lazily so ``import videoreason.models`` stays cheap; diffusers and transformers load only
when a model is built.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_transformer": "transformer",
    "transformer_config": "transformer",
    "NAMED_CONFIGS": "transformer",
    "Codec": "codec",
    "PixelCodec": "codec",
    "PaletteCodec": "codec",
    "WanVAECodec": "codec",
    "TextEmbedder": "text",
    "HashTextEmbedder": "text",
    "UMT5Embedder": "text",
    "LoraSpec": "lora",
    "add_lora": "lora",
    "save_lora": "lora",
    "load_lora": "lora",
    "merge_lora": "lora",
    "quantize_8bit": "quantize",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
