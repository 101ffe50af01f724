"""Dataset generation: puzzles -> planner solutions -> rendered videos, in parallel, atomic and resumable.

Every sample's files are written under temporary names and renamed, and its ``metadata.csv`` row is appended
(flushed and fsynced) only after all of them exist, so an interrupted run never lists a half-written sample;
running the same command again skips what is done and produces the same dataset as an uninterrupted run.

Seeds: sample ``i`` of split ``s`` with base seed ``b`` uses ``SPLIT_CODE[s] * 1e12 + b * 1e6 + i``, so seeds of
different splits can never coincide. Beyond seeds, a puzzle whose board is already present in another split of the
same task (small boards repeat), or for a ``dihedral`` task any rotation or reflection of such a board, is skipped,
so test puzzles are held out up to every transformation training may augment with.

A frame count too small for the level (``Task.max_frames``: its longest solution) is refused before anything is
written. A run that fails on an error removes what it wrote (the folder too, if it made it), so the corrected
command starts clean; an interrupted run (Ctrl-C, a killed process) keeps its finished samples for the resume. Every
run ends by rewriting the folder's ``README.md`` dataset card (``videoreason.data.card``).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import multiprocessing
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from videoreason.atomic import remove_stale_temps, write_atomic
from videoreason.data.card import write_card
from videoreason.data.dataset import COLUMNS, SPLITS, load_sample, metadata_path, read_rows
from videoreason.data.verify import write_preview
from videoreason.media import decode_video, encode_mp4, encode_png
from videoreason.tasks.base import MIN_CELL_PIXELS, Task, resolve_task
from videoreason.tasks.grid import dihedral_images
from videoreason.tasks.records import JsonRecord
from videoreason.tasks.render import RenderSpec

SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
MAX_BASE_SEED = 1_000_000
MAX_INDEX = 1_000_000


def puzzle_seed(split: str, seed: int, index: int) -> int:
    """The seed of sample ``index``; disjoint across splits by construction."""
    return SPLIT_CODE[split] * 10**12 + seed * MAX_INDEX + index


def puzzle_hash(task: Task, puzzle: JsonRecord) -> str:
    """Hash of the board a puzzle shows (its first frame), to detect the same board in two splits.

    For a ``dihedral`` task every rotation and reflection of a board hashes alike (the smallest hash of the 8
    images), so no test board is a rotated or mirrored training board.
    """
    board = task.initial_state(puzzle)
    images = dihedral_images(board) if task.dihedral else [board]
    return min(hashlib.sha1(f"{task.name}{image.shape}".encode() + np.ascontiguousarray(image).tobytes()).hexdigest()
               for image in images)


@dataclass(frozen=True)
class _Job:
    """What a worker needs to build one sample."""

    task: str
    difficulty: str
    split: str
    seed: int
    index: int
    root: str
    spec: dict[str, Any]


_FORBIDDEN: frozenset[str] = frozenset()


def _init_worker(forbidden: frozenset[str]) -> None:
    global _FORBIDDEN
    _FORBIDDEN = forbidden


def _build_sample(job: _Job) -> tuple[int, dict[str, Any] | None]:
    """Generate one sample's puzzle and write it (`write_sample`); ``None`` row if its puzzle is forbidden."""
    task = resolve_task(job.task)
    seed = puzzle_seed(job.split, job.seed, job.index)
    puzzle = task.generate(np.random.default_rng(seed), job.difficulty)
    if puzzle_hash(task, puzzle) in _FORBIDDEN:
        return job.index, None
    sample_id = f"{task.name}_{job.split}_{job.difficulty}_{job.index:06d}"
    spec = RenderSpec.from_dict(job.spec)
    return job.index, write_sample(task, puzzle, sample_id, Path(job.root), spec, job.split, seed, job.difficulty)


