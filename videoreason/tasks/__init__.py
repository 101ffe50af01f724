"""Verifiable puzzle domains: generate, solve, render, parse, verify."""

from videoreason.tasks.base import BUILTIN_TASKS, Task, resolve_task
from videoreason.tasks.flowfree import FlowFree
from videoreason.tasks.maze import Maze
from videoreason.tasks.maze3d import Maze3D
from videoreason.tasks.maze_agent import MazeAgent
from videoreason.tasks.navigation import Navigation
from videoreason.tasks.render import DEFAULT_PALETTE, RenderSpec
from videoreason.tasks.sokoban import Sokoban
from videoreason.tasks.trapfield import TrapField
from videoreason.tasks.verdict import MIN_CONFIDENCE, Parsed, Verdict

__all__ = ["BUILTIN_TASKS", "MIN_CONFIDENCE", "DEFAULT_PALETTE", "FlowFree", "Maze", "Maze3D", "MazeAgent",
           "Navigation", "Parsed", "RenderSpec", "Sokoban", "Task", "TrapField", "Verdict", "resolve_task"]
