"""Property-based fuzzing of the rule-based parsers / verifiers and the dataset reader.

The contract checked everywhere: no exception other than the documented one escapes, and every score is a finite
number in [0, 1]. ``Task.parse`` is documented never to raise on malformed input, so ``verdict`` must not raise at
all; the JSON record parsers and the dataset reader raise ``ValueError`` (``read_rows`` also
``FileNotFoundError``) and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from videoreason.data.datamodule import PuzzleVideoDataset
from videoreason.data.dataset import COLUMNS, load_sample, read_rows, row_problem
from videoreason.media import decode_video, probe_video
from videoreason.tasks.base import BUILTIN_TASKS, Task, resolve_task
from videoreason.tasks.render import RenderSpec
from videoreason.tasks.verdict import Verdict

TASKS = BUILTIN_TASKS
# every task's tiny level, and Maze3D's VR-Bench family (seed 0: the start on a ladder, several ladders, no S/G letters)
CASES = [*((name, "tiny") for name in TASKS), ("maze3d", "vr-tiny")]
SPEC = RenderSpec.tiny()


def fuzz(max_examples: int):
    """Hypothesis settings of this file: no deadline, no example database (no files left in the repo)."""
    return settings(max_examples=max_examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


@dataclass(frozen=True, repr=False)
class Case:
    task: Task
    puzzle: object
    solution: object
    video: np.ndarray  # the clean ground-truth video, uint8 [F, H, W, 3]

    def __repr__(self) -> str:  # short, for hypothesis' failure reports
        return f"Case({self.task.name}, {self.puzzle})"


@pytest.fixture(scope="module", params=CASES, ids=[f"{name}-{level}" for name, level in CASES])
def case(request) -> Case:
    name, level = request.param
    task = resolve_task(name)
    puzzle = task.generate(np.random.default_rng(0), level)
    solution = task.solve(puzzle)
    video = task.render(puzzle, task.states(puzzle, solution, max_states=SPEC.num_frames), SPEC)
    video.setflags(write=False)
    assert task.verdict(video, puzzle, SPEC).success  # the baseline the corruptions start from
    return Case(task, puzzle, solution, video)


def assert_bounded(verdict: Verdict, task: Task) -> None:
    """Every metric (and the confidence) is a finite number in [0, 1]; the components are the task's."""
    assert isinstance(verdict, Verdict)
    assert set(verdict.components) == set(task.component_names)
    values = {**verdict.metrics(), "confidence": verdict.confidence}
    sd = values.pop("trajectory_sd", None)  # an agent video's step deviation: None (undefined) or >= 0
    assert sd is None or (math.isfinite(sd) and sd >= 0.0), f"trajectory_sd = {sd}"
    for name, value in values.items():
        value = float(value)
        assert math.isfinite(value) and 0.0 <= value <= 1.0, f"{name} = {value}"
    assert verdict.success or not verdict.exact_match  # exact match implies success


# ------------------------------------------------------------------------------------------------ random videos
#: layouts parse() reads as video frames, and those it must reject as unreadable (failed verdict, confidence 0)
READABLE = ("rgb", "grey", "one_channel", "rgba", "float01", "float255", "int64", "torch")
UNREADABLE = ("two_channels", "five_channels", "flat", "five_dims")


