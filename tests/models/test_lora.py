"""LoRA on the tiny Wan transformer: trainable set, save/load round trip in the diffusers format (our loader and
``WanImageToVideoPipeline.load_lora_weights``), merging, disabling, and the errors."""

from __future__ import annotations

import copy
import json
import warnings

import pytest
import torch

from videoreason.models.lora import (
    DEFAULT_TARGET_MODULES,
    LORA_SPEC_NAME,
    LORA_WEIGHT_NAME,
    LoraSpec,
    add_lora,
    linear_module_names,
    load_lora,
    lora_layers,
    lora_spec_of,
    merge_lora,
    save_lora,
)
from videoreason.models.transformer import build_transformer

SPEC = LoraSpec(rank=4, alpha=8.0)  # alpha != rank: a loader that drops alpha would change the outputs


@pytest.fixture(scope="module")
def base():
    torch.manual_seed(0)
    return build_transformer("tiny", in_channels=8, text_dim=16).eval()


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(1)
    latents = torch.randn(2, 8, 2, 4, 4, generator=g)  # [B, C, f, h, w]
    prompt = torch.randn(2, 5, 16, generator=g)
    return latents, torch.tensor([250.0, 750.0]), prompt


def forward(model, inputs):
    latents, timestep, prompt = inputs
    with torch.no_grad():
        return model(latents, timestep=timestep, encoder_hidden_states=prompt, return_dict=False)[0]


def randomize_lora(model, seed=2):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".lora_" in name:
                param.copy_(0.2 * torch.randn(param.shape, generator=g))


@pytest.fixture
def adapted(base):
    model = copy.deepcopy(base)
    add_lora(model, SPEC)
    randomize_lora(model)
    return model


def lora_modules(model):
    return [n for n, _ in model.named_modules() if "lora" in n]


def test_only_lora_trainable_and_init_is_identity(base, inputs):
    model = copy.deepcopy(base)
    n = add_lora(model, SPEC)
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in k or ".lora_B." in k for k in trainable)
    assert n == sum(p.numel() for p in trainable.values())
    # rank 4 on 4 attn projections x 2 attentions (32 -> 32) and the FFN (32 -> 64 -> 32), 2 blocks
    assert n == 2 * (8 * 4 * (32 + 32) + 4 * (32 + 64) * 2)
    targeted = {n.rsplit(".lora_", 1)[0] for n in trainable}
    assert len(targeted) == 2 * 10  # every default target in every block (q/k/v/out x 2 attentions + 2 FFN)
    torch.testing.assert_close(forward(model, inputs), forward(base, inputs), atol=0, rtol=0)  # lora_B = 0


def test_training_moves_only_lora(base, inputs):
    model = copy.deepcopy(base)
    add_lora(model, SPEC)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    latents, timestep, prompt = inputs
    for _ in range(3):
        out = model(latents, timestep=timestep, encoder_hidden_states=prompt, return_dict=False)[0]
        loss = (out - 1.0).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".lora_" in k for k in changed)
    assert (forward(model, inputs) - forward(base, inputs)).abs().max() > 1e-4


def test_save_load_round_trip(base, adapted, inputs, tmp_path):
    expected = forward(adapted, inputs)
    assert (expected - forward(base, inputs)).abs().max() > 1e-2  # the adapter does something
    path = save_lora(adapted, tmp_path / "lora")
    assert path == tmp_path / "lora" / LORA_WEIGHT_NAME
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([LORA_WEIGHT_NAME, LORA_SPEC_NAME])  # no temp
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
    assert keys and all(k.startswith("transformer.blocks.") and (".lora_A." in k or ".lora_B." in k) for k in keys)
    saved = json.loads((path.parent / LORA_SPEC_NAME).read_text())
    assert LoraSpec(**{k: v for k, v in saved.items() if k != "adapter_name"}) == lora_spec_of(adapted)
    assert saved["rank"] == 4 and saved["alpha"] == 8.0

    fresh = copy.deepcopy(base)
    load_lora(fresh, path.parent)
    torch.testing.assert_close(forward(fresh, inputs), expected, atol=1e-6, rtol=0)
    assert not any(p.requires_grad for p in fresh.parameters())  # trainable=False freezes the loaded adapter too

    resumed = copy.deepcopy(base)
    load_lora(resumed, path, adapter_name="sft", trainable=True)  # the file itself works too
    names = [n for n, p in resumed.named_parameters() if p.requires_grad]
    assert names and all(".sft." in n for n in names)
    torch.testing.assert_close(forward(resumed, inputs), expected, atol=1e-6, rtol=0)


