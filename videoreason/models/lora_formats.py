"""A trained adapter in the formats the next tools load, converted from its diffusers LoRA file (``save_lora``).

- **diffusers** (what every export holds): ``pytorch_lora_weights.safetensors``, keys
  ``transformer.blocks.0.attn1.to_q.lora_A.weight``; ``pipe.load_lora_weights(folder)``.
- **ComfyUI** (``comfyui``): ``wan_lora_comfyui.safetensors``, the original Wan module names ComfyUI's Wan models
  use, prefixed ``diffusion_model.`` (``diffusion_model.blocks.0.self_attn.q.lora_A.weight``), with each module's
  ``.alpha``; copy it into ``ComfyUI/models/loras/`` and pick it in a ``LoraLoaderModelOnly`` node. diffusers
  reads this format too (``load_lora_weights(folder, weight_name=...)`` converts it back).
- **PEFT** (``peft``): ``peft/adapter_model.safetensors`` (``base_model.model.blocks.0.attn1.to_q.lora_A.weight``,
  no adapter name in the keys) and ``peft/adapter_config.json``, what ``PeftModel.save_pretrained`` writes;
  ``PeftModel.from_pretrained(transformer, "peft")`` on diffusers' ``WanTransformer3DModel``.

``videoreason export --ckpt RUN/adapter`` writes the ComfyUI and PEFT files beside the diffusers one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from videoreason.atomic import write_atomic
from videoreason.models.lora import LORA_SPEC_NAME, LORA_WEIGHT_NAME, LoraSpec

if TYPE_CHECKING:
    import torch

Format = Literal["comfyui", "peft"]
COMFYUI_WEIGHT_NAME = "wan_lora_comfyui.safetensors"
PEFT_FOLDER = "peft"
PEFT_WEIGHT_NAME = "adapter_model.safetensors"
PEFT_CONFIG_NAME = "adapter_config.json"

# diffusers' WanTransformer3DModel module -> the original Wan module (diffusers' convert_wan_to_diffusers.py, read
# backwards); the LoRA targets a Wan transformer can carry
WAN_NAMES: tuple[tuple[str, str], ...] = (
    (r"^blocks\.(\d+)\.attn1\.to_(q|k|v)$", r"blocks.\1.self_attn.\2"),
    (r"^blocks\.(\d+)\.attn1\.to_out\.0$", r"blocks.\1.self_attn.o"),
    (r"^blocks\.(\d+)\.attn2\.to_(q|k|v)$", r"blocks.\1.cross_attn.\2"),
    (r"^blocks\.(\d+)\.attn2\.to_out\.0$", r"blocks.\1.cross_attn.o"),
    (r"^blocks\.(\d+)\.attn2\.add_(k|v)_proj$", r"blocks.\1.cross_attn.\2_img"),
    (r"^blocks\.(\d+)\.ffn\.net\.0\.proj$", r"blocks.\1.ffn.0"),
    (r"^blocks\.(\d+)\.ffn\.net\.2$", r"blocks.\1.ffn.2"),
    (r"^condition_embedder\.time_proj$", "time_projection.1"),
    (r"^condition_embedder\.time_embedder\.linear_1$", "time_embedding.0"),
    (r"^condition_embedder\.time_embedder\.linear_2$", "time_embedding.2"),
    (r"^condition_embedder\.text_embedder\.linear_1$", "text_embedding.0"),
    (r"^condition_embedder\.text_embedder\.linear_2$", "text_embedding.2"),
    (r"^proj_out$", "head.head"),
)


def wan_name(module: str) -> str:
    """The original Wan name of a diffusers Wan transformer module (``blocks.0.attn1.to_q`` -> ``blocks.0.self_attn
    .q``); ``ValueError`` naming the module when ComfyUI has no counterpart for it."""
    for pattern, replacement in WAN_NAMES:
        if re.match(pattern, module):
            return re.sub(pattern, replacement, module)
    raise ValueError(f"LoRA module {module!r} has no ComfyUI (original Wan) name; ComfyUI-format LoRAs cover the "
                     "attention, FFN, embedding and head projections")


def read_adapter(folder: str | os.PathLike[str]) -> tuple[LoraSpec, dict[str, torch.Tensor]]:
    """The spec and tensors of an export's diffusers LoRA (keys by module, without ``transformer.``)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    weights, spec_file = folder / LORA_WEIGHT_NAME, folder / LORA_SPEC_NAME
    for path in (weights, spec_file):
        if not path.is_file():
            raise FileNotFoundError(f"{folder} holds no LoRA export (no {path.name}): give a run's adapter folder, "
                                    "e.g. runs/maze/sft/adapter")
    saved = json.loads(spec_file.read_text())
    spec = LoraSpec(**{k: v for k, v in saved.items() if k in LoraSpec.__dataclass_fields__})
    return spec, {k.removeprefix("transformer."): v for k, v in load_file(str(weights)).items()}


