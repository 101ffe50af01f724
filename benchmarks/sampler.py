"""Time our ``FlowSampler`` against diffusers' ``WanImageToVideoPipeline(expand_timesteps=True)`` on the same work.

Both start from the same uint8 first frame, noise and prompt embeddings (tiny random transformer, tiny Wan VAE) and
run the same number of steps; each side includes its first-frame VAE encoding. Reports the median over repeats.

    python benchmarks/sampler.py --steps 20 --height 64 --width 64 --frames 17 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from videoreason.diffusion.sampler import FlowSampler
from videoreason.diffusion.schedule import sampling_sigmas
from videoreason.media import to_model_video
from videoreason.models.codec import WanVAECodec
from videoreason.models.transformer import build_transformer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--shift", type=float, default=5.0)
    parser.add_argument("--guidance", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    torch.manual_seed(0)
    codec = WanVAECodec("tiny").eval()
    transformer = build_transformer("tiny", in_channels=codec.latent_channels).eval()
    text_dim = transformer.config.text_dim
    frame = torch.randint(0, 256, (1, 1, args.height, args.width, 3), dtype=torch.uint8)
    image = to_model_video(frame)[:, :, 0]  # [1, 3, H, W] in [-1, 1]
    shape = codec.latent_shape(args.frames, args.height, args.width)
    noise = torch.randn(1, *shape)
    prompt, negative = torch.randn(1, 16, text_dim), torch.randn(1, 16, text_dim)
    negative = negative if args.guidance > 1 else None

    pipe = WanImageToVideoPipeline(
        tokenizer=None,
        text_encoder=None,
        vae=codec.vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=args.shift),
        image_processor=None,
        image_encoder=None,
        transformer=transformer,
        expand_timesteps=True,
    )
    pipe.set_progress_bar_config(disable=True)
    sampler = FlowSampler(transformer, guidance_scale=args.guidance)

    def run_pipeline() -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pipe(
                image=image,
                prompt_embeds=prompt,
                negative_prompt_embeds=negative,
                height=args.height,
                width=args.width,
                num_frames=args.frames,
                num_inference_steps=args.steps,
                guidance_scale=args.guidance,
                latents=noise.clone(),
                output_type="latent",
            ).frames

    def run_ours() -> torch.Tensor:
        first = codec.encode(frame)
        sigmas = sampling_sigmas(args.steps, args.shift)
        return sampler.sample(noise.clone(), first, prompt, sigmas, negative_prompt_embeds=negative)

    runs = {"diffusers pipeline": run_pipeline, "ours (FlowSampler)": run_ours}
    outputs = {name: fn() for name, fn in runs.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):  # interleaved, so drifts in machine load hit both alike
        for name, fn in runs.items():
            start = time.perf_counter()
            outputs[name] = fn()
            times[name].append(time.perf_counter() - start)
    results = {name: (statistics.median(times[name]), outputs[name]) for name in runs}

    (t_ref, ref), ours = results["diffusers pipeline"], results["ours (FlowSampler)"][1]
    tokens = shape[1] * (shape[2] // 2) * (shape[3] // 2)
    print(
        f"latents {tuple(noise.shape)} ({tokens} tokens), {args.steps} steps, guidance {args.guidance}, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print(f"{'sampler':<20} {'total ms':>10} {'ms/step':>10} {'ratio':>8}")
    for name, (t, _) in results.items():
        print(f"{name:<20} {t * 1e3:>10.2f} {t * 1e3 / args.steps:>10.3f} {t / t_ref:>8.3f}")
    print(f"max |ours - pipeline| = {(ours - ref).abs().max().item():.3g}")


if __name__ == "__main__":
    main()
