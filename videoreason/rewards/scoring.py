"""Parse once, score many: turn a batch of videos into `Verdict` records, optionally on a CPU thread pool.

``verdicts_for`` parses and verifies each video once; every reward then reads the verdicts. One sample that
cannot be parsed or verified (or whose puzzle record is invalid) gets the task's zero verdict and a warning naming
it, and the batch goes on. `VerdictPool` runs ``verdicts_for`` in background threads so scoring a batch on the CPU
overlaps with generating the next rollouts on the GPU.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from videoreason.tasks.base import Task, resolve_task, safe_verdict
from videoreason.tasks.render import RenderSpec
from videoreason.tasks.verdict import Verdict


def _as_numpy_videos(videos: Any) -> Sequence[Any]:
    """A batch ``[B, F, H, W, 3]`` (numpy, tensor, or a list of videos) as a sequence of per-sample videos."""
    if hasattr(videos, "detach"):  # torch tensor, without importing torch here
        videos = videos.detach().cpu().numpy()
    if isinstance(videos, np.ndarray):
        if videos.ndim != 5:
            raise ValueError(f"`videos` must be a batch [B, F, H, W, 3], got shape {tuple(videos.shape)}")
        return list(videos)
    return [v.detach().cpu().numpy() if hasattr(v, "detach") else v for v in videos]


def _per_sample(value: Any, size: int, name: str) -> list[Any]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [value] * size
    if len(value) != size:
        raise ValueError(f"`{name}` has {len(value)} entries for a batch of {size} videos")
    return list(value)


def verdict_of(video: Any, puzzle: Any, task: Task, spec: RenderSpec, sample_id: str = "?") -> Verdict:
    """``safe_verdict``, with a warning naming ``sample_id`` when it gave the zero verdict for an error."""
    verdict, error = safe_verdict(task, video, puzzle, spec)
    if error is not None:
        warnings.warn(f"{task.name} could not score sample {sample_id!r} ({error}); giving it a zero verdict",
                      RuntimeWarning, stacklevel=2)
    return verdict


def verdicts_for(
    videos: Any,
    puzzles: Sequence[Any],
    tasks: str | Sequence[str],
    spec: RenderSpec,
    ids: Sequence[str] | None = None,
) -> list[Verdict]:
    """One `Verdict` per video.

    Args:
        videos: uint8 ``[B, F, H, W, 3]`` (numpy array or tensor), or a sequence of ``[F, H, W, 3]`` videos.
        puzzles: one puzzle per video: the task's puzzle record or its JSON dict.
        tasks: task name (or class path) of each video, or one name for the whole batch.
        spec: how the videos were rendered (resolution, frames, palette).
        ids: sample names for warnings; default: the index in the batch.
    """
    clips = _as_numpy_videos(videos)
    size = len(clips)
    puzzles = _per_sample(puzzles, size, "puzzles") if not isinstance(puzzles, Mapping) else [puzzles] * size
    names = _per_sample(tasks, size, "tasks")
    sample_ids = [str(i) for i in (_per_sample(ids, size, "ids") if ids is not None else range(size))]
    resolved = {name: resolve_task(name) for name in set(names)}
    return [verdict_of(clip, puzzle, resolved[name], spec, sid)
            for clip, puzzle, name, sid in zip(clips, puzzles, names, sample_ids, strict=True)]


class VerdictPool:
    """Background CPU scoring: ``submit`` returns a future of ``verdicts_for``'s list while the caller goes on.

    Videos are copied at submission, so the caller may reuse its buffers. Use as a context manager or ``close()``.

    Args:
        workers: threads; each scores one submitted batch at a time, so up to ``workers`` batches run at once.
    """

    def __init__(self, workers: int = 2) -> None:
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"`workers` must be a positive integer, got {workers!r}")
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="videoreason-verdicts")

    def submit(
        self,
        videos: Any,
        puzzles: Sequence[Any],
        tasks: str | Sequence[str],
        spec: RenderSpec,
        ids: Sequence[str] | None = None,
    ) -> Future[list[Verdict]]:
        """Schedule ``verdicts_for(videos, puzzles, tasks, spec, ids)``; see there for the arguments."""
        clips = [np.array(v, copy=True) for v in _as_numpy_videos(videos)]
        puzzles = list(puzzles) if not isinstance(puzzles, Mapping) else puzzles
        tasks = tasks if isinstance(tasks, str) else list(tasks)
        ids = list(ids) if ids is not None else None
        return self._executor.submit(verdicts_for, clips, puzzles, tasks, spec, ids)

    def close(self, wait: bool = True) -> None:
        """Stop accepting work; with ``wait``, finish what was submitted first."""
        self._executor.shutdown(wait=wait)

    def __enter__(self) -> VerdictPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
