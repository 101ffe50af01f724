"""Host memory of the real-size Wan VAEs (random weights, CPU): weights, and the activation peak of encoding a first
frame and of decoding one video, at 480x832. Each case runs in its own process and reports its peak RSS above the
process's RSS once the VAE is built, so the figures are what a step adds on top of the weights.

The Wan VAE decodes one latent frame at a time (a causal cache), so the decode peak hardly depends on the frame
count: ``--frames`` 5 (two latent frames) measures it; the output video (``3 x F x H x W`` float32) comes on top.

    python benchmarks/vae_memory.py            # both VAEs, 480x832, float32: a few minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

RESULT_TAG = "VAE_MEMORY "
CONFIGS = {
    "wan2.1 (16 ch, 8x)": {},
    "wan2.2 (48 ch, 16x)": {"base_dim": 160, "decoder_base_dim": 256, "z_dim": 48, "is_residual": True,
                            "in_channels": 12, "out_channels": 12, "patch_size": 2, "scale_factor_spatial": 16,
                            "latents_mean": [0.0] * 48, "latents_std": [1.0] * 48},
}


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def case(name: str, frames: int, height: int, width: int) -> dict:
    import torch
    from diffusers import AutoencoderKLWan

    torch.set_grad_enabled(False)
    vae = AutoencoderKLWan(**CONFIGS[name]).eval()
    params = sum(p.numel() for p in vae.parameters())
    base = rss_mib()
    z = vae.encode(torch.zeros(1, 3, 1, height, width)).latent_dist.mode()  # the first frame, as GRPO/eval encode it
    encode_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    latents = torch.zeros(1, z.shape[1], (frames - 1) // 4 + 1, *z.shape[3:])
    vae.decode(latents)
    decode_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    return {"name": name, "params": params, "encode_mib": encode_peak, "decode_mib": decode_peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(RESULT_TAG + json.dumps(case(args.case, args.frames, args.height, args.width)))
        return
    rows = []
    for name in CONFIGS:
        out = subprocess.run([sys.executable, __file__, "--case", name, "--frames", str(args.frames), "--height",
                              str(args.height), "--width", str(args.width)], capture_output=True, text=True)
        lines = [x for x in out.stdout.splitlines() if x.startswith(RESULT_TAG)]
        if not lines:
            raise RuntimeError(out.stderr[-3000:])
        rows.append(json.loads(lines[0][len(RESULT_TAG):]))
    print(f"\nWan VAEs at {args.height}x{args.width}, float32, CPU (activation peaks scale with the weight dtype)\n")
    print("| VAE | parameters | weights fp32 GiB | weights bf16 GiB | encode first frame GiB | decode one video GiB |"
          " decode vs Wan2.1 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['name']} | {row['params'] / 1e6:.0f}M | {row['params'] * 4 / 2**30:.2f} | "
              f"{row['params'] * 2 / 2**30:.2f} | {row['encode_mib'] / 1024:.2f} | {row['decode_mib'] / 1024:.2f} | "
              f"{row['decode_mib'] / rows[0]['decode_mib']:.2f} |")


if __name__ == "__main__":
    main()