def write_sample(task: Task, puzzle: JsonRecord, sample_id: str, root: Path, spec: RenderSpec, split: str,
                 seed: int, difficulty: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Solve, render, self-verify and write one sample's video, first frame and puzzle record (with ``extra`` keys,
    e.g. where an imported level came from); returns its metadata row (not yet appended). A ground truth that does
    not verify after H.264 encoding raises a ``ValueError`` naming the sample, and nothing is written."""
    solution = task.solve(puzzle)
    try:
        video = task.render(puzzle, task.states(puzzle, solution, max_states=spec.num_frames), spec)
    except ValueError as err:
        raise ValueError(f"sample {sample_id}: {err}") from err
    mp4 = encode_mp4(video, spec.fps)
    verdict = task.verdict(decode_video(mp4), puzzle, spec)
    if not verdict.success:
        rows, cols = task.grid_shape(puzzle)
        raise ValueError(
            f"sample {sample_id}: its ground-truth video does not verify after H.264 encoding "
            f"({rows}x{cols} board in {spec.height}x{spec.width} px); use a larger --height/--width "
            f"or an easier --difficulty")
    record = {"task": task.name, "difficulty": difficulty, "puzzle": puzzle.to_dict(),
              "solution": solution.to_dict(), **(extra or {})}
    write_atomic(root / "videos" / f"{sample_id}.mp4", mp4)
    write_atomic(root / "images" / f"{sample_id}.png", encode_png(video[0]))
    write_atomic(root / "puzzles" / f"{sample_id}.json", json.dumps(record).encode())
    return {
        "id": sample_id, "video": f"videos/{sample_id}.mp4", "prompt": task.prompt(puzzle),
        "input_image": f"images/{sample_id}.png", "task": task.name, "puzzle": f"puzzles/{sample_id}.json",
        "split": split, "seed": seed, "difficulty": difficulty, "num_frames": spec.num_frames,
        "height": spec.height, "width": spec.width, "fps": spec.fps,
    }


def _prepare(root: Path, spec: RenderSpec) -> None:
    """Create the folders, check spec.json against ``spec``, drop temp files and a torn last metadata line."""
    for sub in ("videos", "images", "puzzles"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        remove_stale_temps(root / sub)
    spec_path = root / "spec.json"
    if spec_path.is_file():
        existing = json.loads(spec_path.read_text())
        if existing != spec.to_dict():
            keys = sorted(k for k in set(existing) | set(spec.to_dict())
                          if existing.get(k) != spec.to_dict().get(k))
            raise ValueError(f"{root} was rendered with a different spec (differs in {keys}); "
                             f"use another --out or the same spec")
    meta = metadata_path(root)
    if meta.is_file():
        data = meta.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(meta, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)


def _append_row(root: Path, row: dict[str, Any], spec: RenderSpec) -> None:
    """Append one complete metadata row, durably (header first for a new file; spec.json with the first sample, so
    a run that fails before it leaves no spec behind to refuse the corrected retry)."""
    if not (root / "spec.json").is_file():
        write_atomic(root / "spec.json", json.dumps(spec.to_dict(), indent=1).encode())
    meta = metadata_path(root)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    if not meta.is_file() or meta.stat().st_size == 0:
        writer.writeheader()
    writer.writerow(row)
    with open(meta, "a") as handle:
        handle.write(buffer.getvalue())
        handle.flush()
        os.fsync(handle.fileno())


def _forbidden_hashes(root: Path, task: Task, split: str) -> frozenset[str]:
    """Puzzle hashes of the task's *other* splits; also checks that no two splits share a seed."""
    rows = [r for r in read_rows(root) if r["task"] == task.name] if metadata_path(root).is_file() else []
    seeds: dict[str, set[str]] = {}
    for r in rows:
        seeds.setdefault(r["split"], set()).add(r["seed"])
    names = sorted(seeds)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            overlap = seeds[a] & seeds[b]
            if overlap:
                raise ValueError(f"{root}: {task.name} splits {a!r} and {b!r} share seeds {sorted(overlap)[:5]}")
    return frozenset(puzzle_hash(task, load_sample(root, r).puzzle) for r in rows if r["split"] != split)


def planned_spec(task: str, difficulty: str, preset: RenderSpec, out: str | Path, four_k_plus_1: bool = False,
                 **given: int) -> RenderSpec:
    """The spec of a ``data generate`` run: the ``given`` values (``height``, ``width``, ``num_frames``, ``fps``,
    ``cell``); the others from the folder's ``spec.json`` when it has one (frames only if they fit the level), else
    from ``preset`` made to fit the level: frames for its longest solution (``Task.max_frames``, 4k + 1 when
    ``four_k_plus_1``, for Wan's VAE) and pixels for its largest board (``Task.frame_size``). A ``cell`` below
    ``MIN_CELL_PIXELS`` is refused (such cells do not survive H.264)."""
    if (given.get("cell") or MIN_CELL_PIXELS) < MIN_CELL_PIXELS:
        raise ValueError(f"`cell` must be at least {MIN_CELL_PIXELS} pixels (smaller cells do not survive H.264), "
                         f"got {given['cell']}")
    task_obj = resolve_task(task)
    needed = task_obj.max_frames(difficulty) or 0
    spec_path = Path(out) / "spec.json"
    if spec_path.is_file():
        existing = RenderSpec.from_dict(json.loads(spec_path.read_text()))
        values = {"height": existing.height, "width": existing.width, "fps": existing.fps}
        if existing.num_frames >= needed:
            values["num_frames"] = existing.num_frames
        values.update(given)
        return dataclasses.replace(existing, **values)
    height, width = task_obj.frame_size(difficulty, preset.height, preset.width)
    frames = max(preset.num_frames, needed)
    values = {"height": height, "width": width, "num_frames": frames + (-(frames - 1) % 4 if four_k_plus_1 else 0)}
    return dataclasses.replace(preset, **{**values, **given})


