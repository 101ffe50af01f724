"""Int8 base weights under LoRA (``quantize_base``): memory drops, outputs stay close, only LoRA trains, state dicts
round-trip, and the errors name the key. bitsandbytes runs int8 layers on the CPU too; the CUDA test checks the
device memory."""

from __future__ import annotations

import pytest
import torch

from videoreason.models.lora import LoraSpec, add_lora
from videoreason.models.quantize import linear_weight_bytes, quantize_8bit
from videoreason.models.transformer import build_transformer
from videoreason.phases.settings import Optimization


def _inputs(device: str = "cpu", dtype: torch.dtype = torch.float32) -> dict:
    gen = torch.Generator().manual_seed(1)
    return dict(hidden_states=torch.randn(2, 48, 3, 8, 8, generator=gen).to(device, dtype),
                timestep=torch.tensor([300.0, 800.0], device=device),
                encoder_hidden_states=torch.randn(2, 8, 32, generator=gen).to(device, dtype), return_dict=False)


def _pair(seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The same random ``small`` transformer twice: full precision and int8 blocks."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        full = build_transformer("small")
    quant = build_transformer("small")
    quant.load_state_dict(full.state_dict())
    quantize_8bit(quant)
    return full, quant


def test_int8_blocks_quarter_the_weights_and_keep_outputs():
    import bitsandbytes as bnb

    full, quant = _pair()
    blocks = [m for m in full.blocks.modules() if type(m) is torch.nn.Linear]
    int8 = [m for m in quant.blocks.modules() if isinstance(m, bnb.nn.Linear8bitLt)]
    assert len(int8) == len(blocks) == 20 and all(m.weight.dtype == torch.int8 for m in int8)
    assert type(quant.proj_out) is torch.nn.Linear and quant.proj_out.weight.dtype == torch.float32  # kept
    saved = linear_weight_bytes(full) - linear_weight_bytes(quant)
    assert saved == sum(m.weight.numel() for m in blocks) * 3  # 4 bytes -> 1 byte per block weight
    with torch.no_grad():
        want, got = full(**_inputs())[0], quant(**_inputs())[0]
    assert (got - want).abs().mean() < 0.01 * want.abs().mean()
    assert quantize_8bit(quant) == 0  # already quantized: nothing left to replace


def test_lora_trains_on_the_int8_base_and_round_trips(tmp_path):
    from peft.tuners.lora.bnb import Linear8bitLt as LoraInt8

    _, model = _pair()
    add_lora(model, LoraSpec(rank=4, alpha=4))
    assert isinstance(model.blocks[0].attn1.to_q, LoraInt8)  # peft's bnb layer, not a plain LoRA Linear
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    target = torch.zeros(2, 48, 3, 8, 8)
    losses = []
    for _ in range(6):
        loss = (model(**_inputs())[0] - target).square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0]
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)  # int8 base untouched
    # a checkpoint (state dict with int8 weights and their scales) restores the same model
    _, again = _pair(seed=5)
    add_lora(again, LoraSpec(rank=4, alpha=4))
    again.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(again(**_inputs())[0], model(**_inputs())[0])


def test_quantize_base_needs_lora_and_comes_before_it():
    from videoreason.phases.sft import SFTModule

    with pytest.raises(ValueError, match="`model.quantize_base`.*`model.lora`"):
        SFTModule(transformer="tiny", lora=None, quantize_base=True)
    module = SFTModule(transformer="tiny", lora=LoraSpec(rank=2, alpha=2), quantize_base=True)
    assert module.transformer.blocks[0].ffn.net[2].base_layer.weight.dtype == torch.int8
    with pytest.raises(ValueError, match="before adding LoRA"):
        quantize_8bit(module.transformer)


def test_missing_backend_names_the_key(monkeypatch):
    import bitsandbytes as bnb

    def no_kernels(self, device):
        raise NotImplementedError("no int8 kernel for this device")

    monkeypatch.setattr(bnb.nn.Int8Params, "_quantize", no_kernels)
    with pytest.raises(RuntimeError, match="`model.quantize_base` needs CUDA"):
        quantize_8bit(build_transformer("tiny"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_int8_base_on_cuda_saves_memory_and_trains():
    from videoreason.phases.sft import SFTModule

    def allocated_by(**kwargs) -> tuple[int, SFTModule]:
        torch.cuda.empty_cache()
        start = torch.cuda.memory_allocated()
        torch.manual_seed(0)
        module = SFTModule(transformer="medium", lora=LoraSpec(rank=8, alpha=8), **kwargs).cuda()
        return torch.cuda.memory_allocated() - start, module

    plain, module = allocated_by()
    del module
    quant, module = allocated_by(quantize_base=True, optimization=Optimization(optimizer="adamw8bit"))
    assert quant < 0.5 * plain  # fp32 blocks -> int8 (+ fp32 scales, LoRA and the unquantized layers)
    video = torch.rand(2, 3, 5, 64, 64, device="cuda") * 2 - 1
    noise = torch.randn(2, 48, 5, 16, 16, device="cuda")
    sigma = torch.tensor([0.3, 0.8])
    optimizer = module._optimizer()
    lora = {n: p.detach().clone() for n, p in module.transformer.named_parameters() if p.requires_grad}
    losses = []
    for _ in range(5):
        loss = module.flow_matching_loss(video, ["a maze", "a maze"], sigma, noise)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    assert all(not torch.equal(p, lora[n]) for n, p in module.transformer.named_parameters() if "lora_B" in n)
