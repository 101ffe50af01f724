"""Maze3D specifics: ladders, the oblique view, a wrong floor, and the puzzle record's checks (the shared agent
rules are tested for every agent task in test_agent.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from videoreason.tasks.maze3d import LADDER, Maze3D, ObliqueView
from videoreason.tasks.render import RenderSpec

TASK = Maze3D()
SPEC = RenderSpec(height=96, width=96, num_frames=17)


def test_every_walk_climbs_each_ladder_once_and_ends_on_the_top_floor():
    for level, difficulty in TASK.levels.items():
        for seed in range(100):
            puzzle = TASK.generate(np.random.default_rng(seed), level)
            floors = [row // puzzle.side for row, _ in TASK.solve(puzzle).path]
            climbs = [b - a for a, b in zip(floors, floors[1:], strict=False) if b != a]
            assert floors[0] == 0 and floors[-1] == difficulty.floors - 1, (level, seed)
            assert sorted(climbs) == [1] * (difficulty.floors - 1)  # a tree: each ladder once, never down
            assert (puzzle.grid == LADDER).sum() == 2 * (difficulty.floors - 1)


def test_oblique_view_shows_every_block_inside_its_own_parallelogram():
    for spec in (SPEC, RenderSpec.wan()):
        view = ObliqueView(3, 7, spec)
        where = view.pixel_blocks()
        shown = np.bincount(where[where >= 0], minlength=3 * 7 * 7)
        assert shown.min() > 0  # no block hidden
        centres = np.floor(view.centres()).astype(int)  # [21, 7, 2] pixel (x, y)
        index = np.arange(21 * 7).reshape(21, 7)
        assert (where[centres[..., 1], centres[..., 0]] == index).all()  # each centre lies in its own block
        boxes = view.geometry().boxes * (spec.width, spec.height, spec.width, spec.height)
        assert (boxes[..., 0] >= 0).all() and (boxes[..., 0] + boxes[..., 2] <= spec.width).all()


def test_the_agent_on_another_floor_without_a_ladder_fails():
    puzzle = TASK.generate(np.random.default_rng(4), "easy")
    board = TASK.board(puzzle)
    walk = list(board.reference)
    states = TASK.states(puzzle, TASK.solve(puzzle), SPEC.num_frames)
    r, c = walk[1]
    above = (r + puzzle.side, c)  # the same cell one floor up, reached without climbing
    moved = states.copy()
    moved[1] = board.with_agent(above)
    verdict = TASK.verdict(TASK.render(puzzle, moved, SPEC), puzzle, SPEC)
    assert not verdict.success and verdict.components["continuity"] < 1.0
    assert TASK.verdict(TASK.render(puzzle, states, SPEC), puzzle, SPEC).success


GROUND = ["#####", "#S.H#", "###.#", "#...#", "#####"]
TOP = ["#####", "#..H#", "#.###", "#..G#", "#####"]


def test_hand_made_maze_is_solved_through_its_ladder():
    puzzle = TASK.puzzle_from_dict({"floors": [GROUND, TOP]})
    assert TASK.solve(puzzle).path == ((1, 1), (1, 3), (6, 3), (6, 1), (8, 1), (8, 3))


def test_json_round_trip_and_errors_name_the_problem():
    puzzle = TASK.generate(np.random.default_rng(2), "medium")
    assert TASK.puzzle_from_dict(json.loads(json.dumps(puzzle.to_dict()))) == puzzle
    with pytest.raises(ValueError, match="ladder at floor 0, block \\(1, 3\\)"):
        TASK.puzzle_from_dict({"floors": [GROUND, [TOP[0], "#...#", *TOP[2:]]]})  # nothing at the ladder's top
    with pytest.raises(ValueError, match="at least 2 floors"):
        TASK.puzzle_from_dict({"floors": [GROUND]})
    with pytest.raises(ValueError, match="unknown characters"):
        TASK.puzzle_from_dict({"floors": [GROUND, [*TOP[:3], "#.X.#", TOP[4]]]})
    with pytest.raises(ValueError, match="same odd side"):
        TASK.puzzle_from_dict({"floors": [GROUND, ["#" * 7] * 7]})
    with pytest.raises(ValueError, match="exactly one 'S'"):
        TASK.puzzle_from_dict({"floors": [GROUND, [TOP[0], "#S.H#", *TOP[2:]]]})
