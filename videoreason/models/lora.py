"""LoRA adapters on the Wan transformer through peft, saved in the diffusers LoRA format.

The adapter goes on the attention projections (self- and cross-attention q/k/v/out) and the FFN projections of every
block of diffusers' ``WanTransformer3DModel``. ``save_lora`` writes ``pytorch_lora_weights.safetensors`` with
``transformer.``-prefixed keys and the adapter config in the safetensors metadata, exactly what
``WanPipeline.save_lora_weights`` writes, so a diffusers user can ``pipe.load_lora_weights(dir)``.

Example::

    spec = LoraSpec(rank=32, alpha=32)
    n_trainable = add_lora(model, spec)          # base frozen, only lora_A / lora_B train
    ...                                          # train
    save_lora(model, "runs/sft/lora")            # -> pytorch_lora_weights.safetensors + lora_spec.json
    load_lora(fresh_model, "runs/sft/lora")      # same outputs as ``model`` (into an existing adapter: copied in)
    merge_lora(fresh_model)                      # fused into the base weights, no adapter left (GRPO reference)

peft/diffusers are imported lazily inside the functions so ``import videoreason.models`` stays light.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videoreason.atomic import respect_umask
from videoreason.checks import is_integer

if TYPE_CHECKING:
    import torch

LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
"""File name diffusers' ``load_lora_weights`` looks for in a directory."""

LORA_SPEC_NAME = "lora_spec.json"
"""The ``LoraSpec`` saved next to the weights (for humans and our own tools; diffusers reads the metadata)."""

DEFAULT_TARGET_MODULES: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2")
"""Attention q/k/v/out (``attn1`` and ``attn2``) and FFN projections of each ``WanTransformerBlock``."""


