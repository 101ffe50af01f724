"""Agent-trajectory videos (TrapField, Maze's agent style, Maze3D): planners, the trajectory extractor, the published
trajectory metrics, truth videos under degradation, and each kind of corruption failing the right component."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from degraded import degraded

from videoreason.tasks.agent import (
    COMPONENTS,
    agent_cells,
    distances,
    straightest_shortest_path,
    trajectory_metrics,
)
from videoreason.tasks.base import resolve_task
from videoreason.tasks.render import RenderSpec
from videoreason.tasks.trapfield import TrapField, TrapFieldDifficulty, TrapFieldPuzzle

AGENT_TASKS = ("trapfield", "maze_agent", "maze3d", "pathfinder")
TINY = RenderSpec(height=56, width=56, num_frames=9)
LONG = RenderSpec(height=56, width=56, num_frames=17)  # room for detours
WAN = RenderSpec.wan()


def case(name: str, level: str = "tiny", seed: int = 0):
    task = resolve_task(name)
    puzzle = task.generate(np.random.default_rng(seed), level)
    return task, puzzle, task.board(puzzle), list(task.board(puzzle).reference)


def judge(task, puzzle, walk, spec=LONG):
    """The verdict of a video of the agent walking ``walk`` (one cell per frame, then waiting)."""
    board = task.board(puzzle)
    walk = [*walk, *[walk[-1]] * (spec.num_frames - len(walk))]
    states = np.stack([board.with_agent(c) for c in walk])
    return task.verdict(task.render(puzzle, states, spec), puzzle, spec)


def assert_perfect(verdict):
    assert verdict.success and verdict.exact_match
    assert verdict.precision == verdict.recall == verdict.f1 == 1.0
    assert verdict.components == dict.fromkeys(COMPONENTS, 1.0)
    assert verdict.trajectory == {"trajectory_pr": 1.0, "trajectory_sr": 1.0, "trajectory_sd": 0.0,
                                  "trajectory_em": 1.0}


# ------------------------------------------------------------------------------------------------ metrics
def test_published_metrics_on_hand_made_trajectories():
    line = np.array([[0.1, 0.5], [0.3, 0.5], [0.5, 0.5], [0.7, 0.5], [0.9, 0.5]])
    goal = (0.8, 0.4, 0.2, 0.2)
    assert trajectory_metrics(line, line, goal) == {"trajectory_pr": 1.0, "trajectory_sr": 1.0, "trajectory_sd": 0.0,
                                                   "trajectory_em": 1.0}
    paused = np.repeat(line, 2, axis=0)  # the same walk with a pause on every cell
    assert trajectory_metrics(paused, line, goal)["trajectory_em"] == 1.0
    # half the way, then off to the side: matched up to the first mismatch only, the goal never entered
    turned = np.array([[0.1, 0.5], [0.3, 0.5], [0.5, 0.5], [0.5, 0.7], [0.5, 0.9]])
    m = trajectory_metrics(turned, line, goal)
    assert 0.45 <= m["trajectory_pr"] <= 0.55 and m["trajectory_sr"] == 0.0 and m["trajectory_sd"] is None
    assert m["trajectory_em"] == 0.0
    # reaches the goal after a detour: SD = 0.8 / 0.8 ... the detour adds 0.4 -> SD 0.5 > 0.1, no EM
    detour = np.array([[0.1, 0.5], [0.1, 0.7], [0.1, 0.5], [0.3, 0.5], [0.5, 0.5], [0.7, 0.5], [0.9, 0.5]])
    m = trajectory_metrics(detour, line, goal)
    assert m["trajectory_sr"] == 1.0 and m["trajectory_sd"] == pytest.approx(0.5) and m["trajectory_em"] == 0.0
    assert m["trajectory_pr"] <= 0.02  # diverges right after the start
    # shorter than the reference yet in the goal box (a jump): SD negative is reported as undefined
    jump = np.array([[0.1, 0.5], [0.85, 0.5]])
    assert trajectory_metrics(jump, line, goal)["trajectory_sd"] is None
    assert trajectory_metrics(np.zeros((0, 2)), line, goal)["trajectory_pr"] == 0.0


def test_vr_bench_edge_cases_fewer_than_two_points_and_no_negative_zero():
    from videoreason.tasks.agent import TOO_SHORT, path_length

    line = np.array([[0.1, 0.5], [0.3, 0.5], [0.5, 0.5], [0.7, 0.5], [0.9, 0.5]])
    goal = (0.8, 0.4, 0.2, 0.2)
    # VR-Bench's evaluator returns its empty result (PR 0, SR 0, SD 0, EM 0) below 2 points, even on the goal
    on_goal = np.array([[0.9, 0.5]])
    assert trajectory_metrics(on_goal, line, goal) == TOO_SHORT == {
        "trajectory_pr": 0.0, "trajectory_sr": 0.0, "trajectory_sd": 0.0, "trajectory_em": 0.0}
    assert trajectory_metrics(np.zeros((0, 2)), line, goal) == TOO_SHORT
    assert trajectory_metrics(line, line[:1], goal) == TOO_SHORT  # a one-point reference too
    # an equally long walk whose length sums to a hair less than the reference's: SD 0.0, not -0.0
    other_stops = np.array([[0.1, 0.5], [0.2, 0.5], [0.7000000000000001, 0.5], [0.9, 0.5], [0.9, 0.5]])
    assert path_length(other_stops) / path_length(line) - 1 < 0  # -1.1e-16: rounds to -0.0
    for walk in (line, other_stops):
        sd = trajectory_metrics(walk, line, goal)["trajectory_sd"]
        assert sd == 0.0 and str(sd) == "0.0"
    still = np.array([[0.9, 0.5], [0.9, 0.5]])  # a reference that does not move: SD 0 when the goal is reached
    assert trajectory_metrics(line, still, goal)["trajectory_sd"] == 0.0


def test_points_and_tolerance_settings_change_the_precision_rate():
    from videoreason.tasks.agent import TrajectorySettings, trajectory_settings

    line = np.array([[0.1, 0.5], [0.3, 0.5], [0.5, 0.5], [0.7, 0.5], [0.9, 0.5]])
    goal = (0.8, 0.4, 0.2, 0.2)
    shifted = line + [0.0, 0.03]  # 3% of the frame off the reference all the way
    assert trajectory_metrics(shifted, line, goal)["trajectory_pr"] == 0.0  # VR-Bench's 0.01 default
    loose = TrajectorySettings(points=1000, tolerance=0.05)
    assert trajectory_metrics(shifted, line, goal, loose)["trajectory_pr"] == 1.0
    with trajectory_settings(loose):  # what `eval` and `data verify` set around the verdicts
        assert trajectory_metrics(shifted, line, goal)["trajectory_pr"] == 1.0
    assert trajectory_metrics(shifted, line, goal)["trajectory_pr"] == 0.0  # restored after the block
    turned = np.array([[0.1, 0.5], [0.3, 0.5], [0.5, 0.5], [0.5, 0.7], [0.5, 0.9]])
    fine = trajectory_metrics(turned, line, goal, TrajectorySettings(points=1000))["trajectory_pr"]
    assert fine != trajectory_metrics(turned, line, goal)["trajectory_pr"] and 0.45 <= fine <= 0.55
    for bad, match in (({"points": 1}, "`points` must be an integer >= 2"),
                       ({"tolerance": 0.0}, r"`tolerance` must be in \(0, 1\)")):
        with pytest.raises(ValueError, match=match):
            TrajectorySettings(**bad)


def test_straightest_shortest_path_turns_least():
    field = TrapField()
    puzzle = TrapFieldPuzzle(rows=("S...", "....", "....", "...G"))
    path = field.solve(puzzle).path
    assert len(path) == 7 and path[0] == (0, 0) and path[-1] == (3, 3)
    steps = np.diff(np.array(path), axis=0)  # [6, 2]
    turns = int(np.any(steps[1:] != steps[:-1], axis=1).sum())
    assert turns == 1 and path[1] == (0, 1)  # one turn; ties to the smaller next cell
    assert straightest_shortest_path(field.board(puzzle).moves, (0, 0), (3, 3)) == list(path)
    blocked = TrapFieldPuzzle(rows=("S.x.", "xx..", "....", "...G"))
    with pytest.raises(ValueError, match="no trap-free path"):
        field.solve(blocked)


# ------------------------------------------------------------------------------------------------ planners
SHORTEST_WALK_TASKS = [t for t in AGENT_TASKS if t != "pathfinder"]  # its route passes fewest junctions first


@pytest.mark.parametrize("name", SHORTEST_WALK_TASKS)
def test_planned_walks_are_shortest_legal_and_within_the_level(name):
    task = resolve_task(name)
    for level, difficulty in task.levels.items():
        for seed in range(200):
            _, _, board, walk = case(name, level, seed)
            assert walk[0] == board.start and walk[-1] == board.goal
            assert all(b in board.moves(a) for a, b in zip(walk, walk[1:], strict=False)), (level, seed)
            assert not any(board.hazards[c] for c in walk)
            assert len(walk) - 1 == distances(board.moves, board.start)[board.goal]
            most = getattr(difficulty, "max_moves", None) or difficulty.max_path_length
            assert difficulty.min_path_length <= len(walk) - 1 <= most, (level, seed)


def test_trapfield_levels_keep_their_density_and_generation_is_seeded():
    field = TrapField()
    for level, difficulty in field.levels.items():
        puzzle = field.generate(np.random.default_rng(3), level)
        traps = "".join(puzzle.rows).count("x")
        assert traps == round(difficulty.density * difficulty.size ** 2) and len(puzzle.rows) == difficulty.size
    draws = [field.generate(np.random.default_rng(s), "easy") for s in (7, 7, 8)]
    assert draws[0] == draws[1] != draws[2]
    with pytest.raises(ValueError, match="no 4x4 trap field"):
        field.generate(np.random.default_rng(0), TrapFieldDifficulty(size=4, density=0.5, min_path_length=14,
                                                                     max_moves=15))


def test_trapfield_json_round_trip_and_errors_name_the_problem():
    field = TrapField()
    puzzle = field.generate(np.random.default_rng(1), "medium")
    assert field.puzzle_from_dict(json.loads(json.dumps(puzzle.to_dict()))) == puzzle
    solution = field.solve(puzzle)
    assert field.solution_from_dict(json.loads(json.dumps(solution.to_dict()))) == solution
    with pytest.raises(ValueError, match="unknown characters"):
        field.puzzle_from_dict({"rows": ["S.", "#G"]})
    with pytest.raises(ValueError, match="exactly one 'S'"):
        field.puzzle_from_dict({"rows": ["..", ".G"]})
    with pytest.raises(ValueError, match="square"):
        field.puzzle_from_dict({"rows": ["S..", ".G"]})
    with pytest.raises(ValueError, match="density"):
        TrapFieldDifficulty(size=5, density=0.9, min_path_length=3, max_moves=8)


def test_a_given_reference_walk_is_the_solution_and_must_be_a_shortest_safe_walk():
    rows = ("S..", "...", "..G")
    given = TrapFieldPuzzle(rows=rows, reference=((0, 0), (1, 0), (1, 1), (2, 1), (2, 2)))
    assert TrapField().solve(given).path == given.reference == TrapField().board(given).reference
    assert TrapField().puzzle_from_dict(json.loads(json.dumps(given.to_dict()))) == given
    assert "reference" not in TrapFieldPuzzle(rows=rows).to_dict()  # puzzles without one keep their JSON
    for walk, match in ((((0, 0), (1, 1), (2, 2)), r"step 1, \(0, 0\) -> \(1, 1\), is not a move"),
                        (((0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 2)), "takes 6 moves; the shortest"),
                        (((0, 1), (0, 2), (1, 2), (2, 2)), "must run from the start"),
                        (((0, 0), (0, 7)), "leaves the 3x3 field")):
        with pytest.raises(ValueError, match=match):
            TrapFieldPuzzle(rows=rows, reference=walk)


# ------------------------------------------------------------------------------------------------ render / parse
@pytest.mark.parametrize("name", AGENT_TASKS)
@pytest.mark.parametrize("spec", [TINY, WAN], ids=["tiny", "wan"])
def test_extractor_reads_the_true_cell_sequence(name, spec):
    level = "tiny" if spec is TINY else "medium"
    for seed in range(3):
        task, puzzle, board, walk = case(name, level, seed)
        states = task.states(puzzle, task.solve(puzzle), spec.num_frames)
        parsed = task.parse(task.render(puzzle, states, spec), puzzle, spec)
        np.testing.assert_array_equal(parsed.labels, states)
        expected = walk + [walk[-1]] * (spec.num_frames - len(walk))
        assert agent_cells(parsed.labels, board.agent) == [[c] for c in expected]


@pytest.mark.parametrize("name", AGENT_TASKS)
def test_truth_videos_verify_perfectly_after_mp4_noise_and_resizing(name):
    for seed in range(3):
        task, puzzle, _, _ = case(name, "tiny", seed)
        video = task.render(puzzle, task.states(puzzle, task.solve(puzzle), TINY.num_frames), TINY)
        for kind, copy in degraded(video, TINY.fps, seed).items():
            verdict = task.verdict(copy, puzzle, TINY)
            assert verdict.success, (kind, seed)
            assert_perfect(verdict)
    task, puzzle, _, _ = case(name, "hard", 0)
    video = task.render(puzzle, task.states(puzzle, task.solve(puzzle), WAN.num_frames), WAN)
    assert_perfect(task.verdict(degraded(video, WAN.fps, 0)["mp4"], puzzle, WAN))


# ------------------------------------------------------------------------------------------------ corruptions
def a_hazard_next_to(board, walk):
    """(index in walk, hazard cell) of a hazard 4-adjacent to a walk cell (a trap, or a maze wall block)."""
    rows, cols = board.layout.shape
    for i, (r, c) in enumerate(walk[1:-1], start=1):
        for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
            cell = (r + dr, c + dc)
            if 0 <= cell[0] < rows and 0 <= cell[1] < cols and board.hazards[cell]:
                return i, cell
    raise AssertionError("no hazard next to the walk")


@pytest.mark.parametrize("name", AGENT_TASKS)
def test_each_corruption_fails_and_lowers_its_component(name):
    for seed in range(4):
        task, puzzle, board, walk = case(name, "tiny", seed)
        assert_perfect(judge(task, puzzle, walk))

        frozen = judge(task, puzzle, walk[:1])
        assert not frozen.success and frozen.components["goal_reached"] == 0.0
        assert frozen.components["progress"] == 0.0 and frozen.trajectory["trajectory_sr"] == 0.0
        assert frozen.components["continuity"] == 1.0  # waiting is legal, just not getting anywhere

        teleport = judge(task, puzzle, [walk[0], *walk[2:]])
        assert not teleport.success and teleport.components["continuity"] < 1.0
        assert teleport.components["goal_reached"] == 1.0

        i, hazard = a_hazard_next_to(board, walk)
        stepped = judge(task, puzzle, [*walk[:i + 1], hazard, *walk[i:]])
        assert not stepped.success and stepped.components["hazard_free"] < 1.0
        assert stepped.components["continuity"] < 1.0  # a move into a hazard is never legal

        detour = judge(task, puzzle, [walk[0], walk[1], walk[0], *walk[1:]])
        assert detour.success and not detour.exact_match  # legal and solved, but not the reference
        assert detour.components["efficiency"] == pytest.approx((len(walk) - 1) / (len(walk) + 1))
        assert detour.trajectory["trajectory_sd"] > 0 and detour.trajectory["trajectory_em"] == 0.0


@pytest.mark.parametrize("name", AGENT_TASKS)
def test_layout_changes_extra_agents_and_a_wrong_start_fail(name):
    task, puzzle, board, walk = case(name, "tiny", 1)
    states = task.states(puzzle, task.solve(puzzle), LONG.num_frames)

    def verdict_of(edited):
        return task.verdict(task.render(puzzle, edited, LONG), puzzle, LONG)

    changed = states.copy()
    hazard = tuple(np.argwhere(board.hazards)[0])
    changed[3:, hazard[0], hazard[1]] = board.layout[walk[1]]  # a hazard wiped from frame 3 on
    verdict = verdict_of(changed)
    assert not verdict.success and verdict.components["layout_preserved"] < 1.0
    assert verdict.components["goal_reached"] == 1.0

    doubled = states.copy()
    doubled[4][walk[0]] = board.agent  # a second agent left behind on the start
    verdict = verdict_of(doubled)
    assert not verdict.success and verdict.components["continuity"] < 1.0

    shifted = states.copy()
    shifted[0] = board.with_agent(walk[1])  # frame 0 is not the puzzle
    assert not verdict_of(shifted).success


def test_prompts_name_the_colours():
    task, puzzle, _, _ = case("trapfield")
    assert "trap" in task.prompt(puzzle) and "blue dot" in task.prompt(puzzle)
    task, puzzle, _, _ = case("maze_agent")
    assert "maze" in task.prompt(puzzle) and "blue dot" in task.prompt(puzzle)


@pytest.mark.parametrize(("start", "goal", "named"), [((4, 5), (3, 1), "start is on block (4, 5)"),
                                                      ((1, 1), (3, 2), "goal is on block (3, 2)")])
def test_maze_agent_refuses_a_start_or_goal_between_cells_by_name(start, goal, named):
    """VR-Bench mazes may put start and goal on passage blocks; the agent walks cell to cell, so such a maze is
    refused with the block named instead of yielding a ground truth that fails its own verifier."""
    from videoreason.tasks.maze import MazePuzzle

    rows = [list("#######"), list("#.....#"), list("#.###.#"), list("#.....#"), list("#.#.###"), list("#.....#"),
            list("#######")]
    for ch, (r, c) in (("S", start), ("G", goal)):
        rows[r][c] = ch
    puzzle = MazePuzzle(rows=tuple("".join(r) for r in rows))
    task = resolve_task("maze_agent")
    for use in (task.solve, task.board):
        with pytest.raises(ValueError, match=rf"the {re.escape(named)}.*must be on a maze cell"):
            use(puzzle)
