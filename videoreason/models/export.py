"""Export a trained phase module (adapter + config) and load it back, from an export folder or a checkpoint.

An export folder rebuilds the module that was trained from itself alone, and is pickle-free::

    adapter/
      module.yaml                          class_path + init_args of the LightningModule: the transformer's source
                                           (a named config or an absolute local folder), codec and prompt embedder
                                           (class_path + init_args), the LoRA spec; never `init_from`
      pytorch_lora_weights.safetensors     LoRA in diffusers' format, relative to the stock base named in
                                           module.yaml: pipe.load_lora_weights(dir) on that base is this model
      lora_spec.json
      transformer/                         only when the base itself changed (a full fine-tune, or GRPO started from
                                           one): the diffusers folder of the base; `transformer: transformer`

A GRPO run that started from an SFT LoRA (merged into its base) exports one LoRA: the SFT and GRPO adapters with
their ranks stacked (``stack_lora``), so the file is relative to the stock base. The folder is written next to its
final place and swapped in with renames, so a crash leaves the previous export.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import lightning as L
import torch
import yaml

from videoreason.atomic import replace_folder
from videoreason.compat import CLI_PRIVATE_KEYS, forget_given_hyperparameters
from videoreason.imports import import_path
from videoreason.parallel import builds_skeleton
from videoreason.resources import PretrainedModel

if TYPE_CHECKING:
    from videoreason.models.lora import LoraSpec

MODULE_CONFIG = "module.yaml"


def class_path(obj: Any) -> str:
    """``module.QualName`` of an object's class."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def module_config(module: L.LightningModule) -> dict[str, Any]:
    """``{"class_path", "init_args"}`` that rebuild ``module`` from its hyperparameters (as LightningCLI saves)."""
    hparams = dict(module.hparams)
    path = hparams.get("_class_path") or class_path(module)
    init_args = {k: (dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v)
                 for k, v in hparams.items() if k not in CLI_PRIVATE_KEYS}
    return {"class_path": path, "init_args": init_args}


RECORDED_PARTS = ("transformer", "codec", "text_embedder")
"""The init arguments a phase module records as what it built (``None``: built from an object that cannot say)."""


def check_recorded(init_args: dict[str, Any], where: str, skip: tuple[str, ...] = ()) -> None:
    """Raise ``ValueError`` when a part of the module was recorded as ``None``: rebuilding would silently give the
    default part instead of the trained one."""
    missing = [k for k in RECORDED_PARTS if k in init_args and init_args[k] is None and k not in skip]
    if missing:
        raise ValueError(f"{where}: the module's {missing} were given as objects that do not record how they were "
                         "built (no `init_args`), so it cannot be rebuilt; give them as config (a name, a path, a "
                         "class_path + init_args)")


def make_hparams_portable(module: L.LightningModule) -> None:
    """Make ``module.hparams`` rebuild the module from a checkpoint without pickle: record ``_class_path`` (as
    LightningCLI does) and turn dataclass values into dicts. Call right after ``save_hyperparameters``."""
    module.hparams.setdefault("_class_path", class_path(module))
    for key, value in list(module.hparams.items()):
        if dataclasses.is_dataclass(value):
            module.hparams[key] = dataclasses.asdict(value)


def instantiate_module(config: dict[str, Any], where: str = "module config",
                       overrides: dict[str, Any] | None = None) -> L.LightningModule:
    """Build a LightningModule from ``{"class_path", "init_args"}`` with jsonargparse (types checked).

    Args:
        config: The module config.
        where: Its source, for error messages.
        overrides: Init arguments to set where the class takes them (others are ignored).

    Raises:
        ValueError: The config is malformed or the class is not a LightningModule (``where`` names the source).
    """
    import contextvars
    import inspect

    from lightning.pytorch.cli import instantiate_module as lightning_instantiate

    if not isinstance(config, dict) or "class_path" not in config:
        raise ValueError(f"{where} must be a mapping with a `class_path`, got {type(config).__name__}")
    try:
        module_class = import_path(config["class_path"])
        accepted = inspect.signature(module_class).parameters
    except (ImportError, ValueError, TypeError) as err:
        raise ValueError(f"cannot build the module of {where}: {err}") from err
    init_args = dict(config.get("init_args") or {})
    if hasattr(module_class, "upgrade_init_args"):  # a module saved by an older version (flat keys) still loads
        init_args = module_class.upgrade_init_args(init_args)
    flat = {"_class_path": config["class_path"], **init_args}
    flat.update({k: v for k, v in (overrides or {}).items() if k in accepted})

    def build() -> L.LightningModule:
        forget_given_hyperparameters()  # else, inside a module LightningCLI builds, it saves the outer one's
        return lightning_instantiate(L.LightningModule, flat)

    try:
        return contextvars.copy_context().run(build)  # the reset stays in the copy; our own context is kept
    except Exception as err:  # jsonargparse raises several types; name the source either way
        raise ValueError(f"cannot build the module of {where}: {err}") from err


