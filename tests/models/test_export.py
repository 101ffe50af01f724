"""Exports rebuild exactly the module that was trained: codec, prompt embedder and transformer source recorded;
GRPO exports stand alone (the start's LoRA stacked into theirs); the base is written when it is no stock model;
folders and files follow the umask."""

from __future__ import annotations

import os
import shutil

import lightning as L
import pytest
import torch
import yaml

from videoreason.data.datamodule import PuzzleVideoDataModule
from videoreason.models.codec import PixelCodec, WanVAECodec
from videoreason.models.export import EXPORTED_TRANSFORMER, export_module, load_module
from videoreason.models.lora import LoraSpec, lora_layers, stack_lora
from videoreason.models.text import HashTextEmbedder, UMT5Embedder
from videoreason.phases.grpo import GRPOModule
from videoreason.phases.settings import Optimization, PolicyOptimization, Sampling
from videoreason.phases.sft import SFTModule
from videoreason.rewards.embedding import FrameSimilarityReward

FIRST = torch.rand(1, 3, 64, 64) * 2 - 1


def _randomise_lora(module, std=0.05, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for name, param in module.transformer.named_parameters():
        if "lora_B" in name:
            param.data = torch.randn(param.shape, generator=gen) * std


def _grpo_step(module, maze_dataset):
    """One GRPO step with a reward that varies, so the GRPO adapter really moves."""
    data = PuzzleVideoDataModule(str(maze_dataset), batch_size=1, num_val_puzzles=0, samples_per_epoch=1)
    L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, limit_val_batches=0).fit(module, datamodule=data)
    assert any(p.abs().sum() > 0 for n, p in module.transformer.named_parameters() if "lora_B" in n)


def test_export_records_codec_and_embedder(tmp_path):
    """The issue's reproduction: a VAE codec used to come back as PixelCodec."""
    module = SFTModule(transformer="tiny", codec=WanVAECodec("tiny"), lora=LoraSpec(rank=4),
                       text_embedder=HashTextEmbedder(dim=32, max_tokens=8, seed=3))
    loaded = load_module(export_module(module, tmp_path / "adapter"))
    assert type(loaded.codec) is WanVAECodec and loaded.codec.latent_channels == 4
    assert type(loaded.text_embedder) is HashTextEmbedder
    assert loaded.text_embedder.config() == module.text_embedder.config()
    config = yaml.safe_load((tmp_path / "adapter" / "module.yaml").read_text())["init_args"]
    assert config["codec"]["class_path"] == "videoreason.models.codec.WanVAECodec"
    assert config["transformer"] == "tiny"


def test_pretrained_folder_gives_transformer_vae_and_umt5(tiny_wan_dir, tmp_path, monkeypatch):
    module = SFTModule(pretrained=str(tiny_wan_dir), lora=LoraSpec(rank=4))
    assert isinstance(module.codec, WanVAECodec) and isinstance(module.text_embedder, UMT5Embedder)
    assert module.hparams["transformer"] == str(tiny_wan_dir)
    export_module(module, tmp_path / "adapter")
    monkeypatch.chdir(tmp_path)  # recorded paths are absolute
    loaded = load_module("adapter")
    assert isinstance(loaded.codec, WanVAECodec) and loaded.text_embedder.path == str(tiny_wan_dir)
    # each part still overridable
    assert isinstance(SFTModule(pretrained=str(tiny_wan_dir), codec=WanVAECodec("tiny")).codec, WanVAECodec)


def test_named_published_config_warns_that_it_is_random():
    from videoreason.models.transformer import build_transformer

    with pytest.warns(UserWarning, match="RANDOM weights"), torch.device("meta"):
        build_transformer("wan2.1-1.3b")


def test_stacked_lora_is_the_sum_of_both():
    from videoreason.models.lora import add_lora
    from videoreason.models.transformer import build_transformer

    base = build_transformer("tiny")
    add_lora(base, LoraSpec(rank=2, alpha=4, target_modules=("to_q", "to_k")), adapter_name="a")
    add_lora(base, LoraSpec(rank=3, alpha=1.5, target_modules=("to_k", "ffn.net.2")), adapter_name="b")
    for name, param in base.named_parameters():
        if "lora_" in name:
            param.data.normal_(std=0.1)
    first = (LoraSpec(rank=2, alpha=4, target_modules=("to_q", "to_k")), lora_layers(base, "a"))
    second = (LoraSpec(rank=3, alpha=1.5, target_modules=("to_k", "ffn.net.2")), lora_layers(base, "b"))
    spec, layers = stack_lora(first, second)
    assert spec.rank == spec.alpha == 5 and set(spec.target_modules) == {"to_q", "to_k", "ffn.net.2"}
    for module in ("blocks.0.attn1.to_q", "blocks.1.attn2.to_k", "blocks.0.ffn.net.2"):
        want = sum((s.alpha / s.rank) * ly[f"{module}.lora_B.weight"] @ ly[f"{module}.lora_A.weight"]
                   for s, ly in (first, second) if f"{module}.lora_A.weight" in ly)
        got = layers[f"{module}.lora_B.weight"] @ layers[f"{module}.lora_A.weight"]
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)


