"""LightningDataModule over a puzzle-video dataset folder (see :mod:`videoreason.data.dataset`).

Items are dicts::

    video        float32 [3, F, H, W] in [-1, 1]   the decoded ground-truth solution video (not with frames="first")
    first_frame  float32 [3, H, W] in [-1, 1]      frame 0 of ``video`` (the conditioning image)
    prompt       str
    task         str                               task name, e.g. ``maze``
    id           str                               row id
    puzzle       dict                              the puzzle's JSON dict (``task.puzzle_from_dict`` rebuilds it)
    dihedral     int                               which rotation/reflection of the stored video this is (0: none)

:func:`collate_puzzles` stacks tensors and keeps strings and dicts as lists.

Training order comes from :class:`TaskMixingSampler`: each draw first picks a task by weight, then the next row of
that task's shuffled rows, with a ``torch.Generator`` seeded from ``seed`` and the epoch, so the same seed gives the
same order and different epochs differ. Validation is a fixed, seed-independent subset of ``num_val_puzzles`` rows,
interleaved across tasks, in a fixed order.

With ``augment`` the training items of a ``dihedral`` task are its videos under the 8 rotations and reflections
(those that keep a non-square frame's shape): dataset index ``8 * row + k`` is row ``row`` under transform ``k`` of
:func:`videoreason.tasks.grid.dihedral`, so the sampler deals them like rows and resume stays exact. Only the
video and first frame are transformed, not the puzzle: augmented items are for learning from videos (SFT), not for
scoring.
"""

from __future__ import annotations

import random
import signal
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import lightning
import numpy as np
import torch
from lightning.fabric.utilities.data import AttributeDict
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from videoreason.data.dataset import SPLITS, load_sample, load_spec, read_rows, row_problem
from videoreason.media import decode_video, to_unit_range
from videoreason.tasks.base import resolve_task
from videoreason.tasks.grid import DIHEDRAL, dihedral, shape_keeping_dihedral
from videoreason.tasks.render import RenderSpec

_SEED_MIX = 1_000_003  # spreads (seed, epoch) pairs so that seed s, epoch e+1 != seed s+1, epoch e


class PuzzleVideoDataset(Dataset):
    """Rows of a dataset folder as training items (see the module docstring for the item format).

    Args:
        root: dataset folder.
        rows: ``metadata.csv`` rows (from :func:`~videoreason.data.dataset.read_rows`).
        skip_unreadable: A row that fails to load (its video became unreadable after setup checked it) is replaced
            by the next loadable row of the same task, with a warning naming it, instead of raising.
        frames: ``all`` decodes the whole video; ``first`` decodes only frame 0 and leaves ``video`` out (what GRPO
            reads unless a reward compares with the ground truth: 1/F of the decoding and memory).
        augment: index ``8 * row + k`` is row ``row`` under transform ``k`` (see the module docstring).
    """

    def __init__(self, root: str | Path, rows: Sequence[dict[str, str]], skip_unreadable: bool = False,
                 frames: Literal["all", "first"] = "all", augment: bool = False):
        self.root = Path(root)
        self.rows = list(rows)
        self.skip_unreadable = skip_unreadable
        self.frames = frames
        self.copies = DIHEDRAL if augment else 1
        self.skipped: set[str] = set()  # ids replaced so far (in this process)

    def __len__(self) -> int:
        return len(self.rows) * self.copies

    def __getitem__(self, index: int) -> dict[str, Any]:
        index, transform = divmod(index, self.copies)
        try:
            return self._load(index, transform)
        except ValueError as err:
            if not self.skip_unreadable:
                raise
            self._skip(index, err)
        task, n = self.rows[index]["task"], len(self.rows)
        for i in ((index + k) % n for k in range(1, n)):  # the next loadable row of the same task
            if self.rows[i]["task"] == task and self.rows[i]["id"] not in self.skipped:
                try:
                    return self._load(i, transform)
                except ValueError as err:
                    self._skip(i, err)
        raise ValueError(f"no readable sample of task {task!r} is left in {self.root}")

    def indices(self, rows: Sequence[int]) -> list[int]:
        """Dataset indices of the given rows: with ``augment``, all of their shape-keeping dihedral images."""
        if self.copies == 1:
            return list(rows)
        out = []
        for row in rows:
            meta = self.rows[row]
            ks = shape_keeping_dihedral(int(meta["height"]), int(meta["width"])) \
                if resolve_task(meta["task"]).dihedral else [0]
            out += [row * self.copies + k for k in ks]
        return out

    def _skip(self, index: int, err: ValueError) -> None:
        self.skipped.add(self.rows[index]["id"])
        warnings.warn(f"skipping unreadable sample ({len(self.skipped)} so far): {err}", stacklevel=3)

    def _load(self, index: int, transform: int = 0) -> dict[str, Any]:
        row = self.rows[index]
        path = self.root / row["video"]
        first_only = self.frames == "first"
        try:
            frames = decode_video(path, max_frames=1 if first_only else None)
        except ValueError as err:
            raise ValueError(f"sample {row['id']}: cannot read its video {path}: {err}") from err
        expected = (1 if first_only else int(row["num_frames"]), int(row["height"]), int(row["width"]), 3)
        if frames.shape != expected:
            raise ValueError(f"sample {row['id']}: video {path} has shape {frames.shape}, metadata says {expected}")
        sample = load_sample(self.root, row)
        video = to_unit_range(dihedral(frames, transform, axes=(1, 2)))  # [3, F, H, W]
        item = {} if first_only else {"video": video}
        return {
            **item,
            "first_frame": video[:, 0].clone(),
            "prompt": row["prompt"],
            "task": row["task"],
            "id": row["id"],
            "puzzle": sample.puzzle.to_dict(),
            "dihedral": transform,
        }


