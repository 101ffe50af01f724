"""8-bit frozen base weights (bitsandbytes LLM.int8) under LoRA: ``quantize_base: true`` in a phase's config.

``quantize_8bit(transformer)`` replaces every plain ``nn.Linear`` inside the transformer blocks (attention q/k/v/out
of ``attn1``/``attn2`` and the FFN: almost all of the weights) by a ``bnb.nn.Linear8bitLt`` with
``has_fp16_weights=False``: int8 weights with one scale per output row, input columns with outliers above
``threshold`` computed in 16 bit. The patch embedding, the time/text embedders and the output projection keep their
dtype. The model is marked ``is_loaded_in_8bit`` so peft puts its bnb LoRA layers on the quantized ones; call it
before ``add_lora``. The int8 weights are frozen, so this is for LoRA training only; ``merge_lora`` still works (peft
dequantizes, adds the update and quantizes again, with rounding).

The quantized layers hold 98% of the weights: Wan2.1-1.3B drops from 2.8 GB (bf16) to 1.45 GB, Wan2.2-TI2V-5B
from 10 GB to 5.1 GB.
Recent bitsandbytes releases (0.50 is tested) also run int8 layers on the CPU, slowly: that is how the CPU tests
exercise them.

bitsandbytes is imported inside the function: it prints warnings on import.
"""

from __future__ import annotations

import torch

QUANTIZED_SCOPE = "blocks"
"""The submodule whose linear layers are quantized (the ``WanTransformerBlock`` list)."""


def quantize_8bit(model: torch.nn.Module, threshold: float = 6.0) -> int:
    """Replace the plain ``nn.Linear`` layers of ``model.blocks`` by frozen LLM.int8 layers, in place.

    Each layer is quantized on its weight's device right away, so the memory drops before the model moves; moving
    the model afterwards (``.to("cuda")``) carries the int8 weights and their scales. Layers that are already
    quantized (or carry LoRA) are left alone.

    Args:
        model: A ``WanTransformer3DModel`` (anything with a ``blocks`` submodule) without LoRA adapters.
        threshold: LLM.int8 outlier threshold: input features with a magnitude above it are multiplied in 16 bit
            (0 disables the decomposition).

    Returns:
        Number of layers replaced.

    Raises:
        ValueError: ``model`` has no ``blocks`` or already carries LoRA adapters.
        RuntimeError: bitsandbytes cannot quantize on the weights' device (a release without CPU kernels).
    """
    import bitsandbytes as bnb

    scope = getattr(model, QUANTIZED_SCOPE, None)
    if not isinstance(scope, torch.nn.Module):
        raise ValueError(f"{type(model).__name__} has no `{QUANTIZED_SCOPE}` submodule to quantize")
    if getattr(model, "peft_config", None):
        raise ValueError("quantize the base before adding LoRA adapters (`add_lora` after `quantize_8bit`)")
    count = 0
    for parent in list(scope.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is not torch.nn.Linear:
                continue
            weight = child.weight.detach()
            layer = bnb.nn.Linear8bitLt(child.in_features, child.out_features, bias=child.bias is not None,
                                        has_fp16_weights=False, threshold=threshold, device="meta")
            layer.weight = bnb.nn.Int8Params(weight.to("cpu"), requires_grad=False, has_fp16_weights=False)
            if child.bias is not None:
                layer.bias = torch.nn.Parameter(child.bias.detach().clone(), requires_grad=False)
            try:
                layer = layer.to(weight.device)  # Int8Params quantizes on its first move off the CPU copy
            except Exception as err:  # bitsandbytes raises various types when a backend is missing
                raise RuntimeError(f"bitsandbytes {bnb.__version__} cannot quantize on {weight.device}; `model."
                                   f"quantize_base` needs CUDA or a bitsandbytes with CPU kernels ({err})") from err
            setattr(parent, name, layer.train(child.training))
            count += 1
    model.is_loaded_in_8bit = True  # peft dispatches its bnb LoRA layers on this flag
    return count


def linear_weight_bytes(model: torch.nn.Module) -> int:
    """Bytes held by the weights of the model's linear layers (plain or int8; LoRA factors included)."""
    return sum(m.weight.numel() * m.weight.element_size() for m in model.modules() if isinstance(m, torch.nn.Linear))
