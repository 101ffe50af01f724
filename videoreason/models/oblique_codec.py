"""``ObliqueCodec``: a board drawn in Maze3D's oblique view as one latent block per board block."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from videoreason.checks import is_integer
from videoreason.models.codec import Codec, Colour, palette_tensor


class ObliqueCodec(Codec):
    """A board drawn in Maze3D's oblique view as one latent block per board block.

    The oblique view (`videoreason.tasks.maze3d.ObliqueView`) shears and foreshortens the block grid, so its blocks
    never line up with a patch grid: with ``PixelCodec`` or ``PaletteCodec`` a one-block move of the agent is a smear
    across a few 8x8 tokens that each cover parts of several blocks, and the tiny model never learns to move it
    (README, "Maze3D"). This codec reads the frame the way the parser does, one class per projected block, and lays the
    blocks out as the stacked label grid ``[floors * side, side]`` (floor ``f`` in rows ``f * side`` ..), each block
    ``cells x cells`` latent cells, so with the transformer's 2x2 patch one token is one block, as on the flat boards.

    Encoding votes every pixel of a block to its nearest colour of ``colours`` and keeps the block's majority as a
    one-hot vector scaled to {-1, 1}; decoding paints each block in the colour of its largest channel (averaged over its
    latent cells) and everything else (the background between floors, grid lines) in the background colour. A render
    of the board therefore decodes back bit for bit. Frames map 1:1.

    Args:
        floors: Floors of the board.
        size: Cells per side of a floor (a floor is ``2 * size + 1`` blocks a side).
        height: Frame height in pixels (the codec paints frames of exactly this size).
        width: Frame width in pixels.
        colours: The block colours, each a render palette name or ``[r, g, b]``; default Maze3D's classes.
        cells: Latent cells per block side.
        margin: The render spec's ``margin`` the videos were drawn with.
        grid_line: The render spec's ``grid_line`` the videos were drawn with.
        cell: The render spec's ``cell`` (largest block width) the videos were drawn with.
    """

    def __init__(self, floors: int, size: int, height: int, width: int, colours: list[Colour] | None = None,
                 cells: int = 2, margin: int = 0, grid_line: float = 0.06, cell: int | None = None) -> None:
        super().__init__()
        from videoreason.tasks.maze3d import Maze3D, ObliqueView
        from videoreason.tasks.render import BACKGROUND, RenderSpec

        for key, value, low in (("floors", floors, 1), ("size", size, 1), ("cells", cells, 1)):
            if not is_integer(value) or value < low:
                raise ValueError(f"`{key}` must be an integer >= {low}, got {value!r}")
        colours = list(Maze3D.classes) if colours is None else list(colours)
        spec = RenderSpec(height=height, width=width, margin=margin, grid_line=grid_line, cell=cell)  # checks them
        self.floors, self.side, self.cells, self.height, self.width = floors, 2 * size + 1, cells, height, width
        self.init_args = {"floors": floors, "size": size, "height": height, "width": width, "colours": colours,
                          "cells": cells, "margin": margin, "grid_line": grid_line, "cell": cell}
        self.register_buffer("palette", palette_tensor(colours))  # [K, 3] in [-1, 1]
        self.register_buffer("background", torch.tensor(BACKGROUND, dtype=torch.float32) / 127.5 - 1.0)
        where = torch.from_numpy(ObliqueView(floors, self.side, spec).pixel_blocks())  # [H, W], -1 off the board
        blocks = floors * self.side * self.side
        empty = sorted(set(range(blocks)) - set(where[where >= 0].tolist()))
        if empty:
            raise ValueError(f"a {height}x{width} frame is too small for {floors} floors of {size}x{size} cells: "
                             f"{len(empty)} blocks (first: {empty[0]}) cover no whole pixel; use a larger frame")
        self.register_buffer("where", torch.where(where < 0, blocks, where).flatten(), persistent=False)
        self.num_blocks = blocks
        self.grid = (floors * self.side * cells, self.side * cells)  # latent (h, w): `cells` a block side

    @property
    def latent_channels(self) -> int:
        return len(self.palette)

    @property
    def temporal_factor(self) -> int:
        return 1

    @property
    def spatial_factor(self) -> None:
        return None  # latents are the block grid, not a downsampled frame

    @property
    def name(self) -> str:
        return f"ObliqueCodec({self.floors} floors of {self.side}x{self.side} blocks at {self.height}x{self.width})"

    def check_shape(self, num_frames: int, height: int, width: int) -> None:
        if num_frames < 1:
            raise ValueError(f"`num_frames` must be >= 1 for {self.name}, got {num_frames}")
        if (height, width) != (self.height, self.width):
            raise ValueError(f"`height` x `width` must be {self.height}x{self.width} for {self.name} (the frame it "
                             f"draws), got {height}x{width}")

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        self.check_shape(num_frames, height, width)
        return (self.latent_channels, num_frames, *self.grid)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        b, _, f, h, w = x.shape
        pixels = x.permute(0, 2, 3, 4, 1).reshape(b * f, h * w, 3).to(self.palette)
        nearest = torch.cdist(pixels, self.palette).argmin(-1)  # [B*F, H*W]
        votes = F.one_hot(nearest, self.latent_channels).float()
        counts = votes.new_zeros(b * f, self.num_blocks + 1, self.latent_channels)
        counts.index_add_(1, self.where, votes)  # per block; the last row gathers the off-board pixels
        onehot = F.one_hot(counts[:, :-1].argmax(-1), self.latent_channels).float() * 2 - 1  # [B*F, N, K]
        grid = onehot.view(b, f, self.floors * self.side, self.side, -1).permute(0, 4, 1, 2, 3)
        return grid.repeat_interleave(self.cells, 3).repeat_interleave(self.cells, 4)

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        b, k, f, h, w = latents.shape
        if (h, w) != self.grid:
            raise ValueError(f"`latents` must have a {self.grid[0]}x{self.grid[1]} grid for {self.name}, got {h}x{w}")
        pooled = F.avg_pool2d(latents.transpose(1, 2).reshape(b * f, k, h, w), self.cells)  # [B*F, K, rows, side]
        colours = torch.cat([self.palette[pooled.argmax(1).flatten(1)], self.background.expand(b * f, 1, 3)], 1)
        frames = colours[:, self.where]  # [B*F, H*W, 3]
        return frames.view(b, f, self.height, self.width, 3).permute(0, 4, 1, 2, 3)
