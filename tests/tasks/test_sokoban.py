"""Sokoban: solver legality and optimality, generation, JSON, render/parse round trips and verification."""

from __future__ import annotations

import heapq
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from videoreason.media import decode_video, encode_mp4
from videoreason.tasks.grid import dihedral
from videoreason.tasks.render import RenderSpec, frame_state_indices
from videoreason.tasks.sokoban import (
    BOX,
    BOX_ON_TARGET,
    FLOOR,
    PLAYER,
    PLAYER_ON_TARGET,
    TARGET,
    WALL,
    Sokoban,
    SokobanDifficulty,
    SokobanPuzzle,
    SokobanSolution,
    canonical_push_plan,
)
from videoreason.tasks.sokoban_solver import board_for, plan_to_moves, random_room, scatter, solve_pushes
from videoreason.tasks.verdict import Parsed

TASK = Sokoban()
TINY = RenderSpec()
WAN = RenderSpec.wan()
STEP = {"u": (-1, 0), "d": (1, 0), "l": (0, -1), "r": (0, 1)}


def play(puzzle: SokobanPuzzle, moves: str) -> tuple[set, int]:
    """Replay under the Sokoban rules, asserting every move is legal; returns the final boxes and pushes."""
    walls, boxes, player, pushes = set(puzzle.walls), set(puzzle.boxes), puzzle.player, 0

    def open_cell(cell):
        return 0 <= cell[0] < puzzle.height and 0 <= cell[1] < puzzle.width and cell not in walls

    for ch in moves:
        dr, dc = STEP[ch.lower()]
        nxt = (player[0] + dr, player[1] + dc)
        assert open_cell(nxt), f"walks into a wall at {nxt}"
        if ch.isupper():
            beyond = (nxt[0] + dr, nxt[1] + dc)
            assert nxt in boxes, f"push {ch} without a box at {nxt}"
            assert open_cell(beyond) and beyond not in boxes, f"pushes a box into {beyond}"
            boxes = boxes - {nxt} | {beyond}
            pushes += 1
        else:
            assert nxt not in boxes, f"walks into a box at {nxt}"
        player = nxt
    return boxes, pushes


def brute_force_pushes(puzzle: SokobanPuzzle) -> int | None:
    """Fewest pushes by Dijkstra over (player, boxes) states (walks cost 0, pushes 1); None if unsolvable."""
    walls = set(puzzle.walls)
    start = (puzzle.player, frozenset(puzzle.boxes))
    best, heap, goal = {start: 0}, [(0, 0, start)], frozenset(puzzle.targets)
    tick = 0
    while heap:
        cost, _, (player, boxes) = heapq.heappop(heap)
        if cost > best[(player, boxes)]:
            continue
        if boxes == goal:
            return cost
        for dr, dc in STEP.values():
            nxt = (player[0] + dr, player[1] + dc)
            if nxt in walls or not (0 <= nxt[0] < puzzle.height and 0 <= nxt[1] < puzzle.width):
                continue
            new_boxes, step = boxes, 0
            if nxt in boxes:
                beyond = (nxt[0] + dr, nxt[1] + dc)
                if beyond in walls or beyond in boxes:
                    continue
                new_boxes, step = boxes - {nxt} | {beyond}, 1
            state = (nxt, new_boxes)
            if cost + step < best.get(state, 1 << 30):
                best[state] = cost + step
                tick += 1
                heapq.heappush(heap, (cost + step, tick, state))
    return None


def generated(level: str, seed: int) -> tuple[SokobanPuzzle, SokobanSolution]:
    puzzle = TASK.generate(np.random.default_rng(seed), level)
    return puzzle, TASK.solve(puzzle)


def video_of(puzzle: SokobanPuzzle, states: np.ndarray, spec: RenderSpec = TINY) -> np.ndarray:
    return TASK.render(puzzle, states, spec)


def score(puzzle: SokobanPuzzle, states: np.ndarray, spec: RenderSpec = TINY):
    return TASK.verdict(video_of(puzzle, states, spec), puzzle, spec)


def assert_perfect(verdict) -> None:
    assert verdict.success and verdict.exact_match, verdict
    assert verdict.precision == verdict.recall == verdict.f1 == 1.0
    assert all(v == 1.0 for v in verdict.components.values()), verdict.components


