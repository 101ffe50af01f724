"""Navigation: scenes and planner, the egocentric camera, localisation (the exact checker) and its verdicts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from degraded import degraded

from videoreason.tasks.agent import COMPONENTS, distances
from videoreason.tasks.navigation import AGENT, Navigation, NavigationDifficulty, _scene
from videoreason.tasks.render import RenderSpec

TASK = Navigation()
SPEC = RenderSpec(height=40, width=40, num_frames=9)
WAN = RenderSpec.wan()


def walk_video(puzzle, walk, spec=SPEC):
    """The camera walking ``walk`` (one cell per frame, then waiting), rendered."""
    scene = _scene(puzzle)
    walk = [*walk, *[walk[-1]] * (spec.num_frames - len(walk))]
    return TASK.render(puzzle, np.stack([scene.view_at(c) for c in walk]), spec)


def test_scenes_and_walks_are_legal_for_every_level():
    for level, difficulty in TASK.levels.items():
        for seed in range(200):
            puzzle = TASK.generate(np.random.default_rng(seed), level)
            board = TASK.board(puzzle)
            walk = TASK.solve(puzzle).path
            assert walk[0] == puzzle.start and walk[-1] == puzzle.goal
            assert all(b in board.moves(a) for a, b in zip(walk, walk[1:], strict=False))
            assert len(walk) - 1 == distances(board.moves, puzzle.start)[puzzle.goal]
            assert difficulty.min_path_length <= len(walk) - 1 <= difficulty.max_moves
            assert len(set("".join(puzzle.rows)) - {"#", "."}) == difficulty.rooms  # every room has its tint


def test_camera_view_is_centred_and_off_map_is_wall():
    puzzle = TASK.generate(np.random.default_rng(0), "tiny")
    view = _scene(puzzle).view_at((0, 0))
    assert view.shape == (5, 5) and view[2, 2] == AGENT
    assert (view[:2] == 0).all() and (view[:, :2] == 0).all()  # rows and columns off the map


@pytest.mark.parametrize("level,spec", [("tiny", SPEC), ("medium", WAN)])
def test_truth_videos_localise_exactly_and_verify_perfectly(level, spec):
    for seed in range(3 if spec is SPEC else 1):  # one 480x832x33 video: ~7 s
        puzzle = TASK.generate(np.random.default_rng(seed), level)
        walk = list(TASK.solve(puzzle).path)
        video = TASK.render(puzzle, TASK.states(puzzle, TASK.solve(puzzle), spec.num_frames), spec)
        copies = degraded(video, spec.fps, seed) if spec is SPEC else {"mp4": degraded(video, spec.fps, seed)["mp4"]}
        for kind, copy in copies.items():
            parsed = TASK.parse(copy, puzzle, spec)
            assert _scene(puzzle).localise(parsed.labels) == walk + [walk[-1]] * (spec.num_frames - len(walk)), kind
            verdict = TASK.verify(parsed, puzzle)
            assert verdict.success and verdict.exact_match and verdict.components == dict.fromkeys(COMPONENTS, 1.0)
            assert verdict.trajectory["trajectory_em"] == 1.0


def test_corrupted_walks_fail_the_right_component():
    for seed in range(4):
        puzzle = TASK.generate(np.random.default_rng(seed), "tiny")
        walk = list(TASK.solve(puzzle).path)
        frozen = TASK.verdict(walk_video(puzzle, walk[:1]), puzzle, SPEC)
        assert not frozen.success and frozen.components["goal_reached"] == 0.0 and frozen.components["progress"] == 0
        teleport = TASK.verdict(walk_video(puzzle, [walk[0], *walk[2:]]), puzzle, SPEC)
        assert not teleport.success and teleport.components["continuity"] < 1.0
        truncated = TASK.verdict(walk_video(puzzle, walk[:len(walk) // 2 + 1]), puzzle, SPEC)
        assert not truncated.success and 0.0 < truncated.components["progress"] < 1.0
        video = walk_video(puzzle, walk)
        video[3] = video[3][::-1]  # a frame that is no view of the scene: the camera is nowhere
        broken = TASK.verdict(video, puzzle, SPEC)
        assert not broken.success and broken.components["layout_preserved"] < 1.0


def test_ambiguous_views_are_resolved_by_the_walk():
    """The middle cells of a corridor look alike through a 3x3 view; the chain from the start tells them apart."""
    rows = ["##########", "#00#####11", "#00.....11", *["##########"] * 7]
    puzzle = TASK.puzzle_from_dict({"rows": rows, "start": [1, 1], "goal": [1, 9], "view": 1})
    scene = _scene(puzzle)
    walk = list(TASK.solve(puzzle).path)
    assert {len(scene.where[scene.view_at(c).tobytes()]) for c in [(2, 4), (2, 5), (2, 6)]} == {3}
    assert scene.localise(np.stack([scene.view_at(c) for c in walk])) == walk
    # a pause in the corridor looks exactly like a step along it: any walk that shows the same views is accepted
    pause = [*walk[:5], walk[4], *walk[5:]]
    views = np.stack([scene.view_at(c) for c in pause])
    placed = scene.localise(views)
    assert placed[0] == pause[0] and placed[-1] == pause[-1]
    assert all(np.array_equal(scene.view_at(c), v) for c, v in zip(placed, views, strict=True))
    assert all(b == a or b in scene.board.moves(a) for a, b in zip(placed, placed[1:], strict=False))


def test_json_round_trip_and_errors_name_the_problem():
    puzzle = TASK.generate(np.random.default_rng(5), "easy")
    assert TASK.puzzle_from_dict(json.loads(json.dumps(puzzle.to_dict()))) == puzzle
    data = puzzle.to_dict()
    with pytest.raises(ValueError, match="`start` .* is a wall"):
        TASK.puzzle_from_dict({**data, "start": [0, 0]})
    with pytest.raises(ValueError, match="outside"):
        TASK.puzzle_from_dict({**data, "goal": [99, 0]})
    with pytest.raises(ValueError, match="unknown characters"):
        TASK.puzzle_from_dict({**data, "rows": ["x" * 10] * 10})
    with pytest.raises(ValueError, match="rooms"):
        NavigationDifficulty(size=10, rooms=5, view=2, min_path_length=3, max_moves=8)


def test_a_boolean_view_radius_is_refused():
    record = TASK.generate(np.random.default_rng(0), "tiny").to_dict()
    with pytest.raises(ValueError, match="`view` must be an integer"):
        TASK.puzzle_from_dict(dict(record, view=True))  # bool is an int to Python, not a radius