def comfyui_state(spec: LoraSpec, layers: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``layers`` by ComfyUI's names: ``diffusion_model.<wan name>.lora_A/B.weight`` and ``.alpha`` per module."""
    import torch

    out: dict[str, torch.Tensor] = {}
    for key, tensor in layers.items():
        module, _, rest = key.partition(".lora_")
        name = f"diffusion_model.{wan_name(module)}"
        out[f"{name}.lora_{rest}"] = tensor.contiguous()
        out[f"{name}.alpha"] = torch.tensor(float(spec.alpha))
    return out


def write_comfyui(folder: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Write the adapter of export ``folder`` as a ComfyUI Wan LoRA file (``out``, default beside it)."""
    from safetensors.torch import save

    spec, layers = read_adapter(folder)
    path = Path(out) if out is not None else Path(folder) / COMFYUI_WEIGHT_NAME
    metadata = {"format": "pt", "ss_network_dim": str(spec.rank), "ss_network_alpha": str(spec.alpha),
                "modelspec.architecture": "wan", "videoreason.source": LORA_WEIGHT_NAME}
    write_atomic(path, save(comfyui_state(spec, layers), metadata=metadata))
    return path


def write_peft(folder: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Write the adapter of export ``folder`` as a PEFT adapter folder (``out``, default ``folder/peft``)."""
    from peft import LoraConfig
    from safetensors.torch import save

    spec, layers = read_adapter(folder)
    path = Path(out) if out is not None else Path(folder) / PEFT_FOLDER
    path.mkdir(parents=True, exist_ok=True)
    config = LoraConfig(r=spec.rank, lora_alpha=float(spec.alpha), lora_dropout=float(spec.dropout),
                        target_modules=list(spec.target_modules)).to_dict()
    config["target_modules"] = sorted(config["target_modules"])
    state = {f"base_model.model.{k}": v.contiguous() for k, v in layers.items()}
    write_atomic(path / PEFT_WEIGHT_NAME, save(state, metadata={"format": "pt"}))
    write_atomic(path / PEFT_CONFIG_NAME, json.dumps(config, indent=2, sort_keys=True, default=str).encode())
    return path


WRITERS = {"comfyui": write_comfyui, "peft": write_peft}


def export(ckpt: Path, formats: Sequence[Format] = ("comfyui", "peft"), out: Path | None = None) -> list[Path]:
    """Write a trained adapter in the formats other tools load, beside its diffusers LoRA.

    Args:
        ckpt: A run's export folder (``RUN/adapter``) or a packaged model's name.
        formats: ``comfyui`` (a ComfyUI Wan LoRA file) and/or ``peft`` (a PEFT adapter folder).
        out: Folder to write them into (default: ``ckpt`` itself; ``runs/export/<name>`` for a packaged model).

    Returns:
        The written file (ComfyUI) and folder (PEFT) paths.
    """
    from videoreason.resources import PretrainedModel

    packaged = PretrainedModel.of(ckpt)
    folder = packaged.path if packaged is not None else Path(ckpt)
    unknown = sorted(set(formats) - set(WRITERS))
    if unknown:
        raise ValueError(f"unknown `formats` {unknown}; choose from {sorted(WRITERS)}")
    target = Path(out) if out is not None else Path("runs", "export", packaged.name) if packaged else folder
    names = {"comfyui": COMFYUI_WEIGHT_NAME, "peft": PEFT_FOLDER}
    written = [WRITERS[f](folder, target / names[f]) for f in dict.fromkeys(formats)]
    for path in written:
        print(f"wrote {path}")
    return written