# ------------------------------------------------------------------------------------------------ solver
@pytest.mark.parametrize(("level", "seeds", "brute"),
                         [("tiny", 150, 150), ("easy", 120, 25), ("medium", 30, 10), ("hard", 15, 0)])
def test_solver_is_legal_in_range_and_optimal(level: str, seeds: int, brute: int) -> None:
    difficulty = TASK.levels[level]
    for seed in range(seeds):
        puzzle, solution = generated(level, seed)
        assert len(puzzle.boxes) == difficulty.boxes and (puzzle.height, puzzle.width) == (
            difficulty.height, difficulty.width)
        boxes, pushes = play(puzzle, solution.moves)
        assert boxes == set(puzzle.targets), f"{level} seed {seed}: not solved"
        assert difficulty.min_pushes <= pushes <= difficulty.max_pushes, (level, seed, pushes)
        if seed < brute:
            assert pushes == brute_force_pushes(puzzle), f"{level} seed {seed}: not push-optimal"


def _random_level(seed: int, size: int, n_boxes: int, pulls: int | None) -> SokobanPuzzle:
    """Boxes scattered by ``pulls`` reverse-play pulls (solvable), or placed at random (``None``)."""
    rng = np.random.default_rng(seed)
    wall_mask = random_room(rng, size, size)
    walls = tuple((int(r), int(c)) for r, c in np.argwhere(wall_mask))
    floor = [(int(r), int(c)) for r, c in np.argwhere(~wall_mask)]
    pick = rng.permutation(len(floor))
    targets = tuple(sorted(floor[i] for i in pick[:n_boxes]))
    if pulls is None:
        boxes, player = tuple(floor[i] for i in pick[n_boxes:2 * n_boxes]), floor[pick[2 * n_boxes]]
    else:
        board = board_for(size, size, walls, targets)
        start = board.index(floor[pick[n_boxes]])
        moved, at = scatter(rng, board, {board.index(t) for t in targets}, start, pulls)
        boxes, player = tuple(board.cell(b) for b in moved), board.cell(at)
    return SokobanPuzzle(size, size, walls, targets, boxes, player)


@pytest.mark.parametrize(("size", "n_boxes", "count"), [(6, 1, 60), (7, 2, 40), (8, 2, 15), (7, 3, 10)])
def test_solver_matches_brute_force_and_heuristic_is_admissible(size: int, n_boxes: int, count: int) -> None:
    for seed in range(count):
        puzzle = _random_level(seed, size, n_boxes, pulls=30)
        plan = solve_pushes(puzzle)
        assert plan is not None and len(plan) == brute_force_pushes(puzzle), f"seed {seed}"
        board = board_for(puzzle.height, puzzle.width, puzzle.walls, puzzle.targets)
        boxes = {board.index(b) for b in puzzle.boxes}
        for done, (cell, letter) in enumerate(plan):  # the heuristic never exceeds the pushes still needed
            assert board.heuristic(sorted(boxes)) <= len(plan) - done
            box = board.index(cell)
            boxes = boxes - {box} | {box + board.offsets["UDLR".index(letter)]}
        assert boxes == set(board.targets)
        unsure = _random_level(seed, size, n_boxes, pulls=None)  # deadlock pruning never loses a solution
        plan = solve_pushes(unsure)
        assert (None if plan is None else len(plan)) == brute_force_pushes(unsure), f"random seed {seed}"


def test_solver_handmade_and_unsolvable() -> None:
    ring = [(r, c) for r in range(5) for c in range(7) if r in (0, 4) or c in (0, 6)]
    corridor = SokobanPuzzle(5, 7, tuple(ring), targets=((2, 5),), boxes=((2, 2),), player=(2, 1))
    assert TASK.solve(corridor).moves == "RRR"
    stuck = SokobanPuzzle(5, 7, tuple(ring), targets=((2, 3),), boxes=((1, 1),), player=(2, 2))  # cornered
    with pytest.raises(ValueError, match="no solution"):
        TASK.solve(stuck)
    still = np.stack([TASK.initial_state(stuck)] * 2)
    verdict = TASK.verify(Parsed(still, 1.0), stuck)  # no reference solution: scored, not raised
    assert not verdict.success and verdict.f1 == 0
    hard = TASK.generate(np.random.default_rng(0), "hard")
    with pytest.raises(ValueError, match="gave up"):
        solve_pushes(hard, node_limit=1)


