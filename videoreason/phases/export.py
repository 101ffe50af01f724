"""Export a trained phase module (adapter + config) and load it back, from an export folder or a checkpoint.

An export folder is self-describing and pickle-free::

    adapter/
      module.yaml                          class_path + init_args of the LightningModule (the run's resolved config)
      pytorch_lora_weights.safetensors     LoRA in diffusers' format (pipe.load_lora_weights(dir) reads it)
      lora_spec.json
      transformer/                         instead of the LoRA files for a full fine-tune (diffusers folder)

The folder is written next to its final place and swapped in with renames, so a crash leaves the previous export.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml

from videoreason.atomic import replace_folder

MODULE_CONFIG = "module.yaml"
_PRIVATE_KEYS = ("_class_path", "_instantiator")


def class_path(obj: Any) -> str:
    """``module.QualName`` of an object's class."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def module_config(module: L.LightningModule) -> dict[str, Any]:
    """``{"class_path", "init_args"}`` that rebuild ``module`` from its hyperparameters (as LightningCLI saves)."""
    hparams = dict(module.hparams)
    path = hparams.get("_class_path") or class_path(module)
    init_args = {k: (dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v)
                 for k, v in hparams.items() if k not in _PRIVATE_KEYS}
    return {"class_path": path, "init_args": init_args}


def make_hparams_portable(module: L.LightningModule) -> None:
    """Make ``module.hparams`` rebuild the module from a checkpoint without pickle: record ``_class_path`` (as
    LightningCLI does) and turn dataclass values into dicts. Call right after ``save_hyperparameters``."""
    module.hparams.setdefault("_class_path", class_path(module))
    for key, value in list(module.hparams.items()):
        if dataclasses.is_dataclass(value):
            module.hparams[key] = dataclasses.asdict(value)


def instantiate_module(config: dict[str, Any], where: str = "module config") -> L.LightningModule:
    """Build a LightningModule from ``{"class_path", "init_args"}`` with jsonargparse (types checked).

    Raises:
        ValueError: The config is malformed or the class is not a LightningModule (``where`` names the source).
    """
    from lightning.pytorch.cli import instantiate_module as lightning_instantiate

    if not isinstance(config, dict) or "class_path" not in config:
        raise ValueError(f"{where} must be a mapping with a `class_path`, got {type(config).__name__}")
    flat = {"_class_path": config["class_path"], **(config.get("init_args") or {})}
    try:
        return lightning_instantiate(L.LightningModule, flat)
    except Exception as err:  # jsonargparse raises several types; name the source either way
        raise ValueError(f"cannot build the module of {where}: {err}") from err


def export_module(
    module: L.LightningModule, out_dir: str | os.PathLike[str], state: dict[str, torch.Tensor] | None = None
) -> Path:
    """Write ``module``'s adapter (or full transformer) and config to ``out_dir``, replacing it atomically.

    Args:
        module: A phase module (``.transformer``).
        out_dir: Export folder.
        state: Full transformer tensors to write instead of the module's own: the trainable (LoRA) parameters, or
            the whole state dict of a full fine-tune, as ``videoreason.parallel.gather_state`` assembles them from
            a sharded model.
    """
    from safetensors.torch import save_file

    from videoreason.models.lora import save_lora

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-tmp-", dir=out.parent))
    try:
        transformer = module.transformer
        if getattr(transformer, "peft_config", None):
            save_lora(transformer, tmp, state_dict=state)
        elif state is not None:  # diffusers folder: config.json + one safetensors file
            transformer.save_config(tmp / "transformer")
            save_file({k: v.contiguous() for k, v in state.items()},
                      tmp / "transformer" / "diffusion_pytorch_model.safetensors", metadata={"format": "pt"})
        else:
            transformer.save_pretrained(tmp / "transformer", safe_serialization=True)
        (tmp / MODULE_CONFIG).write_text(yaml.safe_dump(module_config(module), sort_keys=False))
        replace_folder(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _load_export(path: Path) -> L.LightningModule:
    from safetensors.torch import load_file

    from videoreason.models.lora import LORA_WEIGHT_NAME, restore_lora

    config_file = path / MODULE_CONFIG
    if not config_file.is_file():
        raise FileNotFoundError(f"{path} is not an export folder: {config_file} is missing")
    module = instantiate_module(yaml.safe_load(config_file.read_text()), where=str(config_file))
    if (path / LORA_WEIGHT_NAME).is_file():
        restore_lora(module.transformer, path)
    else:
        weights = path / "transformer" / "diffusion_pytorch_model.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(f"export {path} holds neither {LORA_WEIGHT_NAME} nor {weights.name}")
        module.transformer.load_state_dict(load_file(weights), strict=True)
    return module


SHARDED_METADATA = "meta.pt"
"""Lightning's non-tensor part of a sharded (``FSDP2Strategy``) checkpoint folder, next to the per-rank shards."""


def _module_from_hparams(checkpoint: dict[str, Any], path: Path) -> L.LightningModule:
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    if "_class_path" not in hparams:
        raise ValueError(f"checkpoint {path} does not record its module class (`_class_path` in hyper_parameters)")
    init_args = {k: v for k, v in hparams.items() if k not in _PRIVATE_KEYS}
    return instantiate_module({"class_path": hparams["_class_path"], "init_args": init_args}, where=str(path))


def _load_checkpoint(path: Path) -> L.LightningModule:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    module = _module_from_hparams(checkpoint, path)
    module.load_state_dict(checkpoint["state_dict"], strict=True)
    return module


def _load_sharded_checkpoint(path: Path) -> L.LightningModule:
    """A module from a sharded checkpoint folder, in one process: the shards are resharded into full tensors."""
    import torch.distributed.checkpoint as dcp

    module = _module_from_hparams(torch.load(path / SHARDED_METADATA, map_location="cpu", weights_only=True), path)
    state = {"state_dict": module.state_dict()}
    dcp.load(state, checkpoint_id=str(path), no_dist=True)
    module.load_state_dict(state["state_dict"], strict=True)
    return module


def load_module(path: str | os.PathLike[str]) -> L.LightningModule:
    """A trained module, in eval mode on the CPU, from an export folder or a Lightning ``.ckpt`` file.

    Checkpoints are read with ``torch.load(weights_only=True)``, sharded checkpoint folders (written under
    ``FSDP2Strategy``) with ``torch.distributed.checkpoint``; export folders hold only YAML and safetensors.

    Raises:
        FileNotFoundError: ``path`` does not exist or is incomplete.
        ValueError: ``path`` is neither an export folder nor a ``.ckpt``, or its config does not build.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint or export at {path}")
    if path.is_dir() and (path / SHARDED_METADATA).is_file():
        module = _load_sharded_checkpoint(path)
    elif path.is_dir():
        module = _load_export(path)
    elif path.suffix == ".ckpt":
        module = _load_checkpoint(path)
    else:
        raise ValueError(f"{path} is neither an export folder nor a Lightning .ckpt file")
    return module.eval()
