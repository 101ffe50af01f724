"""The ``videoreason`` command.

``fit`` / ``validate`` / ``test`` go to LightningCLI (``videoreason fit --config configs/maze/sft_tiny.yaml``); every
other command is generated from a typed, documented function (``COMMANDS``): its parameters are the flags
(``--batch_size 32``, booleans as ``--reuse true``), its docstring the ``--help``, as LightningCLI does for classes.
A command's function is imported only when that command runs, so ``videoreason --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from videoreason.help_format import PlainHelp

TRAINER_COMMANDS = ("fit", "validate", "test")


@dataclass(frozen=True)
class Command:
    """A command: ``function`` (``module:name``) gives its flags and help and runs it; ``show`` (``module:name``,
    optional) prints what it returned; ``positional``: its required parameters are positional arguments."""

    function: str
    summary: str
    show: str | None = None
    positional: bool = False


COMMANDS: dict[tuple[str, ...], Command] = {
    ("data", "generate"): Command("videoreason.commands:generate",
                                  "render planner solutions of one task into a dataset folder"),
    ("data", "import"): Command("videoreason.commands:import_levels",
                                "read VR-Bench's levels (its generator's state files) into a dataset folder"),
    ("data", "verify"): Command("videoreason.commands:verify",
                                "re-parse every video of a dataset and print the P/R/F1/SR/EM table", positional=True),
    ("eval",): Command("videoreason.eval.evaluate:evaluate", "generate with a checkpoint (or take another model's "
                       "videos) and score a split", show="videoreason.commands:show_evaluation"),
    ("export",): Command("videoreason.models.lora_formats:export",
                         "write a trained adapter as a ComfyUI Wan LoRA and a PEFT adapter, beside the diffusers one"),
    ("recipe",): Command("videoreason.recipe:recipe",
                         "data -> SFT -> GRPO -> eval of a task's tiny recipe, with confidence intervals"),
}


def resolve(path: str) -> Callable[..., Any]:
    """The object named by ``module:name``."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def command_parser(words: tuple[str, ...], command: Command):
    """The jsonargparse parser of one command, generated from its function."""
    from jsonargparse import ArgumentParser

    function = resolve(command.function)
    parser = ArgumentParser(prog="videoreason " + " ".join(words), description=command.summary,
                            formatter_class=PlainHelp)
    parser.add_function_arguments(function, as_positional=command.positional)
    return parser


def run_command(words: tuple[str, ...], argv: Sequence[str]) -> Any:
    """Parse ``argv`` into the arguments of the command ``words``, run it and show its result."""
    command = COMMANDS[words]
    parser = command_parser(words, command)
    config = parser.parse_args(list(argv)).as_dict()
    config.pop("config", None)
    result = resolve(command.function)(**config)
    if command.show is not None:
        resolve(command.show)(result)
    return result


def overview() -> argparse.ArgumentParser:
    """The top-level parser: it lists the commands (and errors on an unknown one); each command parses itself."""
    parser = argparse.ArgumentParser(prog="videoreason", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in TRAINER_COMMANDS:
        sub.add_parser(name, help=f"LightningCLI `{name}` (see `videoreason {name} --help`)")
    groups: dict[str, Any] = {}
    for words, command in COMMANDS.items():
        if len(words) == 1:
            sub.add_parser(words[0], help=command.summary)
            continue
        if words[0] not in groups:
            groups[words[0]] = sub.add_parser(words[0], help=f"{words[0]} commands").add_subparsers(
                dest="action", required=True)
        groups[words[0]].add_parser(words[1], help=command.summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``videoreason`` console script."""
    from videoreason.quiet import silence_unactionable_output

    argv = list(sys.argv[1:] if argv is None else argv)
    silence_unactionable_output()
    if argv and argv[0] in TRAINER_COMMANDS:
        from videoreason.trainer_cli import run_lightning_cli

        return _reporting_errors(run_lightning_cli, argv)
    for words in COMMANDS:
        if tuple(argv[:len(words)]) == words:
            return _reporting_errors(run_command, words, argv[len(words):])
    overview().parse_args(argv)  # prints the help, or names the unknown command, and exits
    return 2


def _reporting_errors(fn, *args) -> int:
    """Run ``fn``; bad input (``ValueError``/``FileNotFoundError``, a checkpoint that needs unpickling arbitrary
    objects) becomes one ``error:`` line and exit code 2.

    ``VIDEOREASON_TRACEBACK=1`` re-raises instead, for debugging.
    """
    import os
    import pickle

    try:
        result = fn(*args)
    except (ValueError, FileNotFoundError, pickle.UnpicklingError) as err:
        if os.environ.get("VIDEOREASON_TRACEBACK"):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
