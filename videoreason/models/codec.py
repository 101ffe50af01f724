"""Codecs: videos to latents and back.

Video conventions accepted by ``Codec.encode``:

- ``uint8 [B, F, H, W, 3]`` in [0, 255] (what the tasks render);
- float ``[B, F, H, W, 3]`` in [0, 255] (channels last; a float video with ``shape[1] == shape[-1] == 3`` is
  ambiguous and rejected);
- float ``[B, 3, F, H, W]`` in [-1, 1] (channels first, the diffusers convention).

``Codec.decode`` returns float ``[B, 3, F, H, W]`` in [-1, 1]; ``to_uint8`` turns that into ``uint8 [B, F, H, W, 3]``.
Latents are float32 ``[B, C, f, h, w]`` with ``f = (F - 1) // temporal_factor + 1``, ``h = H // spatial_factor``.

- ``PixelCodec(patch)``: lossless space-to-depth, frames kept 1:1.
- ``PaletteCodec(colours, patch)``: each pixel block as a one-hot over a few flat colours (the tiny task renders),
  frames kept 1:1. The tiny CPU recipes' codec: a token is a handful of classes, not 192 pixel values.
- ``ObliqueCodec(floors, size, height, width)`` (`videoreason.models.oblique_codec`): Maze3D's oblique view as
  one latent block per projected board block, frames kept 1:1.
- ``WanVAECodec(path_or_tiny)``: diffusers ``AutoencoderKLWan`` with the Wan pipelines' latents_mean/std
  normalisation; 4x temporal compression (frames 4k+1), 8x (Wan2.1 VAE) or 16x (Wan2.2 VAE) spatial.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

import torch

from videoreason.media import to_model_video
from videoreason.models.local import component_folder
from videoreason.models.recorded import RecordsConfig, absolute

if TYPE_CHECKING:
    from diffusers import AutoencoderKLWan


class Codec(RecordsConfig, torch.nn.Module, abc.ABC):
    """Turns videos into latents ``[B, C, f, h, w]`` and back. Frozen: encode and decode run without grad.

    ``config()`` gives the ``class_path`` + ``init_args`` that rebuild it (how exports record the codec)."""

    @property
    @abc.abstractmethod
    def latent_channels(self) -> int:
        """Channels ``C`` of the latents."""

    @property
    @abc.abstractmethod
    def temporal_factor(self) -> int:
        """Frames per latent frame after the first (``f = (F - 1) // temporal_factor + 1``)."""

    @property
    @abc.abstractmethod
    def spatial_factor(self) -> int | None:
        """Pixels per latent cell along height and width; ``None`` for a codec whose latents are not a downsampled
        frame (``ObliqueCodec``: a board's block grid), which overrides ``check_shape`` and ``latent_shape``."""

    def check_shape(self, num_frames: int, height: int, width: int) -> None:
        """Raise ``ValueError`` naming the argument if a video of this shape cannot be encoded.

        Args:
            num_frames: Frames ``F``; must be ``k * temporal_factor + 1``.
            height: Height ``H``; must be a multiple of ``spatial_factor``.
            width: Width ``W``; must be a multiple of ``spatial_factor``.
        """
        t, s = self.temporal_factor, self.spatial_factor
        if num_frames < 1 or (num_frames - 1) % t:
            raise ValueError(f"`num_frames` must be {t}k+1 for {self.name}, got {num_frames}")
        if height < s or height % s:
            raise ValueError(f"`height` must be a positive multiple of {s} for {self.name}, got {height}")
        if width < s or width % s:
            raise ValueError(f"`width` must be a positive multiple of {s} for {self.name}, got {width}")

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """Latent shape ``(C, f, h, w)`` of a video ``[F, H, W]`` (checked with ``check_shape``)."""
        self.check_shape(num_frames, height, width)
        t, s = self.temporal_factor, self.spatial_factor
        return self.latent_channels, (num_frames - 1) // t + 1, height // s, width // s

    @property
    def name(self) -> str:
        """Human-readable name used in error messages."""
        return type(self).__name__

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Encode a video (any convention of the module docstring) to float32 latents ``[B, C, f, h, w]``."""
        x = to_model_video(video)  # [B, 3, F, H, W]
        self.check_shape(*x.shape[2:])
        return self._encode(x).float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode latents ``[B, C, f, h, w]`` to a float32 video ``[B, 3, F, H, W]`` in [-1, 1]."""
        if latents.ndim != 5 or latents.shape[1] != self.latent_channels:
            raise ValueError(
                f"`latents` must be [B, {self.latent_channels}, f, h, w] for {self.name}, got {tuple(latents.shape)}"
            )
        return self._decode(latents).float().clamp(-1.0, 1.0)

    @abc.abstractmethod
    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, F, H, W]`` in [-1, 1] (shape already checked) to ``[B, C, f, h, w]``."""

    @abc.abstractmethod
    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``[B, C, f, h, w]`` to ``[B, 3, F, H, W]`` (clamped by the caller)."""