# ------------------------------------------------------------------------------------------------ records
def test_generation_is_deterministic_and_varied() -> None:
    for level in TASK.levels:
        assert generated(level, 11)[0] == generated(level, 11)[0]
    assert len({generated("easy", seed)[0] for seed in range(6)}) == 6


def test_json_round_trip() -> None:
    for seed in range(5):
        puzzle, solution = generated("medium", seed)
        assert TASK.puzzle_from_dict(json.loads(json.dumps(puzzle.to_dict()))) == puzzle
        assert TASK.solution_from_dict(json.loads(json.dumps(solution.to_dict()))) == solution


@pytest.mark.parametrize(("change", "message"), [
    ({"height": 17}, "height"),
    ({"width": 2}, "width"),
    ({"boxes": [[2, 2], [2, 3]]}, "same count"),
    ({"targets": [], "boxes": []}, "at least one"),
    ({"boxes": [[0, 0]]}, "boxes.*walls"),
    ({"targets": [[0, 1]]}, "targets.*walls"),
    ({"player": [0, 2]}, "player.*wall"),
    ({"player": [2, 2]}, "player.*box"),
    ({"walls": [[0, 0], [0, 0]]}, "duplicate"),
    ({"targets": [[9, 1]]}, "outside"),
    ({"player": "a"}, "player"),
    ({"colour": 1}, "unknown"),
])
def test_invalid_puzzle_json_names_the_problem(change: dict, message: str) -> None:
    data = {"height": 5, "width": 5, "walls": [[0, 0], [0, 1], [0, 2]], "targets": [[3, 3]],
            "boxes": [[2, 2]], "player": [1, 1], **change}
    with pytest.raises(ValueError, match=message):
        TASK.puzzle_from_dict(data)


def test_invalid_records_raise() -> None:
    with pytest.raises(ValueError, match="missing"):
        TASK.puzzle_from_dict({"height": 5})
    with pytest.raises(ValueError, match="moves"):
        TASK.solution_from_dict({"moves": "uX"})
    with pytest.raises(ValueError, match="boxes"):
        SokobanDifficulty(6, 6, 0, 1, 4)


def test_states_reject_illegal_moves_and_coarsen_or_refuse() -> None:
    puzzle, solution = generated("tiny", 3)
    with pytest.raises(ValueError, match="wall"):
        TASK.states(puzzle, SokobanSolution(moves="u" * 6))
    moves = TASK.states(puzzle, solution)
    pushes = sum(ch.isupper() for ch in solution.moves)
    assert moves.shape[0] == len(solution.moves) + 1
    assert np.array_equal(moves[0], TASK.initial_state(puzzle))
    assert TASK.states(puzzle, solution, max_states=len(moves)).shape[0] == len(moves)  # fits: move level
    coarse = TASK.states(puzzle, solution, max_states=len(moves) - 1)
    assert coarse.shape[0] == pushes + 1 and np.array_equal(coarse[-1], moves[-1])
    with pytest.raises(ValueError, match="spec.num_frames"):
        TASK.states(puzzle, solution, max_states=pushes)
    hard = next(p for p, s in (generated("hard", k) for k in range(20)) if sum(map(str.isupper, s.moves)) > 8)
    with pytest.raises(ValueError, match=r"pushes.*`spec.num_frames` is 9"):
        TASK.states(hard, TASK.solve(hard), max_states=TINY.num_frames)


# --------------------------------------------------------------------------------------------- render/parse
@pytest.mark.parametrize(("spec", "level"), [(TINY, "tiny"), (TINY, "easy"), (WAN, "medium"), (WAN, "hard")])
def test_render_parse_recovers_states(spec: RenderSpec, level: str) -> None:
    for seed in range(3):
        puzzle, solution = generated(level, seed)
        states = TASK.states(puzzle, solution, spec.num_frames)
        parsed = TASK.parse(video_of(puzzle, states, spec), puzzle, spec)
        assert parsed.confidence == 1.0
        assert np.array_equal(parsed.labels, states[frame_state_indices(len(states), spec.num_frames)])


