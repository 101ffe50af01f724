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


CLASSIC = {name: level for name, level in TASK.levels.items() if level.classic}
WIDE = {name: level for name, level in TASK.levels.items() if not level.classic}


def test_every_walk_climbs_each_ladder_once_and_ends_on_the_top_floor():
    for level, difficulty in CLASSIC.items():
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


def test_classic_levels_generate_the_same_puzzles_as_before_the_wider_family():
    import hashlib

    recorded = {"tiny": "0d050cb0c32f6653", "easy": "fab861e5addb497e", "medium": "aecb5d2695a38314",
                "hard": "dfc28b1a74955c1d", "expert": "38fdb0d957478e41"}  # seeds 0-19, before VR-Bench's family
    for level, digest in recorded.items():
        h = hashlib.sha1()
        for seed in range(20):
            h.update(json.dumps(TASK.generate(np.random.default_rng(seed), level).to_dict()).encode())
        assert h.hexdigest()[:16] == digest, level


def test_the_wider_family_has_ladders_on_branches_loops_and_ends_anywhere():
    seen = dict.fromkeys(("goal below the top", "goal on a ladder", "start on a ladder", "several ladders a pair",
                          "a floor with a loop"), 0)
    for level, difficulty in WIDE.items():
        for seed in range(60):
            puzzle = TASK.generate(np.random.default_rng(seed), level)
            start, goal = puzzle.end_cells()
            side, n = puzzle.side, difficulty.size
            path = TASK.solve(puzzle).path
            assert path[0] == start and path[-1] == goal and start[0] < side  # the start on the ground floor
            assert difficulty.min_path_length <= len(path) - 1 <= difficulty.max_moves
            seen["goal below the top"] += goal[0] // side < difficulty.floors - 1
            seen["goal on a ladder"] += bool(puzzle.ladders[goal])
            seen["start on a ladder"] += bool(puzzle.ladders[start])
            pairs = [int(puzzle.ladders[f * side:(f + 1) * side].sum()) for f in range(difficulty.floors)]
            seen["several ladders a pair"] += max(pairs) > 1
            openings = [sum(floor[r][c] != "#" for r in range(1, side - 1) for c in range(1, side - 1)
                            if (r + c) % 2) for floor in puzzle.floors]
            seen["a floor with a loop"] += max(openings) > n * n - 1  # a tree has n^2 - 1 passages
    assert all(seen.values()), seen


def test_an_end_on_a_ladder_cell_is_given_as_a_field_and_climbs():
    ground = ["#####", "#..H#", "###.#", "#...#", "#####"]
    puzzle = TASK.puzzle_from_dict({"floors": [ground, TOP], "start": [1, 3]})  # the start on the ladder
    assert TASK.solve(puzzle).path == ((1, 3), (6, 3), (6, 1), (8, 1), (8, 3))
    assert puzzle.grid[1, 3] == TASK.classes.index("start") and puzzle.ladders[1, 3]
    assert TASK.puzzle_from_dict(json.loads(json.dumps(puzzle.to_dict()))) == puzzle
    assert "start" not in TASK.puzzle_from_dict({"floors": [GROUND, TOP]}).to_dict()  # letters keep their JSON
    spec = RenderSpec(height=96, width=96, num_frames=6)
    board = TASK.board(puzzle)
    video = TASK.render(puzzle, np.stack([board.with_agent(c) for c in TASK.solve(puzzle).path]), spec)
    assert TASK.verdict(video, puzzle, spec).exact_match
    for data, match in (({"floors": [GROUND, TOP], "start": [1, 3]}, "either as 'S' in `floors` or as `start`"),
                        ({"floors": [ground, TOP], "start": [2, 3]}, r"`start` \(2, 3\) must be a floor or ladder"),
                        ({"floors": [ground, TOP], "start": [1, 9]}, "start"),
                        ({"floors": [ground, TOP]}, "exactly one 'S' \\(or give `start`\\)")):
        with pytest.raises(ValueError, match=match):
            TASK.puzzle_from_dict(data)


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
