"""Score a dataset's videos (or another model's videos with the same file names) against the rules."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from videoreason.data.dataset import load_sample, load_spec, read_rows
from videoreason.media import Tile, contact_sheet, decode_video
from videoreason.tasks.agent import VR_BENCH_SETTINGS, TrajectorySettings, trajectory_settings
from videoreason.tasks.base import safe_verdict
from videoreason.tasks.render import RenderSpec
from videoreason.tasks.verdict import failed_verdict


def verify_row(root: str, row: dict[str, str], spec: RenderSpec, videos: str | None = None) -> dict[str, Any]:
    """Parse and verify one sample's video (``safe_verdict``); a missing or undecodable video, or one whose parse or
    verification raised, scores 0 with a ``status`` (``missing``, ``unreadable``, ``error``; the error is kept).

    Args:
        root: dataset folder (puzzles and reference solutions).
        row: its metadata row.
        spec: the dataset's render spec (board geometry).
        videos: folder with videos named like the dataset's ``videos/<id>.mp4``; default: the dataset's own.
    """
    sample = load_sample(root, row)
    path = Path(root) / row["video"] if videos is None else Path(videos) / Path(row["video"]).name
    status, error = "ok", None
    if not path.is_file():
        status = "missing"
    else:
        try:
            frames = decode_video(path)
        except ValueError:
            status = "unreadable"
    if status == "ok":
        verdict, error = safe_verdict(sample.task, frames, sample.puzzle, spec)
        status = "ok" if error is None else "error"
    else:
        verdict = failed_verdict(sample.task.component_names, 0.0, sample.task.failed_trajectory)
    return {"id": row["id"], "task": row["task"], "difficulty": row["difficulty"], "split": row["split"],
            "status": status, "error": error or "", "confidence": verdict.confidence, **verdict.metrics()}


def _verify(args: tuple[str, dict[str, str], RenderSpec, str | None, TrajectorySettings]) -> dict[str, Any]:
    *row, settings = args
    with trajectory_settings(settings):
        return verify_row(*row)


def verify_dataset(
    root: str | Path,
    split: str | None = None,
    videos: str | Path | None = None,
    workers: int | None = None,
    progress: bool = True,
    ids: set[str] | None = None,
    trajectory: TrajectorySettings = VR_BENCH_SETTINGS,
) -> list[dict[str, Any]]:
    """Per-sample verdicts for every row of ``root`` (optionally one split), using all cores.

    Args:
        root: dataset folder.
        split: only this split (default: all rows).
        videos: score videos from this folder instead of the dataset's ground truth (same file names).
        workers: processes (default: all cores).
        progress: show a progress bar.
        ids: only rows with these ids.
        trajectory: points and tolerance of agent videos' ``trajectory_pr``.
    """
    rows = [r for r in read_rows(root, split=split) if ids is None or r["id"] in ids]
    if not rows:
        raise ValueError(f"dataset {root} has no rows" + (f" in split {split!r}" if split else ""))
    spec = load_spec(root)
    jobs = [(str(root), row, spec, None if videos is None else str(videos), trajectory) for row in rows]
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    bar = dict(total=len(jobs), desc="verify", unit="video", disable=not progress)
    if workers == 1:
        return [_verify(j) for j in tqdm(jobs, **bar)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return list(tqdm(pool.imap(_verify, jobs, chunksize=8), **bar))


def sample_tiles(root: str | Path, rows: Sequence[dict[str, str]], videos: str | Path | None = None,
                 results: Sequence[dict[str, Any]] = (), limit: int | None = None) -> list[Tile]:
    """Contact-sheet tiles of the first ``limit`` readable videos of ``rows``, each labelled with its id and, from
    ``results``, its verdict; another model's ``videos`` get the dataset's own video beside them (ground truth)."""
    success = {r["id"]: bool(r["success"]) for r in results if r.get("status", "ok") == "ok"}
    tiles: list[Tile] = []
    for row in rows:
        if limit is not None and len(tiles) >= limit:
            break
        path = Path(root) / row["video"] if videos is None else Path(videos) / Path(row["video"]).name
        if not path.is_file():
            continue
        try:
            video = decode_video(path)
        except ValueError:
            continue
        truth = decode_video(Path(root) / row["video"]) if videos is not None else None
        tiles.append(Tile(video, row["id"], success.get(row["id"]), truth))
    return tiles


def write_preview(root: str | Path, out: str | Path, videos: str | Path | None = None, per_task: int = 2,
                  results: Sequence[dict[str, Any]] = ()) -> Path:
    """A PNG contact sheet of the first ``per_task`` readable videos of every task (``sample_tiles``)."""
    from videoreason.media import encode_png

    rows: dict[str, list[dict[str, str]]] = {}
    for row in read_rows(root):
        rows.setdefault(row["task"], []).append(row)
    tiles = [t for task in sorted(rows) for t in sample_tiles(root, rows[task], videos, results, per_task)]
    if not tiles:
        raise ValueError(f"no readable videos to preview in {videos or root}")
    out = Path(out)
    out.write_bytes(encode_png(contact_sheet(tiles)))
    return out
