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


PIPELINE_PARTS = {"transformer": "config.json", "vae": "config.json", "text_encoder": "config.json",
                  "tokenizer": None}
"""Sub-folders of a diffusers Wan pipeline folder that ``model.pretrained`` reads (and the file each must hold)."""


def pretrained_folder(path: str | Path) -> Path:
    """An absolute diffusers Wan pipeline folder (``transformer/``, ``vae/``, ``text_encoder/``, ``tokenizer/``).

    Raises:
        FileNotFoundError: The folder or one of its parts is missing; the message names ``model.pretrained`` and
            what is missing.
    """
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"`model.pretrained`: {str(path)!r} is not a folder (a local diffusers-format Wan "
                                "pipeline folder such as Wan2.2-TI2V-5B-Diffusers; nothing is downloaded)")
    missing = [f"{part}/{file or ''}" for part, file in PIPELINE_PARTS.items()
               if not (root / part / (file or "")).exists()]
    if missing:
        raise FileNotFoundError(f"`model.pretrained`: {str(root)!r} lacks {missing}: expected a diffusers Wan "
                                f"pipeline folder with {sorted(PIPELINE_PARTS)}")
    return root
