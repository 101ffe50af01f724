"""Grouped, typed settings of the training phases: what LightningCLI shows and checks as
``model.init_args.<group>.<key>``.

``SFTModule`` takes ``optimization`` and ``loss`` (`Optimization`, `FlowMatchingLoss`); ``GRPOModule`` takes
``sampling``, ``loss`` and ``optimization`` (`Sampling`, `PolicyLoss`, `PolicyOptimization`). Each group checks its
own values and names the key it refuses. Configs and exports written before the grouping used flat keys
(``model.init_args.beta``): `group_flat_keys` moves those of a saved module into their groups, and
`flat_key_hint` turns the CLI's "unexpected key" into the key's new name (`new_key`).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from dataclasses import dataclass
from typing import Any, Literal

from videoreason.diffusion.solvers import TailSpec


def _at_least(group: str, **values: tuple[float, float]) -> None:
    for name, (value, low) in values.items():
        if isinstance(value, bool) or value < low:
            raise ValueError(f"`{group}.{name}` must be >= {low}, got {value!r}")


def _positive(group: str, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"`{group}.{name}` must be > 0, got {value!r}")


@functools.cache
def _choices(kind: type) -> dict[str, tuple[Any, ...]]:
    """The allowed values of each ``Literal``-typed field of a settings class (its type annotation says them)."""
    hints = typing.get_type_hints(kind)
    return {f.name: typing.get_args(hints[f.name]) for f in dataclasses.fields(kind)
            if typing.get_origin(hints[f.name]) is Literal}


def _check_choices(group: str, settings: Any) -> None:
    """Every ``Literal`` field of ``settings`` holds one of its values (jsonargparse checks the CLI, this Python)."""
    for name, choices in _choices(type(settings)).items():
        value = getattr(settings, name)
        if value not in choices:
            raise ValueError(f"`{group}.{name}` must be one of {list(choices)}, got {value!r}")


@dataclass(frozen=True)
class Optimization:
    """The optimizer of a phase.

    Attributes:
        learning_rate: Peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: Linear warm-up in optimizer steps, then constant.
        optimizer: ``adamw`` (torch), ``adamw8bit`` (bitsandbytes: 8-bit moments, a quarter of AdamW's optimizer
            memory) or ``paged_adamw8bit`` (the same with its state in CUDA unified memory, paged out to the host
            under memory pressure; plain ``adamw8bit`` on CPU).
    """

    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 0
    optimizer: Literal["adamw", "adamw8bit", "paged_adamw8bit"] = "adamw"

    def __post_init__(self) -> None:
        _positive("optimization", learning_rate=self.learning_rate)
        _at_least("optimization", weight_decay=(self.weight_decay, 0), warmup_steps=(self.warmup_steps, 0))
        _check_choices("optimization", self)


@dataclass(frozen=True)
class PolicyOptimization(Optimization):
    """The optimizer of GRPO: `Optimization` plus how a batch of rollouts is stepped on.

    Attributes:
        inner_epochs: Optimizer steps on each batch of rollouts (TRL's ``num_iterations``).
        micro_batch_size: Rollouts per backward pass (0: all rollouts of the step at once).
        max_grad_norm: Gradient-norm clip (0: off).
    """

    inner_epochs: int = 1
    micro_batch_size: int = 0
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _at_least("optimization", inner_epochs=(self.inner_epochs, 1), micro_batch_size=(self.micro_batch_size, 0),
                  max_grad_norm=(self.max_grad_norm, 0))


@dataclass(frozen=True)
class FlowMatchingLoss:
    """The SFT loss: which noise levels are trained and where the error counts.

    Attributes:
        sigma_sampling: Training sigma distribution, ``uniform`` or ``logit_normal``.
        shift: Sigma shift applied to training sigmas.
        change_weight: Extra weight on the latent cells that differ from the first frame, i.e. where the solution is
            drawn (``1 + change_weight`` there, 1 elsewhere, normalised). A maze path covers a few percent of a
            video, so the plain MSE is dominated by copying the board. 0 turns it off.
        frame_noise: ``shared``: one noise level per video (the usual); ``rising``: one per latent frame, drawn
            independently and sorted so that later frames are noisier (diffusion forcing with a causal order).
    """

    sigma_sampling: Literal["uniform", "logit_normal"] = "logit_normal"
    shift: float = 3.0
    change_weight: float = 0.0
    frame_noise: Literal["shared", "rising"] = "shared"

    def __post_init__(self) -> None:
        _check_choices("loss", self)
        _positive("loss", shift=self.shift)
        _at_least("loss", change_weight=(self.change_weight, 0))


@dataclass(frozen=True)
class Sampling:
    """How GRPO samples its groups of videos.

    Attributes:
        group_size: Rollouts per puzzle (G; TRL's ``num_generations``).
        num_steps: Denoising steps N of a rollout.
        shift: Sigma shift of the rollout schedule.
        noise_level: SDE noise scale ``a`` (its noise gives the log-probs GRPO trains on).
        sde_variant: ``flow_grpo`` or ``cps`` (coefficients-preserving).
        tail: Fast deterministic solver for the steps after the last SDE step (``None``: plain Euler steps).
        batch_size: Videos denoised at once (0: all); chunks are verified while the next one denoises.
        reward_workers: CPU threads verifying videos.
        offload: Keep the stored SDE-step latents in CPU memory (pinned on CUDA) from the end of each chunk until
            the policy update, which moves one micro-batch at a time back to the device: the device then holds
            ``micro_batch_size`` rollouts' step latents instead of ``2 x steps x G x B``.
    """

    group_size: int = 4
    num_steps: int = 10
    shift: float = 5.0
    noise_level: float = 0.7
    sde_variant: Literal["flow_grpo", "cps"] = "flow_grpo"
    tail: TailSpec | None = None
    batch_size: int = 0
    reward_workers: int = 2
    offload: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.tail, dict):  # a saved module's hparams keep it as a dict
            object.__setattr__(self, "tail", TailSpec(**self.tail))
        _at_least("sampling", group_size=(self.group_size, 2), num_steps=(self.num_steps, 2),
                  batch_size=(self.batch_size, 0), reward_workers=(self.reward_workers, 1))
        _positive("sampling", shift=self.shift, noise_level=self.noise_level)
        _check_choices("sampling", self)


@dataclass(frozen=True)
class PolicyLoss:
    """The clipped GRPO objective and its advantages.

    Attributes:
        clip_range: PPO clip epsilon (TRL's ``epsilon``; log-probs are means over latent elements, so small:
            1e-4 .. 1e-3).
        adv_clip: Clip advantages to ``[-adv_clip, adv_clip]`` (``None``: no clipping).
        beta: KL weight to the reference policy (0 skips the reference pass).
        scale_rewards: Divide advantages by the group's reward std (``group``, GRPO), the batch's (``batch``) or
            nothing (``none``, Dr. GRPO); TRL's ``scale_rewards`` (``videoreason.rewards.advantages``).
        per_reward_normalization: Normalise each ``WeightedSum`` component within its group before weighting
            (needs a ``WeightedSum`` reward).
    """

    clip_range: float = 1e-3
    adv_clip: float | None = 5.0
    beta: float = 0.0
    scale_rewards: Literal["group", "batch", "none"] = "group"
    per_reward_normalization: bool = False

    def __post_init__(self) -> None:
        _positive("loss", clip_range=self.clip_range)
        if self.adv_clip is not None:
            _positive("loss", adv_clip=self.adv_clip)
        _at_least("loss", beta=(self.beta, 0))
        _check_choices("loss", self)


SETTINGS = (Optimization, PolicyOptimization, FlowMatchingLoss, Sampling, PolicyLoss)

RENAMED = {("sampling", "rollout_batch_size"): "batch_size", ("sampling", "offload_rollouts"): "offload"}
"""Flat keys whose name changed inside their group: ``(group, old name) -> new name``."""


def settings_of(value: Any, kind: type) -> Any:
    """``value`` as the settings dataclass ``kind`` (a mapping is unpacked into it: saved hparams keep dicts)."""
    if isinstance(value, kind):
        return value
    if isinstance(value, dict):
        return kind(**value)
    raise TypeError(f"expected {kind.__name__} settings (or a mapping of its fields), got {type(value).__name__}")


def flat_keys(module_class: type) -> dict[str, tuple[str, str]]:
    """The flat keys a module class took before its settings were grouped: ``{old key: (group, field)}`` (a field
    named like one of the class's own arguments is no flat key: that name is the argument)."""
    parameters = inspect.signature(module_class.__init__).parameters
    keys: dict[str, tuple[str, str]] = {}
    for name, parameter in parameters.items():
        if type(parameter.default) not in SETTINGS:
            continue
        for field in dataclasses.fields(parameter.default):
            old = next((o for (g, o), new in RENAMED.items() if g == name and new == field.name), field.name)
            if old not in parameters:
                keys[old] = (name, field.name)
    return keys


def group_flat_keys(module_class: type, init_args: dict[str, Any]) -> dict[str, Any]:
    """``init_args`` of a module saved before the grouping, with each flat key moved into its group; grouped
    ``init_args`` come back unchanged.

    Raises:
        ValueError: A flat key and its grouped form are both given, with different values.
    """
    moves = flat_keys(module_class)
    grouped = {k: v for k, v in init_args.items() if k not in moves}
    for key, value in init_args.items():
        if key in moves:
            group, field = moves[key]
            current = grouped.get(group)
            current = dataclasses.asdict(current) if dataclasses.is_dataclass(current) else dict(current or {})
            if field in current and current[field] != value:
                raise ValueError(f"`{key}` ({value!r}) and `{group}.{field}` ({current[field]!r}) are both given: "
                                 f"`{key}` is the old name of `{group}.{field}`, keep one")
            grouped[group] = {**current, field: value}
    return grouped


def new_key(module_class: type, key: str) -> str | None:
    """Where a key of the old layout went: ``beta`` -> ``loss.beta``, ``sampling.rollout_batch_size`` ->
    ``sampling.batch_size`` (a flat name kept inside its group); ``None`` for a key that did not move."""
    group, _, name = key.rpartition(".")
    if group:
        renamed = RENAMED.get((group, name))
        return f"{group}.{renamed}" if renamed else None
    moved = flat_keys(module_class).get(key)
    return f"{moved[0]}.{moved[1]}" if moved else None


def flat_key_hint(module_class: type, key: str, prefix: str = "model.init_args") -> str | None:
    """``"`model.init_args.beta` is now `model.init_args.loss.beta`"`` for a key of ``module_class``'s old layout
    (`new_key`); ``None`` for a key that did not move."""
    new = new_key(module_class, key)
    return f"`{prefix}.{key}` is now `{prefix}.{new}`" if new else None
