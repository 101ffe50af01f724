"""Files shipped inside the package: the run configs and reward presets of the repository's ``configs/``, its
callback presets (``callbacks/``), and the trained tiny models under ``videoreason/pretrained/`` (an export folder
each, with a ``README.md`` model card whose YAML header records how it was trained).

``configs/`` and ``callbacks/`` are the single source; the package reaches them through the links
``videoreason/configs`` and ``videoreason/callback_presets``, which a wheel build turns into copies. Read through
``importlib.resources``, so an installed wheel (``pip install videoreason``) finds them as an editable checkout does.
``videoreason fit --config configs/maze/sft_tiny.yaml`` (or ``--trainer.callbacks+=callbacks/ema.yaml``) names a
packaged file when no such file exists in the working directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Any

CONFIG_PREFIX = "configs/"
CALLBACKS_PREFIX = "callbacks/"


def config_root() -> Path:
    """The packaged ``configs/`` folder."""
    return Path(str(files("videoreason") / "configs"))


def callback_root() -> Path:
    """The packaged ``callbacks/`` folder of callback presets."""
    return Path(str(files("videoreason") / "callback_presets"))


def packaged_config(name: str | Path) -> Path | None:
    """The packaged file ``name`` names (``configs/maze/sft_tiny.yaml``, ``maze/sft_tiny.yaml`` or
    ``callbacks/ema.yaml``), ``None`` if there is none. A file of that name in the working directory is not looked
    at here."""
    rel = Path(name).as_posix().removeprefix("./")
    root = callback_root() if rel.startswith(CALLBACKS_PREFIX) else config_root()
    rel = rel.removeprefix(CALLBACKS_PREFIX) if rel.startswith(CALLBACKS_PREFIX) else rel.removeprefix(CONFIG_PREFIX)
    if Path(rel).is_absolute() or ".." in Path(rel).parts:
        return None
    path = root / rel
    return path if path.is_file() else None


def resolve_config(name: str) -> str:
    """``name`` itself when it is an existing file (or not a path at all), else the packaged config it names."""
    if Path(name).is_file():
        return name
    packaged = packaged_config(name)
    return str(packaged) if packaged is not None else name


def pretrained_root() -> Path:
    """The packaged ``pretrained/`` folder."""
    return Path(str(files("videoreason") / "pretrained"))


@dataclass(frozen=True)
class PretrainedModel:
    """A packaged model by name: its export folder (``path``, what ``init_from`` and ``eval --ckpt`` take) and the
    model card's header (``card``: config, data seed, optimizer steps, samples seen, wall time, test metrics)."""

    name: str

    @classmethod
    def of(cls, path: str | Path) -> PretrainedModel | None:
        """The packaged model ``path`` names (a bare name that is no existing path, or its folder), else ``None``."""
        path = Path(path)
        if not path.exists():
            return cls(path.name) if len(path.parts) == 1 else None
        inside = path.resolve().parent == pretrained_root().resolve()
        return cls(path.name) if inside and (path / "module.yaml").is_file() else None

    @property
    def path(self) -> Path:
        path = pretrained_root() / self.name
        if not (path / "module.yaml").is_file():
            known = sorted(p.parent.name for p in pretrained_root().glob("*/module.yaml"))
            raise FileNotFoundError(f"no packaged model {self.name!r} in {pretrained_root()}; packaged: {known}")
        return path

    @cached_property
    def card(self) -> dict[str, Any]:
        import yaml

        text = (self.path / "README.md").read_text()
        if not text.startswith("---\n"):
            raise ValueError(f"{self.path / 'README.md'} has no YAML header (---) recording how the model was trained")
        return yaml.safe_load(text.split("---\n", 2)[1])

    @property
    def data_seed(self) -> int:
        """The ``data generate --seed`` of the dataset it was trained on."""
        return int(self.card["data_seed"])