def test_grpo_export_stands_alone_and_is_the_trained_model(tmp_path, maze_dataset, monkeypatch):
    sft = SFTModule(transformer="small", lora=LoraSpec(rank=4, alpha=8), val_steps=2)
    _randomise_lora(sft)
    export_module(sft, tmp_path / "sft")
    grpo = GRPOModule(init_from=str(tmp_path / "sft"), lora=LoraSpec(rank=2, alpha=2), reward=FrameSimilarityReward(),
                      sampling=Sampling(group_size=2, num_steps=3, reward_workers=1),
                      optimization=PolicyOptimization(learning_rate=5e-2))
    assert grpo.hparams["transformer"] == "small"  # what the SFT model was, not GRPO's default
    _grpo_step(grpo, maze_dataset)
    grpo.eval()
    want = grpo.generate(FIRST, ["p"], 9, seeds=[1], steps=2)
    export_module(grpo, tmp_path / "grpo")
    config = yaml.safe_load((tmp_path / "grpo" / "module.yaml").read_text())["init_args"]
    assert config["init_from"] is None and config["lora"]["rank"] == 6
    shutil.rmtree(tmp_path / "sft")
    monkeypatch.chdir(tmp_path / "grpo")
    loaded = load_module(".")
    torch.testing.assert_close(loaded.generate(FIRST, ["p"], 9, seeds=[1], steps=2), want, atol=1, rtol=0)


def test_grpo_from_a_full_fine_tune_writes_its_base(tmp_path, maze_dataset):
    sft = SFTModule(transformer="tiny", lora=None, val_steps=2)
    for param in sft.transformer.parameters():
        param.data.add_(torch.randn_like(param) * 0.01)
    export_module(sft, tmp_path / "sft")
    assert (tmp_path / "sft" / EXPORTED_TRANSFORMER / "config.json").is_file()
    grpo = GRPOModule(init_from=str(tmp_path / "sft"), lora=LoraSpec(rank=2, alpha=2), reward=FrameSimilarityReward(),
                      sampling=Sampling(group_size=2, num_steps=3, reward_workers=1),
                      optimization=PolicyOptimization(learning_rate=5e-2))
    _grpo_step(grpo, maze_dataset)
    grpo.eval()
    want = grpo.generate(FIRST, ["p"], 9, seeds=[1], steps=2)
    export_module(grpo, tmp_path / "grpo")
    config = yaml.safe_load((tmp_path / "grpo" / "module.yaml").read_text())["init_args"]
    assert config["transformer"] == EXPORTED_TRANSFORMER and config["lora"]["rank"] == 2
    shutil.rmtree(tmp_path / "sft")
    loaded = load_module(tmp_path / "grpo")
    torch.testing.assert_close(loaded.generate(FIRST, ["p"], 9, seeds=[1], steps=2), want, atol=1, rtol=0)


def test_grpo_checkpoint_loads_without_its_start(tmp_path, maze_dataset):
    sft = SFTModule(transformer="tiny", codec=PixelCodec(patch=4), lora=LoraSpec(rank=4))
    _randomise_lora(sft)
    export_module(sft, tmp_path / "sft")
    grpo = GRPOModule(init_from=str(tmp_path / "sft"), lora=LoraSpec(rank=2), reward=FrameSimilarityReward(),
                      sampling=Sampling(group_size=2, num_steps=3, reward_workers=1))
    data = PuzzleVideoDataModule(str(maze_dataset), batch_size=1, num_val_puzzles=0, samples_per_epoch=1)
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(grpo, datamodule=data)
    trainer.save_checkpoint(tmp_path / "last.ckpt", weights_only=True)
    shutil.rmtree(tmp_path / "sft")
    grpo.eval()
    loaded = load_module(tmp_path / "last.ckpt")
    assert loaded.base_changed  # the merged start is in its weights: an export of it writes the base
    torch.testing.assert_close(loaded.generate(FIRST, ["p"], 5, seeds=[2], steps=2),
                               grpo.generate(FIRST, ["p"], 5, seeds=[2], steps=2), atol=1, rtol=0)


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_export_modes_follow_the_umask(tmp_path, mask):
    module = SFTModule(transformer="tiny", lora=LoraSpec(rank=2))
    old = os.umask(mask)
    try:
        out = export_module(module, tmp_path / "adapter")
    finally:
        os.umask(old)
    assert (out.stat().st_mode & 0o777) == 0o777 & ~mask
    for path in out.iterdir():
        assert (path.stat().st_mode & 0o777) == 0o666 & ~mask, path


