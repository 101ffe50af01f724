"""Contact sheets people look at: labelled rows, verdict colours, ground truth beside, tiny frames scaled up."""

from __future__ import annotations

import numpy as np
import pytest

from videoreason.media import FAILURE, SUCCESS, Tile, contact_sheet


def video(value: int, frames: int = 5, size: int = 16) -> np.ndarray:
    return np.full((frames, size, size, 3), value, dtype=np.uint8)


def test_rows_are_labelled_framed_in_their_verdict_and_scaled_up():
    sheet = contact_sheet([Tile(video(50), "maze_0", True), Tile(video(90), "maze_1", False)], gap=4)
    scale = 96 // 16  # 16-px frames drawn 6x, so a block is visible
    row = 14 + 2 * scale + 96  # header, border, frames
    assert sheet.shape[0] == 2 * row + 4
    assert tuple(sheet[14, 10]) == SUCCESS and tuple(sheet[row + 4 + 14, 10]) == FAILURE  # top borders
    assert (sheet[14 + scale + 10, scale + 10] == 50).all()  # the first frame, scaled
    header = sheet[:14]
    assert (header < 200).any() and (header == 255).mean() > 0.8  # text on white


def test_the_ground_truth_sits_beside_the_generated_frames():
    alone = contact_sheet([Tile(video(50), "a", True)])
    beside = contact_sheet([Tile(video(50), "a", True, reference=video(200))])
    assert beside.shape[0] == alone.shape[0] and beside.shape[1] > 1.9 * alone.shape[1]
    assert (beside[:, -20:] == 200).any() and not (alone == 200).any()


def test_bare_videos_keep_the_plain_sheet():
    sheet = contact_sheet([video(50, size=120), video(90, size=120)], frames=3, gap=2)
    assert sheet.shape == (2 * 120 + 2, 3 * 120 + 2 * 2, 3)
    with pytest.raises(ValueError, match="at least one"):
        contact_sheet([])