def test_push_style_shows_one_push_per_frame_and_verifies() -> None:
    spec = RenderSpec(height=48, width=48, num_frames=5)
    for seed in range(40):
        puzzle, solution = generated("tiny-push", seed)
        assert puzzle.video == "pushes" and generated("tiny", seed)[0].video == "moves"
        states = TASK.states(puzzle, solution, spec.num_frames)
        pushes = sum(ch.isupper() for ch in solution.moves)
        by_push = TASK.states(puzzle, solution)
        assert len(by_push) == pushes + 1  # even when the moves would fit the frames
        assert np.array_equal(states, np.concatenate([by_push] + [by_push[-1:]] * (5 - len(by_push))))
        assert_perfect(TASK.verdict(video_of(puzzle, states, spec), puzzle, spec))
    with pytest.raises(ValueError, match="`video` must be one of"):
        SokobanPuzzle(**{**puzzle.to_dict(), "video": "teleport"})
    assert TASK.puzzle_from_dict(json.loads(json.dumps(puzzle.to_dict()))) == puzzle


def _resize(video: np.ndarray, factor: float) -> np.ndarray:
    frames = torch.from_numpy(video).permute(0, 3, 1, 2).float()  # [F, 3, H, W]
    size = (round(video.shape[1] * factor), round(video.shape[2] * factor))
    out = torch.nn.functional.interpolate(frames, size=size, mode="bilinear", antialias=True)
    return out.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()


def _noisy(video: np.ndarray, rng: np.random.Generator, sigma: float = 8.0) -> np.ndarray:
    noise = rng.standard_normal(video.shape, dtype=np.float32) * sigma
    return np.clip(video + noise, 0, 255).astype(np.uint8)


def test_ground_truth_verifies_move_and_push_level_through_corruptions() -> None:
    rng = np.random.default_rng(0)
    puzzle, solution = next((p, s) for p, s in (generated("tiny", k) for k in range(50)) if len(s.moves) > 8)
    pushes = sum(ch.isupper() for ch in solution.moves)
    long_tiny = RenderSpec(num_frames=33)
    coarse = TASK.states(puzzle, solution, TINY.num_frames)  # push level: the moves do not fit 9 frames
    fine = TASK.states(puzzle, solution, long_tiny.num_frames)  # move level
    assert len(coarse) == pushes + 1 and len(fine) == len(solution.moves) + 1
    for spec, states in ((TINY, coarse), (long_tiny, fine), (WAN, fine)):
        video = video_of(puzzle, states, spec)
        assert_perfect(TASK.verdict(video, puzzle, spec))
        assert_perfect(TASK.verdict(decode_video(encode_mp4(video, spec.fps)), puzzle, spec))
        assert_perfect(TASK.verdict(_noisy(video, rng), puzzle, spec))
        if spec.height == 64:  # resizing the 64 px board is the hard case (and cheap)
            for factor in (0.9, 1.1):
                assert_perfect(TASK.verdict(_resize(video, factor), puzzle, spec))
    hard, hard_solution = generated("hard", 1)
    states = TASK.states(hard, hard_solution, WAN.num_frames)
    assert len(states) < len(hard_solution.moves) + 1  # push level at Wan's 33 frames
    video = video_of(hard, states, WAN)
    assert_perfect(TASK.verdict(decode_video(encode_mp4(video, WAN.fps)), hard, WAN))


# -------------------------------------------------------------------------------------------- broken videos
def _free_floor(state: np.ndarray) -> list[tuple[int, int]]:
    return [(int(r), int(c)) for r, c in np.argwhere(state == FLOOR)]


