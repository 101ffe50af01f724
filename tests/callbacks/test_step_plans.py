"""Step-plan callbacks set the GRPO module's ``step_plan`` before every batch; their schedules resume exactly."""

from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import pytest
import torch

from videoreason.callbacks.step_plans import (
    AllSteps,
    EarlyStepFocus,
    RandomSubset,
    SlidingWindow,
    StepPlan,
    planned,
)


class PlanModule(L.LightningModule):
    """Stands in for the GRPO module: ``num_steps`` and a ``step_plan`` it records in every training step."""

    def __init__(self, num_steps: int = 8) -> None:
        super().__init__()
        self.num_steps = num_steps
        self.layer = torch.nn.Linear(2, 1)
        self.step_plan: list[str] | None = None
        self.seen: list[tuple[int, list[str]]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append((self.global_step, list(self.step_plan)))
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self):
        data = torch.utils.data.TensorDataset(torch.randn(8, 2))
        return torch.utils.data.DataLoader(data, batch_size=1)


def plan_at(callback: StepPlan, module, step: int) -> list[str]:
    callback.on_train_batch_start(SimpleNamespace(global_step=step), module, None, 0)
    return module.step_plan


def sde(plan: list[str]) -> list[int]:
    return [i for i, kind in enumerate(plan) if kind == "sde"]


def test_a_module_without_num_steps_or_step_plan_is_named():
    assert planned(PlanModule(12)).num_steps == 12
    with pytest.raises(TypeError, match="has no `step_plan`"):
        planned(SimpleNamespace(num_steps=5))
    with pytest.raises(TypeError, match="has no `num_steps`, `step_plan`"):
        planned(L.LightningModule())


def test_early_step_focus_and_all_steps():
    module = PlanModule(20)
    assert sde(plan_at(EarlyStepFocus(10), module, 0)) == list(range(10))
    assert sde(plan_at(EarlyStepFocus(10), module, 99)) == list(range(10))
    assert sde(plan_at(AllSteps(), module, 3)) == list(range(19))
    with pytest.raises(ValueError, match="`num_sde_steps`"):
        EarlyStepFocus(0)
    with pytest.raises(ValueError, match="`num_sde_steps`"):
        plan_at(EarlyStepFocus(20), module, 0)


def test_sliding_window_advances_and_wraps():
    module = PlanModule(6)  # window of 2: starts 0..3 (the last step is never SDE)
    callback = SlidingWindow(size=2, advance_every=2)
    starts = [sde(plan_at(callback, module, step))[0] for step in range(10)]
    assert starts == [0, 0, 1, 1, 2, 2, 3, 3, 0, 0]
    assert sde(plan_at(SlidingWindow(size=2, advance_every=1, start=3), module, 1)) == [0, 1]
    for name, kwargs in [
        ("size", {"size": 0, "advance_every": 1}),
        ("advance_every", {"size": 1, "advance_every": 0}),
        ("start", {"size": 1, "advance_every": 1, "start": -1}),
    ]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            SlidingWindow(**kwargs)
    with pytest.raises(ValueError, match="`start`"):
        plan_at(SlidingWindow(size=2, advance_every=1, start=4), module, 0)


def test_random_subset_is_seeded_by_step():
    module = PlanModule(10)
    a, b = RandomSubset(3, seed=7), RandomSubset(3, seed=7)
    plans = [plan_at(a, module, step) for step in range(20)]
    assert all(len(sde(p)) == 3 and p[-1] == "ode" for p in plans)
    assert len({tuple(p) for p in plans}) > 5  # redrawn every step
    assert [plan_at(b, module, step) for step in reversed(range(20))] == plans[::-1]  # a function of the step
    assert [plan_at(RandomSubset(3, seed=8), module, s) for s in range(20)] != plans


def test_state_round_trip_resumes_the_schedule():
    module = PlanModule(10)
    random, window = RandomSubset(3, seed=11), SlidingWindow(size=3, advance_every=2, start=2)
    expected = {"random": plan_at(random, module, 5), "window": plan_at(window, module, 5)}
    # resumed callbacks built from a config that changed: the checkpoint's state wins
    random2, window2 = RandomSubset(3, seed=0), SlidingWindow(size=3, advance_every=2, start=0)
    random2.load_state_dict(random.state_dict())
    window2.load_state_dict(window.state_dict())
    assert random2.seed == 11 and window2.start == 2
    assert random2.last_plan == expected["random"] and window2.last_plan == expected["window"]
    assert plan_at(random2, module, 5) == expected["random"]
    assert plan_at(window2, module, 5) == expected["window"]
    early = EarlyStepFocus(4)
    plan_at(early, module, 0)
    assert early.state_dict() == {"last_plan": ["sde"] * 4 + ["ode"] * 6}


def test_callback_sets_the_plan_in_a_fit(tmp_path):
    module, callback = PlanModule(8), RandomSubset(2, seed=3)
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        max_steps=4,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(module)
    assert [step for step, _ in module.seen] == [0, 1, 2, 3]
    for step, plan in module.seen:
        assert plan == callback.plan(step, 8)
    with pytest.raises(ValueError, match="`num_sde_steps`"):
        L.Trainer(
            max_steps=1,
            callbacks=[EarlyStepFocus(8)],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
        ).fit(PlanModule(8))
