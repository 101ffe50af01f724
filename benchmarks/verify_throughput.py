"""Parse + verify throughput per task, on one core, at the tiny spec and at Wan's 480x832x33.

Prints videos/s for parse+verify of in-memory frames (what a GRPO reward needs), the mp4 decode cost separately,
the ratio to the target of 200 videos/s per core at the tiny spec, and verification time as a share of one
tiny-model rollout of the same video (target: under 5%).

    python benchmarks/verify_throughput.py [--videos 100] [--seconds 2] [--rollout-steps 20]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the target is per core

import numpy as np  # noqa: E402

from videoreason.media import decode_video, encode_mp4  # noqa: E402
from videoreason.tasks.base import resolve_task  # noqa: E402
from videoreason.tasks.render import RenderSpec  # noqa: E402

TARGET_TINY = 200.0  # videos/s per core
CASES = [  # (task, level at the tiny spec, level at the Wan spec)
    ("maze", "easy", "hard"),
    ("flowfree", "easy", "expert"),
    ("sokoban", "easy", "hard"),
    ("trapfield", "tiny", "hard"),  # agent videos: the tiny level's walks fit 9 frames
    ("maze_agent", "tiny", "hard"),
    ("maze3d", "tiny", "hard"),  # the oblique view, read at projected block centres
    ("maze3d", "vr-tiny", "vr-hard"),  # VR-Bench's family: several ladders, loops, ends on ladders
    ("navigation", "tiny", "medium"),  # parse + localise the camera in every frame
    ("pathfinder", "tiny", "hard"),  # road networks: junction dots on the roads
]


def measure(task_name: str, level: str, spec: RenderSpec, videos: int, seconds: float) -> dict[str, float]:
    """Rates for one task/level/spec over ``videos`` distinct puzzles."""
    task = resolve_task(task_name)
    samples = []
    for seed in range(videos):
        puzzle = task.generate(np.random.default_rng(seed), level)
        states = task.states(puzzle, task.solve(puzzle), max_states=spec.num_frames)
        samples.append((task.render(puzzle, states, spec), puzzle))
    for video, puzzle in samples[:3]:  # warm caches (solver references) the way a training run would
        task.verdict(video, puzzle, spec)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        video, puzzle = samples[count % len(samples)]
        assert task.verdict(video, puzzle, spec).success
        count += 1
    rate = count / (time.perf_counter() - start)
    mp4 = [encode_mp4(v, spec.fps) for v, _ in samples[:20]]
    start = time.perf_counter()
    for data in mp4:
        decode_video(data)
    decode_ms = 1000 * (time.perf_counter() - start) / len(mp4)
    return {"rate": rate, "ms": 1000 / rate, "decode_ms": decode_ms}


def rollout_ms(spec: RenderSpec, steps: int, repeats: int = 3) -> float:
    """Median ms of one tiny-model rollout at ``spec``: encode frame 0, ``steps`` ODE steps, decode to uint8."""
    import torch

    from videoreason.diffusion.sampler import FlowSampler
    from videoreason.diffusion.schedule import sampling_sigmas
    from videoreason.media import to_uint8
    from videoreason.models.codec import PixelCodec
    from videoreason.models.text import HashTextEmbedder
    from videoreason.models.transformer import build_transformer

    torch.set_num_threads(1)
    codec = PixelCodec(patch=4)
    model = build_transformer("tiny", in_channels=codec.latent_channels).eval()
    embeds = HashTextEmbedder(dim=model.config.text_dim).embed(["draw the path"])
    video = torch.zeros(1, spec.num_frames, spec.height, spec.width, 3, dtype=torch.uint8)
    sampler, sigmas = FlowSampler(model), sampling_sigmas(steps, shift=5.0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        first = codec.encode(video[:, :1])  # [1, C, 1, h, w]
        noise = torch.randn(1, codec.latent_channels, *codec.latent_shape(*video.shape[1:4])[1:])
        to_uint8(codec.decode(sampler.sample(noise, first, embeds, sigmas)))
        times.append(1000 * (time.perf_counter() - start))
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=100, help="distinct puzzles per case")
    parser.add_argument("--seconds", type=float, default=2.0, help="timing window per case")
    parser.add_argument("--rollout-steps", type=int, default=20, help="steps of the tiny rollout (0: skip)")
    parser.add_argument("--tasks", nargs="+", choices=sorted({c[0] for c in CASES}),
                        help="only these tasks (default: all)")
    args = parser.parse_args()
    rows = []
    for task_name, tiny_level, wan_level in CASES:
        if args.tasks and task_name not in args.tasks:
            continue
        for spec_name, spec, level in (("tiny 64x64x9", RenderSpec.tiny(), tiny_level),
                                       ("wan 480x832x33", RenderSpec.wan(), wan_level)):
            n = args.videos if spec_name.startswith("tiny") else max(10, args.videos // 10)
            result = measure(task_name, level, spec, n, args.seconds)
            rows.append((task_name, level, spec_name, result))
    print("| task | level | spec | parse+verify videos/s/core | ms/video | mp4 decode ms | vs target 200/s |")
    print("|---|---|---|---|---|---|---|")
    for task_name, level, spec_name, r in rows:
        ratio = f"{r['rate'] / TARGET_TINY:.1f}x" if spec_name.startswith("tiny") else "-"
        print(f"| {task_name} | {level} | {spec_name} | {r['rate']:.0f} | {r['ms']:.2f} | {r['decode_ms']:.1f} "
              f"| {ratio} |")
    if args.rollout_steps:
        spec = RenderSpec.tiny()
        rollout = rollout_ms(spec, args.rollout_steps)
        print(f"\nTiny-model rollout at {spec.height}x{spec.width}x{spec.num_frames}, {args.rollout_steps} steps, "
              f"one thread: {rollout:.1f} ms per video")
        print("| task | verify ms | share of rollout (target < 5%) |")
        print("|---|---|---|")
        for task_name, _, spec_name, r in rows:
            if spec_name.startswith("tiny"):
                print(f"| {task_name} | {r['ms']:.2f} | {100 * r['ms'] / rollout:.2f}% |")


if __name__ == "__main__":
    main()