class PatchCodec(Codec, abc.ABC):
    """A codec that folds each ``patch x patch`` pixel block into one latent cell and keeps frames 1:1."""

    def __init__(self, patch: int) -> None:
        super().__init__()
        if patch < 1:
            raise ValueError(f"`patch` must be >= 1, got {patch}")
        self.patch = int(patch)

    @property
    def temporal_factor(self) -> int:
        return 1

    @property
    def spatial_factor(self) -> int:
        return self.patch


class PixelCodec(PatchCodec):
    """Lossless space-to-depth: each ``patch x patch`` RGB block becomes ``3 * patch**2`` channels.

    Frames map 1:1 (``temporal_factor`` 1). Values are the pixels scaled to [-1, 1], so
    ``decode(encode(v))`` reproduces ``v`` exactly (``to_uint8`` of it gives back uint8 input bit for bit).

    Args:
        patch: Side of the pixel block folded into one latent cell.
    """

    def __init__(self, patch: int = 4) -> None:
        super().__init__(patch)
        self.init_args = {"patch": self.patch}

    @property
    def latent_channels(self) -> int:
        return 3 * self.patch**2

    @property
    def name(self) -> str:
        return f"PixelCodec(patch={self.patch})"

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = x.shape
        p = self.patch
        x = x.reshape(b, c, f, h // p, p, w // p, p)  # [B, 3, F, h, p, w, p]
        x = x.permute(0, 1, 4, 6, 2, 3, 5)  # [B, 3, p, p, F, h, w]
        return x.reshape(b, c * p * p, f, h // p, w // p)  # [B, 3*p*p, F, h, w]

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        b, _, f, h, w = latents.shape
        p = self.patch
        x = latents.reshape(b, 3, p, p, f, h, w)  # [B, 3, p, p, F, h, w]
        x = x.permute(0, 1, 4, 5, 2, 6, 3)  # [B, 3, F, h, p, w, p]
        return x.reshape(b, 3, f, h * p, w * p)  # [B, 3, F, H, W]


Colour = str | tuple[int, int, int]


def palette_tensor(colours: list[Colour]) -> torch.Tensor:
    """``colours`` (render palette names, ``"background"``, or ``[r, g, b]`` in 0..255) as float ``[K, 3]`` in
    [-1, 1]; at least 2, all distinct, else a ``ValueError`` naming the entry."""
    from videoreason.tasks.render import BACKGROUND, DEFAULT_PALETTE

    named = {**DEFAULT_PALETTE, "background": BACKGROUND}
    rgb = []
    for colour in colours:
        if isinstance(colour, str):
            if colour not in named:
                raise ValueError(f"`colours` has unknown colour name {colour!r}; names: {sorted(named)}")
            colour = named[colour]
        if len(colour) != 3 or not all(0 <= int(c) <= 255 for c in colour):
            raise ValueError(f"`colours` entries must be palette names or [r, g, b] in 0..255, got {colour!r}")
        rgb.append([int(c) for c in colour])
    if len(rgb) < 2 or len({tuple(c) for c in rgb}) != len(rgb):
        raise ValueError(f"`colours` must hold at least 2 distinct colours, got {list(colours)}")
    return torch.tensor(rgb, dtype=torch.float32) / 127.5 - 1.0


class PaletteCodec(PatchCodec):
    """Videos painted in a few flat colours (the tiny task renders) as one-hot vectors over those colours.

    Every pixel takes its nearest colour of ``colours``; each ``patch x patch`` block becomes the one-hot vector of
    its most frequent colour, scaled to {-1, 1}. Decoding paints each block in the colour of its largest channel.
    Frames map 1:1 (``temporal_factor`` 1).

    Compared with ``PixelCodec(patch=4)`` a token (2 x 2 latent cells) carries ``4 * len(colours)`` values instead of
    192, and denoising a block decides between a handful of classes: on the one-step maze task it learns in a
    fraction of the samples (README, "Chain of frames"). It is lossy where a block is not one colour (thin grid
    lines, dots, anti-aliased edges are repainted in the block's majority colour), so it suits boards whose cells
    span whole blocks: a tiny task video decodes to frames that parse to the same labels.

    Args:
        colours: The colours, each a name of the render palette (``videoreason.tasks.render.DEFAULT_PALETTE``,
            plus ``"background"``) or an ``[r, g, b]`` triple in 0..255.
        patch: Side of the pixel block folded into one latent cell.
    """

    def __init__(self, colours: list[Colour], patch: int = 4) -> None:
        super().__init__(patch)
        self.init_args = {"colours": [c if isinstance(c, str) else [int(v) for v in c] for c in colours],
                          "patch": self.patch}
        self.register_buffer("palette", palette_tensor(colours))  # [K, 3]

    @property
    def latent_channels(self) -> int:
        return len(self.palette)

    @property
    def name(self) -> str:
        return f"PaletteCodec({self.latent_channels} colours, patch={self.patch})"

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        b, _, f, h, w = x.shape
        pixels = x.permute(0, 2, 3, 4, 1).to(self.palette)  # [B, F, H, W, 3]
        nearest = torch.cdist(pixels.reshape(b, -1, 3), self.palette).argmin(-1)  # [B, F*H*W]
        votes = torch.nn.functional.one_hot(nearest, self.latent_channels).float()
        votes = votes.view(b * f, h, w, -1).permute(0, 3, 1, 2)  # [B*F, K, H, W]
        counts = torch.nn.functional.avg_pool2d(votes, self.patch)  # [B*F, K, h, w]
        onehot = torch.nn.functional.one_hot(counts.argmax(1), self.latent_channels).permute(0, 3, 1, 2)
        return (onehot.float() * 2 - 1).view(b, f, -1, h // self.patch, w // self.patch).transpose(1, 2)

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        colours = self.palette[latents.argmax(1)]  # [B, f, h, w, 3]
        video = colours.permute(0, 4, 1, 2, 3)  # [B, 3, f, h, w]
        return video.repeat_interleave(self.patch, 3).repeat_interleave(self.patch, 4)


TINY_VAE_CONFIG: dict = {
    "base_dim": 8,
    "z_dim": 4,
    "dim_mult": [1, 1, 1, 1],
    "num_res_blocks": 1,
    "attn_scales": [],
    "temperal_downsample": [False, True, True],
    # non-trivial statistics so the normalisation is exercised
    "latents_mean": [0.1, -0.2, 0.3, -0.4],
    "latents_std": [1.5, 0.5, 2.0, 1.0],
}


def build_tiny_vae(seed: int = 0) -> AutoencoderKLWan:
    """A randomly initialised ``AutoencoderKLWan`` of ``TINY_VAE_CONFIG`` (4x temporal, 8x spatial, 4 channels).

    The global RNG is left untouched; the weights depend only on ``seed``.
    """
    from diffusers import AutoencoderKLWan

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AutoencoderKLWan(**TINY_VAE_CONFIG)


class WanVAECodec(Codec):
    """diffusers ``AutoencoderKLWan`` with the Wan pipelines' latent normalisation.

    Encoding takes the posterior mode (the pipelines' ``sample_mode="argmax"``) and returns
    ``(z - latents_mean) / latents_std``; decoding undoes it before ``vae.decode``.

    Args:
        path_or_tiny: ``"tiny"`` (random ``TINY_VAE_CONFIG``, for tests and CPU runs) or a local diffusers folder
            holding ``vae/`` (a pipeline root) or the VAE folder itself (with ``config.json``).
        dtype: Dtype of the VAE weights (latents come back float32 either way).
        tiling: Encode and decode frames larger than ``tile_size`` in overlapping spatial tiles, blended at the
            seams (diffusers ``enable_tiling``): activation memory of one tile instead of the whole frame, at the
            price of small differences near the seams.
        slicing: Encode and decode a batch one video at a time (diffusers ``enable_slicing``); same result.
        tile_size: Tile side in pixels (``None``: diffusers' 256); a multiple of the spatial factor.
        tile_stride: Distance between tile starts in pixels (``None``: diffusers' 192); at most ``tile_size``, the
            rest is the blended overlap.
    """

    def __init__(
        self,
        path_or_tiny: str = "tiny",
        dtype: torch.dtype = torch.float32,
        tiling: bool = False,
        slicing: bool = False,
        tile_size: int | None = None,
        tile_stride: int | None = None,
    ) -> None:
        super().__init__()
        from diffusers import AutoencoderKLWan

        if path_or_tiny == "tiny":
            vae = build_tiny_vae()
        else:
            folder = component_folder(path_or_tiny, "vae", "Wan VAE (give 'tiny' or a local diffusers folder)")
            vae = AutoencoderKLWan.from_pretrained(str(folder), torch_dtype=dtype, use_safetensors=True)
            path_or_tiny = absolute(path_or_tiny)
        self.init_args = {"path_or_tiny": path_or_tiny, "dtype": str(dtype), "tiling": tiling, "slicing": slicing,
                          "tile_size": tile_size, "tile_stride": tile_stride}
        if vae.dtype != dtype:
            vae = vae.to(dtype=dtype)
        self.vae = vae.eval().requires_grad_(False)
        cfg = self.vae.config
        c = int(cfg.z_dim)
        self.register_buffer("latents_mean", torch.tensor(cfg.latents_mean, dtype=torch.float32).view(1, c, 1, 1, 1))
        self.register_buffer("latents_std", torch.tensor(cfg.latents_std, dtype=torch.float32).view(1, c, 1, 1, 1))
        if slicing:
            self.vae.enable_slicing()
        if tiling:
            size = self.vae.tile_sample_min_height if tile_size is None else int(tile_size)
            stride = self.vae.tile_sample_stride_height if tile_stride is None else int(tile_stride)
            f = self.spatial_factor
            if size < f or size % f:
                raise ValueError(f"`tile_size` must be a positive multiple of {f} for {self.name}, got {size}")
            if not f <= stride <= size or stride % f:
                raise ValueError(f"`tile_stride` must be a multiple of {f} in [{f}, tile_size={size}], got {stride}")
            self.vae.enable_tiling(size, size, stride, stride)

    @property
    def latent_channels(self) -> int:
        return int(self.vae.config.z_dim)

    @property
    def temporal_factor(self) -> int:
        return int(self.vae.config.scale_factor_temporal or 4)

    @property
    def spatial_factor(self) -> int:
        return int(self.vae.config.scale_factor_spatial or 8)

    @property
    def name(self) -> str:
        return "the Wan VAE"

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(device=self.latents_mean.device, dtype=self.vae.dtype)  # [B, 3, F, H, W]
        z = self.vae.encode(x).latent_dist.mode().float()  # [B, C, f, h, w]
        return (z - self.latents_mean) / self.latents_std

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents.float() * self.latents_std + self.latents_mean  # [B, C, f, h, w]
        return self.vae.decode(z.to(self.vae.dtype), return_dict=False)[0]  # [B, 3, F, H, W]
