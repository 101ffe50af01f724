"""Reward presets: the YAML files under ``configs/rewards/`` (shipped in the package, ``class_path``/``init_args``),
loaded in Python the way LightningCLI loads them for ``--model.init_args.reward``.

    reward = load_reward("maze_dense")              # configs/rewards/maze_dense.yaml
    reward = load_reward("my_rewards/custom.yaml")  # any file
"""

from __future__ import annotations

from pathlib import Path

from videoreason.resources import config_root
from videoreason.rewards.base import Reward

PRESETS = config_root() / "rewards"


def preset_names() -> list[str]:
    """Names of the shipped presets (file stems under ``configs/rewards/``)."""
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def load_reward(name_or_path: str | Path) -> Reward:
    """Instantiate a reward from a preset name or a YAML file.

    Raises:
        FileNotFoundError: Neither a file nor a shipped preset; the message lists the presets.
    """
    from jsonargparse import ArgumentParser

    path = Path(name_or_path)
    if not path.is_file():
        path = PRESETS / f"{name_or_path}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no reward file or preset {str(name_or_path)!r}; presets: {preset_names()}")
    parser = ArgumentParser()
    parser.add_argument("--reward", type=Reward, sub_configs=True)  # as LightningCLI adds a typed init argument
    return parser.instantiate(parser.parse_args(["--reward", str(path)])).reward
