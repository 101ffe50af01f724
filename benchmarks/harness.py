"""What the training benchmarks share: a Wan-shaped stand-in codec, a throwaway maze dataset, a Lightning ``fit`` of a
few steps timed per batch with peak memory, and running one case in a fresh interpreter.

Imported by the scripts next to it (``python benchmarks/<script>.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from estimates import CODECS, PIXEL4, Geometry

from videoreason.models.codec import Codec, PixelCodec


def make_codec(name: str) -> Codec:
    """``PixelCodec(patch=4)`` for the CPU configs, ``LinearWanCodec`` with the Wan VAE geometry for real-size ones."""
    geometry = CODECS.get(name, PIXEL4)
    return PixelCodec(patch=4) if geometry == PIXEL4 else LinearWanCodec(geometry)


class LinearWanCodec(Codec):
    """Stand-in for a Wan VAE: the same latent shapes (frame 0 alone, then groups of ``temporal`` frames; ``spatial``
    x ``spatial`` pixels per cell; ``channels`` latents) from a fixed random linear map of each pixel block and its
    pseudo-inverse. The transformer sees exactly a real run's latents; the VAE's cost (the same for every case, small
    next to the transformer's) is left out, and decoded videos are noise (fine for timing)."""

    def __init__(self, geometry: Geometry) -> None:
        super().__init__()
        self.geometry = geometry
        gen = torch.Generator().manual_seed(0)
        block = 3 * geometry.temporal * geometry.spatial**2
        proj = torch.linalg.qr(torch.randn(block, geometry.channels, generator=gen))[0]  # orthonormal columns
        self.register_buffer("proj", proj, persistent=False)

    latent_channels = property(lambda self: self.geometry.channels)
    temporal_factor = property(lambda self: self.geometry.temporal)
    spatial_factor = property(lambda self: self.geometry.spatial)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = x.shape
        s, t = self.geometry.spatial, self.geometry.temporal
        x = torch.cat([x[:, :, :1].expand(-1, -1, t - 1, -1, -1), x], dim=2)  # pad frame 0 to a group
        n = (f + t - 1) // t
        x = x.reshape(b, c, n, t, h // s, s, w // s, s).permute(0, 2, 4, 6, 1, 3, 5, 7)
        z = x.reshape(b, n, h // s, w // s, -1) @ self.proj.to(x)  # [b, f', h', w', C]
        return z.permute(0, 4, 1, 2, 3).contiguous()

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        b, _, n, hh, ww = latents.shape
        s, t = self.geometry.spatial, self.geometry.temporal
        x = latents.permute(0, 2, 3, 4, 1) @ self.proj.to(latents).T  # [b, f', h', w', block]
        x = x.reshape(b, n, hh, ww, 3, t, s, s).permute(0, 4, 1, 5, 2, 6, 3, 7)
        return x.reshape(b, 3, n * t, hh * s, ww * s)[:, :, t - 1:]


def make_dataset(root: Path, frames: int, height: int, width: int, num: int) -> None:
    """``num`` tiny maze puzzles (train) and 2 (val) rendered at ``frames x height x width`` into ``root``."""
    from videoreason.data.generate import generate_dataset
    from videoreason.tasks.render import RenderSpec

    spec = RenderSpec(height=height, width=width, num_frames=frames)
    for split, count in (("train", max(num, 2)), ("val", 2)):
        generate_dataset("maze", root, count, split=split, difficulty="tiny", spec=spec, workers=1, progress=False)


class PeakRSS:
    """Peak resident memory of this process, sampled on a background thread."""

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self._process, self._interval = psutil.Process(), interval
        self._stop = threading.Event()
        self.base = self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def stop(self) -> float:
        """Stop sampling; return the peak minus the RSS at construction, in bytes."""
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)
        return self.peak - self.base


class StepTimer(L.Callback):
    """Wall time of each training batch after ``warmup`` (CUDA synchronised) and the peak memory of ``fit``: on CUDA
    ``max_memory_allocated`` (reset at the start of training), on CPU the sampled RSS peak minus the RSS then.
    Subclasses add per-step records in ``after_step``."""

    def __init__(self, warmup: int, cuda: bool) -> None:
        self.warmup, self.cuda = warmup, cuda
        self.walls: list[float] = []
        self.peak_mem = 0.0

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._sync()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        else:
            self.rss = PeakRSS()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._sync()
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._sync()
        wall = time.perf_counter() - self.start
        if batch_idx >= self.warmup:
            self.walls.append(wall)
            self.after_step(trainer, pl_module, batch)

    def after_step(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any) -> None:
        """Hook: called after each timed step."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.peak_mem = torch.cuda.max_memory_allocated() if self.cuda else self.rss.stop()


def fit_steps(module: L.LightningModule, root: str | Path, *, batch_size: int, steps: int, device: str,
              precision: str, callbacks: list[L.Callback], seed: int = 0) -> None:
    """Train ``module`` for ``steps`` batches of ``batch_size`` puzzles from ``root`` (no validation, no logging)."""
    from videoreason.data.datamodule import PuzzleVideoDataModule

    for name in ("lightning.pytorch", "lightning.fabric"):  # no banners, tips or "fit stopped" per case
        logging.getLogger(name).setLevel(logging.WARNING)
    data = PuzzleVideoDataModule(str(root), batch_size=batch_size, num_val_puzzles=0,
                                 samples_per_epoch=steps * batch_size, seed=seed)
    trainer = L.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=1, precision=precision,
                        max_epochs=1, limit_train_batches=steps, limit_val_batches=0, num_sanity_val_steps=0,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=callbacks)
    trainer.fit(module, datamodule=data)


def run_isolated(script: str, argv: list[str], case: str, root: Path, tag: str) -> dict[str, Any]:
    """Run ``script argv --case case --data root`` in a fresh interpreter; parse its last ``tag`` + JSON line."""
    command = [sys.executable, os.path.abspath(script), *argv, "--case", case, "--data", str(root)]
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(tag)]
    if proc.returncode or not lines:
        sys.stdout.write(proc.stdout)
        raise RuntimeError(f"case {case} failed (exit status {proc.returncode})")
    return json.loads(lines[-1][len(tag):])
