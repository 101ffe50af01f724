"""Files shipped inside the package: the run configs and reward presets under ``videoreason/configs/``.

Read through ``importlib.resources``, so an installed wheel (``pip install videoreason``) finds them as an editable
checkout does. ``videoreason fit --config configs/maze/sft_tiny.yaml`` names a packaged config when no such file
exists in the working directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

CONFIG_PREFIX = "configs/"


def config_root() -> Path:
    """The packaged ``configs/`` folder."""
    return Path(str(files("videoreason") / "configs"))


def packaged_config(name: str | Path) -> Path | None:
    """The packaged file ``name`` names (``configs/maze/sft_tiny.yaml`` or ``maze/sft_tiny.yaml``), ``None`` if
    there is none. A file of that name in the working directory is not looked at here."""
    rel = Path(name).as_posix().removeprefix("./").removeprefix(CONFIG_PREFIX)
    if Path(rel).is_absolute() or ".." in Path(rel).parts:
        return None
    path = config_root() / rel
    return path if path.is_file() else None


def resolve_config(name: str) -> str:
    """``name`` itself when it is an existing file (or not a path at all), else the packaged config it names."""
    if Path(name).is_file():
        return name
    packaged = packaged_config(name)
    return str(packaged) if packaged is not None else name
