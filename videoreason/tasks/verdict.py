"""What a parser reads from a video (`Parsed`) and what a verifier concludes (`Verdict`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from videoreason.tasks.render import CellGeometry

#: A parsed video is accepted for scoring only when at least this fraction of its cells was read confidently.
MIN_CONFIDENCE = 0.5



@dataclass
class Parsed:
    """What a parser read from a video.

    Attributes:
        labels: int8 array ``[F, R, C]``; the class index of every cell in every frame, ``-1`` where unsure.
        confidence: fraction of cells read with a clear margin (0 for garbage, 1 for a clean render).
        geometry: where each cell lies in the frame (for trajectory metrics in frame units); ``None`` when unknown.
    """

    labels: np.ndarray
    confidence: float
    geometry: CellGeometry | None = None

    @classmethod
    def unreadable(cls, shape: tuple[int, int]) -> Parsed:
        """A parse of a video that could not be read at all (no frames, wrong layout)."""
        return cls(labels=np.full((0, *shape), -1, dtype=np.int8), confidence=0.0)



@dataclass
class Verdict:
    """The verifier's judgement of one video.

    Attributes:
        success: every rule of the task holds (the SR metric averages this).
        precision: fraction of what the video drew that the reference solution also has.
        recall: fraction of the reference solution that the video drew.
        f1: harmonic mean of precision and recall.
        exact_match: success and the same trajectory as the reference solution.
        components: dense scores in [0, 1] measuring partial progress, by name.
        confidence: the parser's confidence.
        trajectory: the field's trajectory metrics of agent videos (`videoreason.tasks.agent`: PR, SR, SD, EM as
            published), ``None`` where undefined; empty for painted videos.
    """

    success: bool
    precision: float
    recall: float
    f1: float
    exact_match: bool
    components: dict[str, float] = field(default_factory=dict)
    confidence: float = 1.0
    trajectory: dict[str, float | None] = field(default_factory=dict)

    def metrics(self) -> dict[str, float | None]:
        """Flat ``name -> value`` view (success/exact_match as 0/1), for tables and rewards."""
        out = {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "success": float(self.success),
            "exact_match": float(self.exact_match),
        }
        out.update(self.components)
        out.update(self.trajectory)
        return out



def precision_recall_f1(predicted: set, reference: set) -> tuple[float, float, float]:
    """Set precision, recall and F1; an empty prediction has precision 0 (nothing right was drawn)."""
    hits = len(predicted & reference)
    precision = hits / len(predicted) if predicted else 0.0
    recall = hits / len(reference) if reference else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1



def failed_verdict(component_names: tuple[str, ...], confidence: float,
                   trajectory: Mapping[str, float | None] | None = None) -> Verdict:
    """The verdict of an unreadable video: nothing holds, every score is 0 (``trajectory``: an agent task's
    trajectory metrics of a video without a trajectory)."""
    return Verdict(False, 0.0, 0.0, 0.0, False, dict.fromkeys(component_names, 0.0), confidence, dict(trajectory or {}))
