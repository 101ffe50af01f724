"""PuzzleVideoDataModule: item format, collation, deterministic weighted task mixing, val subset, errors, workers."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import lightning
import numpy as np
import pytest
import torch

from videoreason.data.datamodule import PuzzleVideoDataModule, TaskMixingSampler, collate_puzzles, select_val_rows
from videoreason.data.dataset import read_rows
from videoreason.data.generate import generate_dataset
from videoreason.tasks.base import resolve_task
from videoreason.tasks.render import RenderSpec


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """6 maze + 6 sokoban train rows, 3 maze val rows, 2 sokoban test rows."""
    out = tmp_path_factory.mktemp("datamodule") / "ds"
    generate_dataset("maze", out, num=6, workers=1, progress=False)
    generate_dataset("sokoban", out, num=6, difficulty="tiny", workers=1, progress=False)
    generate_dataset("maze", out, num=3, split="val", workers=1, progress=False)
    generate_dataset("sokoban", out, num=2, split="test", difficulty="tiny", workers=1, progress=False)
    return out


def ids(loader) -> list[list[str]]:
    return [batch["id"] for batch in loader]


def make(root, **kwargs) -> PuzzleVideoDataModule:
    dm = PuzzleVideoDataModule(str(root), **kwargs)
    dm.setup("fit")
    return dm


def test_item_format(root):
    dm = make(root)
    assert len(dm.train_dataset) == 12
    item = dm.train_dataset[0]
    row = dm.train_dataset.rows[0]
    assert item["video"].dtype == torch.float32 and item["video"].shape == (3, 9, 64, 64)
    assert item["first_frame"].dtype == torch.float32 and item["first_frame"].shape == (3, 64, 64)
    assert item["video"].min() >= -1 and item["video"].max() <= 1
    assert item["video"].min() < -0.5 and item["video"].max() > 0.5  # really scaled, not [0, 1]
    assert torch.equal(item["first_frame"], item["video"][:, 0])
    assert item["id"] == row["id"] and item["task"] == row["task"] and item["prompt"] == row["prompt"]
    task = resolve_task(item["task"])
    assert task.prompt(task.puzzle_from_dict(item["puzzle"])) == item["prompt"]  # the puzzle rebuilds


def test_batches_collate(root):
    dm = make(root, batch_size=4)
    batches = list(dm.train_dataloader())
    assert len(batches) == 3
    batch = batches[0]
    assert batch["video"].shape == (4, 3, 9, 64, 64) and batch["first_frame"].shape == (4, 3, 64, 64)
    assert all(isinstance(batch[k], list) and len(batch[k]) == 4 for k in ("prompt", "task", "id", "puzzle"))
    assert isinstance(batch["puzzle"][0], dict)
    # one epoch without samples_per_epoch and tasks weighted by size covers every row exactly once
    assert sorted(i for b in batches for i in b["id"]) == sorted(r["id"] for r in read_rows(root, split="train"))
    assert collate_puzzles([{"x": torch.zeros(2), "s": "a"}])["x"].shape == (1, 2)


def test_same_seed_same_order_and_epochs_differ(root):
    first = ids(make(root, seed=3).train_dataloader())
    assert first == ids(make(root, seed=3).train_dataloader())
    assert first != ids(make(root, seed=4).train_dataloader())
    loader = make(root, seed=3).train_dataloader()
    epoch0 = ids(loader)
    epoch1 = ids(loader)  # each iteration of the loader is the next epoch
    assert epoch0 == first and epoch1 != epoch0
    assert loader.state_dict() == {"epoch": 1, "batches": len(loader)}


def test_loader_resumes_at_the_batch_after_its_saved_state(root):
    """What a checkpoint restores: mid-epoch, the rest of that epoch; at the end of an epoch, the next epoch."""
    straight = make(root, seed=3).train_dataloader()
    epoch0, epoch1 = [[b["id"] for b in straight] for _ in range(2)]
    partial = make(root, seed=3).train_dataloader()
    taken = []
    for batch in partial:
        taken.append(batch["id"])
        if len(taken) == 2:
            break
    state = partial.state_dict()
    assert state == {"epoch": 0, "batches": 2}
    resumed = make(root, seed=3).train_dataloader()
    resumed.load_state_dict(state)
    assert [b["id"] for b in resumed] == epoch0[2:]  # the rest of epoch 0, nothing repeated
    assert [b["id"] for b in resumed] == epoch1
    at_end = make(root, seed=3).train_dataloader()
    at_end.load_state_dict({"epoch": 0, "batches": len(at_end)})
    assert [b["id"] for b in at_end] == []  # the saved epoch was complete
    assert [b["id"] for b in at_end] == epoch1


def test_task_weights(root):
    with pytest.raises(ValueError, match=r"tasks\.sokoban"):
        PuzzleVideoDataModule(str(root), tasks={"maze": 1, "sokoban": 0})
    with pytest.raises(ValueError, match=r"tasks\.maze"):
        PuzzleVideoDataModule(str(root), tasks={"maze": -1.0})
    dm = make(root, tasks={"maze": 3, "sokoban": 1}, samples_per_epoch=4000)
    tasks = [dm.train_dataset.rows[i]["task"] for i in dm._sampler]
    counts = Counter(tasks)
    assert len(tasks) == 4000
    assert counts["maze"] / counts["sokoban"] == pytest.approx(3.0, rel=0.15)
    only_maze = make(root, tasks={"maze": 1.0})
    assert {r["task"] for r in only_maze.train_dataset.rows} == {"maze"}
    assert {r["task"] for r in only_maze.val_dataset.rows} == {"maze"}


def test_sampler_cycles_rows_before_repeating():
    sampler = TaskMixingSampler({"a": [0, 1, 2], "b": [3, 4]}, {"a": 1.0, "b": 1.0}, num_samples=200)
    draws = list(sampler)
    for group in ([0, 1, 2], [3, 4]):
        picks = [d for d in draws if d in group]
        for start in range(0, len(picks) - len(group) + 1, len(group)):
            assert sorted(picks[start:start + len(group)]) == group


def test_val_subset_fixed(root):
    dm = make(root, num_val_puzzles=2, seed=1)
    assert dm.resolved_val_split == "val"
    val = ids(dm.val_dataloader())
    assert sum(len(b) for b in val) == 2
    assert val == ids(make(root, num_val_puzzles=2, seed=9).val_dataloader()) == ids(dm.val_dataloader())
    batch = next(iter(dm.val_dataloader()))
    assert batch["video"].shape == (2, 3, 9, 64, 64) and batch["first_frame"].shape == (2, 3, 64, 64)
    # more requested than available: all of them; no val rows for sokoban -> falls back to test
    assert len(make(root, num_val_puzzles=8).val_dataset) == 3
    soko = make(root, tasks={"sokoban": 1.0})
    assert soko.resolved_val_split == "test" and len(soko.val_dataset) == 2
    assert make(root, num_val_puzzles=0).val_dataloader() == []


def test_errors_name_key_split_row(root, tmp_path):
    with pytest.raises(ValueError, match=r"`tasks\.flowfree`.*split 'train'"):
        make(root, tasks={"maze": 1.0, "flowfree": 1.0})
    with pytest.raises(ValueError, match=r"`tasks\.sokoban`.*split 'val'"):
        make(root, train_split="val", tasks={"sokoban": 1.0})
    with pytest.raises(ValueError, match=r"batch_size"):
        PuzzleVideoDataModule(str(root), batch_size=0)
    with pytest.raises(ValueError, match=r"train_split"):
        PuzzleVideoDataModule(str(root), train_split="training")
    with pytest.raises(FileNotFoundError):
        make(tmp_path / "nothing")

    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    meta = broken / "metadata.csv"
    lines = meta.read_text().splitlines(keepends=True)
    meta.write_text("".join(line for line in lines if ",val," not in line))
    with pytest.raises(ValueError, match=r"has no rows in split 'val'"):
        make(broken, train_split="val")
    with pytest.raises(ValueError, match=r"no rows in split 'val' or 'test' for validation"):
        make(broken, tasks={"maze": 1.0})
    row = read_rows(broken, split="train")[0]
    (broken / row["video"]).write_bytes(b"not a video")
    with pytest.raises(ValueError, match=rf"1 of 12 rows of split 'train'.*{row['id']}.*{Path(row['video']).name}"
                                         r".*`data.bad_samples: skip`"):
        make(broken)
    (broken / row["video"]).unlink()
    with pytest.raises(ValueError, match=rf"{row['id']}.*{Path(row['video']).name}.*missing"):
        make(broken)


def corrupt_three(root: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """A copy of ``root`` whose first three training rows are broken: video deleted, video replaced by random
    bytes, puzzle JSON that does not validate."""
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    rows = read_rows(broken, split="train")[:3]
    (broken / rows[0]["video"]).unlink()
    (broken / rows[1]["video"]).write_bytes(np.random.default_rng(0).bytes(5000))
    (broken / rows[2]["puzzle"]).write_text('{"task": "maze", "puzzle": {"size": "big"}, "solution": []}')
    return broken, [r["id"] for r in rows]


def test_bad_samples_error_policy_lists_them_at_setup(root, tmp_path):
    broken, ids = corrupt_three(root, tmp_path)
    with pytest.raises(ValueError, match=rf"3 of 12 rows.*{ids[0]}.*missing.*{ids[1]}.*cannot read video"
                                         rf".*{ids[2]}.*bad puzzle file"):
        make(broken)


def test_bad_samples_skip_policy_drops_and_counts_them_and_replaces_a_video_broken_later(root, tmp_path):
    broken, ids = corrupt_three(root, tmp_path)
    with pytest.warns(UserWarning, match="skipping 3 of 12 rows"):
        dm = make(broken, bad_samples="skip")
    assert sorted(dm.skipped_rows) == sorted(ids) and len(dm.train_dataset) == 9
    assert not {r["id"] for r in dm.train_dataset.rows} & set(ids)
    dataset = dm.train_dataset
    later = dataset.rows[0]
    (broken / later["video"]).write_bytes(b"truncated")  # breaks after setup checked it
    with pytest.warns(UserWarning, match=rf"skipping unreadable sample \(1 so far\).*{later['id']}"):
        item = dataset[0]
    assert item["id"] == dataset.rows[1]["id"] and item["task"] == later["task"]
    with pytest.raises(ValueError, match="`bad_samples` must be 'error' or 'skip'"):
        PuzzleVideoDataModule(str(root), bad_samples="ignore")


def test_workers_give_same_batches(root):
    serial = make(root, batch_size=3, num_workers=0, seed=5, samples_per_epoch=9)
    parallel = make(root, batch_size=3, num_workers=2, seed=5, samples_per_epoch=9)
    for a, b in zip(serial.train_dataloader(), parallel.train_dataloader(), strict=True):
        assert a["id"] == b["id"] and torch.equal(a["video"], b["video"])


class _Recorder(lightning.LightningModule):
    """Records the ids it is trained and validated on."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.train_ids: list[list[str]] = []
        self.val_ids: list[str] = []

    def on_train_epoch_start(self):
        self.train_ids.append([])

    def training_step(self, batch, batch_idx):
        self.train_ids[-1].extend(batch["id"])
        return (self.weight * batch["video"].mean()) ** 2

    def validation_step(self, batch, batch_idx):
        self.val_ids.extend(batch["id"])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(root, **kwargs) -> _Recorder:
    model = _Recorder()
    trainer = lightning.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(model, datamodule=PuzzleVideoDataModule(str(root), **kwargs))
    return model


