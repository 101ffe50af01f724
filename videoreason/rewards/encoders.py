"""Frame encoders for embedding-level rewards: uint8 frames ``[N, H, W, 3]`` -> float32 embeddings ``[N, D]``.

- `WanVAEFrames`: the Wan VAE's encoder (each frame encoded as a one-frame video, latents average-pooled to a
  ``grid x grid`` map), from a local diffusers folder, or ``"tiny"`` (the seeded tiny VAE, always available, with
  Wan's architecture and random weights).
- `ImageModelFrames`: any local image encoder by path: a transformers vision model (``AutoModel`` +
  ``AutoImageProcessor``, the pooled output or the mean of the last hidden state) or a TorchScript file
  (``torch.jit.save`` of a torchvision model, called on ImageNet-normalised ``[N, 3, size, size]``).
- `PooledPixels`: the frame's pixels average-pooled and centred (the pixel fallback, as `FrameSimilarityReward`).
"""

from __future__ import annotations

import abc
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FrameEncoder(abc.ABC):
    """Embeds frames: uint8 ``[N, H, W, 3]`` (numpy or tensor) -> float32 ``[N, D]``. Subclass it for your own
    encoder (YAML: ``class_path: mypkg.MyEncoder``)."""

    @abc.abstractmethod
    def __call__(self, frames: np.ndarray | Tensor) -> Tensor:
        """The embeddings of ``frames``."""


def _as_unit(frames: np.ndarray | Tensor) -> Tensor:
    """uint8 ``[N, H, W, 3]`` -> float32 ``[N, 3, H, W]`` in [0, 1]."""
    x = frames if isinstance(frames, Tensor) else torch.from_numpy(np.ascontiguousarray(frames))
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"frames must be [N, H, W, 3], got shape {tuple(x.shape)}")
    return x.detach().to(torch.float32).permute(0, 3, 1, 2) / 255.0


class PooledPixels(FrameEncoder):
    """Pixels average-pooled to ``size x size`` and centred per channel (``3 * size**2`` dimensions).

    Args:
        size: side of the pooled frame.
    """

    def __init__(self, size: int = 8) -> None:
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"`size` must be a positive integer, got {size!r}")
        self.size = size

    def __call__(self, frames: np.ndarray | Tensor) -> Tensor:
        pooled = F.adaptive_avg_pool2d(_as_unit(frames), self.size)  # [N, 3, size, size]
        return (pooled - pooled.mean(dim=(2, 3), keepdim=True)).flatten(1)


class WanVAEFrames(FrameEncoder):
    """The Wan VAE encoder's latents of each frame, average-pooled to ``grid x grid`` (``z_dim * grid**2`` dims).

    Args:
        path_or_tiny: a local diffusers folder holding ``vae/`` (a Wan pipeline) or the VAE folder itself, or
            ``"tiny"``: the seeded tiny Wan VAE (random weights, always available).
        grid: side of the pooled latent map.
        batch_size: frames per encoder call.
    """

    def __init__(self, path_or_tiny: str = "tiny", grid: int = 4, batch_size: int = 32) -> None:
        from videoreason.models.codec import WanVAECodec

        if not isinstance(grid, int) or grid < 1:
            raise ValueError(f"`grid` must be a positive integer, got {grid!r}")
        self.codec = WanVAECodec(path_or_tiny)
        self.grid, self.batch_size = grid, batch_size

    @torch.no_grad()
    def __call__(self, frames: np.ndarray | Tensor) -> Tensor:
        x = _as_unit(frames) * 2 - 1  # [N, 3, H, W] in [-1, 1]
        f = self.codec.spatial_factor
        h, w = max(f, x.shape[2] // f * f), max(f, x.shape[3] // f * f)
        if (h, w) != x.shape[2:]:
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        out = []
        for chunk in x.split(self.batch_size):
            z = self.codec._encode(chunk[:, :, None])[:, :, 0]  # [n, C, h/8, w/8]: each frame a 1-frame video
            out.append(F.adaptive_avg_pool2d(z, self.grid).flatten(1))
        return torch.cat(out).float()


class ImageModelFrames(FrameEncoder):
    """A local image encoder by path: a transformers vision model folder or a TorchScript file.

    Args:
        path: a folder with a transformers ``config.json`` (and an image processor config, else the frames are
            resized to ``size`` and ImageNet-normalised), or a ``.pt`` TorchScript module.
        size: input side for TorchScript models and folders without an image processor.
        batch_size: frames per forward pass.
    """

    def __init__(self, path: str | Path, size: int = 224, batch_size: int = 32) -> None:
        path = Path(path)
        self.size, self.batch_size, self.processor = size, batch_size, None
        if path.is_file():
            self.model = torch.jit.load(str(path), map_location="cpu").eval()
            self.kind = "torchscript"
        elif (path / "config.json").is_file():
            from transformers import AutoImageProcessor, AutoModel

            self.model = AutoModel.from_pretrained(str(path)).eval()
            try:
                self.processor = AutoImageProcessor.from_pretrained(str(path))
            except (OSError, ValueError):
                self.processor = None
            self.kind = "transformers"
        else:
            raise FileNotFoundError(f"{path} is neither a TorchScript file nor a transformers model folder "
                                    f"(no config.json)")

    def _inputs(self, frames: Tensor) -> Tensor:
        """``[n, 3, H, W]`` in [0, 1] -> the model's pixel input."""
        if self.processor is not None:
            images = list((frames.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy())
            return self.processor(images=images, return_tensors="pt")["pixel_values"]
        x = F.interpolate(frames, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    @torch.no_grad()
    def __call__(self, frames: np.ndarray | Tensor) -> Tensor:
        out = []
        for chunk in _as_unit(frames).split(self.batch_size):
            pixels = self._inputs(chunk)
            if self.kind == "torchscript":
                out.append(self.model(pixels).flatten(1))
                continue
            result = self.model(pixel_values=pixels)
            pooled = getattr(result, "pooler_output", None)
            out.append((pooled if pooled is not None else result.last_hidden_state.mean(dim=1)).flatten(1))
        return torch.cat(out).float()