def test_grpo_decodes_first_frames_only_unless_a_reward_reads_references(maze_dataset):
    from videoreason.rewards.verdict_rewards import DenseReward

    sampling = Sampling(group_size=2, num_steps=2)
    first_only = GRPOModule(transformer="tiny", reward=DenseReward(), sampling=sampling)
    with_refs = GRPOModule(transformer="tiny", reward=FrameSimilarityReward(), sampling=sampling)
    assert not first_only.trains_on_videos and with_refs.trains_on_videos
    data = PuzzleVideoDataModule(str(maze_dataset), batch_size=2, num_val_puzzles=0)
    data.setup("fit")
    full = data.train_dataset[0]
    data.train_dataset.frames = "first"
    item = data.train_dataset[0]
    assert "video" not in item and torch.equal(item["first_frame"], full["first_frame"])


class ScaledPixelCodec(PixelCodec):
    """A user codec that adds an argument but does not record it: no config could rebuild it."""

    def __init__(self, patch: int = 4, scale: float = 1.0) -> None:
        super().__init__(patch)
        self.scale = scale


def test_a_part_that_cannot_say_how_it_was_built_is_not_exported(tmp_path):
    module = SFTModule(transformer="tiny", codec=ScaledPixelCodec(scale=2.0), lora=LoraSpec(rank=2))
    assert module.hparams["codec"] is None  # trains fine; its origin is unknown
    with pytest.raises(ValueError, match=r"\['codec'\] were given as objects that do not record"):
        export_module(module, tmp_path / "adapter")
    assert not (tmp_path / "adapter").exists()


def test_relative_pretrained_path_is_recorded_absolute(tiny_wan_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tiny_wan_dir.parent)
    module = SFTModule(pretrained=tiny_wan_dir.name, lora=LoraSpec(rank=2))
    assert module.hparams["pretrained"] == str(tiny_wan_dir)
    export_module(module, tmp_path / "adapter")
    monkeypatch.chdir(tmp_path)
    assert isinstance(load_module("adapter").codec, WanVAECodec)


def test_full_fine_tune_export_of_the_earlier_layout_still_loads(tmp_path):
    """Earlier exports named the stock source in module.yaml and kept the trained weights in transformer/."""
    module = SFTModule(transformer="tiny", lora=None)
    for param in module.transformer.parameters():
        param.data.add_(0.01)
    out = export_module(module, tmp_path / "adapter")
    config = yaml.safe_load((out / "module.yaml").read_text())
    config["init_args"]["transformer"] = "tiny"
    (out / "module.yaml").write_text(yaml.safe_dump(config))
    loaded = load_module(out)
    for (name, want), got in zip(module.transformer.state_dict().items(), loaded.transformer.state_dict().values(),
                                 strict=True):
        torch.testing.assert_close(got, want, msg=name)


def test_load_module_can_override_the_base_dtype(tmp_path):
    out = export_module(SFTModule(transformer="tiny", lora=LoraSpec(rank=2)), tmp_path / "adapter")
    weight = "blocks.0.attn1.to_q.base_layer.weight"
    assert load_module(out, base_dtype="bfloat16").transformer.get_parameter(weight).dtype == torch.bfloat16
    assert load_module(out, base_dtype="float32").transformer.get_parameter(weight).dtype == torch.float32


def test_export_after_ema_training_holds_the_averaged_weights(tmp_path, maze_dataset):
    from lightning.pytorch.callbacks import EMAWeightAveraging

    from videoreason.callbacks.export import ExportAdapter

    module = SFTModule(transformer="tiny", lora=None, optimization=Optimization(learning_rate=1e-2))
    data = PuzzleVideoDataModule(str(maze_dataset), batch_size=2, num_val_puzzles=0, samples_per_epoch=12)
    ema = EMAWeightAveraging(decay=0.5, update_starting_at_step=2)
    L.Trainer(max_steps=6, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, limit_val_batches=0, default_root_dir=str(tmp_path),
              callbacks=[ExportAdapter(), ema]).fit(module, datamodule=data)  # export listed first
    averaged = {n[len("module.transformer."):]: p for n, p in ema._average_model.state_dict().items()
                if n.startswith("module.transformer.")}
    exported = load_module(tmp_path / "adapter").transformer.state_dict()
    key = "blocks.0.attn1.to_q.weight"
    assert torch.equal(exported[key], averaged[key])


def test_phase_modules_meet_the_export_and_frame_contracts(tmp_path):
    from videoreason.data.datamodule import ChoosesFrames
    from videoreason.models.export import Exportable, export_module

    module = SFTModule(transformer="tiny", lora=LoraSpec(rank=2))
    assert isinstance(module, Exportable) and isinstance(module, ChoosesFrames)
    plain = torch.nn.Module()
    plain.transformer = torch.nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot export a Module: it has no `init_lora`, `base_changed`"):
        export_module(plain, tmp_path / "x")
    assert not (tmp_path / "x").exists()
