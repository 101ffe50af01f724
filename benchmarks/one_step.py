"""How fast does a video model learn one local step of a chain-of-frames puzzle? A codec x training-noise ablation.

Each variant trains a fresh ``SFTModule`` (``medium`` transformer, 2-frame clips, batch 32, lr 5e-4, change weight
3) on (frame, next frame) pairs of maze ``tiny-fill`` videos (4000 boards drawn from seed 1, minus any that is a
rotation or reflection of a test board; all 8 dihedral images). Every ``--eval_every`` steps it generates the next
frame of every step of 100 boards drawn from seed 999 (10 denoising steps) and counts the exact next frames where
the reference changes something (``changing``), the blocks right among those it changes, and the exact frames where
it holds. A video of ``K`` changing steps needs all ``K`` right, so ``changing`` bounds the whole-video success of
a frame-by-frame model. Variants:

- ``pixel-uniform``: ``PixelCodec(4)`` (192 pixel values a token), sigma ~ U(0, 1), sampling shift 1 (reference);
- ``pixel-high``: the same codec, sigma ~ logit-normal shifted by 8 (mostly > 0.7), sampling shift 8;
- ``palette-high``: ``PaletteCodec`` (a one-hot over the 6 maze colours) with the high-noise sigma.

    python benchmarks/one_step.py --steps 500 --variants pixel-uniform pixel-high palette-high
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from videoreason.diffusion.schedule import sample_training_sigmas
from videoreason.models.codec import Codec, PaletteCodec, PixelCodec
from videoreason.phases.settings import FlowMatchingLoss
from videoreason.phases.sft import SFTModule
from videoreason.tasks.grid import DIHEDRAL, dihedral
from videoreason.tasks.maze import Maze, MazePuzzle
from videoreason.tasks.render import RenderSpec

SPEC = RenderSpec(height=56, width=56, num_frames=2)
TASK = Maze()


@dataclass(frozen=True)
class Variant:
    codec: str
    sigma_sampling: str
    shift: float


VARIANTS = {
    "pixel-uniform": Variant("pixel", "uniform", 1.0),
    "pixel-high": Variant("pixel", "logit_normal", 8.0),
    "palette-high": Variant("palette", "logit_normal", 8.0),
    "palette-uniform": Variant("palette", "uniform", 1.0),
}


def codec_of(name: str) -> Codec:
    return PaletteCodec(list(TASK.classes)) if name == "palette" else PixelCodec(4)


def fill_boards(seed: int, count: int) -> list[tuple[MazePuzzle, np.ndarray]]:
    """``count`` tiny-fill mazes and their label frames ``[T, R, C]`` (the last state held once)."""
    rng = np.random.default_rng(seed)
    boards = []
    for _ in range(count):
        puzzle = TASK.generate(rng, "tiny-fill")
        states = TASK.states(puzzle, TASK.solve(puzzle))  # the filling, up to the solved board
        boards.append((puzzle, np.concatenate([states, states[-1:]])))
    return boards


def render(puzzle: MazePuzzle, labels: np.ndarray) -> torch.Tensor:
    """Label frames ``[T, R, C]`` as a model video ``[1, 3, T, H, W]`` in [-1, 1]."""
    video = torch.from_numpy(TASK.render(puzzle, labels, SPEC))  # [T, H, W, 3]
    return video.permute(3, 0, 1, 2).unsqueeze(0).float() / 127.5 - 1


def train_batch(boards: list, rng: np.random.Generator, size: int) -> torch.Tensor:
    """``size`` random (frame, next frame) pairs under a random rotation or reflection: ``[B, 3, 2, H, W]``."""
    pairs = []
    for _ in range(size):
        puzzle, states = boards[rng.integers(len(boards))]
        k, d = int(rng.integers(len(states) - 1)), int(rng.integers(DIHEDRAL))
        pairs.append(render(puzzle, np.stack([dihedral(states[k], d), dihedral(states[k + 1], d)])))
    return torch.cat(pairs)


@torch.no_grad()
def step_accuracy(module: SFTModule, boards: list, batch: int = 64) -> dict[str, float]:
    """Exact next frames on changing and holding steps, and changed blocks right, over every step of ``boards``."""
    module.eval()
    steps = [(puzzle, states[k], states[k + 1]) for puzzle, states in boards for k in range(len(states) - 1)]
    exact: dict[bool, list[bool]] = {True: [], False: []}
    changed_right: list[float] = []
    for start in range(0, len(steps), batch):
        chunk = steps[start:start + batch]
        firsts = torch.cat([render(p, before[None])[:, :, 0] for p, before, _ in chunk])  # [b, 3, H, W]
        videos = module.generate(firsts, ["maze"] * len(chunk), num_frames=2,
                                 seeds=list(range(start, start + len(chunk)))).numpy()
        for (puzzle, before, after), video in zip(chunk, videos, strict=True):
            labels = TASK.parse(video, puzzle, SPEC).labels[1]
            changing = not np.array_equal(before, after)
            exact[changing].append(bool(np.array_equal(labels, after)))
            if changing:
                changed_right.append(float((labels[before != after] == after[before != after]).mean()))
    module.train()
    return {"changing": float(np.mean(exact[True])), "changed_blocks": float(np.mean(changed_right)),
            "holding": float(np.mean(exact[False])), "n_changing": len(exact[True])}


def run(name: str, steps: int, eval_every: int, train: list, test: list, batch_size: int) -> list[dict]:
    variant = VARIANTS[name]
    torch.manual_seed(0)
    module = SFTModule(transformer="medium", codec=codec_of(variant.codec), clip_frames=2,
                       loss=FlowMatchingLoss(change_weight=3.0, sigma_sampling=variant.sigma_sampling,
                                             shift=variant.shift),
                       val_shift=variant.shift, val_steps=10)
    optimizer = torch.optim.AdamW(module.transformer.parameters(), lr=5e-4, weight_decay=0.0)
    warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 50))
    rng, generator = np.random.default_rng(0), torch.Generator().manual_seed(0)
    curve, start = [], time.perf_counter()
    for step in tqdm(range(1, steps + 1), desc=name, unit="step"):
        video = train_batch(train, rng, batch_size)
        sigma = sample_training_sigmas(batch_size, mode=variant.sigma_sampling, shift=variant.shift,
                                       generator=generator)
        loss = module.flow_matching_loss(video, ["maze"] * batch_size, sigma)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.transformer.parameters(), 1.0)
        optimizer.step()
        warmup.step()
        if step % eval_every == 0:
            curve.append({"step": step, "samples": step * batch_size, "loss": float(loss),
                          "train_s": time.perf_counter() - start, **step_accuracy(module, test)})
            tqdm.write(json.dumps({"variant": name, **curve[-1]}))
    return curve


def table(curves: dict[str, list[dict]], reference: str = "pixel-uniform") -> str:
    lines = ["| variant | step | pairs seen | changing steps exact % | changed blocks right % | holding exact % | "
             "changing exact / reference |", "|---" * 7 + "|"]
    base = {p["step"]: p["changing"] for p in curves.get(reference, [])}
    for name, curve in curves.items():
        for p in curve:
            ratio = f"{p['changing'] / base[p['step']]:.1f}x" if base.get(p["step"]) else "-"
            lines.append(f"| {name} | {p['step']} | {p['samples']} | {100 * p['changing']:.1f} | "
                         f"{100 * p['changed_blocks']:.1f} | {100 * p['holding']:.1f} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["pixel-uniform", "pixel-high", "palette-high"],
                        choices=sorted(VARIANTS))
    parser.add_argument("--steps", type=int, default=500, help="optimizer steps per variant")
    parser.add_argument("--eval_every", type=int, default=250, help="steps between held-out scorings")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--train_boards", type=int, default=4000)
    parser.add_argument("--test_boards", type=int, default=100)
    parser.add_argument("--out", default=None, help="also write the curves here as JSON")
    args = parser.parse_args()
    test = fill_boards(999, args.test_boards)
    seen = {dihedral(states[0], d).tobytes() for _, states in test for d in range(DIHEDRAL)}
    train = [b for b in fill_boards(1, args.train_boards) if b[1][0].tobytes() not in seen]  # no test board's image
    curves = {name: run(name, args.steps, args.eval_every, train, test, args.batch_size) for name in args.variants}
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(curves, handle, indent=1)
    print(table(curves))


if __name__ == "__main__":
    main()