EXPORTED_TRANSFORMER = "transformer"
"""Sub-folder of an export holding the base transformer when it is not a stock model; ``module.yaml`` names it
relative to the export folder."""


def base_state(transformer: torch.nn.Module, state: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The base transformer's tensors under diffusers' names: LoRA tensors dropped, peft's ``.base_layer`` unwrapped.

    Args:
        transformer: The transformer (with or without adapters).
        state: Its full state dict (``gather_state`` of a sharded model) instead of its own.
    """
    state = transformer.state_dict() if state is None else state
    return {k.replace(".base_layer.", "."): v.detach().contiguous() for k, v in state.items() if ".lora_" not in k}


@runtime_checkable
class Exportable(Protocol):
    """What an export reads and a load sets on a phase module (``VideoModule`` is one): its transformer, the adapter
    it started from (stacked into the exported LoRA) and whether its base differs from the stock model."""

    transformer: torch.nn.Module
    init_lora: tuple[LoraSpec, dict[str, torch.Tensor]] | None
    base_changed: bool


def exportable(module: Any) -> Exportable:
    """``module``, checked to be `Exportable` (a ``TypeError`` naming what it lacks otherwise)."""
    if not isinstance(module, Exportable):
        missing = [n for n in ("transformer", "init_lora", "base_changed") if not hasattr(module, n)]
        raise TypeError(f"cannot export a {type(module).__name__}: it has no {', '.join(f'`{m}`' for m in missing)}")
    return module


def export_module(
    module: L.LightningModule, out_dir: str | os.PathLike[str], state: dict[str, torch.Tensor] | None = None
) -> Path:
    """Write ``module``'s adapter (and its base transformer where that is not a stock model) and config to
    ``out_dir``, replacing it atomically (see the module docstring for the layout).

    Args:
        module: A phase module (`Exportable`).
        out_dir: Export folder.
        state: Full transformer tensors to write instead of the module's own, as
            ``videoreason.parallel.gather_state`` assembles them from a sharded model: the trainable (LoRA) ones, or
            all of them when the base is written too (``export_writes_base``).
    """
    from safetensors.torch import save_file

    from videoreason.models.lora import lora_layers, lora_spec_of, save_lora, stack_lora

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-tmp-", dir=out.parent))
    try:
        transformer = exportable(module).transformer
        config = module_config(module)
        init_args = config["init_args"]
        notes = [f"rebuilds the trained {type(module).__name__}: videoreason eval --ckpt <this folder>"]
        if "init_from" in init_args:
            if init_args["init_from"] is not None:
                notes.append(f"trained from {init_args['init_from']} (not read when this folder is loaded)")
            init_args["init_from"] = None
        writes_base = export_writes_base(module)
        check_recorded(init_args, f"cannot export to {out}", skip=("transformer",) if writes_base else ())
        if writes_base:
            if module.hparams.get("quantize_base"):
                raise ValueError("cannot export an int8 (`model.quantize_base`) base that differs from the stock "
                                 "model; train with `model.quantize_base: false`")
            folder = tmp / EXPORTED_TRANSFORMER
            transformer.save_config(folder)
            save_file(base_state(transformer, state), folder / "diffusion_pytorch_model.safetensors",
                      metadata={"format": "pt"})
            init_args["transformer"] = EXPORTED_TRANSFORMER
            notes.append(f"the base transformer is {EXPORTED_TRANSFORMER}/ (it differs from any stock model)")
        if getattr(transformer, "peft_config", None):
            spec, layers = lora_spec_of(transformer), lora_layers(transformer, state_dict=state)
            if module.init_lora is not None and not module.base_changed:
                first = module.init_lora
                spec, layers = stack_lora(first, (spec, layers))
                notes.append(f"LoRA = the start's rank-{first[0].rank} adapter stacked with the trained one: rank "
                             f"{spec.rank}, relative to the stock base `transformer`")
            save_lora((spec, layers), tmp)
            init_args["lora"] = spec.to_dict()
        header = "".join(f"# {line}\n" for line in notes)
        (tmp / MODULE_CONFIG).write_text(header + yaml.safe_dump(config, sort_keys=False))
        replace_folder(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def export_writes_base(module: L.LightningModule) -> bool:
    """Whether an export of ``module`` writes its base transformer: a full fine-tune, or a base that was changed
    before this run's adapter (``base_changed``). Then a sharded model gathers all tensors, not just the LoRA."""
    return not getattr(exportable(module).transformer, "peft_config", None) or module.base_changed


def _load_export(path: Path, overrides: dict[str, Any]) -> L.LightningModule:
    from videoreason.models.lora import LORA_WEIGHT_NAME, load_lora

    config_file = path / MODULE_CONFIG
    if not config_file.is_file():
        raise FileNotFoundError(f"{path} is not an export folder: {config_file} is missing")
    config = yaml.safe_load(config_file.read_text())
    init_args = config.get("init_args") if isinstance(config, dict) else None
    own_base = isinstance(init_args, dict) and init_args.get("transformer") == EXPORTED_TRANSFORMER
    if own_base:  # its base lives in this folder, not in a stock model
        folder = path / EXPORTED_TRANSFORMER
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"export {path} names its own base transformer, but {folder}/config.json is "
                                    "missing")
        init_args["transformer"] = str(folder.resolve())
    module = instantiate_module(config, where=str(config_file), overrides=overrides)
    module.base_changed = module.base_changed or own_base
    if builds_skeleton():
        return module
    old_full = path / EXPORTED_TRANSFORMER / "diffusion_pytorch_model.safetensors"
    if (path / LORA_WEIGHT_NAME).is_file():
        load_lora(module.transformer, path)  # into the adapter the module built: its trainability kept
    elif getattr(module.transformer, "peft_config", None):
        raise FileNotFoundError(f"export {path}: module.yaml has a LoRA adapter but {LORA_WEIGHT_NAME} is missing")
    elif not own_base and old_full.is_file():  # a full fine-tune exported before module.yaml named its base
        from safetensors.torch import load_file

        module.transformer.load_state_dict(load_file(old_full), strict=True)
        module.base_changed = True
    return module


