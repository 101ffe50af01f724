"""FlowFree: generator/solver legality, serialisation, render/parse round trips, and verifier judgements."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from degraded import degraded, resize
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from videoreason.media import decode_video, encode_mp4
from videoreason.tasks.base import resolve_task
from videoreason.tasks.flowfree import (
    FlowFree,
    FlowFreeDifficulty,
    FlowFreePuzzle,
    FlowFreeSolution,
    forced_step,
    generate_flows,
)
from videoreason.tasks.flowfree_solver import solve_boards
from videoreason.tasks.grid import dihedral
from videoreason.tasks.render import RenderSpec
from videoreason.tasks.verdict import Parsed

TASK = FlowFree()
TINY = RenderSpec()
WAN = RenderSpec.wan()
SEEDS = {"tiny": 150, "easy": 120, "medium": 40, "hard": 25, "expert": 20}


def puzzle_of(level: str, seed: int) -> FlowFreePuzzle:
    return TASK.generate(np.random.default_rng(seed), level)


def truth_video(puzzle: FlowFreePuzzle, spec: RenderSpec = TINY) -> np.ndarray:
    return TASK.render(puzzle, TASK.states(puzzle, TASK.solve(puzzle)), spec)


def board_of(puzzle: FlowFreePuzzle, solution: FlowFreeSolution) -> np.ndarray:
    board = np.zeros((puzzle.size, puzzle.size), dtype=np.int8)
    for i, path in enumerate(solution.paths):
        for cell in path:
            board[cell] = i + 1
    return board


def assert_legal(puzzle: FlowFreePuzzle, solution: FlowFreeSolution) -> None:
    """Every cell covered once; each path runs between its endpoints through adjacent cells, never touching
    itself (an induced path)."""
    n = puzzle.size
    assert len(solution.paths) == puzzle.num_colors
    cells = [cell for path in solution.paths for cell in path]
    assert len(cells) == len(set(cells)) == n * n, "paths must be disjoint and cover the board"
    for path, (start, goal) in zip(solution.paths, puzzle.endpoints, strict=True):
        assert path[0] == start and path[-1] == goal
        assert len(path) >= 2
        for i, (a, b) in enumerate(zip(path, path[1:], strict=False)):
            assert abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1, f"step {i} is not between adjacent cells"
        index = {cell: i for i, cell in enumerate(path)}
        for i, (r, c) in enumerate(path):
            for nb in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                assert nb not in index or abs(index[nb] - i) == 1, f"path touches itself at {(r, c)}"


def brute_force_solutions(puzzle: FlowFreePuzzle, limit: int = 2) -> list[np.ndarray]:
    """Independent solution search: extend each colour's path cell by cell (never touching itself), then keep
    full boards on which every path is induced."""
    n, k = puzzle.size, puzzle.num_colors
    board = TASK.initial_state(puzzle).astype(int)
    found: list[np.ndarray] = []

    def nbrs(cell):
        r, c = cell
        return [(a, b) for a, b in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)) if 0 <= a < n and 0 <= b < n]

    def induced() -> bool:
        for i, (start, goal) in enumerate(puzzle.endpoints):
            for r, c in zip(*np.nonzero(board == i + 1), strict=True):
                same = sum(board[nb] == i + 1 for nb in nbrs((r, c)))
                if same != (1 if (r, c) in (start, goal) else 2):
                    return False
        return True

    def colour(i: int) -> None:
        if len(found) >= limit:
            return
        if i == k:
            if (board > 0).all() and induced():
                found.append(board.copy())
            return
        start, goal = puzzle.endpoints[i]

        def extend(path: list) -> None:
            for nb in nbrs(path[-1]):
                if any(x in path[:-1] for x in nbrs(nb)):
                    continue
                if nb == goal:
                    colour(i + 1)
                elif board[nb] == 0:
                    board[nb] = i + 1
                    extend([*path, nb])
                    board[nb] = 0

        extend([start])

    colour(0)
    return found


# ------------------------------------------------------------------------------------------ generate / solve
@pytest.mark.parametrize("level", list(SEEDS))
def test_generated_puzzles_are_unique_and_solved_legally(level):
    difficulty = TASK.levels[level]
    for seed in range(SEEDS[level]):
        puzzle, cut = generate_flows(np.random.default_rng(seed), difficulty)
        assert puzzle.size == difficulty.size
        assert difficulty.min_colors <= puzzle.num_colors <= difficulty.max_colors
        assert puzzle.unique
        assert_legal(puzzle, cut)
        solution = TASK.solve(puzzle)
        assert_legal(puzzle, solution)
        assert solution == cut, "a unique puzzle has only the generator's solution"


def test_colour_counts_cover_the_range():
    counts = {puzzle_of("easy", seed).num_colors for seed in range(40)}
    assert counts == {3, 4}


@pytest.mark.parametrize("level,seeds", [("tiny", 60), ("easy", 80), ("medium", 60)])
def test_unique_flag_matches_brute_force(level, seeds):
    loose = FlowFreeDifficulty(**{**TASK.levels[level].__dict__, "require_unique": False})
    flags = []
    for seed in range(seeds):
        puzzle = TASK.generate(np.random.default_rng(seed), loose)
        brute = brute_force_solutions(puzzle)
        assert len(brute) >= 1
        assert puzzle.unique == (len(brute) == 1) == TASK.is_unique(puzzle)
        if puzzle.unique:
            assert np.array_equal(brute[0], board_of(puzzle, TASK.solve(puzzle)))
        flags.append(puzzle.unique)
    if level != "tiny":  # these seeds include ambiguous boards, so both answers are checked
        assert set(flags) == {True, False}


def test_non_unique_puzzle_is_flagged_and_both_solutions_verify():
    loose = FlowFreeDifficulty(size=6, min_colors=4, max_colors=5, require_unique=False)
    puzzle = next(p for p in (TASK.generate(np.random.default_rng(s), loose) for s in range(300)) if not p.unique)
    first, second = solve_boards(puzzle.size, puzzle.endpoints, limit=3)[:2]
    assert not np.array_equal(first, second)
    initial = TASK.initial_state(puzzle)
    for board in (first, second):
        verdict = TASK.verify(Parsed(np.stack([initial, board]), 1.0), puzzle)
        assert verdict.success
    # the alternative solution succeeds but is not the reference: no exact match, imperfect precision
    reference = board_of(puzzle, TASK.solve(puzzle))
    other = second if np.array_equal(first, reference) else first
    verdict = TASK.verify(Parsed(np.stack([initial, other]), 1.0), puzzle)
    assert verdict.success and not verdict.exact_match and verdict.precision < 1


def test_generation_is_deterministic_and_seed_dependent():
    for level in SEEDS:
        assert puzzle_of(level, 7) == puzzle_of(level, 7)
    assert len({puzzle_of("medium", s) for s in range(10)}) == 10


def test_unsolvable_puzzle_raises():
    crossing = FlowFreePuzzle(size=2, endpoints=(((0, 0), (1, 1)), ((0, 1), (1, 0))))
    with pytest.raises(ValueError, match="no solution"):
        TASK.solve(crossing)


def test_impossible_difficulty_raises():
    with pytest.raises(ValueError, match="min_colors"):
        FlowFreeDifficulty(size=4, min_colors=6, max_colors=6)
    with pytest.raises(ValueError, match="max_colors"):
        FlowFreeDifficulty(size=8, min_colors=3, max_colors=11)
    with pytest.raises(ValueError, match="size"):
        FlowFreeDifficulty(size=13, min_colors=3, max_colors=4)
    with pytest.raises(ValueError, match="unknown flowfree difficulty"):
        TASK.generate(np.random.default_rng(0), "legendary")
    with pytest.raises(RuntimeError, match="could not split"):  # one induced path cannot fill a 6x6 board
        TASK.generate(np.random.default_rng(0), FlowFreeDifficulty(size=6, min_colors=1, max_colors=1))


# ----------------------------------------------------------------------------------------------- records
def test_json_round_trip():
    puzzle = puzzle_of("hard", 3)
    solution = TASK.solve(puzzle)
    assert TASK.puzzle_from_dict(json.loads(json.dumps(puzzle.to_dict()))) == puzzle
    assert TASK.solution_from_dict(json.loads(json.dumps(solution.to_dict()))) == solution
    assert hash(TASK.puzzle_from_dict(puzzle.to_dict())) == hash(puzzle)


@pytest.mark.parametrize("change,field", [
    ({"size": 1}, "size"),
    ({"size": 13}, "size"),
    ({"size": True}, "size"),
    ({"endpoints": [[[0, 0], [0, 9]]]}, "endpoints"),
    ({"endpoints": [[[0, 0], [0, 0]]]}, "distinct"),
    ({"endpoints": [[[0, 0], [0, 1]], [[0, 1], [1, 1]]]}, "distinct"),
    ({"endpoints": [[[0, 0]]]}, "endpoints"),
    ({"endpoints": [[[0, "a"], [1, 1]]]}, "endpoints"),
    ({"endpoints": []}, "endpoints"),
    ({"endpoints": [[[r, 0], [r, 1]] for r in range(11)]}, "endpoints"),
    ({"unique": "yes"}, "unique"),
    ({"colour": 3}, "colour"),
])
def test_invalid_puzzle_json_names_the_problem(change, field):
    data = {"size": 4, "endpoints": [[[0, 0], [3, 3]], [[0, 1], [1, 1]]], "unique": True, **change}
    with pytest.raises(ValueError, match=field):
        FlowFreePuzzle.from_dict(data)
    with pytest.raises(ValueError, match="size"):
        FlowFreePuzzle.from_dict({"endpoints": [[[0, 0], [1, 1]]]})


def test_invalid_solution_json_and_mismatched_solution():
    with pytest.raises(ValueError, match="paths"):
        FlowFreeSolution.from_dict({"paths": [[]]})
    with pytest.raises(ValueError, match="paths"):
        FlowFreeSolution.from_dict({"paths": [[[0, 0, 1]]]})
    puzzle = puzzle_of("tiny", 0)
    paths = TASK.solve(puzzle).paths
    with pytest.raises(ValueError, match="paths"):
        TASK.states(puzzle, FlowFreeSolution(paths=paths[:-1]))
    with pytest.raises(ValueError, match="must run from"):
        TASK.states(puzzle, FlowFreeSolution(paths=(paths[0][::-1], *paths[1:])))


# ----------------------------------------------------------------------------------------- states / render
@pytest.mark.parametrize("level", list(SEEDS))
def test_states_grow_every_pipe_to_the_solution(level):
    puzzle = puzzle_of(level, 1)
    solution = TASK.solve(puzzle)
    states = TASK.states(puzzle, solution)
    assert states.dtype == np.int8 and states.ndim == 3 and len(states) >= 2
    assert np.array_equal(states[0], TASK.initial_state(puzzle))
    assert np.array_equal(states[-1], board_of(puzzle, solution))
    assert not np.any((states[:-1] > 0) & (states[1:] != states[:-1])), "painting must be monotone"
    for t in range(1, len(states)):
        assert (states[t] > 0).sum() > (states[t - 1] > 0).sum(), "every step paints something"
        for i, path in enumerate(solution.paths):
            drawn = [states[t][cell] == i + 1 for cell in path[:-1]]
            assert drawn == sorted(drawn, reverse=True), "each pipe grows as a prefix from its first endpoint"
    assert (states[0] > 0).sum() == 2 * puzzle.num_colors


@pytest.mark.parametrize("spec", [TINY, WAN], ids=["tiny", "wan"])
@pytest.mark.parametrize("level", list(SEEDS))
def test_render_parse_recovers_states(level, spec):
    puzzle = puzzle_of(level, 2)
    states = TASK.states(puzzle, TASK.solve(puzzle))
    video = TASK.render(puzzle, states, spec)
    assert video.shape == (spec.num_frames, spec.height, spec.width, 3) and video.dtype == np.uint8
    parsed = TASK.parse(video, puzzle, spec)
    assert parsed.confidence == 1.0
    index = np.rint(np.arange(spec.num_frames) * (len(states) - 1) / (spec.num_frames - 1)).astype(int)
    assert np.array_equal(parsed.labels, states[index])


def test_prompt_mentions_colours_and_rules():
    puzzle = puzzle_of("easy", 4)
    text = TASK.prompt(puzzle)
    assert f"{puzzle.num_colors} colours" in text and "5x5" in text
    assert "fill every cell" in text and "cross" in text and "pair" in text
    assert isinstance(resolve_task("flowfree"), FlowFree)


# ------------------------------------------------------------------------------------------------ verify
def assert_perfect(verdict):
    assert verdict.success and verdict.exact_match
    assert verdict.precision == verdict.recall == verdict.f1 == 1.0
    assert all(v == 1.0 for v in verdict.components.values())
    assert set(verdict.components) == set(TASK.component_names)


def assert_survives(video: np.ndarray, puzzle: FlowFreePuzzle, spec: RenderSpec, seed: int) -> None:
    """The truth ``video`` verifies perfectly as is, after H.264, with Gaussian noise and resized by +-10%."""
    for copy in degraded(video, spec.fps, seed).values():
        assert_perfect(TASK.verdict(copy, puzzle, spec))


@pytest.mark.parametrize("level", list(SEEDS))
def test_truth_video_survives_mp4_noise_and_resizing(level):
    for seed in range(3):
        puzzle = puzzle_of(level, seed)
        assert_survives(truth_video(puzzle), puzzle, TINY, seed)


def test_truth_video_survives_mp4_at_wan_size():
    puzzle = puzzle_of("expert", 5)
    video = truth_video(puzzle, WAN)
    assert_perfect(TASK.verdict(decode_video(encode_mp4(video, WAN.fps)), puzzle, WAN))
    assert_perfect(TASK.verdict(resize(video[::4], 0.9), puzzle, WAN))


def broken(level: str = "medium", seed: int = 0):
    puzzle = puzzle_of(level, seed)
    solution = TASK.solve(puzzle)
    return puzzle, solution, TASK.states(puzzle, solution)


def judge(puzzle, states):
    return TASK.verdict(TASK.render(puzzle, states, TINY), puzzle, TINY)


def test_empty_cell_fails_fill():
    puzzle, solution, states = broken()
    cell = solution.paths[0][1]
    states[:, cell[0], cell[1]] = 0
    verdict = judge(puzzle, states)
    assert not verdict.success and not verdict.exact_match
    assert verdict.components["fill"] == pytest.approx(1 - 1 / puzzle.size**2)
    assert verdict.components["connected_pairs"] < 1 and verdict.recall < 1 and verdict.precision == 1
    assert verdict.components["monotonic"] == verdict.components["endpoints_kept"] == 1


def test_recoloured_pipe_disconnects_its_pair():
    puzzle, solution, states = broken()
    path = max(solution.paths, key=len)
    colour = solution.paths.index(path) + 1
    cell = path[len(path) // 2]
    painted = states[:, cell[0], cell[1]] == colour
    states[painted, cell[0], cell[1]] = colour % puzzle.num_colors + 1
    verdict = judge(puzzle, states)
    assert not verdict.success
    assert verdict.components["connected_pairs"] < 1 and verdict.components["valid_paths"] < 1
    assert verdict.components["fill"] == 1 and verdict.precision < 1


def test_changed_endpoint_fails():
    puzzle, _, states = broken()
    (r, c), _ = puzzle.endpoints[0]
    states[len(states) // 2:, r, c] = 2
    verdict = judge(puzzle, states)
    assert not verdict.success
    assert verdict.components["endpoints_kept"] < 1 and verdict.components["connected_pairs"] < 1


def test_shuffled_frames_fail_monotonic():
    puzzle = puzzle_of("medium", 0)
    video = truth_video(puzzle)
    order = [0, len(video) - 1, *range(1, len(video))]  # the solution flashes up, then partial boards follow
    verdict = TASK.verdict(video[order], puzzle, TINY)
    assert not verdict.success and not verdict.exact_match
    assert verdict.components["monotonic"] < 1
    assert verdict.components["fill"] == verdict.components["valid_paths"] == verdict.f1 == 1


def test_changed_first_frame_fails_layout():
    puzzle, solution, states = broken()
    cell = solution.paths[1][1]
    states[0, cell[0], cell[1]] = 2
    verdict = judge(puzzle, states)
    assert not verdict.success
    assert verdict.components["layout_preserved"] == pytest.approx(1 - 1 / puzzle.size**2)


def test_pipe_touching_itself_is_not_a_valid_path():
    puzzle = FlowFreePuzzle(size=4, endpoints=(((2, 2), (0, 3)), ((1, 2), (0, 0))), unique=True)
    snake = np.array([[2, 2, 2, 1], [2, 2, 2, 1], [2, 2, 1, 1], [2, 2, 1, 1]], dtype=np.int8)
    verdict = judge(puzzle, np.stack([TASK.initial_state(puzzle), snake]))
    assert not verdict.success
    assert verdict.components["connected_pairs"] == verdict.components["fill"] == 1
    assert verdict.components["valid_paths"] == 0


def test_painting_everything_one_colour_fails():
    puzzle, _, states = broken()
    states[-1][TASK.initial_state(puzzle) == 0] = 1
    verdict = judge(puzzle, states)
    assert not verdict.success and verdict.components["valid_paths"] < 1


def test_unknown_colour_does_not_fill():
    puzzle, solution, states = broken("tiny")
    cell = solution.paths[0][1]
    states[:, cell[0], cell[1]] = 10  # teal is not one of this puzzle's colours
    verdict = judge(puzzle, states)
    assert not verdict.success and verdict.components["fill"] < 1 and verdict.precision < 1


# ------------------------------------------------------------------------------------------------ fuzzing
def assert_failed(verdict):
    assert not verdict.success and not verdict.exact_match
    for value in (verdict.precision, verdict.recall, verdict.f1, verdict.confidence,
                  *verdict.components.values()):
        assert 0.0 <= value <= 1.0


@pytest.mark.parametrize("make", [
    lambda rng: rng.integers(0, 256, (9, 64, 64, 3), dtype=np.uint8),
    lambda rng: np.zeros((9, 64, 64, 3), dtype=np.uint8),
    lambda rng: np.full((9, 64, 64, 3), 236, dtype=np.uint8),
    lambda rng: rng.integers(0, 256, (9, 30, 50, 3), dtype=np.uint8),
    lambda rng: rng.integers(0, 256, (1, 64, 64, 3), dtype=np.uint8),
    lambda rng: np.zeros((0, 64, 64, 3), dtype=np.uint8),
    lambda rng: np.array([]),
    lambda rng: rng.integers(0, 256, (9, 64, 64), dtype=np.uint8),
    lambda rng: rng.random((9, 64, 64, 3)),
    lambda rng: rng.random((9, 64, 64, 3)).astype(np.float32) * 255,
    lambda rng: torch.rand(9, 64, 64, 3),
    lambda rng: np.full((9, 64, 64, 3), np.nan),
    lambda rng: rng.integers(0, 256, (9, 64, 64, 5), dtype=np.uint8),
    lambda rng: "not a video",
    lambda rng: None,
], ids=["noise", "black", "blank", "wrong-size", "one-frame", "no-frames", "empty", "grey", "float01",
        "float255", "torch", "nan", "five-channels", "string", "none"])
def test_garbage_never_raises_or_succeeds(make):
    puzzle = puzzle_of("easy", 0)
    assert_failed(TASK.verdict(make(np.random.default_rng(0)), puzzle, TINY))


def test_truth_first_frame_only_fails():
    puzzle = puzzle_of("easy", 0)
    video = truth_video(puzzle)
    verdict = TASK.verdict(np.repeat(video[:1], len(video), axis=0), puzzle, TINY)
    assert_failed(verdict)
    assert verdict.components["layout_preserved"] == verdict.components["monotonic"] == 1
    assert verdict.components["fill"] < 1 and verdict.recall == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_labels_never_raise_or_succeed(data):
    puzzle = puzzle_of("tiny", data.draw(st.integers(0, 3)))
    frames = data.draw(st.integers(0, 5))
    side = data.draw(st.sampled_from([puzzle.size, puzzle.size, 3]))
    values = data.draw(st.lists(st.integers(-1, 12), min_size=frames * side * side, max_size=frames * side * side))
    labels = np.array(values, dtype=np.int8).reshape(frames, side, side)
    verdict = TASK.verify(Parsed(labels, data.draw(st.floats(0, 1))), puzzle)
    assert_failed(verdict)


def test_parse_and_verify_are_fast():
    puzzles = [puzzle_of("expert", s) for s in range(10)]
    videos = [truth_video(p) for p in puzzles]
    start = time.perf_counter()
    for _ in range(10):
        for puzzle, video in zip(puzzles, videos, strict=True):
            TASK.verdict(video, puzzle, TINY)
    rate = 100 / (time.perf_counter() - start)
    assert rate > 50, f"parse+verify at {rate:.0f} videos/s (expected thousands)"


# ------------------------------------------------------------------------------------------ forced video
def forced_puzzle(seed: int, level: str = "tiny-forced") -> FlowFreePuzzle:
    return TASK.generate(np.random.default_rng(seed), level)


def rotated(puzzle: FlowFreePuzzle, k: int) -> FlowFreePuzzle:
    """``puzzle`` under the dihedral image ``k`` of its board."""
    board = dihedral(TASK.initial_state(puzzle), k)
    pairs = tuple(tuple(tuple(int(v) for v in cell) for cell in np.argwhere(board == i + 1))
                  for i in range(puzzle.num_colors))
    return FlowFreePuzzle(size=puzzle.size, endpoints=pairs, unique=puzzle.unique, video=puzzle.video)


def test_forced_video_paints_forced_moves_frame_by_frame_then_holds():
    frames = TINY.num_frames
    for seed in range(60):
        puzzle = forced_puzzle(seed)
        assert puzzle.video == "forced" and puzzle.unique
        solution = TASK.solve(puzzle)
        states = TASK.states(puzzle, solution, frames)
        assert len(states) == frames, "every tiny board fits the 9-frame video"
        reference = board_of(puzzle, solution)
        assert np.array_equal(states[0], TASK.initial_state(puzzle)) and np.array_equal(states[-1], reference)
        for t in range(1, frames):
            assert np.array_equal(states[t], forced_step(states[t - 1], puzzle, reference)), "a Markov step"
            changed = states[t] != states[t - 1]
            assert np.all(states[t - 1][changed] == 0) and np.all(states[t][changed] == reference[changed])
        assert np.array_equal(forced_step(reference, puzzle, reference), reference), "the solved board holds"
        # the rules and the guess commute with rotations and reflections: augmented videos are videos
        for k in range(8):
            assert np.array_equal(TASK.states(rotated(puzzle, k), TASK.solve(rotated(puzzle, k)), frames),
                                  dihedral(states, k))


def test_forced_step_paints_a_pipe_end_with_one_free_neighbour_and_a_cell_with_two_open_ones():
    # 3x3, red (1) from (0, 0) to (2, 0) around the left column; green (2) from (0, 1) to (2, 1) via the right
    puzzle = FlowFreePuzzle(size=3, endpoints=(((0, 0), (2, 0)), ((0, 1), (2, 1))), unique=True, video="forced")
    reference = np.array([[1, 2, 2], [1, 0, 2], [1, 2, 2]])
    assert reference[1, 1] == 0  # not a full solution: only the cells the rules reach matter here
    board = TASK.initial_state(puzzle)
    step = forced_step(board, puzzle, reference)
    # (1, 0) is the only free neighbour of red's (0, 0) and (2, 0); (0, 2) has two open neighbours, one green
    assert step[1, 0] == 1 and step[0, 2] == 2 and step[2, 2] == 2


def test_forced_step_against_a_solution_the_rules_contradict_names_the_cell():
    puzzle = FlowFreePuzzle(size=3, endpoints=(((0, 0), (2, 0)), ((0, 1), (2, 1))), unique=True, video="forced")
    not_a_solution = np.array([[1, 2, 2], [2, 0, 2], [1, 2, 2]])  # red's only way out of (0, 0) painted green
    with pytest.raises(ValueError, match=r"cell \(1, 0\) colour 1, the solution has 2"):
        forced_step(TASK.initial_state(puzzle), puzzle, not_a_solution)


@pytest.mark.parametrize("level", ["tiny-forced", "easy-forced"])
def test_forced_video_draws_pale_pipes_and_survives_mp4_noise_and_resizing(level):
    for seed in range(3):
        puzzle = forced_puzzle(seed, level)
        spec = RenderSpec(num_frames=17) if level == "easy-forced" else TINY
        states = TASK.states(puzzle, TASK.solve(puzzle), spec.num_frames)
        video = TASK.render(puzzle, states, spec)
        parsed = TASK.parse(video, puzzle, spec)
        assert parsed.confidence == 1.0 and np.array_equal(parsed.labels, states)
        colours = {tuple(px) for px in video[-1].reshape(-1, 3)}
        assert tuple(TASK.colors(spec)[1 + 10]) in colours, "pipe cells are drawn in the pale shade"
        assert_survives(video, puzzle, spec, seed)


def test_forced_puzzle_needs_enough_frames_and_a_unique_level():
    puzzle = next(p for p in (forced_puzzle(s) for s in range(100))
                  if len(TASK.states(p, TASK.solve(p))) > 3)
    with pytest.raises(ValueError, match="needs .* frames"):
        TASK.states(puzzle, TASK.solve(puzzle), 3)
    with pytest.raises(ValueError, match="require_unique"):
        FlowFreeDifficulty(size=4, min_colors=2, max_colors=3, require_unique=False, video="forced")
    with pytest.raises(ValueError, match="`video`"):
        FlowFreePuzzle(size=4, endpoints=(((0, 0), (0, 1)),), video="spiral")
    assert "forces" in TASK.prompt(puzzle) and "forces" not in TASK.prompt(puzzle_of("tiny", 0))