def test_diffusers_pipeline_loads_our_lora(base, adapted, inputs, tmp_path):
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline

    save_lora(adapted, tmp_path)
    pipe = WanImageToVideoPipeline(
        tokenizer=None,
        text_encoder=None,
        vae=None,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
        image_processor=None,
        image_encoder=None,
        transformer=copy.deepcopy(base),
        expand_timesteps=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.load_lora_weights(str(tmp_path))
    torch.testing.assert_close(forward(pipe.transformer, inputs), forward(adapted, inputs), atol=1e-6, rtol=0)


def test_merge_keeps_outputs_and_removes_adapters(adapted, inputs):
    expected = forward(adapted, inputs)
    merged = merge_lora(adapted)
    assert merged is adapted
    assert lora_modules(merged) == []
    assert not getattr(merged, "peft_config", None)
    torch.testing.assert_close(forward(merged, inputs), expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="no LoRA adapter"):
        merge_lora(merged)


def test_merged_model_is_the_reference_under_a_new_adapter(adapted, inputs):
    reference = forward(adapted, inputs)
    merge_lora(adapted)
    add_lora(adapted, SPEC, adapter_name="grpo")
    randomize_lora(adapted, seed=3)
    assert (forward(adapted, inputs) - reference).abs().max() > 1e-2
    adapted.disable_adapters()  # "disable" now means the SFT-merged reference, not the pretrained base
    torch.testing.assert_close(forward(adapted, inputs), reference, atol=1e-5, rtol=0)


def test_disable_adapters_gives_base_outputs(base, adapted, inputs):
    expected = forward(adapted, inputs)
    adapted.disable_adapters()
    torch.testing.assert_close(forward(adapted, inputs), forward(base, inputs), atol=0, rtol=0)
    adapted.enable_adapters()
    torch.testing.assert_close(forward(adapted, inputs), expected, atol=0, rtol=0)


def test_bad_target_modules_name_the_available_ones(base):
    model = copy.deepcopy(base)
    with pytest.raises(ValueError, match=r"\['to_query'\].*blocks\.\*\.attn1\.to_q"):
        add_lora(model, LoraSpec(target_modules=("to_q", "to_query")))
    assert lora_modules(model) == []  # nothing injected
    assert "blocks.*.ffn.net.0.proj" in linear_module_names(model)
    available = linear_module_names(model)
    assert all(any(n.endswith("." + t) for n in available) for t in DEFAULT_TARGET_MODULES)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"rank": 0}, "rank"),
        ({"rank": 2.5}, "rank"),
        ({"alpha": 0}, "alpha"),
        ({"dropout": 1.0}, "dropout"),
        ({"target_modules": ()}, "target_modules"),
        ({"target_modules": "to_q"}, "target_modules"),
    ],
)
def test_spec_validation_names_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        LoraSpec(**kwargs)


def test_spec_accepts_lists():
    assert LoraSpec(target_modules=["to_q", "to_v"]).target_modules == ("to_q", "to_v")


def test_missing_and_wrong_files(base, adapted, tmp_path):
    with pytest.raises(FileNotFoundError, match=LORA_WEIGHT_NAME):
        load_lora(copy.deepcopy(base), tmp_path)
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        load_lora(copy.deepcopy(base), tmp_path / "nope.safetensors")
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="safetensors"):
        load_lora(copy.deepcopy(base), tmp_path / "weights.bin")
    with pytest.raises(ValueError, match="no LoRA adapter 'other'"):
        save_lora(adapted, tmp_path, adapter_name="other")
    save_lora(adapted, tmp_path)
    smaller = copy.deepcopy(base)
    add_lora(smaller, LoraSpec(rank=2, alpha=2, target_modules=SPEC.target_modules))
    with pytest.raises(ValueError, match=r"has shape .* \(different `lora.rank`\?\)"):
        load_lora(smaller, tmp_path)  # an existing adapter the file does not fit
    other_targets = copy.deepcopy(base)
    add_lora(other_targets, LoraSpec(rank=SPEC.rank, alpha=SPEC.alpha, target_modules=("to_q",)))
    with pytest.raises(ValueError, match="do not fit adapter 'default'"):
        load_lora(other_targets, tmp_path)


