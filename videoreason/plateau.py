"""The plateau model of an SFT run stopped by ``StopAtPlateau``: the checkpoint of its best validation, with raw or
EMA weights (``EMAWeightAveraging`` saves both), the choice made on validation puzzles, never on test ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from videoreason.callbacks.plateau import PLATEAU_FILE

CHECKPOINT_NAME = "step{step}.ckpt"  # callbacks/checkpoint_every_250.yaml's file name


def read_plateau(run_dir: Path) -> dict[str, Any]:
    """``RUN/plateau.json``, checked: the run stopped at a plateau (or ran out of steps) after validating."""
    path = Path(run_dir) / PLATEAU_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {PLATEAU_FILE} in {run_dir}: train with the StopAtPlateau callback "
                                "(--trainer.callbacks+=callbacks/plateau.yaml)")
    record = json.loads(path.read_text())
    if not record.get("validations"):
        raise ValueError(f"{path} records no validation")
    return record


def best_validation(record: dict[str, Any]) -> dict[str, float]:
    """The validation with the highest success rate (the latest of equals: more training, the same score): the
    plateau model's step."""
    return max(record["validations"], key=lambda v: (v["success"], v["step"]))


def checkpoint_at(run_dir: Path, step: int) -> Path:
    """The run's checkpoint of optimizer step ``step`` (``checkpoints/step<N>.ckpt``)."""
    path = Path(run_dir) / "checkpoints" / CHECKPOINT_NAME.format(step=step)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint of step {step} ({path}): keep one at every "
                                "validation (--trainer.callbacks+=callbacks/checkpoint_every_250.yaml, "
                                "val_check_interval 250)")
    return path


def raw_weights_checkpoint(checkpoint: Path, out: Path) -> Path | None:
    """Write ``checkpoint`` with its raw (not averaged) weights as its model to ``out``; ``None`` (nothing written)
    when it holds no EMA (``current_model_state``), so its model already is the raw one."""
    import torch

    from videoreason.atomic import atomic_file

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if "current_model_state" not in state:
        return None
    raw = {k: v for k, v in state.items() if k not in ("current_model_state", "averaging_state")}
    raw["state_dict"] = state["current_model_state"]
    with atomic_file(out) as handle:
        torch.save(raw, handle)
    return Path(out)
