"""Learning curves: the interval of a validation counts the puzzles the run really validated on."""

from __future__ import annotations

from videoreason.eval.curves import validation_size


def test_validation_size_is_the_split_or_num_val_puzzles_whichever_is_smaller(maze_dataset, tmp_path):
    root = str(maze_dataset)  # 2 val, 4 test puzzles
    assert validation_size({"root": root, "num_val_puzzles": 8}) == 2
    assert validation_size({"root": root, "num_val_puzzles": 1}) == 1
    assert validation_size({"root": root, "num_val_puzzles": 8, "val_split": "test"}) == 4
    assert validation_size({"root": str(tmp_path / "moved"), "num_val_puzzles": 8}) == 8  # gone: it cannot say
    assert validation_size({"num_val_puzzles": 3}) == 3
