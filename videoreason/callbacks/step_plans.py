"""Step-plan callbacks: before every training batch they set the GRPO module's ``step_plan`` (one ``"sde"``/``"ode"``
per denoising step, see ``videoreason.diffusion.plans``).

Contract with the module (``Planned``): it has the number of denoising steps ``num_steps`` and a settable
``step_plan: list[str]`` that its next rollout reads (the GRPO module checks it with
``videoreason.diffusion.plans.validate_plan``). Plans are pure functions of Lightning's ``trainer.global_step``
(optimizer steps) and the callback's settings, so a resumed run (which restores ``global_step``) continues the
schedule exactly; ``state_dict`` keeps the settings that define the sequence (the random seed, the window's start)
so a resume reproduces it even if the config changed, plus the last plan.

YAML::

    trainer:
      callbacks:
        - class_path: videoreason.callbacks.EarlyStepFocus
          init_args: {num_sde_steps: 10}
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol, runtime_checkable

import lightning as L
from lightning.pytorch.callbacks import Callback

from videoreason.diffusion.plans import all_sde_plan, early_plan, random_plan, validate_plan, window_plan


@runtime_checkable
class Planned(Protocol):
    """What a step-plan callback reads and sets on the module (``GRPOModule`` is one)."""

    num_steps: int
    step_plan: list[str]


def planned(pl_module: Any) -> Planned:
    """``pl_module``, checked to be `Planned` (a ``TypeError`` naming what it lacks otherwise)."""
    if not isinstance(pl_module, Planned):
        missing = [name for name in ("num_steps", "step_plan") if not hasattr(pl_module, name)]
        raise TypeError(f"step-plan callbacks need a module with `num_steps` and `step_plan` (a GRPO module); "
                        f"{type(pl_module).__name__} has no {', '.join(f'`{m}`' for m in missing)}")
    return pl_module


class StepPlan(Callback, ABC):
    """Base class: sets ``pl_module.step_plan = self.plan(trainer.global_step, num_steps)`` before every batch."""

    def __init__(self) -> None:
        self.last_plan: list[str] | None = None

    @abstractmethod
    def plan(self, step: int, num_steps: int) -> list[str]:
        """The plan at optimizer step ``step`` for ``num_steps`` denoising steps."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Check the settings against the module's ``num_steps`` before training starts."""
        if stage == "fit":
            num_steps = planned(pl_module).num_steps
            validate_plan(self.plan(0, num_steps), num_steps)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Set the module's ``step_plan`` for this batch."""
        module = planned(pl_module)
        module.step_plan = self.plan(trainer.global_step, module.num_steps)
        self.last_plan = list(module.step_plan)

    def state_dict(self) -> dict[str, Any]:
        return {"last_plan": self.last_plan}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.last_plan = state_dict.get("last_plan")


class EarlyStepFocus(StepPlan):
    """Early-Step Focus: the first ``K`` of ``N`` steps are SDE and trained, the remaining steps run as a plain ODE
    without gradients (where the published recipe saves ~40% of training latency at equal quality with 10 of 20).

    Args:
        num_sde_steps: ``K``, in ``[1, N - 1]``.
    """

    def __init__(self, num_sde_steps: int) -> None:
        super().__init__()
        if num_sde_steps < 1:
            raise ValueError(f"`num_sde_steps` must be >= 1, got {num_sde_steps}")
        self.num_sde_steps = int(num_sde_steps)

    def plan(self, step: int, num_steps: int) -> list[str]:
        return early_plan(num_steps, self.num_sde_steps)


class AllSteps(StepPlan):
    """Flow-GRPO: every step but the last is SDE and trained."""

    def plan(self, step: int, num_steps: int) -> list[str]:
        return all_sde_plan(num_steps)


class SlidingWindow(StepPlan):
    """MixGRPO: a window of ``size`` SDE steps whose start advances by one every ``advance_every`` optimizer steps
    and wraps to 0 after the last start that keeps the window off the last step (``N - 1 - size``).

    Args:
        size: Window length, in ``[1, N - 1]``.
        advance_every: Optimizer steps per window position (``>= 1``).
        start: Window start at optimizer step 0.
    """

    def __init__(self, size: int, advance_every: int, start: int = 0) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"`size` must be >= 1, got {size}")
        if advance_every < 1:
            raise ValueError(f"`advance_every` must be >= 1, got {advance_every}")
        if start < 0:
            raise ValueError(f"`start` must be >= 0, got {start}")
        self.size, self.advance_every, self.start = int(size), int(advance_every), int(start)

    def window_start(self, step: int, num_steps: int) -> int:
        """The window's first step at optimizer step ``step``."""
        num_starts = num_steps - self.size  # starts 0 .. N - 1 - size
        if num_starts < 1:
            raise ValueError(f"`size` {self.size} leaves no SDE window in {num_steps} steps (the last is never SDE)")
        if self.start >= num_starts:
            raise ValueError(f"`start` must be in [0, {num_starts - 1}] for {num_steps} steps, got {self.start}")
        return (self.start + step // self.advance_every) % num_starts

    def plan(self, step: int, num_steps: int) -> list[str]:
        return window_plan(num_steps, self.size, self.window_start(step, num_steps))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "start": self.start}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.start = int(state_dict.get("start", self.start))


class RandomSubset(StepPlan):
    """DanceGRPO: ``K`` SDE steps drawn at random among the first ``N - 1``, redrawn every optimizer step.

    The draw at optimizer step ``t`` is seeded with ``(seed, t)``, so runs and resumes are deterministic.

    Args:
        num_sde_steps: ``K``, in ``[1, N - 1]``.
        seed: Seed of the draws.
    """

    def __init__(self, num_sde_steps: int, seed: int = 0) -> None:
        super().__init__()
        if num_sde_steps < 1:
            raise ValueError(f"`num_sde_steps` must be >= 1, got {num_sde_steps}")
        if seed < 0:
            raise ValueError(f"`seed` must be >= 0, got {seed}")
        self.num_sde_steps, self.seed = int(num_sde_steps), int(seed)

    def plan(self, step: int, num_steps: int) -> list[str]:
        return random_plan(num_steps, self.num_sde_steps, rng=(self.seed, int(step)))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "seed": self.seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.seed = int(state_dict.get("seed", self.seed))
