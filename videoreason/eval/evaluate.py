"""Evaluate a checkpoint (or another model's videos) on a dataset split: generate, verify, tabulate, track.

``evaluate`` generates one video per puzzle of the split from its first frame and prompt (batched; each sample's
noise comes from its own seed, so results do not depend on the batch size), writes them with the dataset's file
names, scores them with the task verifiers exactly like ``videoreason data verify --videos``, and writes::

    OUT/metrics.md|csv|json   P/R/F1/SR/EM per task and difficulty (percent)
    OUT/samples.jsonl         one verdict per puzzle
    OUT/videos/<id>.mp4       the generated videos
    OUT/preview.png           contact sheet; OUT/samples.mp4 + samples.png a grid of the first videos

and logs metrics and files to MLflow (the run directory's local store unless ``MLFLOW_TRACKING_URI`` is set).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from videoreason.atomic import write_atomic
from videoreason.data.dataset import load_spec, read_rows
from videoreason.data.verify import sample_tiles, verify_dataset, write_preview
from videoreason.eval.table import (
    HEADLINE,
    TRAJECTORY,
    summarize,
    to_markdown,
    trajectory_summary,
    write_sample_rows,
    write_tables,
)
from videoreason.media import encode_mp4, to_unit_range
from videoreason.models.lora import merge_lora
from videoreason.resources import PretrainedModel
from videoreason.tasks.agent import TrajectorySettings
from videoreason.tracking import run_dir_of


@dataclass
class EvalReport:
    """What an evaluation produced."""

    table: list[dict[str, Any]]
    results: list[dict[str, Any]]
    out_dir: Path
    mlflow_run_id: str | None = None
    mlflow_hint: str | None = None  # where to see the run (``videoreason.tracking.ui_hint``)
    trajectory: list[dict[str, Any]] = field(default_factory=list)  # agent videos: the field's PR/SR/SD/EM

    def markdown(self) -> str:
        """The P/R/F1/SR/EM table, and for agent videos the trajectory metrics' table below it."""
        return to_markdown(self.table) + (f"\n\n{to_markdown(self.trajectory)}" if self.trajectory else "")


EVAL_PRECISIONS = {"32": torch.float32, "bf16": torch.bfloat16}
"""``--precision`` of ``videoreason eval``: the transformer's weight dtype while generating."""


def resolve_device(device: str) -> torch.device:
    """``auto``: the first CUDA device when there is one, else the CPU (as ``fit``'s ``accelerator: auto``)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_first_frame(root: Path, row: dict[str, str]) -> torch.Tensor:
    """A dataset row's first frame (its ``input_image``) as ``[3, H, W]`` in [-1, 1]."""
    from PIL import Image

    path = root / row["input_image"]
    try:
        image = np.array(Image.open(path).convert("RGB"))
    except OSError as err:
        raise ValueError(f"sample {row['id']}: cannot read its first frame {path}: {err}") from err
    return to_unit_range(image[None])[:, 0]  # [3, H, W] in [-1, 1]


def generate_videos(
    module: Any,
    root: str | Path,
    rows: list[dict[str, str]],
    out_dir: str | Path,
    batch_size: int = 8,
    seed: int = 0,
    steps: int | None = None,
    shift: float | None = None,
    device: str = "auto",
    precision: str = "32",
    guidance_scale: float = 1.0,
    negative_prompt: str = "",
) -> Path:
    """Generate a video for every row into ``out_dir/<video file name>``; returns ``out_dir``.

    ``module`` is a phase module (``VideoModule.generate``, with classifier-free guidance when
    ``guidance_scale > 1``); row ``i`` uses noise seed ``seed + i``. ``device`` ``auto`` is CUDA when available;
    ``precision`` ``bf16`` casts the transformer to bfloat16 (its float32-sensitive parts kept, as diffusers does),
    ``32`` keeps float32.
    """
    from videoreason.models.transformer import cast_keep_fp32
    from videoreason.phases.sft import check_codec_fits

    if precision not in EVAL_PRECISIONS:
        raise ValueError(f"`precision` must be one of {list(EVAL_PRECISIONS)}, got {precision!r}")
    root, out = Path(root), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = load_spec(root)
    check_codec_fits(module.codec, spec)
    device = resolve_device(device)
    module = module.to(device)
    cast_keep_fp32(module.transformer, EVAL_PRECISIONS[precision])
    bar = tqdm(total=len(rows), desc="generate", unit="video")
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        first = torch.stack([load_first_frame(root, r) for r in chunk]).to(device)
        if tuple(first.shape[2:]) != (spec.height, spec.width):
            raise ValueError(f"first frames are {tuple(first.shape[2:])}, the dataset spec says "
                             f"{(spec.height, spec.width)}")
        videos = module.generate(first, [r["prompt"] for r in chunk], spec.num_frames,
                                 seeds=[seed + start + i for i in range(len(chunk))], steps=steps, shift=shift,
                                 guidance_scale=guidance_scale, negative_prompt=negative_prompt)
        for row, video in zip(chunk, videos.cpu().numpy(), strict=True):
            write_atomic(out / Path(row["video"]).name, encode_mp4(video, fps=spec.fps))
        bar.update(len(chunk))
    bar.close()
    return out


