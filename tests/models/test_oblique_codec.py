"""ObliqueCodec: Maze3D's oblique view as the stacked block grid, bit-exact on renders, tokens one block each."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videoreason.media import to_uint8
from videoreason.models.oblique_codec import ObliqueCodec
from videoreason.tasks.maze3d import AGENT, Maze3D
from videoreason.tasks.render import RenderSpec

SPEC = RenderSpec(height=64, width=64, num_frames=9)


def solved_video(task: Maze3D, rng: np.random.Generator, level: str) -> tuple[np.ndarray, np.ndarray]:
    """A rendered solution and its label grids ``[F, floors * side, side]`` frame by frame."""
    puzzle = task.generate(rng, level)
    states = task.states(puzzle, task.solve(puzzle))
    return task.render(puzzle, states, SPEC), task.parse(task.render(puzzle, states, SPEC), puzzle, SPEC).labels


@pytest.mark.parametrize("level", ["tiny", "vr-tiny"])
def test_a_render_decodes_back_bit_for_bit_and_its_latents_are_the_board(level):
    task, codec, rng = Maze3D(), ObliqueCodec(floors=2, size=2, height=64, width=64), np.random.default_rng(0)
    for _ in range(10):
        video, labels = solved_video(task, rng, level)
        latents = codec.encode(torch.from_numpy(video)[None])
        assert latents.shape == (1, 6, 9, 20, 10) and set(latents.unique().tolist()) == {-1.0, 1.0}
        assert (latents == 1).sum(1).eq(1).all()  # one colour per latent cell
        blocks = latents[0, :, :, ::2, ::2].argmax(0).numpy()  # [F, 10, 5]: one class per block
        assert np.array_equal(blocks, labels)  # the stacked board, as the parser reads it
        assert np.array_equal(latents[0, :, :, 1::2, 1::2].argmax(0).numpy(), labels)  # each block 2x2 cells
        assert torch.equal(to_uint8(codec.decode(latents))[0], torch.from_numpy(video))


def test_a_one_move_step_changes_two_blocks_of_the_latent_grid():
    task, codec = Maze3D(), ObliqueCodec(floors=2, size=2, height=64, width=64, cells=1)
    video, labels = solved_video(task, np.random.default_rng(3), "tiny")
    latents = codec.encode(torch.from_numpy(video)[None])[0].argmax(0)  # [F, 10, 5]
    changed = (latents[1] != latents[0]).sum().item()
    assert changed == 2 and (latents[1] == AGENT).sum() == 1  # the agent left one block and entered the next


def test_decoding_paints_each_block_in_its_strongest_colour_averaged_over_its_cells():
    codec = ObliqueCodec(floors=1, size=1, height=32, width=32)
    latents = -torch.ones(1, 6, 1, 6, 6)
    latents[:, 1] = 1.0  # floor everywhere
    latents[0, 5, 0, 2:4, 2:4] = 1.0  # the centre block: agent ties floor on all four cells ...
    latents[0, 1, 0, 2, 2] = -1.0  # ... and one cell votes against floor: the block is the agent
    frame = codec.decode(latents)
    labels = codec.encode(to_uint8(frame))[0, :, 0, ::2, ::2].argmax(0)
    assert labels[1, 1] == 5 and (labels.flatten().tolist().count(1) == 8)


def test_shape_and_setting_errors_name_the_problem():
    codec = ObliqueCodec(floors=2, size=2, height=64, width=64)
    with pytest.raises(ValueError, match=r"`height` x `width` must be 64x64 .* got 56x64"):
        codec.encode(torch.zeros(1, 2, 56, 64, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="must have a 20x10 grid"):
        codec.decode(torch.zeros(1, 6, 2, 10, 10))
    with pytest.raises(ValueError, match="too small for 3 floors of 4x4 cells"):
        ObliqueCodec(floors=3, size=4, height=16, width=16)
    with pytest.raises(ValueError, match="`floors` must be an integer >= 1"):
        ObliqueCodec(floors=0, size=2, height=64, width=64)
    with pytest.raises(ValueError, match="unknown colour name 'mauve'"):
        ObliqueCodec(floors=2, size=2, height=64, width=64, colours=["floor", "mauve"])
    assert codec.latent_shape(9, 64, 64) == (6, 9, 20, 10)


def test_its_config_rebuilds_the_same_codec():
    from videoreason.imports import import_path

    codec = ObliqueCodec(floors=2, size=2, height=64, width=64, cells=1)
    config = codec.config()
    rebuilt = import_path(config["class_path"])(**config["init_args"])
    video, _ = solved_video(Maze3D(), np.random.default_rng(1), "tiny")
    x = torch.from_numpy(video)[None]
    assert torch.equal(rebuilt.encode(x), codec.encode(x)) and rebuilt.config() == config


def test_it_follows_the_render_spec_cell_size():
    task, rng = Maze3D(), np.random.default_rng(5)
    spec = RenderSpec(height=96, width=96, num_frames=9, cell=8)  # blocks capped at 8 px, the board centred
    puzzle = task.generate(rng, "tiny")
    video = torch.from_numpy(task.render(puzzle, task.states(puzzle, task.solve(puzzle)), spec))[None]
    codec = ObliqueCodec(floors=2, size=2, height=96, width=96, cell=8)
    assert torch.equal(to_uint8(codec.decode(codec.encode(video))), video)
    unaware = ObliqueCodec(floors=2, size=2, height=96, width=96)  # reads the blocks where a full frame has them
    assert not torch.equal(to_uint8(unaware.decode(unaware.encode(video))), video)
