"""Small value checks shared by settings, records and tasks."""

from __future__ import annotations

import numbers


def is_integer(value: object) -> bool:
    """Whether ``value`` is an integer (Python or numpy), not a ``bool`` (which Python counts as one)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