def collate_puzzles(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch items: tensors are stacked along a new dim 0, everything else becomes a list."""
    if not items:
        raise ValueError("cannot collate an empty batch")
    batch: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        batch[key] = torch.stack(values) if all(isinstance(v, torch.Tensor) for v in values) else values
    return batch


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed numpy and ``random`` from torch's per-worker seed, and ignore SIGTERM.

    A SIGTERM sent to the whole process group (SLURM pre-emption or ``scancel``, ``pkill -f``) is the main process's
    to handle: it finishes the step, checkpoints and shuts its loader workers down. A worker killed by it first would
    crash the run before the checkpoint instead."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class TaskMixingSampler(DistributedSampler):
    """Deterministic weighted task mixing, split over data-parallel ranks.

    Each of ``num_samples`` draws picks a task with probability proportional to its weight, then takes the next
    index of that task's shuffled index list (reshuffled when exhausted), so every row of a task is seen before
    any repeats. The generator is seeded from ``(seed, epoch)``; :meth:`set_epoch` sets the epoch (``ResumableLoader``
    calls it before every iteration), and each full iteration advances it by one, so two iterations without
    ``set_epoch`` differ too.

    With ``num_replicas`` ranks, the draws (padded to a multiple of ``num_replicas`` by drawing more) are dealt
    round-robin: rank ``r`` gets draws ``r, r + W, ...``, so batch ``k`` of all ranks together is batch ``k`` of one
    process with a ``W`` times larger batch. It is a ``DistributedSampler`` so Lightning uses it as it is instead
    of wrapping (and re-shuffling) it.

    Args:
        tasks: task name -> dataset indices of its rows (non-empty).
        weights: task name -> sampling weight (> 0), same keys as ``tasks``.
        num_samples: draws per epoch (all ranks together).
        seed: base seed.
        num_replicas: data-parallel ranks.
        rank: this rank.
    """

    def __init__(self, tasks: dict[str, Sequence[int]], weights: dict[str, float], num_samples: int,
                 seed: int = 0, num_replicas: int = 1, rank: int = 0):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"`rank` must be in [0, {num_replicas}), got {rank}")
        if set(tasks) != set(weights):
            raise ValueError(f"rows {sorted(tasks)} and weights {sorted(weights)} name different tasks")
        empty = sorted(name for name, indices in tasks.items() if not indices)
        if empty:
            raise ValueError(f"tasks {empty} have no rows")
        if num_samples < 1:
            raise ValueError(f"`num_samples` must be >= 1, got {num_samples}")
        self.names = sorted(tasks)
        self.rows = {name: list(tasks[name]) for name in self.names}
        self.weights = torch.tensor([float(weights[name]) for name in self.names], dtype=torch.float64)
        if not bool((self.weights > 0).all()):
            raise ValueError(f"task weights must be > 0, got { {n: weights[n] for n in self.names} }")
        self.num_replicas, self.rank = num_replicas, rank
        self.total_size = -(-num_samples // num_replicas) * num_replicas
        self.num_samples = self.total_size // num_replicas  # per rank, as DistributedSampler
        self.seed = seed
        self.epoch = 0
        self.start = 0  # draws of this rank to skip in the next iteration only (resuming mid-epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * _SEED_MIX + self.epoch)
        self.epoch += 1
        choices = torch.multinomial(self.weights, self.total_size, replacement=True, generator=generator).tolist()
        order: dict[str, list[int]] = {name: [] for name in self.names}
        out = []
        for choice in choices:
            name = self.names[choice]
            if not order[name]:
                indices = self.rows[name]
                order[name] = [indices[i] for i in torch.randperm(len(indices), generator=generator).tolist()]
            out.append(order[name].pop())
        start, self.start = self.start, 0
        return iter(out[self.rank::self.num_replicas][start:])


class ResumableLoader(DataLoader):
    """The training ``DataLoader``: it owns the sampler's epoch and remembers how many batches it has handed out,
    so a run resumed from a checkpoint continues with the very batch an uninterrupted run would take next.

    Its ``state_dict()`` goes into every checkpoint (through ``PuzzleVideoDataModule.state_dict``, which Lightning
    always restores, and as a ``_Stateful`` loader of the fit loop); after ``load_state_dict`` the next iteration
    yields the rest of the saved epoch (nothing if it was complete) and the one after it the next epoch. Epochs
    count iterations of this loader (0, 1, ...), not Lightning's epoch counter, whose bookkeeping differs between
    a resumed and an uninterrupted run when the checkpoint falls on the last batch of an epoch.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epoch = -1  # epoch of the current (or last) iteration
        self.batches = 0  # batches of it handed out so far
        self._resume: tuple[int, int] | None = None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batches": self.batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = (int(state["epoch"]), int(state["batches"]))

    def __iter__(self) -> Iterator[Any]:
        epoch, skip = (self.epoch + 1, 0) if self._resume is None else self._resume
        self._resume = None
        self.epoch, self.batches = epoch, skip
        sampler = self.sampler
        sampler.set_epoch(epoch)
        sampler.start = skip * int(self.batch_size or 1)
        for batch in super().__iter__():
            self.batches += 1
            yield batch


def select_val_rows(rows: Sequence[dict[str, str]], num: int) -> list[dict[str, str]]:
    """A fixed subset of ``num`` rows: each task's levels (a dataset of mixed board sizes) as groups in name order,
    rows by id, interleaved round-robin across the groups."""
    by_task: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in sorted(rows, key=lambda r: (r["task"], r.get("difficulty", ""), r["id"])):
        by_task.setdefault((row["task"], row.get("difficulty", "")), []).append(row)
    out: list[dict[str, str]] = []
    depth = 0
    while len(out) < num and any(depth < len(group) for group in by_task.values()):
        out.extend(group[depth] for group in by_task.values() if depth < len(group))
        depth += 1
    return out[:num]


@runtime_checkable
class ChoosesFrames(Protocol):
    """A module that tells the data module whether it trains on whole videos (SFT, a reward that reads the
    reference) or on first frames only (GRPO otherwise: no video decoded); ``VideoModule`` is one."""

    trains_on_videos: bool


class PuzzleVideoDataModule(lightning.LightningDataModule):
    """Puzzle videos of one dataset folder, mixing several tasks by weight.

    Args:
        root: dataset folder (``metadata.csv``, ``videos/``, ``images/``, ``puzzles/``, ``spec.json``).
        tasks: task name -> sampling weight (> 0) for mixing tasks in training; only these tasks are used.
            ``None``: every task of the training split, weighted by its number of rows.
        batch_size: items per batch (training and validation).
        num_workers: DataLoader worker processes (0: load in the main process).
        seed: base seed of the training order; the same seed gives the same batches.
        train_split: split used for training.
        val_split: split used for validation; ``"val"`` falls back to ``"test"`` when the dataset has no val rows.
        num_val_puzzles: size of the fixed validation subset (0 disables validation).
        samples_per_epoch: training items per epoch (``None``: all training items, 8 per row with ``augment``).
        bad_samples: What to do with rows that cannot be used (a file missing, an unreadable video or one whose
            header disagrees with the row, a puzzle that does not validate; every row is checked at setup, headers
            only): ``"error"`` stops with their count and the first few, ``"skip"`` drops them with a warning and a
            count (``skipped_rows``), and replaces a video that fails to decode later by another of its task.
        augment: train on every rotation and reflection of each video of a ``dihedral`` task (8 items per row;
            see the module docstring). For SFT: GRPO refuses it, since it scores against the stored puzzle.
    """

    def __init__(
        self,
        root: str,
        tasks: dict[str, float] | None = None,
        batch_size: int = 2,
        num_workers: int = 0,
        seed: int = 0,
        train_split: str = "train",
        val_split: str = "val",
        num_val_puzzles: int = 8,
        samples_per_epoch: int | None = None,
        bad_samples: Literal["error", "skip"] = "error",
        augment: bool = False,
    ):
        super().__init__()
        if tasks is not None:
            if not tasks:
                raise ValueError("`tasks` must name at least one task (or be None for all tasks)")
            for name, weight in tasks.items():
                if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not weight > 0:
                    raise ValueError(f"`tasks.{name}` weight must be a number > 0, got {weight!r}")
        for key, value, low in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0),
                                ("num_val_puzzles", num_val_puzzles, 0)):
            if value < low:
                raise ValueError(f"`{key}` must be >= {low}, got {value}")
        if samples_per_epoch is not None and samples_per_epoch < 1:
            raise ValueError(f"`samples_per_epoch` must be >= 1 or None, got {samples_per_epoch}")
        if bad_samples not in ("error", "skip"):
            raise ValueError(f"`bad_samples` must be 'error' or 'skip', got {bad_samples!r}")
        for key, split in (("train_split", train_split), ("val_split", val_split)):
            if split not in SPLITS:
                raise ValueError(f"`{key}` must be one of {SPLITS}, got {split!r}")
        self.save_hyperparameters()
        self.root = root
        self.tasks = dict(tasks) if tasks is not None else None
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.train_split = train_split
        self.val_split = val_split
        self.num_val_puzzles = num_val_puzzles
        self.samples_per_epoch = samples_per_epoch
        self.bad_samples = bad_samples
        self.augment = augment
        self.skipped_rows: dict[str, str] = {}  # id -> why, of the rows `bad_samples: skip` dropped at setup
        self.train_dataset: PuzzleVideoDataset | None = None
        self.val_dataset: PuzzleVideoDataset | None = None
        self.task_weights: dict[str, float] = {}
        self.resolved_val_split: str | None = None
        self._sampler: TaskMixingSampler | None = None
        self._task_rows: dict[str, list[int]] = {}
        self._train_loader: ResumableLoader | None = None
        self._loader_state: dict[str, int] | None = None

    @property
    def spec(self) -> RenderSpec:
        """How the dataset's videos were rendered (its ``spec.json``)."""
        return load_spec(self.root)

    @property
    def hparams_initial(self) -> AttributeDict:
        """The init arguments as loggers record them, named ``data.<arg>`` so that none collides with a module
        argument of the same name (``seed``) when Lightning logs both together."""
        return AttributeDict({k if k.startswith("_") else f"data.{k}": v for k, v in super().hparams_initial.items()})

    def _rows(self, split: str) -> list[dict[str, str]]:
        rows = read_rows(self.root, split=split)
        if self.tasks is not None:
            rows = [r for r in rows if r["task"] in self.tasks]
        return rows

    def _usable(self, rows: Sequence[dict[str, str]], split: str) -> list[dict[str, str]]:
        """``rows`` without the unusable ones (``bad_samples: skip``), or a ``ValueError`` listing them."""
        problems = {row["id"]: why for row in rows if (why := row_problem(self.root, row)) is not None}
        if not problems:
            return list(rows)
        listed = "; ".join(f"sample {i}: {why}" for i, why in list(problems.items())[:3])
        summary = f"{len(problems)} of {len(rows)} rows of split {split!r} in {self.root} are unusable ({listed}"
        summary += " ...)" if len(problems) > 3 else ")"
        if self.bad_samples == "error":
            raise ValueError(f"{summary}; set `data.bad_samples: skip` to train on the others")
        warnings.warn(f"skipping {summary}", stacklevel=2)
        self.skipped_rows.update(problems)
        kept = [row for row in rows if row["id"] not in problems]
        if not kept:
            raise ValueError(f"no usable rows left in split {split!r} of {self.root}: {summary}")
        return kept

    def setup(self, stage: str | None = None) -> None:
        """Read ``metadata.csv``, check tasks, splits and files, build the datasets (idempotent)."""
        if stage in (None, "fit") and self.train_dataset is None:
            all_train = read_rows(self.root, split=self.train_split)
            present = sorted({r["task"] for r in all_train})
            if self.tasks is not None:
                unknown = sorted(set(self.tasks) - set(present))
                if unknown:
                    raise ValueError(f"`tasks.{unknown[0]}`: dataset {self.root} has no rows of task {unknown[0]!r} "
                                     f"in split {self.train_split!r} (it has tasks {present})")
            rows = self._rows(self.train_split)
            if not rows:
                raise ValueError(f"dataset {self.root} has no rows in split {self.train_split!r}")
            rows = self._usable(rows, self.train_split)
            rows_of: dict[str, list[int]] = {}
            for index, row in enumerate(rows):
                rows_of.setdefault(row["task"], []).append(index)
            self.task_weights = ({name: float(len(ix)) for name, ix in rows_of.items()} if self.tasks is None
                                 else {name: float(self.tasks[name]) for name in rows_of})
            self.train_dataset = PuzzleVideoDataset(self.root, rows, skip_unreadable=self.bad_samples == "skip",
                                                    augment=self.augment)
            self._task_rows = {name: self.train_dataset.indices(ix) for name, ix in rows_of.items()}
            self._sampler = self._train_sampler()
        if stage in (None, "fit", "validate") and self.val_dataset is None and self.num_val_puzzles > 0:
            split = self.val_split
            rows = self._rows(split)
            if not rows and split == "val":
                split, rows = "test", self._rows("test")
            if not rows:
                tried = "'val' or 'test'" if self.val_split == "val" else repr(self.val_split)
                raise ValueError(f"dataset {self.root} has no rows in split {tried} for validation "
                                 f"(set `num_val_puzzles: 0` to train without validation)")
            rows = select_val_rows(self._usable(rows, split), self.num_val_puzzles)
            self.resolved_val_split = split
            self.val_dataset = PuzzleVideoDataset(self.root, rows, skip_unreadable=self.bad_samples == "skip")

    def _train_sampler(self, num_replicas: int = 1, rank: int = 0) -> TaskMixingSampler:
        assert self.train_dataset is not None
        return TaskMixingSampler(self._task_rows, self.task_weights, self.samples_per_epoch or len(self.train_dataset),
                                 seed=self.seed, num_replicas=num_replicas, rank=rank)

    def _loader(self, dataset: Dataset, sampler: Sampler[int] | None, cls: type[DataLoader] = DataLoader
                ) -> DataLoader:
        return cls(
            dataset, batch_size=self.batch_size, sampler=sampler, shuffle=False, num_workers=self.num_workers,
            collate_fn=collate_puzzles, worker_init_fn=seed_worker, persistent_workers=False,
            generator=torch.Generator().manual_seed(self.seed))

    def train_dataloader(self) -> DataLoader:
        if self.train_dataset is None or self._sampler is None:
            self.setup("fit")
        assert self.train_dataset is not None and self._sampler is not None
        trainer = self.trainer
        if trainer is not None:  # deal the draws to this trainer's ranks
            self._sampler = self._train_sampler(**(trainer.distributed_sampler_kwargs or {}))
        # a module that trains from first frames only (GRPO without reference-reading rewards) says so
        module = trainer.lightning_module if trainer is not None else None
        first_only = isinstance(module, ChoosesFrames) and not module.trains_on_videos
        self.train_dataset.frames = "first" if first_only else "all"
        loader = self._loader(self.train_dataset, self._sampler, ResumableLoader)
        loader.epoch = (trainer.current_epoch if trainer is not None else 0) - 1  # reloaded loaders continue
        if self._loader_state is not None:  # resuming from a checkpoint
            loader.load_state_dict(self._loader_state)
            self._loader_state = None
        self._train_loader = loader
        return loader

    def state_dict(self) -> dict[str, Any]:
        """Where the training loader is (epoch, batches handed out), for exact resume from a checkpoint."""
        return {"train_loader": self._train_loader.state_dict()} if self._train_loader is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._loader_state = state_dict.get("train_loader")

    def val_dataloader(self) -> DataLoader | list:
        if self.num_val_puzzles == 0:
            return []
        if self.val_dataset is None:
            self.setup("validate")
        assert self.val_dataset is not None
        return self._loader(self.val_dataset, None)

    def prompts(self) -> list[str]:
        """The distinct prompts of the training and validation rows, in first-seen order (after ``setup``): what
        a phase embeds once at fit start (``TextEmbedder.precompute``) before freeing the text encoder."""
        datasets = (self.train_dataset, self.val_dataset)
        return list(dict.fromkeys(row["prompt"] for ds in datasets if ds is not None for row in ds.rows))
