"""Objects named by a dotted import path (``pkg.module.Name``), as configs and checkpoints name classes."""

from __future__ import annotations

import importlib
from typing import Any


def import_path(path: str) -> Any:
    """The object ``path`` names: attribute ``Name`` of module ``pkg.module``.

    Raises:
        ImportError: ``path`` is not dotted, its module cannot be imported, or the module has no such attribute.
    """
    module_name, _, name = str(path).rpartition(".")
    if not module_name or not name:
        raise ImportError(f"{path!r} is not a dotted import path (pkg.module.Name)")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, name)
    except AttributeError as err:
        raise ImportError(f"module {module_name!r} has no attribute {name!r}") from err
