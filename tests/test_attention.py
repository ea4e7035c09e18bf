"""multihead_attention, Swin's window_attention and MaxViT's relative_attention compute
attention as their definitions do, and cost what torch counts; sinusoidal_positions is the
original transformer's table.

The op tables (tests/test_op_tables.py) hold its shapes, parameters and MACs to torch's
nn.MultiheadAttention and to attention written out from its papers
(`op_harness.WrittenOutAttention`). Here the compiled module, its weights copied into those
references, must compute the same function for every variant, and torch's flop counter on
the compiled module must count the report's MACs.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from op_harness import (
    WrittenOutAttention,
    WrittenOutRelativeAttention,
    WrittenOutWindowAttention,
    sinusoid_table,
    spec_for,
)
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import netspec

Shape = tuple[int, ...]

VARIANTS: list[tuple[dict[str, Any], tuple[Shape, ...]]] = [
    ({"heads": 4}, ((10, 32),)),
    ({"heads": 2}, ((6, 16), (9, 8))),
    ({"heads": 2, "bias": False}, ((3, 5, 8),)),
    ({"heads": 4, "kv_heads": 2, "causal": True}, ((12, 32),)),
    ({"heads": 3, "head_dim": 5, "out": 7, "bias": False}, ((4, 6),)),
    ({"heads": 2, "rotary": True, "causal": True}, ((5, 8),)),
    ({"heads": 4, "kv_heads": 1, "rotary": True, "rotary_base": 500.0}, ((7, 16), (3, 12))),
    ({"heads": 8, "kv_heads": 2, "head_dim": 4, "causal": True, "rotary": True}, ((9, 24),)),
]


def _compiled(args: dict[str, Any], inputs: tuple[Shape, ...]) -> tuple[nn.Module, Any]:
    spec = netspec.load(spec_for("multihead_attention", args, inputs))
    return netspec.build(spec, seed=0).eval(), netspec.check(spec)


def _reference(args: dict[str, Any], inputs: tuple[Shape, ...], ours: nn.Module) -> nn.Module:
    """The written-out attention holding the compiled layer's weights."""
    layer = ours.get_submodule("attn1")
    reference = WrittenOutAttention(args, inputs).eval()
    q, k, v, o = reference.q, reference.k, reference.v, reference.o
    packs = ([(layer.qkv, [q, k, v])] if hasattr(layer, "qkv")
             else [(layer.q, [q]), (layer.kv, [k, v])]) + [(layer.out, [o])]
    with torch.no_grad():
        for packed, targets in packs:
            for part in ("weight", "bias"):
                if getattr(packed, part) is None:
                    continue
                pieces = getattr(packed, part).split([t.out_features for t in targets])
                for target, piece in zip(targets, pieces, strict=True):
                    getattr(target, part).copy_(piece)
    return reference


def _inputs(inputs: tuple[Shape, ...], batch: int = 3) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(batch, *s, generator=generator) for s in inputs]


@pytest.mark.parametrize(("args", "inputs"), VARIANTS, ids=str)
def test_the_compiled_attention_computes_the_written_out_definition(args, inputs):
    ours, _ = _compiled(args, inputs)
    reference = _reference(args, inputs, ours)
    xs = _inputs(inputs)
    with torch.no_grad():
        torch.testing.assert_close(ours(*xs), reference(*xs), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("args", "inputs"), VARIANTS, ids=str)
def test_the_flop_counter_counts_the_reported_macs(args, inputs):
    """On the meta device, where F.scaled_dot_product_attention takes its math path: torch's
    flop counter has no formula for the CPU flash kernel (it counts 0 FLOPs there)."""
    ours, report = _compiled(args, inputs)
    meta = ours.to("meta")
    xs = [x.to("meta") for x in _inputs(inputs, batch=2)]
    with FlopCounterMode(display=False) as counter:
        meta(*xs)
    assert counter.get_total_flops() == 2 * 2 * report.macs


def test_plain_attention_holds_torch_s_multihead_attention_layout():
    """Self-attention without variants keeps nn.MultiheadAttention's packed in-projection
    (queries, keys, values) and out-projection: its state loads into torch's module, which
    then computes the same (the layout torchvision's ViT weights come in)."""
    ours, _ = _compiled({"heads": 4}, ((10, 32),))
    layer = ours.get_submodule("attn1")
    mha = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    mha.load_state_dict({"in_proj_weight": layer.qkv.weight, "in_proj_bias": layer.qkv.bias,
                         "out_proj.weight": layer.out.weight, "out_proj.bias": layer.out.bias})
    (x,) = _inputs(((10, 32),))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), mha(x, x, x, need_weights=False)[0],
                                   rtol=1e-5, atol=1e-5)


def test_causal_attention_reads_no_later_position():
    """Changing the last token changes no earlier output; without the mask it does."""
    for causal in (True, False):
        ours, _ = _compiled({"heads": 2, "causal": causal}, ((6, 8),))
        (x,) = _inputs(((6, 8),), batch=1)
        changed = x.clone()
        changed[:, -1] += 1.0
        with torch.no_grad():
            same = torch.allclose(ours(x)[:, :-1], ours(changed)[:, :-1])
        assert same == causal


def test_the_table_reports_attention_s_share_and_its_scores():
    """The totals name attention's MACs (2 * H * T * S * d) and the scores' memory (H * T * S
    float32 per sample)."""
    _, report = _compiled({"heads": 4}, ((10, 32),))
    assert report.attention_macs == 2 * 4 * 10 * 10 * 8
    assert report.score_bytes == 4 * (4 * 10 * 10)
    table = report.table()
    assert f"{report.attention_macs:,}" in table and "of MACs" in table
    assert report.to_dict()["attention_macs"] == report.attention_macs