@pytest.mark.filterwarnings("ignore:Total length of `list` across ranks is zero")
def test_trainer_epochs_differ_and_repeat(root):
    a = fit(root, seed=2, samples_per_epoch=6, num_val_puzzles=2)
    b = fit(root, seed=2, samples_per_epoch=6, num_val_puzzles=2)
    assert a.train_ids == b.train_ids and len(a.train_ids) == 2 and a.train_ids[0] != a.train_ids[1]
    assert a.val_ids == b.val_ids and len(a.val_ids) == 4  # the same 2 puzzles, each epoch
    assert fit(root, samples_per_epoch=2, num_val_puzzles=0).val_ids == []


def test_init_signature_is_a_config_schema():
    jsonargparse = pytest.importorskip("jsonargparse")
    parser = jsonargparse.ArgumentParser()
    parser.add_class_arguments(PuzzleVideoDataModule, "data")
    cfg = parser.parse_args(["--data.root=/x", "--data.tasks={maze: 3, sokoban: 1}", "--data.batch_size=4"])
    assert cfg.data.tasks == {"maze": 3.0, "sokoban": 1.0} and cfg.data.batch_size == 4
    assert "sampling weight" in parser.format_help()


def test_augment_trains_on_every_rotation_and_reflection_of_each_video(root):
    plain, augmented = make(root), make(root, augment=True)
    assert len(augmented.train_dataset) == 8 * len(plain.train_dataset)
    row = plain.train_dataset.rows.index(augmented.train_dataset.rows[1])
    video = plain.train_dataset[row]["video"]  # [3, F, H, W]
    images = [augmented.train_dataset[8 * row + k] for k in range(8)]
    assert [item["dihedral"] for item in images] == list(range(8))
    assert torch.equal(images[0]["video"], video)
    assert torch.equal(images[1]["video"], torch.rot90(video, 1, dims=(2, 3)))  # a quarter turn
    assert torch.equal(images[4]["video"], video.flip(-1))  # mirrored
    assert len({item["video"].numpy().tobytes() for item in images}) == 8  # boards have no symmetry of their own
    assert all(torch.equal(item["first_frame"], item["video"][:, 0]) for item in images)
    # every draw of an epoch is some image of some row, and the sampler deals all of them
    drawn = {i for batch in augmented.train_dataloader() for i in batch["dihedral"]}
    assert drawn == set(range(8))