SHARDED_METADATA = "meta.pt"
"""Lightning's non-tensor part of a sharded (``FSDP2Strategy``) checkpoint folder, next to the per-rank shards."""


def _module_from_hparams(checkpoint: dict[str, Any], path: Path, overrides: dict[str, Any]) -> L.LightningModule:
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    if "_class_path" not in hparams:
        raise ValueError(f"checkpoint {path} does not record its module class (`_class_path` in hyper_parameters)")
    init_args = {k: v for k, v in hparams.items() if k not in CLI_PRIVATE_KEYS}
    check_recorded(init_args, f"checkpoint {path}")
    # the state dict holds the start's weights (merged into the base): `init_from` is not read again
    started = init_args.get("init_from") is not None
    if started:
        init_args["init_from"] = None
    module = instantiate_module({"class_path": hparams["_class_path"], "init_args": init_args}, where=str(path),
                                overrides=overrides)
    module.base_changed = module.base_changed or started
    return module


def _load_checkpoint(path: Path, overrides: dict[str, Any]) -> L.LightningModule:
    skeleton = builds_skeleton()
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=skeleton)  # skeleton: nothing read
    module = _module_from_hparams(checkpoint, path, overrides)
    if not skeleton:
        module.load_state_dict(checkpoint["state_dict"], strict=True)
    return module


def _load_sharded_checkpoint(path: Path, overrides: dict[str, Any]) -> L.LightningModule:
    """A module from a sharded checkpoint folder, in one process: the shards are resharded into full tensors."""
    import torch.distributed.checkpoint as dcp

    module = _module_from_hparams(torch.load(path / SHARDED_METADATA, map_location="cpu", weights_only=True), path,
                                  overrides)
    if builds_skeleton():
        return module
    state = {"state_dict": module.state_dict()}
    dcp.load(state, checkpoint_id=str(path), no_dist=True)
    module.load_state_dict(state["state_dict"], strict=True)
    return module


def load_module(path: str | os.PathLike[str], base_dtype: str | None = None) -> L.LightningModule:
    """A trained module, in eval mode on the CPU, from an export folder or a Lightning ``.ckpt`` file.

    Checkpoints are read with ``torch.load(weights_only=True)``, sharded checkpoint folders (written under
    ``FSDP2Strategy``) with ``torch.distributed.checkpoint``; export folders hold only YAML and safetensors. On a
    rank > 0 under rank-0 loading only the module's skeleton is built (``videoreason.parallel.builds_skeleton``).

    Args:
        path: Export folder, ``.ckpt`` file or sharded checkpoint folder, or the name of a packaged model
            (``videoreason.resources.PretrainedModel``, e.g. ``maze_fill_steps``) where no such path exists.
        base_dtype: Override the recorded ``model.base_dtype`` (``float32`` for exact evaluation on a CUDA host,
            where ``auto`` would round the base to bf16).

    Raises:
        FileNotFoundError: ``path`` does not exist or is incomplete.
        ValueError: ``path`` is neither an export folder nor a ``.ckpt``, or its config does not build.
    """
    path, packaged = Path(path), PretrainedModel.of(path)
    if not path.exists():
        if packaged is None:
            raise FileNotFoundError(f"no checkpoint or export at {path}")
        try:
            path = packaged.path
        except FileNotFoundError as err:
            raise FileNotFoundError(f"no checkpoint or export at {path}, nor a {str(err).removeprefix('no ')}"
                                    ) from None
    overrides = {"base_dtype": base_dtype} if base_dtype is not None else {}
    if path.is_dir() and (path / SHARDED_METADATA).is_file():
        module = _load_sharded_checkpoint(path, overrides)
    elif path.is_dir():
        module = _load_export(path, overrides)
    elif path.suffix == ".ckpt":
        module = _load_checkpoint(path, overrides)
    else:
        raise ValueError(f"{path} is neither an export folder nor a Lightning .ckpt file")
    return module.eval()
