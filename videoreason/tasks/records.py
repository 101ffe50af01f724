"""JSON records: puzzles and solutions round-trip through JSON with errors that name the key."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from videoreason.checks import is_integer


class JsonRecord:
    """Mixin for dataclasses that round-trip through JSON (tuples and nested lists are restored by the type)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        """Build from :meth:`to_dict` output; unknown or missing keys raise a ``ValueError`` naming them."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {unknown}")
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"missing {cls.__name__} keys: {missing}")
        try:
            return cls(**{k: _tuplify(v) for k, v in data.items()})
        except (TypeError, ValueError) as err:
            raise ValueError(f"invalid {cls.__name__}: {err}") from err


@dataclass(frozen=True)
class PathSolution(JsonRecord):
    """A solution that is a walk of cells: ``[row, col]`` pairs of non-negative integers, first to last inclusive."""

    path: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        if not isinstance(self.path, (tuple, list)) or not self.path:
            raise ValueError(f"`path` must be a non-empty list of [row, col] cells, got {self.path!r}")
        for cell in self.path:
            if (not isinstance(cell, (tuple, list)) or len(cell) != 2 or not all(
                    is_integer(x) and x >= 0 for x in cell)):
                raise ValueError(f"`path` cells must be [row, col] pairs of non-negative integers, got {cell!r}")
        object.__setattr__(self, "path", tuple((int(r), int(c)) for r, c in self.path))


def _tuplify(value: Any) -> Any:
    """JSON lists back to (nested) tuples, the immutable form our records use."""
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value

