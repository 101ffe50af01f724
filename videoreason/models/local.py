"""Resolve local diffusers-format model folders (nothing is ever downloaded)."""

from __future__ import annotations

from pathlib import Path


def component_folder(path: str | Path, subfolder: str, what: str) -> Path:
    """The folder holding ``config.json`` of one pipeline component.

    Accepts a pipeline root (``path/<subfolder>/config.json``) or the component folder itself
    (``path/config.json``).

    Raises:
        FileNotFoundError: neither exists; the message names both places looked at.
    """
    root = Path(path).expanduser()
    for folder in (root / subfolder, root):
        if (folder / "config.json").is_file():
            return folder
    raise FileNotFoundError(
        f"no {what} at {str(path)!r}: expected {str(root / subfolder / 'config.json')!r} or "
        f"{str(root / 'config.json')!r}; nothing is downloaded"
    )