def test_augment_keeps_the_frame_shape_of_non_square_videos(tmp_path):
    out = tmp_path / "wide"
    generate_dataset("maze", out, num=2, workers=1, progress=False,
                     spec=RenderSpec(width=96))
    dm = make(out, augment=True, num_val_puzzles=0)
    ks = sorted(k % 8 for k in dm._task_rows["maze"])
    assert ks == [0, 0, 2, 2, 4, 4, 6, 6]
    assert all(dm.train_dataset[i]["video"].shape == (3, 9, 64, 96) for i in dm._task_rows["maze"])


class _SigtermDisposition(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> bool:
        import signal

        return signal.getsignal(signal.SIGTERM) == signal.SIG_IGN


def test_loader_workers_leave_sigterm_to_the_main_process(root):
    """A SIGTERM to the whole process group (SLURM, ``pkill -f``) must not kill a worker before the main process has
    checkpointed: the data module's workers ignore it."""
    from videoreason.data.datamodule import seed_worker

    loader = torch.utils.data.DataLoader(_SigtermDisposition(), num_workers=1, worker_init_fn=seed_worker)
    assert all(bool(ignored) for ignored in loader)
    data = PuzzleVideoDataModule(str(root), batch_size=2, num_workers=1, num_val_puzzles=0)
    data.setup("fit")
    assert data.train_dataloader().worker_init_fn is seed_worker


def test_validation_takes_every_level_of_a_mixed_size_dataset_in_turn():
    rows = [{"task": "maze", "difficulty": level, "id": f"maze_val_{level}_{i:06d}"}
            for level in ("tiny-fill", "easy-fill") for i in range(4)]
    picked = [r["id"] for r in select_val_rows(rows, 4)]
    assert picked == ["maze_val_easy-fill_000000", "maze_val_tiny-fill_000000",
                      "maze_val_easy-fill_000001", "maze_val_tiny-fill_000001"]
    one_level = [r for r in rows if r["difficulty"] == "tiny-fill"]
    assert [r["id"] for r in select_val_rows(one_level, 3)] == [f"maze_val_tiny-fill_{i:06d}" for i in range(3)]