def test_loading_into_an_existing_adapter_copies_the_weights_and_keeps_its_trainability(base, adapted, inputs,
                                                                                          tmp_path):
    save_lora(adapted, tmp_path)
    rebuilt = copy.deepcopy(base)
    add_lora(rebuilt, SPEC)  # a module rebuilt from its config: the adapter exists, freshly initialised, trainable
    load_lora(rebuilt, tmp_path)
    torch.testing.assert_close(forward(rebuilt, inputs), forward(adapted, inputs), atol=1e-6, rtol=0)
    assert all(p.requires_grad for n, p in rebuilt.named_parameters() if ".lora_" in n)
    load_lora(rebuilt, tmp_path, trainable=False)
    assert not any(p.requires_grad for p in rebuilt.parameters())
    from safetensors.torch import load_file

    pair = load_file(save_lora((lora_spec_of(adapted), lora_layers(adapted)), tmp_path / "pair"))  # spec + tensors
    model = load_file(tmp_path / LORA_WEIGHT_NAME)
    assert pair.keys() == model.keys() and all(torch.equal(pair[k], model[k]) for k in pair)


def test_comfyui_and_peft_exports_follow_their_conventions_and_load_as_the_same_model(base, adapted, inputs, tmp_path):
    """The ComfyUI file has the original Wan names under ``diffusion_model.`` with an alpha per module (no peft
    ``.default``, no ``transformer.``), and diffusers reads it back as the same model; the PEFT folder has
    ``base_model.model.`` keys and loads with ``PeftModel.from_pretrained``."""
    import re

    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline
    from peft import PeftModel
    from safetensors.torch import load_file

    from videoreason.cli import main
    from videoreason.models.lora_formats import COMFYUI_WEIGHT_NAME, PEFT_CONFIG_NAME, PEFT_WEIGHT_NAME

    save_lora(adapted, tmp_path / "adapter")
    assert main(["export", "--ckpt", str(tmp_path / "adapter")]) == 0
    comfy = load_file(str(tmp_path / "adapter" / COMFYUI_WEIGHT_NAME))
    pattern = re.compile(r"^diffusion_model\.blocks\.\d+\.(self_attn\.[qkvo]|cross_attn\.[qkvo]|ffn\.[02])"
                         r"\.(lora_A\.weight|lora_B\.weight|alpha)$")
    assert comfy and all(pattern.match(k) for k in comfy), [k for k in comfy if not pattern.match(k)][:3]
    assert {float(v) for k, v in comfy.items() if k.endswith(".alpha")} == {SPEC.alpha}
    modules = {k.removesuffix(".lora_A.weight") for k in comfy if k.endswith(".lora_A.weight")}
    assert len(modules) == len([n for n in lora_modules(adapted) if n.endswith(".lora_A")])  # every adapted layer

    expected = forward(adapted, inputs)
    pipe = WanImageToVideoPipeline(tokenizer=None, text_encoder=None, vae=None,
                                   scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0), image_processor=None,
                                   image_encoder=None, transformer=copy.deepcopy(base), expand_timesteps=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.load_lora_weights(str(tmp_path / "adapter"), weight_name=COMFYUI_WEIGHT_NAME)
    torch.testing.assert_close(forward(pipe.transformer, inputs), expected, atol=1e-5, rtol=0)

    peft_dir = tmp_path / "adapter" / "peft"
    keys = load_file(str(peft_dir / PEFT_WEIGHT_NAME))
    assert all(k.startswith("base_model.model.blocks.") and ".default" not in k for k in keys)
    config = json.loads((peft_dir / PEFT_CONFIG_NAME).read_text())
    assert config["peft_type"] == "LORA" and config["r"] == SPEC.rank and config["lora_alpha"] == SPEC.alpha
    model = PeftModel.from_pretrained(copy.deepcopy(base), str(peft_dir))
    torch.testing.assert_close(forward(model, inputs), expected, atol=1e-6, rtol=0)


def test_export_names_a_folder_without_an_adapter(tmp_path, capsys):
    from videoreason.cli import main

    assert main(["export", "--ckpt", str(tmp_path)]) == 2
    assert "holds no LoRA export" in capsys.readouterr().err
