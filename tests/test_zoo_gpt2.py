"""GPT-2 (specs/gpt2.yaml) and the tiny GPT (specs/gpt_tiny.yaml) against GPT-2 written by
hand in plain torch (tests/reference_gpt2.py): parameter and buffer counts from the
architecture's formula and from torch, the same layers in order, MACs equal to the formula and
to half of what torch's flop counter counts on the reference, and, with the reference's random
weights loaded by order, the same logits in eval mode."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from reference_gpt2 import GPT2
from torch.utils.flop_counter import FlopCounterMode

import netspec

SPECS = Path(__file__).resolve().parent.parent / "specs"
GPT2_SMALL = {"vocab": 50257, "context": 1024, "dim": 768, "layers": 12, "heads": 12}
TINY = {"vocab": 256, "context": 128, "dim": 128, "layers": 4, "heads": 4}
CONFIGS = {"gpt2": GPT2_SMALL, "gpt_tiny": TINY}


def params(vocab: int, context: int, dim: int, layers: int, heads: int) -> int:
    """Token and position embeddings; per block two LayerNorms (2 D each), the packed qkv
    (3 D^2 + 3 D), the output projection (D^2 + D) and the MLP (4 D^2 + 4 D, 4 D^2 + D);
    the final LayerNorm; the head is the token embedding (tied), so it adds nothing."""
    block = 2 * (2 * dim) + (3 * dim * dim + 3 * dim) + (dim * dim + dim) \
        + (4 * dim * dim + 4 * dim) + (4 * dim * dim + dim)
    return vocab * dim + context * dim + layers * block + 2 * dim


def macs(vocab: int, context: int, dim: int, layers: int, heads: int) -> int:
    """Per block, T positions through the projections (qkv 3 D^2, out D^2, MLP 8 D^2) and the
    two attention products Q K^T and weights x V, H x T x T x (D / H) each (the causal mask
    counted in full); then T x D x V for the head."""
    t = context
    return layers * (12 * t * dim * dim + 2 * t * t * dim) + t * dim * vocab


def reference(name: str, device: str = "cpu") -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.device(device):
        return GPT2(**CONFIGS[name]).eval()


def ids(name: str, batch: int) -> torch.Tensor:
    config = CONFIGS[name]
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, config["vocab"], (batch, config["context"]), generator=generator)


def layers(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """Each embedding, linear and norm layer in order, its class and weight shape; the
    position table `wpe` (an Embedding in the reference, a learned [1, T, D] tensor in the
    spec) as "positions" and its [T, D]."""
    kinds = (torch.nn.Embedding, torch.nn.Linear, torch.nn.LayerNorm)
    return [("positions", tuple(m.weight.shape[-2:])) if name == "wpe" else
            (type(m).__name__, tuple(m.weight.shape)) for name, m in model.named_modules()
            if name == "wpe" or isinstance(m, kinds)]


def test_gpt2_small_has_124m_parameters():
    assert params(**GPT2_SMALL) == 124_439_808
    assert macs(**GPT2_SMALL) == 145_824_153_600


@pytest.mark.parametrize("name", ["gpt2", "gpt_tiny"])
def test_counts_are_the_formula_s_and_the_reference_s(name):
    report = netspec.check(SPECS / f"{name}.yaml")
    config = CONFIGS[name]
    ref = reference(name, device="meta")  # counts need no values
    assert sum(p.numel() for p in ref.parameters()) == params(**config)  # the tie counted once
    assert (report.params, report.trainable_params) == (params(**config), params(**config))
    assert report.buffers == sum(b.numel() for b in ref.buffers()) == 0
    assert report.outputs == {"lm_head": (config["context"], config["vocab"])}
    assert report.macs == macs(**config)
    t, dim = config["context"], config["dim"]
    assert report.attention_macs == config["layers"] * 2 * t * t * dim
    assert not report.warnings


@pytest.mark.parametrize("name", ["gpt2", "gpt_tiny"])
def test_macs_are_half_torch_s_flop_count_on_the_reference(name):
    """On the meta device: nothing is computed, every matmul is counted (the written-out
    attention's two batched products included)."""
    ref = reference(name, device="meta")
    with FlopCounterMode(display=False) as counter:
        ref(ids(name, 1).to("meta"))
    assert counter.get_total_flops() == 2 * netspec.check(SPECS / f"{name}.yaml").macs


def compare(name: str, batch: int) -> float:
    """Loads the reference's random weights into the compiled spec by order, checks the
    layers, the tie and the counts agree, and returns the largest logit difference."""
    ref = reference(name)
    model = netspec.build(SPECS / f"{name}.yaml", seed=0).eval()
    assert layers(model) == layers(ref)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters())
    assert sum(b.numel() for b in model.buffers()) == sum(b.numel() for b in ref.buffers())
    netspec.load_weights(model, ref.state_dict(), strict=True)
    assert model.lm_head.weight is model.wte.weight  # loading keeps the tie
    x = ids(name, batch)
    with torch.no_grad():
        ours, theirs = model(x), ref(x)
    scale = theirs.abs().max().item()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * scale)
    return (ours - theirs).abs().max().item()


def test_gpt_tiny_computes_the_reference():
    compare("gpt_tiny", batch=2)


@pytest.mark.slow
def test_gpt2_computes_the_reference_at_1024_tokens():
    """124M parameters and 146 GMACs: several seconds for each model on a CPU."""
    compare("gpt2", batch=1)


def test_no_position_reads_a_later_one():
    """Changing the last token changes no earlier position's logits."""
    model = netspec.build(SPECS / "gpt_tiny.yaml", seed=0).eval()
    x = ids("gpt_tiny", 1)
    changed = x.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 256
    with torch.no_grad():
        before, after = model(x), model(changed)
    assert torch.equal(before[:, :-1], after[:, :-1]) and not torch.equal(before, after)
