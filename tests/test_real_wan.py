"""The real-model path end to end: every shipped Wan config, through the ``videoreason`` CLI, on a tiny
diffusers-format Wan folder of its layout (``tests/wan_folder.py``), overriding only paths and sizes.

``data generate`` -> SFT (2 steps) -> export -> GRPO (2 steps) from that export -> export -> ``eval``. The codec and
prompt embedder must survive every hand-over, the GRPO export must stand alone (its SFT run deleted, loaded from
another working directory), and the GRPO export loaded into diffusers' ``WanImageToVideoPipeline`` on the stock base
with ``load_lora_weights`` must be the model ``videoreason eval`` runs.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from videoreason.cli import main
from videoreason.models.codec import WanVAECodec
from videoreason.models.export import load_module
from videoreason.models.text import UMT5Embedder
from videoreason.resources import config_root

CHAINS = [(model, frames) for model in ("wan2.1_1.3b", "wan2.2_ti2v_5b") for frames in (33, 81)]
SIZE = ["--height", "64", "--width", "64", "--frames", "9"]


def _sizes(phase: str) -> list[str]:
    """Smaller batches and steps; every other setting is the config's."""
    common = ["--trainer.max_steps", "2", "--trainer.enable_progress_bar", "false",
              "--data.init_args.num_workers", "0", "--data.init_args.num_val_puzzles", "0"]
    if phase == "grpo":
        return [*common, "--model.init_args.sampling.group_size", "2", "--data.init_args.batch_size", "1"]
    return [*common, "--data.init_args.batch_size", "1", "--trainer.accumulate_grad_batches", "1"]


def _chain(model: str, frames: int, work: Path, wan: Path) -> dict[str, Path]:
    """Run the shipped SFT then GRPO config of ``model`` at ``frames`` (shapes shrunk) and eval the GRPO export."""
    data, sft, grpo = work / "data", work / "sft", work / "grpo"
    for split, num in (("train", 4), ("test", 2)):
        assert main(["data", "generate", "--task", "maze", "--difficulty", "tiny", "--spec", "tiny", *SIZE,
                     "--split", split, "--num", str(num), "--out", str(data), "--workers", "1"]) == 0
    paths = ["--data.init_args.root", str(data)]
    assert main(["fit", "--config", f"configs/{model}/sft_480x832x{frames}.yaml", *paths, *_sizes("sft"),
                 "--trainer.default_root_dir", str(sft), "--model.init_args.pretrained", str(wan)]) == 0
    assert main(["fit", "--config", f"configs/{model}/grpo_480x832x{frames}.yaml", *paths, *_sizes("grpo"),
                 "--trainer.default_root_dir", str(grpo), "--model.init_args.init_from", str(sft / "adapter")]) == 0
    assert main(["eval", "--ckpt", str(grpo / "adapter"), "--data", str(data), "--limit", "2", "--steps", "2",
                 "--guidance_scale", "5.0", "--track", "false", "--workers", "1"]) == 0
    return {"data": data, "sft": sft, "grpo": grpo}


def _pipeline_latents(wan: Path, lora: Path, image: torch.Tensor, prompt: str, noise: torch.Tensor, steps: int,
                      shift: float, guidance: float) -> torch.Tensor:
    """diffusers' own I2V pipeline (TI2V conditioning) on the stock folder with our export as its LoRA."""
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = WanImageToVideoPipeline.from_pretrained(str(wan), expand_timesteps=True, image_encoder=None,
                                                       image_processor=None, torch_dtype=torch.float32)
        pipe.scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
        pipe.load_lora_weights(str(lora))
        pipe.set_progress_bar_config(disable=True)
        out = pipe(image=image, prompt=prompt, height=image.shape[-2], width=image.shape[-1],
                   num_frames=(noise.shape[2] - 1) * pipe.vae.config.scale_factor_temporal + 1,
                   num_inference_steps=steps, guidance_scale=guidance, latents=noise.clone(), output_type="latent")
    return out.frames


@pytest.mark.parametrize(("model", "frames"), CHAINS, ids=[f"{m}-{f}" for m, f in CHAINS])
def test_shipped_wan_config_chain(model, frames, tmp_path, tiny_wan_dir, tiny_wan22_dir, monkeypatch):
    wan = tiny_wan22_dir if model.startswith("wan2.2") else tiny_wan_dir
    runs = _chain(model, frames, tmp_path, wan)
    channels = 48 if model.startswith("wan2.2") else 4

    # every hand-over keeps the VAE codec and the UMT5 embedder of the pretrained folder
    for path in (runs["sft"] / "adapter", runs["sft"] / "checkpoints" / "last.ckpt", runs["grpo"] / "adapter",
                 runs["grpo"] / "checkpoints" / "last.ckpt"):
        module = load_module(path)
        assert isinstance(module.codec, WanVAECodec) and module.codec.latent_channels == channels, path
        assert isinstance(module.text_embedder, UMT5Embedder) and module.text_embedder.path == str(wan), path
        assert module.hparams["transformer"] == str(wan), path
    config = yaml.safe_load((runs["grpo"] / "adapter" / "module.yaml").read_text())["init_args"]
    sft_rank = yaml.safe_load((config_root() / model / f"sft_480x832x{frames}.yaml").read_text())[
        "model"]["init_args"]["lora"]["rank"]
    assert config["init_from"] is None and config["lora"]["rank"] == sft_rank + 32  # SFT and GRPO ranks stacked
    assert list((runs["grpo"] / "eval" / "test" / "videos").glob("*.mp4"))

    # the GRPO export stands alone: SFT run gone, another working directory
    shutil.rmtree(runs["sft"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    module = load_module(runs["grpo"] / "adapter")

    # ... and is what diffusers builds from the stock folder plus load_lora_weights(export)
    from videoreason.data.dataset import read_rows
    from videoreason.diffusion.noise import seeded_noise
    from videoreason.eval.evaluate import load_first_frame

    row = read_rows(runs["data"], split="test")[0]
    image = load_first_frame(runs["data"], row)[None]  # [1, 3, H, W] in [-1, 1]
    noise = seeded_noise([0], module.codec.latent_shape(9, 64, 64), torch.device("cpu"))
    decoded = []
    module.codec.decode = lambda latents, decode=module.codec.decode: decoded.append(latents) or decode(latents)
    for guidance in (1.0, 5.0):  # `videoreason eval --guidance_scale`: classifier-free guidance as the pipeline's
        module.generate(image, [row["prompt"]], 9, seeds=[0], steps=3, shift=5.0, guidance_scale=guidance)
        expected = _pipeline_latents(wan, runs["grpo"] / "adapter", image, row["prompt"], noise, steps=3, shift=5.0,
                                     guidance=guidance)
        assert (decoded[-1][:, :, 1:] - noise[:, :, 1:]).abs().max() > 1e-2  # it denoised: not a vacuous comparison
        torch.testing.assert_close(decoded[-1], expected, atol=1e-4, rtol=1e-4)
    assert (decoded[0] - decoded[1]).abs().max() > 1e-3  # guidance changed the video
