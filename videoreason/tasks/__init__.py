"""Verifiable puzzle domains: generate, solve, render, parse, verify."""

from videoreason.tasks.base import MIN_CONFIDENCE, Parsed, Task, Verdict, resolve_task
from videoreason.tasks.flowfree import FlowFree
from videoreason.tasks.maze import Maze
from videoreason.tasks.render import DEFAULT_PALETTE, RenderSpec
from videoreason.tasks.sokoban import Sokoban

__all__ = ["MIN_CONFIDENCE", "DEFAULT_PALETTE", "FlowFree", "Maze", "Parsed", "RenderSpec", "Sokoban", "Task",
           "Verdict", "resolve_task"]