def generate_dataset(
    task: str,
    out: str | Path,
    num: int,
    split: str = "train",
    seed: int = 0,
    difficulty: str = "easy",
    spec: RenderSpec | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Write (or complete) ``num`` samples of one task/split/difficulty into ``out``, and ``out/preview.png``: a few
    of its videos as a contact sheet.

    Args:
        task: task name (``maze``, ``flowfree``, ``sokoban``, ``trapfield``, ``maze_agent``,
            ``maze3d``, ``navigation``) or a Task class path.
        out: dataset folder; created if missing, completed if partially written.
        num: number of samples this task/split/difficulty group should hold.
        split: ``train``, ``val`` or ``test``.
        seed: base seed in [0, 1e6); the dataset is a pure function of (task, split, seed, difficulty, spec).
        difficulty: a level name of the task.
        spec: render spec; defaults to the tiny CPU spec. Must match the folder's existing spec.
        workers: processes to use (default: all cores).
        progress: show a progress bar.

    Returns:
        The dataset folder.
    """
    task_obj = resolve_task(task)
    task_obj.difficulty(difficulty)  # validates the level name early
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}")
    if not 0 <= seed < MAX_BASE_SEED:
        raise ValueError(f"`seed` must be in [0, {MAX_BASE_SEED}), got {seed}")
    if not 0 < num <= MAX_INDEX // 20:
        raise ValueError(f"`num` must be in [1, {MAX_INDEX // 20}], got {num}")
    spec = spec or RenderSpec.tiny()
    needed = task_obj.max_frames(difficulty)
    if needed is not None and spec.num_frames < needed:
        raise ValueError(f"`frames` {spec.num_frames} is too few for {task_obj.name} level {difficulty!r}: its "
                         f"longest solution needs {needed} frames; use at least {needed}, or leave `frames` out")
    root = Path(out)
    before = _Snapshot.of(root)
    try:
        _prepare(root, spec)
        _fill(task, task_obj, root, num, split, seed, difficulty, spec, workers, progress, before.written)
    except Exception:
        before.restore()
        raise
    write_preview(root, root / "preview.png")
    write_card(root)
    return root


@dataclass
class _Snapshot:
    """What a dataset folder held before a run, so that a failed run can put it back (``restore``)."""

    root: Path
    existed: bool
    had_spec: bool
    metadata_size: int | None
    written: list[str]  # ids of the samples this run added

    @classmethod
    def of(cls, root: Path) -> _Snapshot:
        meta = metadata_path(root)
        return cls(root, root.exists(), (root / "spec.json").is_file(),
                   meta.stat().st_size if meta.is_file() else None, [])

    def restore(self) -> None:
        """Remove what the run wrote: the folder it created, else its metadata rows, samples and spec.json."""
        if not self.existed:
            shutil.rmtree(self.root, ignore_errors=True)
            return
        meta = metadata_path(self.root)
        if self.metadata_size is None:
            meta.unlink(missing_ok=True)
        elif meta.is_file():
            with open(meta, "r+b") as handle:
                handle.truncate(self.metadata_size)
        for sample_id in self.written:
            for sub, ext in (("videos", "mp4"), ("images", "png"), ("puzzles", "json")):
                (self.root / sub / f"{sample_id}.{ext}").unlink(missing_ok=True)
        if not self.had_spec:
            (self.root / "spec.json").unlink(missing_ok=True)


def _fill(task: str, task_obj: Task, root: Path, num: int, split: str, seed: int, difficulty: str, spec: RenderSpec,
          workers: int | None, progress: bool, written: list[str]) -> None:
    """Build samples until the task/split/difficulty group holds ``num``; ``written`` collects the new ids."""
    forbidden = _forbidden_hashes(root, task_obj, split)
    group = [r for r in read_rows(root, split=split, task=task_obj.name) if r["difficulty"] == difficulty] \
        if metadata_path(root).is_file() else []
    have, done = len(group), {int(r["id"].rsplit("_", 1)[1]) for r in group}
    if have >= num:
        return
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=num, initial=have, desc=f"{task_obj.name}/{split}/{difficulty}", disable=not progress,
               unit="video")
    context = multiprocessing.get_context("fork")
    pool = context.Pool(workers, initializer=_init_worker, initargs=(forbidden,)) if workers > 1 else None
    if pool is None:
        _init_worker(forbidden)
    next_index, limit = 0, 20 * num + 100
    try:
        while have < num:
            batch = []
            while len(batch) < num - have and next_index < limit:  # no more: leftovers would be orphans
                if next_index not in done:
                    batch.append(_Job(task, difficulty, split, seed, next_index, str(root), spec.to_dict()))
                next_index += 1
            if not batch:
                raise ValueError(f"only {have} distinct {task_obj.name} puzzles of difficulty {difficulty!r} not "
                                 f"in other splits were found in {limit} tries; ask for fewer")
            results = pool.imap(_build_sample, batch, chunksize=2) if pool else map(_build_sample, batch)
            for _, row in results:
                if row is None:
                    continue
                written.append(row["id"])
                _append_row(root, row, spec)
                have += 1
                bar.update()
                if have >= num:
                    break
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        bar.close()