def test_broken_solutions_fail_and_lower_the_right_component() -> None:
    puzzle, solution = next((p, s) for p, s in (generated("easy", k) for k in range(50))
                            if sum(map(str.isupper, s.moves)) >= 3)
    states = TASK.states(puzzle, solution, TINY.num_frames)  # push level
    assert_perfect(score(puzzle, states))

    teleport = states.copy()  # the first push's box lands on a far free cell instead
    first = teleport[1]
    moved = tuple(np.argwhere(np.isin(first, (3, 4)) & ~np.isin(states[0], (3, 4)))[0])
    far = next(c for c in _free_floor(first) if abs(c[0] - moved[0]) + abs(c[1] - moved[1]) > 2)
    teleport[1][moved] = states[0][moved]  # floor or target again
    teleport[1][far] = BOX
    verdict = score(puzzle, teleport[:2])
    assert not verdict.success and verdict.components["legal_transitions"] < 1

    into_wall = states[:2].copy()  # the pushed box is shoved onto a wall cell
    inner = [(int(r), int(c)) for r, c in np.argwhere(into_wall[1] == WALL)]
    into_wall[1][moved] = states[0][moved]
    into_wall[1][inner[len(inner) // 2]] = BOX
    verdict = score(puzzle, into_wall)
    assert not verdict.success and verdict.components["legal_transitions"] < 1

    merged = np.delete(states, 1, axis=0)  # frame dropped: two pushes in one step
    verdict = score(puzzle, merged)
    assert not verdict.success and verdict.components["legal_transitions"] < 1

    short = states[:-1]  # stops before the last push
    verdict = score(puzzle, short)
    assert not verdict.success and verdict.components["boxes_on_target"] < 1
    assert verdict.components["legal_transitions"] == 1 and verdict.precision == 1 and verdict.recall < 1
    assert 0 <= verdict.components["progress"] < 1

    no_wall = states.copy()
    no_wall[2:, 0, 0] = FLOOR  # a wall vanishes
    verdict = score(puzzle, no_wall)
    assert not verdict.success and verdict.components["layout_preserved"] < 1

    two_players = states.copy()
    two_players[2][_free_floor(states[2])[0]] = PLAYER
    verdict = score(puzzle, two_players)
    assert not verdict.success and verdict.components["consistency"] < 1

    shuffled = states[np.random.default_rng(1).permutation(len(states))]
    assert not np.array_equal(shuffled, states)
    assert not score(puzzle, shuffled).success

    frames = states[frame_state_indices(len(states), TINY.num_frames)]
    unread = frames.copy()
    unread[4, 0, 0] = -1  # one cell the parser could not read
    verdict = TASK.verify(Parsed(unread, 0.99), puzzle)
    assert TASK.verify(Parsed(frames, 1.0), puzzle).success and not verdict.success

    still = np.repeat(states[:1], 5, axis=0)  # nothing happens
    verdict = score(puzzle, still)
    assert not verdict.success and verdict.components["progress"] == 0 and verdict.f1 == 0


def test_walks_and_pushes_need_a_reachable_player() -> None:
    ring = [(r, c) for r in range(5) for c in range(7) if r in (0, 4) or c in (0, 6)]
    puzzle = SokobanPuzzle(5, 7, (*ring, (1, 3), (3, 3)), targets=((2, 5),), boxes=((2, 3),), player=(2, 1))

    def legal(*positions) -> float:  # each position: (player, box)
        grids = [TASK.initial_state(replace(puzzle, player=p, boxes=(b,))) for p, b in positions]
        return TASK.verify(Parsed(np.stack(grids), 1.0), puzzle).components["legal_transitions"]

    start = ((2, 1), (2, 3))
    assert legal(start, ((1, 1), (2, 3)), ((2, 3), (2, 4)), ((2, 4), (2, 5))) == 1.0  # walk, walk+push, push
    assert legal(start, ((1, 5), (2, 3))) == 0.0  # walks through the box that blocks the gap
    assert legal(start, ((2, 3), (2, 2))) == 0.0  # pushes left from the unreachable side
    assert legal(start, ((2, 1), (2, 4))) == 0.0  # the box moves but the player does not follow
    assert legal(start, ((2, 3), (2, 5))) == 0.0  # the box slides two cells


def test_detour_solution_succeeds_without_exact_match() -> None:
    ring = tuple((r, c) for r in range(7) for c in range(7) if r in (0, 6) or c in (0, 6))
    puzzle = SokobanPuzzle(7, 7, ring, targets=((3, 4),), boxes=((3, 3),), player=(3, 1))
    detour = SokobanSolution(plan_to_moves(puzzle, [((3, 3), "U"), ((2, 3), "D"), ((3, 3), "R")]))
    verdict = score(puzzle, TASK.states(puzzle, detour, TINY.num_frames))
    assert verdict.success and not verdict.exact_match
    assert verdict.recall == 1 and verdict.precision == pytest.approx(1 / 3)


# ------------------------------------------------------------------------------------------------ fuzzing
def _assert_failed_safely(verdict) -> None:
    assert not verdict.success and not verdict.exact_match
    for value in (verdict.precision, verdict.recall, verdict.f1, *verdict.components.values()):
        assert 0.0 <= value <= 1.0
    assert set(verdict.components) == set(TASK.component_names)


def test_garbage_videos_never_raise_or_succeed() -> None:
    puzzle, _ = generated("tiny", 0)
    rng = np.random.default_rng(0)
    garbage = [
        rng.integers(0, 256, (9, 64, 64, 3), dtype=np.uint8),
        np.zeros((9, 64, 64, 3), np.uint8),
        np.full((9, 64, 64, 3), 128, np.uint8),
        np.full((9, 64, 64), 200, np.uint8),
        rng.integers(0, 256, (9, 20, 90, 3), dtype=np.uint8),
        rng.random((9, 64, 64, 3)),
        torch.rand(9, 64, 64, 3),
        np.zeros((0, 64, 64, 3), np.uint8),
        np.zeros((0,)),
        np.array([]),
        np.zeros((9, 64, 64, 5)),
        "not a video",
        None,
        np.full((9, 64, 64, 3), np.nan),
    ]
    for video in garbage:
        _assert_failed_safely(TASK.verdict(video, puzzle, TINY))
    one_frame = video_of(puzzle, TASK.states(puzzle, TASK.solve(puzzle), TINY.num_frames))[:1]
    _assert_failed_safely(TASK.verdict(one_frame, puzzle, TINY))
    odd = (np.full((4, 6, 6), 99, np.int8), np.zeros((4, 3, 3), np.int8), np.full((3, 6, 6), -1, np.int8))
    for labels in odd:
        _assert_failed_safely(TASK.verify(Parsed(labels, 1.0), puzzle))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labels=st.lists(st.integers(-1, 6), min_size=3 * 36, max_size=3 * 36), data=st.data())
def test_random_label_grids_score_within_bounds(labels: list[int], data) -> None:
    puzzle, solution = generated("tiny", data.draw(st.integers(0, 20)))
    grids = np.array(labels, dtype=np.int8).reshape(3, 6, 6)
    grids[0] = TASK.initial_state(puzzle)  # a plausible start, random continuation
    verdict = TASK.verify(Parsed(grids, 1.0), puzzle)
    _assert_failed_safely(verdict)


def position(puzzle: SokobanPuzzle, state: np.ndarray) -> SokobanPuzzle:
    """``puzzle`` with the player and boxes of a label grid (walls and targets are the puzzle's)."""
    boxes = tuple(tuple(int(v) for v in c) for c in np.argwhere(np.isin(state, (BOX, BOX_ON_TARGET))))
    player = tuple(int(v) for v in np.argwhere(np.isin(state, (PLAYER, PLAYER_ON_TARGET)))[0])
    return replace(puzzle, player=player, boxes=boxes)


def imaged(puzzle: SokobanPuzzle, k: int) -> SokobanPuzzle:
    """``puzzle`` rotated or reflected by the dihedral image ``k`` of its (square) room."""
    board = dihedral(TASK.initial_state(puzzle), k)
    cells = lambda *labels: tuple(tuple(int(v) for v in c) for c in np.argwhere(np.isin(board, labels)))  # noqa: E731
    return replace(puzzle, walls=cells(WALL), targets=cells(TARGET, BOX_ON_TARGET, PLAYER_ON_TARGET),
                   boxes=cells(BOX, BOX_ON_TARGET), player=cells(PLAYER, PLAYER_ON_TARGET)[0])


def test_push_video_is_optimal_a_function_of_each_frame_and_alike_in_every_rotation():
    symmetric_ties = 0
    for seed in range(40):
        puzzle = TASK.generate(np.random.default_rng(seed), "tiny-push")
        plan = canonical_push_plan(puzzle)
        assert len(plan) == len(solve_pushes(puzzle)), "push-optimal"
        states = TASK.states(puzzle, TASK.solve(puzzle), TINY.num_frames)
        assert TASK.verdict(TASK.render(puzzle, states, TINY), puzzle, TINY).exact_match
        for t in range(len(plan)):  # the rest of the plan depends on the position reached, nothing else
            assert canonical_push_plan(position(puzzle, states[t])) == plan[t:]
        for k in range(1, 8):
            turned = TASK.states(imaged(puzzle, k), TASK.solve(imaged(puzzle, k)), TINY.num_frames)
            if not np.array_equal(turned, dihedral(states, k)):
                # only a position that is its own image can choose between two images of one push
                assert any(np.array_equal(dihedral(s, j), s) for s in states for j in range(1, 8))
                symmetric_ties += 1
    assert symmetric_ties <= 8
