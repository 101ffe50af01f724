"""Contact sheets: a few frames of several videos in one PNG, for people to look at."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from videoreason.tasks.render import frame_state_indices


def contact_sheet(videos: Sequence[np.ndarray], frames: int = 5, gap: int = 4) -> np.ndarray:
    """One row per video showing ``frames`` evenly spaced frames (first and last included), uint8 ``[H, W, 3]``.

    Videos may differ in size; each row is padded to the widest frame.
    """
    if not videos:
        raise ValueError("contact_sheet needs at least one video")
    rows = []
    for video in videos:
        picks = video[np.unique(frame_state_indices(len(video), frames))]  # [k, H, W, 3]
        pad = np.zeros((picks.shape[1], gap, 3), dtype=np.uint8)
        rows.append(np.concatenate([x for frame in picks for x in (frame, pad)][:-1], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, gap), (0, width - r.shape[1]), (0, 0))) for r in rows]
    return np.concatenate(rows, axis=0)[:-gap]