def random_frames(task: Task, puzzle, rng: np.random.Generator, content: str, frames: int, height: int,
                  width: int) -> np.ndarray:
    """uint8 ``[frames, height, width, 3]``: noise, a constant colour, blocky noise, or random boards rendered."""
    shape = (frames, height, width, 3)
    if content == "noise":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if content == "constant":
        colours = [*task.colors(SPEC), rng.integers(0, 256, 3)]
        return np.broadcast_to(np.asarray(colours[rng.integers(len(colours))], np.uint8), shape).copy()
    if content == "blocks":  # large flat patches of random colour, which the cell sampler averages cleanly
        small = rng.integers(0, 256, (frames, 8, 8, 3), dtype=np.uint8)
        return small[:, (np.arange(height) * 8) // height][:, :, (np.arange(width) * 8) // width]
    # "boards": random label grids drawn with the task's palette, so the parse is confident and verify runs deep
    rows, cols = task.grid_shape(puzzle)
    states = rng.integers(0, len(task.classes), (max(frames, 1), rows, cols)).astype(np.int8)
    video = task.render(puzzle, states, RenderSpec(num_frames=max(frames, 2)))[:frames]
    return video[:, (np.arange(height) * SPEC.height) // height][:, :, (np.arange(width) * SPEC.width) // width]


def as_layout(frames: np.ndarray, layout: str, rng: np.random.Generator, non_finite: bool):
    """The frames in another representation ``Task.parse`` is documented to accept (or not)."""
    if layout in ("float01", "float255"):
        out = frames.astype(np.float64) / (255.0 if layout == "float01" else 1.0)
        if non_finite and out.size:
            flat = out.reshape(-1)
            flat[rng.integers(0, flat.size, max(1, flat.size // 50))] = rng.choice([np.nan, np.inf, -np.inf])
        return out
    return {
        "rgb": lambda: frames,
        "grey": lambda: frames[..., 0],
        "one_channel": lambda: frames[..., :1],
        "rgba": lambda: np.concatenate([frames, np.full_like(frames[..., :1], 255)], axis=-1),
        "int64": lambda: frames.astype(np.int64) * 3 - 200,  # out-of-range integers are clipped
        "torch": lambda: torch.from_numpy(frames.astype(np.float32) / 255.0),
        "two_channels": lambda: frames[..., :2],
        "five_channels": lambda: np.concatenate([frames, frames[..., :2]], axis=-1),
        "flat": lambda: frames.reshape(-1),
        "five_dims": lambda: frames[None],
    }[layout]()


@fuzz(300)
@given(
    seed=st.integers(0, 2**32 - 1),
    content=st.sampled_from(["noise", "constant", "blocks", "boards"]),
    frames=st.integers(0, 2 * SPEC.num_frames),
    size=st.one_of(st.just((SPEC.height, SPEC.width)), st.tuples(st.integers(1, 96), st.integers(1, 96))),
    layout=st.sampled_from(READABLE + UNREADABLE),
    non_finite=st.booleans(),
)
def test_random_videos_never_raise_never_succeed_and_score_in_unit_range(case, seed, content, frames, size,
                                                                        layout, non_finite):
    task, puzzle = case.task, case.puzzle
    rng = np.random.default_rng(seed)
    video = as_layout(random_frames(task, puzzle, rng, content, frames, *size), layout, rng, non_finite)
    verdict = task.verdict(video, puzzle, SPEC)
    assert_bounded(verdict, task)
    assert not verdict.success and not verdict.exact_match
    if layout in UNREADABLE or frames == 0:
        assert verdict.confidence == 0.0 and not any(verdict.metrics().values())
    exact_colours = layout in ("rgb", "rgba", "float01", "float255", "torch") and not non_finite
    if content == "boards" and exact_colours and size == (SPEC.height, SPEC.width) and frames >= 1:
        assert verdict.confidence == 1.0  # clean palette boards: the verifier judged them, they were not unreadable


@fuzz(100)
@given(junk=st.one_of(st.none(), st.text(max_size=20), st.integers(), st.floats(), st.binary(max_size=64),
                      st.lists(st.integers(-300, 300), max_size=20),
                      st.lists(st.lists(st.floats(), max_size=4), max_size=4)))
def test_non_array_inputs_fail_safely(case, junk):
    verdict = case.task.verdict(junk, case.puzzle, SPEC)
    assert_bounded(verdict, case.task)
    assert not verdict.success and verdict.confidence == 0.0


# ------------------------------------------------------------------------------------------------ corrupted truth
corruption = st.one_of(
    st.tuples(st.just("rect"), st.lists(st.integers(0, 2 * SPEC.num_frames), min_size=1, max_size=4),
              st.integers(0, SPEC.height - 1), st.integers(1, SPEC.height), st.integers(0, SPEC.width - 1),
              st.integers(1, SPEC.width), st.tuples(*[st.integers(0, 255)] * 3)),
    st.tuples(st.just("drop"), st.integers(0, 2 * SPEC.num_frames)),
    st.tuples(st.just("duplicate"), st.integers(0, 2 * SPEC.num_frames), st.integers(1, 4)),
    st.tuples(st.just("shuffle"), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("swap"), st.integers(0, 2 * SPEC.num_frames), st.integers(0, 2 * SPEC.num_frames)),
    st.tuples(st.just("reverse")),
    st.tuples(st.just("noise"), st.integers(0, 2**32 - 1), st.floats(0, 80)),
)


def corrupt(video: np.ndarray, op: tuple) -> np.ndarray:
    """Apply one corruption; indices wrap around the current frame count."""
    kind, n = op[0], len(video)
    if n == 0:
        return video
    if kind == "rect":
        _, frames, y0, h, x0, w, colour = op
        video = video.copy()
        video[sorted({f % n for f in frames}), y0:y0 + h, x0:x0 + w] = colour
        return video
    if kind == "drop":
        return np.delete(video, op[1] % n, axis=0)
    if kind == "duplicate":
        return np.insert(video, op[1] % n, np.repeat(video[op[1] % n][None], op[2], axis=0), axis=0)
    if kind == "shuffle":
        return video[np.random.default_rng(op[1]).permutation(n)]
    if kind == "swap":
        order = np.arange(n)
        order[[op[1] % n, op[2] % n]] = order[[op[2] % n, op[1] % n]]
        return video[order]
    if kind == "reverse":
        return video[::-1]
    noise = np.random.default_rng(op[1]).normal(0.0, op[2], video.shape)
    return np.clip(video + noise, 0, 255).astype(np.uint8)


@fuzz(250)
@given(ops=st.lists(corruption, max_size=4))
def test_corrupted_ground_truth_scores_in_unit_range(case, ops):
    video = np.array(case.video)
    for op in ops:
        video = corrupt(video, op)
    verdict = case.task.verdict(video, case.puzzle, SPEC)
    assert_bounded(verdict, case.task)
    if not ops:
        assert verdict.success and verdict.exact_match and verdict.f1 == 1.0


# ------------------------------------------------------------------------------------------------ JSON records
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 20) | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)


def mutate(value, data, depth: int = 0):
    """One random edit somewhere inside a JSON value: replace, drop, add, nudge, wrap or unwrap."""
    if isinstance(value, (dict, list)) and value and depth < 8 and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(list(value) if isinstance(value, dict) else range(len(value))))
        copy = dict(value) if isinstance(value, dict) else list(value)
        copy[key] = mutate(value[key], data, depth + 1)
        return copy
    edit = data.draw(st.sampled_from(["replace", "drop", "add", "nudge", "wrap", "unwrap"]))
    if edit == "drop" and isinstance(value, dict) and value:
        copy = dict(value)
        del copy[data.draw(st.sampled_from(sorted(copy)))]
        return copy
    if edit == "drop" and isinstance(value, list) and value:
        copy = list(value)
        del copy[data.draw(st.integers(0, len(copy) - 1))]
        return copy
    if edit == "add" and isinstance(value, dict):
        return {**value, data.draw(st.text(max_size=8)): data.draw(json_values)}
    if edit == "add" and isinstance(value, list):
        extra = data.draw(st.sampled_from(value) | json_values) if value else data.draw(json_values)
        return [*value, extra]
    if edit == "nudge" and isinstance(value, int) and not isinstance(value, bool):
        return value + data.draw(st.sampled_from([-100, -1, 1, 100]))
    if edit == "nudge" and isinstance(value, str):
        at = data.draw(st.integers(0, len(value)))
        return value[:at] + data.draw(st.sampled_from(["#", ".", "S", "G", "x", "udlrUDLR"])) + value[at:]
    if edit == "wrap":
        return [value]
    if edit == "unwrap" and isinstance(value, list) and value:
        return value[0]
    return data.draw(json_values)


def check_record(load, value, task: Task, is_puzzle: bool) -> None:
    """``load(value)`` raises ValueError or returns a record that is hashable and round-trips through JSON."""
    try:
        record = load(value)
    except ValueError:
        return
    hash(record)  # verifiers cache per puzzle, so records must be hashable
    data = json.loads(json.dumps(record.to_dict()))
    assert load(data) == record
    if is_puzzle:
        board = task.initial_state(record)
        assert board.ndim == 2 and board.min() >= 0 and board.max() < len(task.classes)


@fuzz(300)
@given(value=json_values)
def test_record_parsers_on_random_json_raise_only_value_error(case, value):
    task = case.task
    check_record(task.puzzle_from_dict, value, task, is_puzzle=True)
    check_record(task.solution_from_dict, value, task, is_puzzle=False)
    if isinstance(value, dict):  # the real field names with random values get past the key checks
        names = {**case.puzzle.to_dict(), **case.solution.to_dict()}
        check_record(task.puzzle_from_dict, {k: value.get(k, v) for k, v in case.puzzle.to_dict().items()},
                     task, is_puzzle=True)
        check_record(task.solution_from_dict, {k: value.get(k, names[k]) for k in case.solution.to_dict()},
                     task, is_puzzle=False)


@fuzz(400)
@given(data=st.data())
def test_record_parsers_on_mutated_records_raise_only_value_error(case, data):
    task = case.task
    puzzle, solution = case.puzzle.to_dict(), case.solution.to_dict()
    for _ in range(data.draw(st.integers(1, 3))):  # one to three edits, compounding
        puzzle, solution = mutate(puzzle, data), mutate(solution, data)
    check_record(task.puzzle_from_dict, puzzle, task, is_puzzle=True)
    check_record(task.solution_from_dict, solution, task, is_puzzle=False)


@pytest.mark.parametrize("path", [None, {}, 5, "udlr", [], [[1]], [["a", 2]], [[True, 1]], [[-1, 0]], [[0, 1.5]]])
def test_maze_solution_rejects_malformed_paths(path):
    """Regression: MazeSolution did no validation, so `{"path": None}` or `{"path": {}}` loaded (unhashable or
    unusable) instead of raising ValueError."""
    with pytest.raises(ValueError, match="`path`"):
        resolve_task("maze").solution_from_dict({"path": path})


# ------------------------------------------------------------------------------------------------ dataset reader
@pytest.fixture(scope="module")
def dataset(maze_dataset, tmp_path_factory) -> Path:
    """A private copy of the tiny maze dataset (tests corrupt a file, then restore it)."""
    root = tmp_path_factory.mktemp("fuzz") / "data"
    shutil.copytree(maze_dataset, root)
    return root


class Mp4(bytes):
    def __repr__(self) -> str:  # short, for hypothesis' failure reports
        return f"<mp4 of {len(self)} bytes>"


@pytest.fixture(scope="module")
def real_mp4(dataset) -> bytes:
    return Mp4((dataset / read_rows(dataset)[0]["video"]).read_bytes())


def assert_video_or_value_error(source) -> None:
    try:
        frames = decode_video(source)
    except ValueError:
        return
    assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3 and min(frames.shape) >= 1


@fuzz(300)
@given(blob=st.binary(max_size=4096))
@example(blob=b"")
@example(blob=b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
def test_decode_video_random_bytes(blob):
    assert_video_or_value_error(blob)


def moov_offset(mp4: bytes) -> int:
    """Where the ``moov`` box (the index, written last by our muxer) starts: a prefix shorter than this has none."""
    at = mp4.find(b"moov") - 4
    assert at > 0
    return at


@fuzz(150)
@given(data=st.data())
def test_decode_video_truncated_or_flipped_mp4(real_mp4, data):
    cut = data.draw(st.one_of(st.integers(0, len(real_mp4) - 1),
                              st.integers(moov_offset(real_mp4) - 8, len(real_mp4) - 1)))
    if cut < moov_offset(real_mp4):
        with pytest.raises(ValueError, match="cannot read video"):
            decode_video(real_mp4[:cut])
    else:  # only the trailing metadata may be cut off: the frames are then still readable
        assert_video_or_value_error(real_mp4[:cut])
    flipped = bytearray(real_mp4)
    for at in data.draw(st.lists(st.integers(0, len(real_mp4) - 1), min_size=1, max_size=8)):
        flipped[at] ^= data.draw(st.integers(1, 255))
    assert_video_or_value_error(bytes(flipped))


def test_decode_video_missing_file(tmp_path):
    for read in (decode_video, probe_video):
        with pytest.raises(ValueError, match="cannot read video"):
            read(tmp_path / "missing.mp4")


def test_unknown_codec_and_non_utf8_metadata(real_mp4, tmp_path):
    """Regressions found by this file's fuzzing: an unknown codec tag made `probe_video` raise AttributeError, and a
    non-UTF-8 metadata string (brand, encoder tag) made both readers raise UnicodeDecodeError on a sound video."""
    path = tmp_path / "video.mp4"
    tag = real_mp4.rfind(b"avc1")  # the video track's sample entry
    path.write_bytes(real_mp4[:tag] + b"zzzz" + real_mp4[tag + 4:])
    for read in (probe_video, decode_video):
        with pytest.raises(ValueError, match="cannot read video"):
            read(path)
    clean = decode_video(real_mp4)
    for blob in (real_mp4.replace(b"isom", b"\x96som", 1), real_mp4.replace(b"Lavf", b"\xb3avf")):
        assert blob != real_mp4
        path.write_bytes(blob)
        assert probe_video(path) == clean.shape[:3]
        np.testing.assert_array_equal(decode_video(path), clean)


HEADER = ",".join(COLUMNS) + "\n"


@fuzz(200)
@given(content=st.one_of(st.text(), st.text().map(lambda t: HEADER + t), st.binary()),
       split=st.sampled_from([None, "train", "val", "test"]))
@example(content=HEADER + "x" * 200_000 + "\n", split=None)  # regression: csv.Error (field size limit) escaped
@example(content=HEADER + '"unterminated,' * 3, split=None)
@example(content=b"\xff\xfe" + HEADER.encode(), split=None)
def test_read_rows_on_random_metadata(tmp_path_factory, content, split):
    root = tmp_path_factory.mktemp("meta")
    (root / "metadata.csv").write_bytes(content.encode() if isinstance(content, str) else content)
    try:
        rows = read_rows(root, split=split)
    except (ValueError, FileNotFoundError):
        return
    assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
    assert split is None or all(r["split"] == split for r in rows)


@fuzz(150)
@given(data=st.data())
def test_read_rows_on_truncated_or_spliced_metadata(dataset, tmp_path_factory, data):
    real = (dataset / "metadata.csv").read_text()
    rows = read_rows(dataset)
    root = tmp_path_factory.mktemp("meta")
    cut = data.draw(st.integers(0, len(real)))
    (root / "metadata.csv").write_text(real[:cut])
    try:
        got = read_rows(root)
    except ValueError:
        assert cut < len(HEADER)  # only a torn header is an error
    else:
        assert got == rows[:len(got)]  # complete rows only: a torn last line is dropped, never half-read
        assert len(got) == real[:cut].count("\n") - 1
    at = data.draw(st.integers(0, len(real)))
    (root / "metadata.csv").write_text(real[:at] + data.draw(st.text(max_size=40)) + real[at:])
    with contextlib.suppress(ValueError):
        read_rows(root, split=data.draw(st.sampled_from([None, "train", "test"])))
    with pytest.raises(FileNotFoundError):
        read_rows(root / "nowhere")


def item_or_value_error(dataset: Path, row: dict, must_fail: bool, header_bad: bool) -> None:
    """``row_problem`` returns a reason or None (a reason when ``header_bad``), and ``PuzzleVideoDataset[i]``
    returns a well-formed item or raises a ValueError naming the sample (it raises when ``must_fail``)."""
    problem = row_problem(dataset, row)
    assert problem is None or (isinstance(problem, str) and problem)
    assert problem is not None or not header_bad, "row_problem passed a sample whose header/puzzle is broken"
    try:
        item = PuzzleVideoDataset(dataset, [row])[0]
    except ValueError as err:
        assert row["id"] in str(err)
        return
    assert not must_fail, "a corrupted sample loaded without error"
    assert item["id"] == row["id"] and item["video"].shape == (3, int(row["num_frames"]), int(row["height"]),
                                                               int(row["width"]))
    assert torch.isfinite(item["video"]).all() and item["video"].abs().max() <= 1


@contextlib.contextmanager
def replaced(path: Path, blob: bytes):
    """``path`` holds ``blob`` inside the block, its original bytes again after it."""
    original = path.read_bytes()
    try:
        path.write_bytes(blob)
        yield
    finally:
        path.write_bytes(original)


@fuzz(150)
@given(data=st.data())
def test_dataset_item_with_corrupted_video(dataset, data):
    row = data.draw(st.sampled_from(read_rows(dataset)))
    path = dataset / row["video"]
    original = path.read_bytes()
    mode = data.draw(st.sampled_from(["random", "truncated", "flipped", "empty", "png"]))
    if mode == "random":
        blob = data.draw(st.binary(max_size=4096))
    elif mode == "truncated":
        blob = original[:data.draw(st.integers(0, len(original) - 1))]
    elif mode == "flipped":
        flipped = bytearray(original)
        for at in data.draw(st.lists(st.integers(0, len(original) - 1), min_size=1, max_size=8)):
            flipped[at] ^= 0xFF
        blob = bytes(flipped)
    elif mode == "empty":
        blob = b""
    else:  # a real image, one frame: decodes, but the shape differs from the metadata
        blob = (dataset / row["input_image"]).read_bytes()
    no_index = mode == "empty" or (mode == "truncated" and len(blob) < moov_offset(original))
    with replaced(path, blob):
        try:
            shape = probe_video(path)
        except ValueError as err:
            assert str(path) in str(err)
        else:
            assert len(shape) == 3 and all(isinstance(x, int) and x >= 0 for x in shape)
            assert not no_index, f"probe_video read {shape} from a file without an index"
        item_or_value_error(dataset, row, must_fail=mode in ("random", "empty", "png") or no_index,
                            header_bad=no_index)


@fuzz(150)
@given(data=st.data())
def test_dataset_item_with_corrupted_puzzle_json(dataset, data):
    row = data.draw(st.sampled_from(read_rows(dataset)))
    path = dataset / row["puzzle"]
    record = json.loads(path.read_bytes())
    mode = data.draw(st.sampled_from(["text", "json", "mutated", "binary"]))
    if mode == "text":
        blob = data.draw(st.text()).encode()
    elif mode == "json":
        blob = json.dumps(data.draw(json_values)).encode()
    elif mode == "mutated":
        blob = json.dumps(mutate(record, data)).encode()
    else:
        blob = data.draw(st.binary())
    with replaced(path, blob):
        item_or_value_error(dataset, row, must_fail=mode != "mutated", header_bad=mode != "mutated")


@pytest.mark.parametrize("text", ["null", "[]", "1", '"puzzle"', "{}", '{"puzzle": null}'])
def test_puzzle_file_that_is_not_a_record(dataset, text):
    """Regression: a puzzle file holding JSON other than an object made `load_sample` raise TypeError."""
    row = read_rows(dataset)[0]
    with replaced(dataset / row["puzzle"], text.encode()):
        with pytest.raises(ValueError, match=row["id"]):
            load_sample(dataset, row)
        item_or_value_error(dataset, row, must_fail=True, header_bad=True)