@pytest.mark.parametrize(("args", "shape", "vocab"), [
    ({}, (10, 16), None), ({"dim": 8, "base": 100.0}, (3, 7, 5), None), ({"dim": 12}, (9,), 50)])
def test_sinusoidal_positions_are_the_paper_s_table(args, shape, vocab):
    spec = netspec.load(spec_for("sinusoidal_positions", args, [shape], vocab))
    model = netspec.build(spec)
    x = torch.randint(0, vocab, (2, *shape)) if vocab else torch.randn(2, *shape)
    table = sinusoid_table(args, (shape,))
    torch.testing.assert_close(model(x), table.expand(2, -1, -1), rtol=1e-5, atol=1e-5)
    assert not model.state_dict()  # computed, not stored


WINDOWS: list[tuple[dict[str, Any], Shape]] = [
    ({"heads": 2, "window": 4}, (8, 8, 8)),
    ({"heads": 2, "window": 4, "shift": 2}, (8, 12, 8)),
    ({"heads": 3, "window": [3, 2], "shift": [1, 1], "bias": False}, (7, 5, 6)),  # padded
    ({"heads": 2, "window": 4, "shift": 2}, (3, 9, 4)),  # one window tall: rolled along W only
    ({"heads": 1, "window": 5, "shift": 2}, (4, 3, 4)),  # one window covers it: no roll
]


def _model(op: str, args: dict[str, Any], shape: Shape) -> tuple[nn.Module, Any]:
    spec = netspec.load(spec_for(op, args, [shape]))
    return netspec.build(spec, seed=0).eval(), netspec.check(spec)


def _computes_the_written_out_definition(op: str, args: dict[str, Any], shape: Shape,
                                         reference: nn.Module, qkv: str, proj: str) -> None:
    """The layer, its tensors loaded into `reference` (projections under `qkv`, `proj`),
    computes as the reference, and torch's flop counter counts its MACs."""
    ours, report = _model(op, args, shape)
    layer = ours.get_submodule("attn1")
    with torch.no_grad():
        reference.table.copy_(layer.relative_position_bias_table)
        reference.qkv.load_state_dict(layer.get_submodule(qkv).state_dict())
        reference.proj.load_state_dict(layer.get_submodule(proj).state_dict())
        (x,) = _inputs((shape,), batch=2)
        torch.testing.assert_close(ours(x), reference.eval()(x), rtol=1e-5, atol=1e-5)
        meta = ours.to("meta")
        with FlopCounterMode(display=False) as counter:
            meta(x.to("meta"))
    assert counter.get_total_flops() == 2 * 2 * report.macs


@pytest.mark.parametrize(("args", "shape"), WINDOWS, ids=str)
def test_window_attention_computes_the_written_out_definition(args, shape):
    _computes_the_written_out_definition("window_attention", args, shape,
                                         WrittenOutWindowAttention(args, (shape,)), "qkv", "proj")


def _holds_the_state_and_function_of(ours: nn.Module, theirs: nn.Module, shape: Shape) -> None:
    """The layer holds `theirs`'s tensors under the same keys (the index buffer equal) and,
    loaded with them, computes as it does."""
    layer = ours.get_submodule("attn1")
    assert list(layer.state_dict()) == list(theirs.state_dict())
    assert torch.equal(layer.relative_position_index, theirs.relative_position_index)
    layer.load_state_dict(theirs.state_dict())
    (x,) = _inputs((shape,), batch=2)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


@pytest.mark.needs("torchvision")
@pytest.mark.parametrize(("args", "shape"), WINDOWS, ids=str)
def test_window_attention_holds_torchvision_s_state_and_function(args, shape):
    from torchvision.models.swin_transformer import ShiftedWindowAttention

    def pair(v: Any) -> list[int]:
        return [v, v] if isinstance(v, int) else list(v)

    ours, _ = _model("window_attention", args, shape)
    theirs = ShiftedWindowAttention(shape[-1], pair(args.get("window", 7)),
                                    pair(args.get("shift", 0)), args["heads"],
                                    qkv_bias=args.get("bias", True),
                                    proj_bias=args.get("bias", True)).eval()
    _holds_the_state_and_function_of(ours, theirs, shape)


PARTITIONS: list[tuple[dict[str, Any], Shape]] = [
    ({"heads": 2}, (3, 16, 8)),
    ({"heads": 1}, (2, 9, 6)),
    ({"heads": 3, "bias": False}, (4, 4, 12)),
    ({"heads": 2}, (2, 3, 4, 8)),  # partitions in two leading dims
]


@pytest.mark.parametrize(("args", "shape"), PARTITIONS, ids=str)
def test_relative_attention_computes_the_written_out_definition(args, shape):
    _computes_the_written_out_definition("relative_attention", args, shape,
                                         WrittenOutRelativeAttention(args, (shape,)),
                                         "to_qkv", "merge")


@pytest.mark.needs("torchvision")
@pytest.mark.parametrize(("args", "shape"), [  # torchvision's: biased, [N, G, P, D]
    (args, shape) for args, shape in PARTITIONS if args.get("bias", True) and len(shape) == 3],
    ids=str)
def test_relative_attention_holds_torchvision_s_state_and_function(args, shape):
    from torchvision.models.maxvit import RelativePositionalMultiHeadAttention

    ours, _ = _model("relative_attention", args, shape)
    theirs = RelativePositionalMultiHeadAttention(shape[-1], shape[-1] // args["heads"],
                                                  shape[-2]).eval()
    _holds_the_state_and_function_of(ours, theirs, shape)
