"""Components that record how they were built (``class_path`` + ``init_args``), so that exports and checkpoints
rebuild exactly the codec and prompt embedder a run trained with."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any


def absolute(path: str | Path | None) -> str | None:
    """``path`` made absolute (``~`` expanded), so a recorded config means the same from any working directory."""
    return None if path is None else str(Path(path).expanduser().resolve())


class RecordsConfig:
    """Mixin: ``init_args`` (set by ``__init__``, paths absolute, dtypes as ``"torch.bfloat16"``) and ``config()``."""

    init_args: dict[str, Any]

    def config(self) -> dict[str, Any]:
        """``{"class_path", "init_args"}`` that rebuild this object through jsonargparse / LightningCLI.

        Raises:
            TypeError: The class does not record exactly its ``__init__`` arguments (a subclass that adds some
                must set ``init_args`` itself), so no config would rebuild it.
        """
        cls = type(self)
        wanted = [n for n, p in inspect.signature(cls.__init__).parameters.items()
                  if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        recorded = getattr(self, "init_args", None)
        if recorded is None or sorted(recorded) != sorted(wanted):
            raise TypeError(f"{cls.__qualname__} does not record its __init__ arguments {wanted} in `init_args` "
                            f"(it has {sorted(recorded or {})})")
        return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": dict(recorded)}


def recorded_config(obj: Any) -> dict[str, Any] | None:
    """``obj.config()``, or ``None`` for an object that cannot say how to rebuild it (a benchmark stand-in, a
    subclass that does not record its arguments): a module holding one can train but not be exported."""
    try:
        return obj.config()
    except (AttributeError, TypeError):
        return None
