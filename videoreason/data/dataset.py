"""The on-disk dataset layout, read side.

::

    DIR/
      spec.json            the RenderSpec every video of the dataset was rendered with
      metadata.csv         one row per sample: id, video, prompt, input_image, task, puzzle, split, seed, ...
      videos/<id>.mp4      the ground-truth solution video (H.264)
      images/<id>.png      its first frame, the conditioning image
      puzzles/<id>.json    {"task", "difficulty", "puzzle", "solution"}

``video``, ``input_image`` and ``puzzle`` are paths relative to ``DIR``, so the folder can be moved and read by
other Wan trainers (DiffSynth-Studio style ``video,prompt,input_image`` columns).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videoreason.tasks.base import Task, resolve_task
from videoreason.tasks.records import JsonRecord
from videoreason.tasks.render import RenderSpec

COLUMNS = ("id", "video", "prompt", "input_image", "task", "puzzle", "split", "seed", "difficulty",
           "num_frames", "height", "width", "fps")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sample:
    """One dataset row with its puzzle and reference solution loaded."""

    row: dict[str, str]
    task: Task
    puzzle: JsonRecord
    solution: JsonRecord

    @property
    def id(self) -> str:
        return self.row["id"]


def metadata_path(root: str | Path) -> Path:
    return Path(root) / "metadata.csv"


def read_rows(root: str | Path, split: str | None = None, task: str | None = None) -> list[dict[str, str]]:
    """Complete rows of ``metadata.csv`` (a torn last line from an interrupted write is ignored).

    Raises:
        FileNotFoundError: ``root`` has no metadata.csv.
        ValueError: the header lacks required columns.
    """
    path = metadata_path(root)
    if not path.is_file():
        raise FileNotFoundError(f"no dataset at {root}: {path} does not exist")
    text = path.read_text()
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(text.splitlines())
    try:
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} lacks columns {missing}")
        return [r for r in reader
                if (split is None or r["split"] == split) and (task is None or r["task"] == task)]
    except csv.Error as err:  # e.g. a field over csv.field_size_limit(): not a metadata file we wrote
        raise ValueError(f"{path} is not a readable CSV file: {err}") from err


def load_spec(root: str | Path) -> RenderSpec:
    """The dataset's render spec."""
    path = Path(root) / "spec.json"
    if not path.is_file():
        raise FileNotFoundError(f"no dataset spec at {path}")
    try:
        return RenderSpec.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as err:
        raise ValueError(f"invalid render spec in {path}: {err}") from err


def row_problem(root: str | Path, row: dict[str, str]) -> str | None:
    """Why a row cannot be trained on (a file missing, a video whose header is unreadable or disagrees with the
    row's frames/size, a puzzle that does not validate), or ``None``. Reads headers and JSON, decodes nothing."""
    from videoreason.media import probe_video

    root = Path(root)
    for column in ("video", "puzzle"):
        if not (root / row[column]).is_file():
            return f"its {column} file {root / row[column]} is missing"
    try:
        shape = probe_video(root / row["video"])
        expected = (int(row["num_frames"]), int(row["height"]), int(row["width"]))
        if shape[0] == 0:  # the container does not record its frame count: compare the size only
            shape = (expected[0], *shape[1:])
        if shape != expected:
            return f"its video {root / row['video']} is {shape} (frames, height, width), the row says {expected}"
        load_sample(root, row)
    except ValueError as err:
        return str(err)
    return None


def load_sample(root: str | Path, row: dict[str, str]) -> Sample:
    """Load a row's puzzle and solution, validating them.

    Raises:
        ValueError: the puzzle file is missing, not JSON, or does not validate (the message names the file).
    """
    path = Path(root) / row["puzzle"]
    try:
        record: dict[str, Any] = json.loads(path.read_text())
        if not isinstance(record, dict):
            raise ValueError(f"expected a JSON object with 'puzzle' and 'solution', got {type(record).__name__}")
        task = resolve_task(row["task"])
        return Sample(row, task, task.puzzle_from_dict(record["puzzle"]), task.solution_from_dict(record["solution"]))
    except (OSError, json.JSONDecodeError, KeyError, ValueError) as err:
        raise ValueError(f"bad puzzle file {path} (sample {row.get('id')}): {err}") from err
