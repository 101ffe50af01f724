"""Maze: generators, solver legality, JSON, render/parse round trips, verification of good and broken videos."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from videoreason.media import decode_video, encode_mp4
from videoreason.tasks.grid import count_components
from videoreason.tasks.maze import (
    DEAD_END,
    FLOOR,
    GOAL,
    PATH,
    START,
    STYLES,
    WALL,
    Maze,
    MazeDifficulty,
    MazePuzzle,
    fill_step,
)
from videoreason.tasks.render import RenderSpec, frame_state_indices
from videoreason.tasks.verdict import Parsed

TASK = Maze()
TINY = RenderSpec()
WAN = RenderSpec.wan()


def make(seed: int, level: str = "easy"):
    puzzle = TASK.generate(np.random.default_rng(seed), level)
    solution = TASK.solve(puzzle)
    return puzzle, solution, TASK.states(puzzle, solution)


def parsed_from_states(states: np.ndarray) -> Parsed:
    return Parsed(labels=states.astype(np.int8), confidence=1.0)


@pytest.mark.parametrize("level", list(Maze.levels))
def test_generated_mazes_are_perfect_and_solutions_legal(level):
    for seed in range(150 if level in ("tiny", "easy", "medium") else 40):
        puzzle, solution, _ = make(seed, level)
        grid = puzzle.grid
        n = len(puzzle.rows) // 2
        open_blocks = grid != WALL
        # perfect maze: a spanning tree over n*n cells has n*n - 1 passages and is connected
        passages = int(open_blocks.sum()) - n * n
        assert passages == n * n - 1
        assert count_components(open_blocks) == 1
        path = solution.path
        assert path[0] == puzzle.start and path[-1] == puzzle.goal
        assert len(set(path)) == len(path)
        for a, b in zip(path, path[1:], strict=False):
            assert abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1
            assert grid[b] != WALL
        assert (len(path) - 1) // 2 >= Maze.levels[level].min_path_length


def test_every_style_is_used_and_generation_is_deterministic():
    styles = {TASK.generate(np.random.default_rng(s), "medium").style for s in range(40)}
    assert styles == set(STYLES)
    assert TASK.generate(np.random.default_rng(7), "hard") == TASK.generate(np.random.default_rng(7), "hard")
    assert TASK.generate(np.random.default_rng(7), "hard") != TASK.generate(np.random.default_rng(8), "hard")


def test_json_round_trip_and_validation():
    puzzle, solution, _ = make(3)
    assert MazePuzzle.from_dict(json.loads(json.dumps(puzzle.to_dict()))) == puzzle
    assert TASK.solution_from_dict(json.loads(json.dumps(solution.to_dict()))) == solution
    bad = puzzle.to_dict()
    bad["rows"] = [r.replace("G", ".") for r in bad["rows"]]
    with pytest.raises(ValueError, match="'G'"):
        MazePuzzle.from_dict(bad)
    with pytest.raises(ValueError, match="unknown MazePuzzle keys: \\['colour'\\]"):
        MazePuzzle.from_dict({**puzzle.to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="unknown characters"):
        MazePuzzle.from_dict({**puzzle.to_dict(), "rows": ["#####", "#S.x#", "#...#", "#..G#", "#####"]})
    with pytest.raises(ValueError, match="unknown maze difficulty 'impossible'"):
        TASK.generate(np.random.default_rng(0), "impossible")
    with pytest.raises(ValueError, match="min_path_length"):
        MazeDifficulty(size=3, min_path_length=20)


@pytest.mark.parametrize("spec,level", [(TINY, "tiny"), (TINY, "medium"), (WAN, "expert")])
def test_render_parse_recovers_exact_states(spec, level):
    puzzle, _, states = make(5, level)
    video = TASK.render(puzzle, states, spec)
    assert video.shape == (spec.num_frames, spec.height, spec.width, 3) and video.dtype == np.uint8
    parsed = TASK.parse(video, puzzle, spec)
    expected = states[frame_state_indices(len(states), spec.num_frames)]
    np.testing.assert_array_equal(parsed.labels, expected)
    assert parsed.confidence == 1.0


def _resize(video: np.ndarray, scale: float) -> np.ndarray:
    x = torch.from_numpy(video).permute(0, 3, 1, 2).float()
    h, w = round(video.shape[1] * scale / 2) * 2, round(video.shape[2] * scale / 2) * 2
    y = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", antialias=True)
    return y.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda v: decode_video(encode_mp4(v, 4)),
        lambda v: np.clip(v + np.random.default_rng(0).normal(0, 8, v.shape), 0, 255).astype(np.uint8),
        lambda v: _resize(v, 0.9),
        lambda v: _resize(v, 1.1),
    ],
    ids=["mp4", "noise", "shrink10", "grow10"],
)
@pytest.mark.parametrize("spec,level", [(TINY, "easy"), (WAN, "hard")])
def test_ground_truth_survives_encoding_noise_and_resizing(corrupt, spec, level):
    for seed in range(3):
        puzzle, _, states = make(seed, level)
        verdict = TASK.verdict(corrupt(TASK.render(puzzle, states, spec)), puzzle, spec)
        assert verdict.success and verdict.exact_match
        assert verdict.precision == verdict.recall == verdict.f1 == 1.0
        assert all(v == 1.0 for v in verdict.components.values())


def test_clean_solution_scores_one():
    puzzle, _, states = make(11, "medium")
    verdict = TASK.verify(parsed_from_states(states), puzzle)
    assert verdict.success and verdict.exact_match and verdict.f1 == 1.0


def test_wall_crossed_fails_and_lowers_wall_free():
    puzzle, _, states = make(2, "medium")
    walls = np.argwhere(puzzle.grid[1:-1, 1:-1] == WALL) + 1  # an inner wall block
    broken = states.copy()
    broken[-1][tuple(walls[0])] = PATH
    verdict = TASK.verify(parsed_from_states(broken), puzzle)
    assert not verdict.success
    assert verdict.components["wall_free"] < 1 and verdict.components["layout_preserved"] < 1


def test_painting_the_whole_floor_fails_and_zeroes_detour_free():
    puzzle, solution, states = make(3, "medium")
    flooded = states.copy()
    flooded[-1][puzzle.grid == FLOOR] = PATH
    verdict = TASK.verify(parsed_from_states(flooded), puzzle)
    assert not verdict.success and verdict.recall == 1.0 and verdict.precision < 1.0
    assert verdict.components["connectivity"] == verdict.components["goal_reached"] == 1.0
    off_path = int((puzzle.grid == FLOOR).sum()) - len(solution.path[1:-1])
    assert verdict.components["detour_free"] == pytest.approx(1 - min(1, off_path / len(solution.path[1:-1])))
    assert verdict.components["detour_free"] < 1.0


def test_gap_in_path_fails_and_lowers_connectivity():
    puzzle, solution, states = make(4, "medium")
    broken = states.copy()
    mid = solution.path[len(solution.path) // 2]
    broken[:, mid[0], mid[1]] = np.where(broken[:, mid[0], mid[1]] == PATH, FLOOR, broken[:, mid[0], mid[1]])
    verdict = TASK.verify(parsed_from_states(broken), puzzle)
    assert not verdict.success and verdict.recall < 1
    assert verdict.components["connectivity"] < 1 and verdict.components["goal_reached"] == 0


def test_painting_the_whole_floor_is_not_success():
    puzzle, _, states = make(6, "easy")
    broken = states.copy()
    broken[-1][broken[-1] == FLOOR] = PATH
    verdict = TASK.verify(parsed_from_states(broken), puzzle)
    assert not verdict.success and verdict.recall == 1.0 and verdict.precision < 0.8
    assert verdict.components["goal_reached"] == 1.0


def test_shuffled_frames_fail_monotonicity():
    puzzle, _, states = make(8, "medium")
    frames = states[frame_state_indices(len(states), 9)]
    shuffled = frames[[0, 5, 2, 3, 4, 1, 6, 7, 8]]
    verdict = TASK.verify(parsed_from_states(shuffled), puzzle)
    assert not verdict.success and verdict.components["monotonic"] < 1


def test_layout_change_and_drawn_first_frame_fail():
    puzzle, _, states = make(9, "easy")
    moved = states.copy()
    moved[:, puzzle.goal[0], puzzle.goal[1]] = FLOOR  # goal erased in every frame
    verdict = TASK.verify(parsed_from_states(moved), puzzle)
    assert not verdict.success and verdict.components["layout_preserved"] < 1
    solved_first = states.copy()
    solved_first[0] = states[-1]  # the answer shown in the condition frame
    assert not TASK.verify(parsed_from_states(solved_first), puzzle).success


def test_out_of_order_drawing_succeeds_but_is_not_exact_match():
    puzzle, solution, states = make(10, "medium")
    reverse = states.copy()
    inner = solution.path[1:-1]
    for k, cell in enumerate(reversed(inner)):  # paint from the goal back to the start
        reverse[: k + 1, cell[0], cell[1]] = FLOOR
        reverse[k + 1:, cell[0], cell[1]] = PATH
    verdict = TASK.verify(parsed_from_states(reverse), puzzle)
    assert verdict.success and not verdict.exact_match


@pytest.mark.parametrize(
    "video",
    [
        np.random.default_rng(0).integers(0, 256, (9, 64, 64, 3), dtype=np.uint8),
        np.zeros((9, 64, 64, 3), np.uint8),
        np.zeros((9, 13, 200, 3), np.uint8),
        np.zeros((1, 64, 64, 3), np.uint8),
        np.zeros((0, 64, 64, 3), np.uint8),
        np.zeros((9, 64, 64), np.uint8),
        np.random.default_rng(1).random((9, 64, 64, 3)),
        np.full((9, 64, 64, 3), np.nan),
        np.zeros((9, 64, 64, 5)),
        np.zeros(7),
        None,
        "not a video",
    ],
)
def test_garbage_never_raises_and_never_succeeds(video):
    puzzle, _, _ = make(1, "easy")
    verdict = TASK.verdict(video, puzzle, TINY)
    assert not verdict.success and not verdict.exact_match
    assert all(0.0 <= v <= 1.0 for v in verdict.metrics().values())


def test_random_label_grids_score_within_bounds():
    puzzle, _, states = make(12, "easy")
    rng = np.random.default_rng(0)
    for _ in range(200):
        labels = rng.integers(-1, 5, size=(rng.integers(2, 12), *states.shape[1:])).astype(np.int8)
        verdict = TASK.verify(Parsed(labels, float(rng.random())), puzzle)
        assert all(0.0 <= v <= 1.0 for v in verdict.metrics().values())
        assert not verdict.success


def test_classes_have_distinct_colours():
    colors = TASK.colors(TINY).astype(float)
    dist = np.linalg.norm(colors[:, None] - colors[None], axis=-1)
    assert dist[~np.eye(len(colors), dtype=bool)].min() > 90
    assert [TASK.classes.index("start"), TASK.classes.index("goal")] == [START, GOAL]


def fill_case(seed: int = 3):
    """A tiny `fill` maze with a dead end, its 9 reference states and its solution path."""
    puzzle = TASK.generate(np.random.default_rng(seed), "tiny-fill")
    solution = TASK.solve(puzzle)
    return puzzle, TASK.states(puzzle, solution, 9), solution.path


def test_fill_video_shades_dead_ends_then_paints_exactly_the_path():
    for seed in range(60):
        puzzle, states, path = fill_case(seed)
        assert puzzle.video == "fill" and states.shape[0] == 9
        shaded = states == DEAD_END
        assert not np.any(shaded[:-1] & ~shaded[1:])  # shading only grows
        assert all(states[f][cell] != DEAD_END for f in range(9) for cell in path)  # never on the path
        assert {tuple(c) for c in np.argwhere(states[-1] == PATH)} == set(path[1:-1])
        assert not np.any(states[-1] == FLOOR)  # every floor block off the path was shaded
        for f in range(1, 9):  # every frame follows from the one before; shading only shades floor
            assert np.array_equal(states[f], fill_step(states[f - 1]))
            if not np.any(states[f] == PATH):
                assert np.array_equal(states[f][states[f] != DEAD_END], states[0][states[f] != DEAD_END])
        assert np.array_equal(fill_step(states[-1]), states[-1])  # the solved board holds
        painted = int(np.argmax(np.any(states == PATH, axis=(1, 2))))
        assert np.array_equal(states[painted - 1] == DEAD_END, states[-1] == DEAD_END)  # painted once filled
        verdict = TASK.verdict(decode_video(encode_mp4(TASK.render(puzzle, states, TINY), 4)), puzzle, TINY)
        assert verdict.success and verdict.exact_match and verdict.f1 == 1.0


def test_fill_needs_enough_frames_and_says_how_many():
    puzzle = next(p for p in (TASK.generate(np.random.default_rng(s), "tiny-fill") for s in range(200))
                  if len(TASK.states(p, TASK.solve(p))) >= 6)
    with pytest.raises(ValueError, match=r"needs \d+ frames .* has 4"):
        TASK.states(puzzle, TASK.solve(puzzle), 4)


def test_broken_fill_videos_fail():
    puzzle, states, path = fill_case()
    # shading a path block, then un-shading it: not monotone
    bad = states.copy()
    bad[2:5][:, path[2][0], path[2][1]] = DEAD_END
    assert not TASK.verify(parsed_from_states(bad), puzzle).success
    # stopping the fill half-way: the last frame paints dead ends as path too
    half = states.copy()
    half[-1][states[-1] == DEAD_END] = PATH
    verdict = TASK.verify(parsed_from_states(half), puzzle)
    assert not verdict.success and verdict.components["detour_free"] < 1
    # a right path whose frames are not the reference filling succeeds but is not an exact match
    early = states.copy()
    early[1] = states[0]
    verdict = TASK.verify(parsed_from_states(early), puzzle)
    assert verdict.success and not verdict.exact_match


def test_path_videos_may_not_shade():
    puzzle, solution, states = make(4, "tiny")
    shaded = states.copy()
    free = np.argwhere(states[-1] == FLOOR)[0]
    shaded[-1][tuple(free)] = DEAD_END
    assert TASK.verify(parsed_from_states(states), puzzle).success
    assert not TASK.verify(parsed_from_states(shaded), puzzle).success


def test_datasets_rendered_before_dead_end_existed_still_parse():
    old = {k: v for k, v in TINY.palette.items() if k != "dead_end"}
    puzzle, solution, states = make(5, "tiny")
    spec = RenderSpec(palette=old)
    assert TASK.verdict(TASK.render(puzzle, states, spec), puzzle, spec).success
    clash = RenderSpec(palette={**old, "dead_end": old["floor"]})
    with pytest.raises(ValueError, match="same colour"):
        TASK.colors(clash)


def test_the_path_prompt_promises_no_more_than_short_videos_show():
    puzzle, solution, states = make(1, "easy")
    shown = states[frame_state_indices(len(states), 5)]  # a 5-frame video of a longer path
    painted = (shown == PATH).sum(axis=(1, 2))
    assert np.diff(painted).max() > 1  # some frame paints several blocks
    prompt = TASK.prompt(puzzle)
    assert "one block" not in prompt and "frame by frame" in prompt and "green dot" in prompt
