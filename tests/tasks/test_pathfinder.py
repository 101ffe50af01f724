"""PathFinder: the fewest-junctions route, clean road networks, VR-Bench's goal choice, records and errors.

The shared agent checks (fuzz, degradations, rendering round trips, trajectory metrics) run over it in test_agent.py
and test_fuzz.py."""

from __future__ import annotations

import numpy as np
import pytest

from videoreason.tasks.grid import neighbors
from videoreason.tasks.pathfinder import (
    GROUND,
    JUNCTION,
    PathFinder,
    PathFinderDifficulty,
    PathFinderPuzzle,
    fewest_junctions_route,
)
from videoreason.tasks.render import RenderSpec

# a short way along the top through two junctions, a longer one along the bottom through none
TWO_WAYS = PathFinderPuzzle(rows=("S-o-o-G", "-.....-", "-------", ".......", ".......", ".......", "......."))


def verdict(task, puzzle, walk, frames=17):
    board = task.board(puzzle)
    walk = [*walk, *[walk[-1]] * (frames - len(walk))]
    spec = RenderSpec(height=56, width=56, num_frames=frames)
    return task.verdict(task.render(puzzle, np.stack([board.with_agent(c) for c in walk]), spec), puzzle, spec)


def test_the_reference_passes_the_fewest_junctions_then_the_fewest_moves():
    task = PathFinder()
    route = task.solve(TWO_WAYS).path
    assert route == ((0, 0), (1, 0), (2, 0), (2, 1), (2, 2), (2, 3), (2, 4), (2, 5), (2, 6), (1, 6), (0, 6))
    top = [(0, c) for c in range(7)]
    short = verdict(task, TWO_WAYS, top)  # legal and on the goal, but not VR-Bench's answer
    assert short.success and not short.exact_match and short.components["efficiency"] == 1.0
    assert verdict(task, TWO_WAYS, list(route)).exact_match
    across = [(0, 0), (1, 0), (1, 1), (0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 6)]  # cuts over the ground
    cut = verdict(task, TWO_WAYS, across)
    assert not cut.success and cut.components["hazard_free"] < 1.0
    # among equally few junctions the shorter route wins
    grid = TWO_WAYS.grid
    assert fewest_junctions_route(task.board(TWO_WAYS).moves, np.zeros_like(grid, dtype=bool), (0, 0), (0, 6)) == top


@pytest.mark.parametrize("level", list(PathFinder.levels))
def test_generated_networks_are_clean_seeded_and_within_the_level(level):
    task = PathFinder()
    difficulty = task.levels[level]
    for seed in range(30):
        puzzle = task.generate(np.random.default_rng(seed), level)
        grid = puzzle.grid
        road = grid != GROUND
        for cell in map(tuple, np.argwhere(road & (grid < JUNCTION))):  # a road cell continues a chain, no more
            assert sum(road[nb] for nb in neighbors(cell, grid.shape)) == 2, (level, seed, cell)
        route = task.solve(puzzle).path
        passed = sum(int(grid[c] >= JUNCTION) for c in route)
        assert passed >= difficulty.min_junctions and len(route) - 1 <= difficulty.max_moves
        # VR-Bench's goal: no other junction's route within the level passes more junctions
        junction = grid >= JUNCTION
        for other in map(tuple, np.argwhere(junction)):
            other_route = fewest_junctions_route(task.board(puzzle).moves, junction, puzzle.start, other)
            if other_route and len(other_route) - 1 <= difficulty.max_moves:
                assert sum(int(junction[c]) for c in other_route) <= passed
    again = task.generate(np.random.default_rng(7), level)
    assert again == task.generate(np.random.default_rng(7), level)


def test_records_round_trip_and_errors_name_the_problem():
    task = PathFinder()
    puzzle = task.generate(np.random.default_rng(0), "easy")
    assert task.puzzle_from_dict(puzzle.to_dict()) == puzzle
    for rows, match in ((("S-G",), "square"), (("S-x", "...", "..G"), "unknown characters"),
                        (("S-.", "...", "..."), "exactly one 'S' and one 'G'")):
        with pytest.raises(ValueError, match=match):
            PathFinderPuzzle(rows=rows)
    with pytest.raises(ValueError, match="no road from the start to the goal"):
        task.solve(PathFinderPuzzle(rows=("S.G", "...", "...")))
    with pytest.raises(ValueError, match="`spacing` must be in"):
        PathFinderDifficulty(size=5, spacing=1, loops=0.1, min_junctions=3, max_moves=8)
    with pytest.raises(ValueError, match="no 5x5 road network with a route through 12 junctions"):
        task.generate(np.random.default_rng(0),
                      PathFinderDifficulty(size=5, spacing=2, loops=0.1, min_junctions=12, max_moves=24))
