"""Components that record how they were built (``class_path`` + ``init_args``), so that exports and checkpoints
rebuild exactly the codec and prompt embedder a run trained with."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def absolute(path: str | Path | None) -> str | None:
    """``path`` made absolute (``~`` expanded), so a recorded config means the same from any working directory."""
    return None if path is None else str(Path(path).expanduser().resolve())


class RecordsConfig:
    """Mixin: ``init_args`` (set by ``__init__``, paths absolute, dtypes as ``"torch.bfloat16"``) and ``config()``."""

    init_args: dict[str, Any]

    def config(self) -> dict[str, Any]:
        """``{"class_path", "init_args"}`` that rebuild this object through jsonargparse / LightningCLI."""
        cls = type(self)
        return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": dict(self.init_args)}
