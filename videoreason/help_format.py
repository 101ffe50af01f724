"""``PlainHelp``: the help formatter of every ``videoreason`` command, the LightningCLI ones included (its private
hooks: ``videoreason.compat.FORMATTER_HOOKS``)."""

from __future__ import annotations

import re
from typing import Any

from jsonargparse import DefaultHelpFormatter


class PlainHelp(DefaultHelpFormatter):
    """jsonargparse's help with the docstrings' reStructuredText literals (````x````) shown as plain ``'x'``."""

    def _expand_help(self, action: Any) -> str:
        return _plain(super()._expand_help(action))

    def _format_text(self, text: str) -> str:
        return super()._format_text(_plain(text))

    def start_section(self, heading: str | None) -> None:
        super().start_section(heading if heading is None else _plain(heading))


def _plain(text: str) -> str:
    return re.sub(r"``([^`]+)``", r"'\1'", text)