@dataclasses.dataclass(frozen=True)
class LoraSpec:
    """What LoRA to put on the transformer.

    Attributes:
        rank: LoRA rank ``r`` (>= 1).
        alpha: LoRA alpha; the update is scaled by ``alpha / rank``.
        dropout: Dropout on the LoRA input branch, in ``[0, 1)``.
        target_modules: Module-name suffixes (peft's matching: a module named ``n`` matches ``t`` when ``n == t`` or
            ``n`` ends with ``"." + t``). Every entry must match at least one ``nn.Linear`` of the model.
    """

    rank: int = 16
    alpha: float = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, str) or not isinstance(self.target_modules, Sequence):
            raise ValueError(f"LoraSpec `target_modules` must be a list of module names, got {self.target_modules!r}")
        object.__setattr__(self, "target_modules", tuple(str(t) for t in self.target_modules))
        if not is_integer(self.rank) or self.rank < 1:
            raise ValueError(f"LoraSpec `rank` must be an integer >= 1, got {self.rank!r}")
        if not float(self.alpha) > 0:
            raise ValueError(f"LoraSpec `alpha` must be > 0, got {self.alpha!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"LoraSpec `dropout` must be in [0, 1), got {self.dropout!r}")
        if not self.target_modules or any(not t for t in self.target_modules):
            raise ValueError(f"LoraSpec `target_modules` must be non-empty names, got {self.target_modules!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (``target_modules`` as a list)."""
        return {**dataclasses.asdict(self), "target_modules": list(self.target_modules)}


_METADATA_KEYS = (
    "r",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "rank_pattern",
    "alpha_pattern",
    "use_rslora",
    "use_dora",
    "bias",
)
"""LoraConfig fields stored in the file's metadata: enough to rebuild the adapter, and accepted by older peft
releases too (the full ``LoraConfig.to_dict()`` carries fields an older peft's ``LoraConfig`` rejects)."""


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """Names of the model's ``nn.Linear`` layers with block indices folded (``blocks.*.attn1.to_q``), sorted.

    Args:
        model: Any module.

    Returns:
        Unique names, for error messages and for choosing ``target_modules``.
    """
    import torch

    names = {
        re.sub(r"(^|\.)blocks\.\d+\.", r"\1blocks.*.", n)
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and ".lora_" not in n and not n.endswith(".base_layer")
    }
    return sorted(names)


def _check_targets(model: torch.nn.Module, targets: Sequence[str]) -> None:
    import torch

    # a layer another adapter already wraps is matched by its name, its Linear sitting at `<name>.base_layer`
    linear = [n.removesuffix(".base_layer") for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    missing = [t for t in targets if not any(_matches(n, t) for n in linear)]
    if missing:
        raise ValueError(
            f"LoraSpec `target_modules` {missing} match no linear module of {type(model).__name__}; "
            f"available linear modules: {linear_module_names(model)}"
        )


def _mark_trainable(model: torch.nn.Module, adapter_name: str, trainable: bool = True) -> int:
    """Freeze everything but adapter ``adapter_name`` (or freeze that too when ``trainable`` is False)."""
    pattern = re.compile(rf"\.lora_(A|B)\.{re.escape(adapter_name)}\.")
    count = 0
    for name, param in model.named_parameters():
        on = trainable and bool(pattern.search(name))
        param.requires_grad_(on)
        count += param.numel() if on else 0
    return count


def _require_adapter(model: torch.nn.Module, adapter_name: str) -> None:
    config = getattr(model, "peft_config", None) or {}
    if adapter_name not in config:
        raise ValueError(f"{type(model).__name__} has no LoRA adapter {adapter_name!r}; adapters: {sorted(config)}")


def add_lora(transformer: torch.nn.Module, spec: LoraSpec | None = None, adapter_name: str = "default") -> int:
    """Inject a fresh LoRA adapter (``lora_B`` = 0, so outputs are unchanged) and make only it trainable.

    Args:
        transformer: A diffusers model with ``PeftAdapterMixin`` (``WanTransformer3DModel``).
        spec: Rank, alpha, dropout and targets; ``None`` means ``LoraSpec()``.
        adapter_name: Name of the new adapter; becomes the active one.

    Returns:
        Number of trainable parameters (the new adapter's ``lora_A`` / ``lora_B``); everything else is frozen.

    Raises:
        ValueError: A target matches no linear module (the message lists the available ones), or the adapter name
            is taken.
    """
    from peft import LoraConfig

    spec = spec or LoraSpec()
    _check_targets(transformer, spec.target_modules)
    config = LoraConfig(
        r=spec.rank,
        lora_alpha=float(spec.alpha),
        lora_dropout=float(spec.dropout),
        target_modules=list(spec.target_modules),
        init_lora_weights=True,
    )
    transformer.add_adapter(config, adapter_name=adapter_name)
    return _mark_trainable(transformer, adapter_name)


def lora_spec_of(transformer: torch.nn.Module, adapter_name: str = "default") -> LoraSpec:
    """The ``LoraSpec`` of an existing adapter (from its peft config; targets sorted).

    Raises:
        ValueError: No such adapter.
    """
    _require_adapter(transformer, adapter_name)
    config = transformer.peft_config[adapter_name]
    targets = config.target_modules
    targets = (targets,) if isinstance(targets, str) else tuple(sorted(targets))
    return LoraSpec(
        rank=int(config.r), alpha=float(config.lora_alpha), dropout=float(config.lora_dropout), target_modules=targets
    )


def lora_layers(
    transformer: torch.nn.Module, adapter_name: str = "default", state_dict: dict[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """Adapter ``adapter_name``'s tensors by peft's names without the adapter (``blocks.0.attn1.to_q.lora_A.weight``),
    detached and contiguous; from ``state_dict`` (full tensors of a sharded model) instead of the model if given."""
    from peft.utils import get_peft_model_state_dict

    _require_adapter(transformer, adapter_name)
    layers = get_peft_model_state_dict(transformer, state_dict=state_dict, adapter_name=adapter_name)
    return {k: v.detach().contiguous() for k, v in layers.items()}


def save_lora(
    adapter: torch.nn.Module | tuple[LoraSpec, dict[str, torch.Tensor]],
    out_dir: str | os.PathLike[str],
    adapter_name: str = "default",
    state_dict: dict[str, torch.Tensor] | None = None,
) -> Path:
    """The LoRA writer: ``out_dir/pytorch_lora_weights.safetensors`` in the diffusers LoRA format (the peft config as
    its metadata) plus ``out_dir/lora_spec.json``.

    Each file is written into a temporary directory inside ``out_dir`` and moved into place with ``os.replace``, so
    a reader never sees a half-written file. Weights are saved as they are (no dtype change).

    Args:
        adapter: A model carrying adapter ``adapter_name``, or its spec and tensors by ``lora_layers``' names (what
            ``stack_lora`` returns).
        out_dir: Directory (created if needed).
        adapter_name: Which adapter of a model to save.
        state_dict: Full tensors by parameter name to save instead of the model's own (how a sharded model is
            exported: ``videoreason.parallel.gather_state``).

    Returns:
        Path of the written ``.safetensors`` file.

    Raises:
        ValueError: The model has no such adapter.
    """
    from diffusers.loaders import WanLoraLoaderMixin
    from peft import LoraConfig

    if isinstance(adapter, tuple):
        spec, layers = adapter
    else:
        spec, layers = lora_spec_of(adapter, adapter_name), lora_layers(adapter, adapter_name, state_dict)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = LoraConfig(r=spec.rank, lora_alpha=float(spec.alpha), lora_dropout=float(spec.dropout),
                        target_modules=list(spec.target_modules)).to_dict()
    metadata = {k: config[k] for k in _METADATA_KEYS if k in config}
    tmp = Path(tempfile.mkdtemp(prefix=".lora-tmp-", dir=out))
    try:
        WanLoraLoaderMixin.save_lora_weights(
            tmp,
            transformer_lora_layers=layers,
            weight_name=LORA_WEIGHT_NAME,
            transformer_lora_adapter_metadata=metadata,
        )
        (tmp / LORA_SPEC_NAME).write_text(json.dumps(spec.to_dict(), indent=2))
        respect_umask(tmp)
        os.replace(tmp / LORA_SPEC_NAME, out / LORA_SPEC_NAME)
        os.replace(tmp / LORA_WEIGHT_NAME, out / LORA_WEIGHT_NAME)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / LORA_WEIGHT_NAME


def stack_lora(
    first: tuple[LoraSpec, dict[str, torch.Tensor]], second: tuple[LoraSpec, dict[str, torch.Tensor]]
) -> tuple[LoraSpec, dict[str, torch.Tensor]]:
    """One LoRA whose update is exactly the sum of two adapters' (``lora_layers`` tensors with their specs).

    ``s1 B1 A1 + s2 B2 A2 = [s1 B1 | s2 B2] [A1; A2]`` with ``s = alpha / rank``: the ranks stack, ``A`` rows and
    ``B`` columns are concatenated, the scales fold into ``B`` and the result has ``alpha = rank`` (scale 1). A
    module only one adapter targets gets zeros for the other's part. Tensors come back float32, on the CPU.

    Returns:
        The spec (rank ``r1 + r2``, targets the union, no dropout) and the tensors.
    """
    import torch

    (spec1, layers1), (spec2, layers2) = first, second
    modules = sorted({k.rsplit(".lora_", 1)[0] for k in (*layers1, *layers2)})
    out: dict[str, torch.Tensor] = {}
    for module in modules:
        parts_a, parts_b = [], []
        for spec, layers in ((spec1, layers1), (spec2, layers2)):
            other = layers1 if layers is layers2 else layers2
            a, b = layers.get(f"{module}.lora_A.weight"), layers.get(f"{module}.lora_B.weight")
            if a is None:  # [r, in] and [out, r] zeros, shaped after the other adapter's tensors
                a = torch.zeros(spec.rank, other[f"{module}.lora_A.weight"].shape[1])
                b = torch.zeros(other[f"{module}.lora_B.weight"].shape[0], spec.rank)
            parts_a.append(a.detach().float().cpu())
            parts_b.append(b.detach().float().cpu() * (float(spec.alpha) / spec.rank))
        out[f"{module}.lora_A.weight"] = torch.cat(parts_a, dim=0).contiguous()  # [r1 + r2, in]
        out[f"{module}.lora_B.weight"] = torch.cat(parts_b, dim=1).contiguous()  # [out, r1 + r2]
    rank = spec1.rank + spec2.rank
    targets = tuple(sorted(set(spec1.target_modules) | set(spec2.target_modules)))
    return LoraSpec(rank=rank, alpha=rank, dropout=0.0, target_modules=targets), out


def _weights_file(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    file = path / LORA_WEIGHT_NAME if path.is_dir() or not path.suffix else path
    if file.suffix != ".safetensors":
        raise ValueError(f"LoRA weights are loaded only from .safetensors files, got {str(file)!r}")
    if not file.is_file():
        raise FileNotFoundError(f"LoRA weights file {str(file)!r} does not exist")
    return file


def load_lora(
    transformer: torch.nn.Module,
    path: str | os.PathLike[str],
    adapter_name: str = "default",
    trainable: bool | None = None,
) -> None:
    """The LoRA loader: a diffusers-format LoRA (ours, or any Wan LoRA diffusers reads) into ``transformer``.

    A new ``adapter_name`` is added the way ``WanImageToVideoPipeline.load_lora_weights`` adds it (rank and alpha
    from the file's metadata when present, else diffusers infers the rank and takes alpha = rank). An adapter the
    model already has (a module rebuilt from its config with the same ``LoraSpec``) gets the file's tensors copied
    in; every tensor must fit it.

    Args:
        transformer: A ``WanTransformer3DModel`` with the base weights the LoRA was trained on.
        path: A directory holding ``pytorch_lora_weights.safetensors``, or a ``.safetensors`` file.
        adapter_name: The adapter to load into.
        trainable: True: only this adapter trains afterwards (resume training); False: its parameters are frozen
            too (a fixed reference / inference adapter); None: False for a new adapter, an existing one keeps its
            trainability. Other parameters are frozen whenever it is set.

    Raises:
        FileNotFoundError: The weights file is missing (named in the message).
        ValueError: ``path`` is not a ``.safetensors`` file, or the weights do not fit the existing adapter (names
            the first mismatch).
    """
    file = _weights_file(path)
    if adapter_name in (getattr(transformer, "peft_config", None) or {}):
        _copy_into_adapter(transformer, file, adapter_name)
    else:
        from diffusers.loaders import WanLoraLoaderMixin

        state_dict, metadata = WanLoraLoaderMixin.lora_state_dict(
            str(file.parent),
            weight_name=file.name,
            use_safetensors=True,
            local_files_only=True,
            return_lora_metadata=True,
        )
        WanLoraLoaderMixin.load_lora_into_transformer(
            state_dict, transformer=transformer, adapter_name=adapter_name, metadata=metadata
        )
        trainable = bool(trainable)
    if trainable is not None:
        _mark_trainable(transformer, adapter_name, trainable=trainable)


def merge_lora(transformer: torch.nn.Module) -> torch.nn.Module:
    """Fuse the active LoRA adapter(s) into the base weights and remove all adapters.

    The result is a plain transformer whose outputs equal the adapted model's (up to rounding in the weights'
    dtype): the export format, and the GRPO reference policy "SFT LoRA merged into the base".

    Args:
        transformer: Model carrying at least one adapter. Adapters that are not active are dropped unmerged.

    Returns:
        ``transformer`` itself, with no LoRA modules and no ``peft_config``. Parameters keep their
        ``requires_grad`` (frozen after ``add_lora``); call ``requires_grad_(True)`` for a full fine-tune.

    Raises:
        ValueError: The model has no LoRA adapter.
    """
    if not getattr(transformer, "peft_config", None):
        raise ValueError(f"{type(transformer).__name__} has no LoRA adapter to merge")
    # peft merges the active adapters even while they are disabled; enable them so the state is consistent
    transformer.enable_adapters()
    transformer.fuse_lora(lora_scale=1.0)
    transformer.unload_lora()
    return transformer


def _copy_into_adapter(transformer: torch.nn.Module, file: Path, adapter_name: str) -> None:
    """Copy a LoRA file's tensors into the model's existing adapter ``adapter_name``; every saved tensor must land
    on a parameter of the same shape."""
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    saved = {k.removeprefix("transformer."): v for k, v in load_file(file).items()}
    expected = {n.replace(f".{adapter_name}.", "."): p for n, p in transformer.named_parameters()
                if f".{adapter_name}." in n and "lora_" in n}
    missing = sorted(set(expected) - set(saved))
    extra = sorted(set(saved) - set(expected))
    if missing or extra:
        raise ValueError(f"LoRA weights in {file} do not fit adapter {adapter_name!r}: "
                         f"missing {missing[:3]}, unexpected {extra[:3]}")
    for name, tensor in saved.items():
        if tensor.shape != expected[name].shape:
            raise ValueError(f"LoRA weight {name} in {file} has shape {tuple(tensor.shape)}, the adapter expects "
                             f"{tuple(expected[name].shape)} (different `lora.rank`?)")
    set_peft_model_state_dict(transformer, saved, adapter_name=adapter_name)