def evaluate(
    data: str | Path,
    ckpt: str | Path | None = None,
    videos: str | Path | None = None,
    split: Literal["train", "val", "test"] = "test",
    out: str | Path | None = None,
    batch_size: int = 8,
    seed: int = 0,
    steps: int | None = None,
    shift: float | None = None,
    limit: int | None = None,
    device: str = "auto",
    precision: Literal["32", "bf16"] = "32",
    guidance_scale: float = 1.0,
    negative_prompt: str = "",
    workers: int | None = None,
    num_samples: int = 8,
    track: bool = True,
    points: int = 100,
    tolerance: float = 0.01,
) -> EvalReport:
    """Generate with ``ckpt`` (or take ``videos`` made by any other model) and score them on ``split`` of ``data``.

    Args:
        data: Dataset folder.
        ckpt: Export folder (``RUN/adapter``), Lightning ``.ckpt`` of a phase module, or the name of a packaged model
            (``maze_fill_steps``).
        videos: Instead of ``ckpt``: a folder of videos named like the dataset's (``<id>.mp4``).
        split: Dataset split to evaluate.
        out: Output folder (default ``<run dir>/eval/<split>`` for a checkpoint,
            ``runs/eval/<videos folder name>/<split>`` for videos).
        batch_size: Videos generated per forward pass.
        seed: Base noise seed (row ``i`` uses ``seed + i``).
        steps: Denoising steps (default: the module's validation steps).
        shift: Sigma shift (default: the module's validation shift).
        limit: Evaluate only the first ``limit`` puzzles of the split.
        device: Torch device for generation; ``auto``: CUDA when available, else the CPU.
        precision: Transformer weights while generating: ``32`` (float32) or ``bf16`` (bfloat16, half the memory).
        guidance_scale: Classifier-free guidance weight; ``> 1`` doubles the transformer calls per step (the
            pretrained Wan pipelines generate with 5.0); ``1`` is off, as the tiny models are trained and validated.
        negative_prompt: The prompt guidance steers away from.
        workers: Verification processes (default: all cores).
        num_samples: Generated videos shown in the sample grid.
        track: Log to MLflow.
        points: Agent videos' trajectory PR: points resampled along the reference (VR-Bench's batch evaluator: 100).
        tolerance: Agent videos' trajectory PR: match distance as a fraction of the frame (VR-Bench's: 0.01).
    """
    from videoreason.media import write_samples
    from videoreason.models.export import load_module

    if (ckpt is None) == (videos is None):
        raise ValueError("give exactly one of `ckpt` (generate with a model) and `videos` (score existing videos)")
    settings = TrajectorySettings(points, tolerance)  # bad values fail before anything is generated
    data = Path(data)
    rows = read_rows(data, split=split)[:limit]
    if not rows:
        raise ValueError(f"dataset {data} has no rows in split {split!r}")
    packaged = PretrainedModel.of(ckpt) if ckpt is not None else None  # its report goes to runs/, not the package
    if ckpt is not None:
        default = Path("runs", "eval", packaged.name, split) if packaged else run_dir_of(ckpt) / "eval" / split
        out_dir = Path(out) if out is not None else default
    else:  # another model's videos: the report goes to our runs, not next to them
        out_dir = Path(out) if out is not None else Path("runs", "eval", Path(videos).resolve().name, split)
    if ckpt is not None:
        module = load_module(ckpt, base_dtype="float32")  # exact weights; `precision` casts from there
        if getattr(module.transformer, "peft_config", None):  # generation only: fused, a LoRA layer costs nothing
            merge_lora(module.transformer)
        videos = generate_videos(module, data, rows, out_dir / "videos", batch_size, seed, steps, shift, device,
                                 precision, guidance_scale, negative_prompt)
    results = verify_dataset(data, split=split, videos=videos, workers=workers, ids={r["id"] for r in rows},
                             trajectory=settings)
    table, trajectory = summarize(results), trajectory_summary(results, settings)
    paths = write_tables(table, out_dir)
    if trajectory:
        paths += write_tables(trajectory, out_dir, "trajectory")
    paths.append(write_sample_rows(results, out_dir))
    paths.append(write_preview(data, out_dir / "preview.png", videos=videos, results=results))
    tiles = sample_tiles(data, rows, videos, results, num_samples)  # unreadable ones unshown
    if tiles:
        paths += write_samples(tiles, out_dir, "samples", fps=load_spec(data).fps)
    report = EvalReport(table, results, out_dir, trajectory=trajectory)
    if track:
        report.mlflow_run_id, report.mlflow_hint = _track(report, paths, out_dir, split, ckpt, videos)
    return report


def _track(report: EvalReport, paths: list[Path], out_dir: Path, split: str, ckpt: Any, videos: Any
           ) -> tuple[str, str]:
    """Log the evaluation as an MLflow run: a child of the run that trained ``ckpt`` (in its experiment), or, for
    another model's videos, a run of ``out_dir``."""
    from videoreason.tracking import TrackedRun, run_of

    trained = run_dir_of(ckpt) if ckpt is not None and PretrainedModel.of(ckpt) is None else None  # None: out_dir's
    run = TrackedRun(out_dir, run_name=f"eval-{split}", parent_run_id=run_of(trained) if trained else None,
                     store_of=trained, tags={"videoreason.phase": "eval", "videoreason.split": split})
    run.log_params({"split": split, "ckpt": str(ckpt), "videos": str(videos)})
    run.log_metrics({f"{split}/{row['task']}/{row['difficulty']}/{m}": row[m] for row in report.table
                     for m in HEADLINE})
    run.log_metrics({f"{split}/{row['task']}/{row['difficulty']}/{m}": row[m] for row in report.trajectory
                     for m in TRAJECTORY if row[m] is not None})
    for path in paths:
        run.log_artifact(path)
    run.finish()
    return run.run_id, run.hint
