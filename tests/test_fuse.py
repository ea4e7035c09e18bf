"""Conv + BatchNorm folding: the folded module computes the same outputs in eval mode, and
the folded report counts what is left.

The running variances are drawn comparable to each BatchNorm's eps, and MIXED's eps are
large, so a fold that drops eps, or divides by var + eps instead of its square root, is far
off; each folded conv's output is compared with its BatchNorm's, before any later layer
(the batch-statistics BatchNorm in MIXED) can normalise an error away."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiers import zoo

import netspec
from netspec.api import graph_of
from netspec.fuse import foldable_pairs

SPECS = Path(__file__).resolve().parent.parent / "specs"

MIXED = """
    input: [3, 12, 12]
    layers:
      - conv2d: {out: 8, kernel: 3, padding: 1, bias: false}   # folds, gains a bias
      - batchnorm2d: {eps: 0.5}
      - relu
      - conv2d: {out: 8, kernel: 3, groups: 8}                 # depthwise, folds
      - batchnorm2d: {affine: false, eps: 2.0}
        name: plain_bn
      - conv2d: [8, 1]
        name: shared                                            # read twice: stays
      - batchnorm2d:
        name: kept_bn
      - add: [shared, kept_bn]
      - conv2d: [4, 3]
      - batchnorm2d: {track_running_stats: false}              # batch statistics: stays
        name: batch_stats
      - flatten
      - linear: 6
      - batchnorm1d:                                            # after a linear: stays
        name: after_linear
"""


def randomise_statistics(model: torch.nn.Module) -> None:
    """Running statistics (variances between eps/4 and 4 eps) and affine parameters away from
    the identity."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.25, 4).mul_(m.eps)
            if m.affine:
                m.weight.data.uniform_(0.5, 2)
                m.bias.data.uniform_(-1, 1)


def test_only_batchnorms_right_after_a_conv_they_alone_read_fold(spec_text):
    pairs = foldable_pairs(graph_of(spec_text(MIXED)))
    assert pairs == {"bn1": "conv1", "plain_bn": "conv2"}


def test_folded_report_drops_the_folded_batchnorms(spec_text):
    spec = spec_text(MIXED)
    plain, fused = netspec.check(spec), netspec.check(spec, fuse_bn=True)
    # bn1: -2*8 params (+8 conv bias), -(2*8 + 1) buffers; plain_bn: no params, -(2*8+1)
    assert fused.params == plain.params - 2 * 8 + 8
    assert fused.buffers == plain.buffers - 2 * (2 * 8 + 1)
    assert "bn1" not in {r.name for r in fused.layers}
    assert fused.layer("relu1").inputs == ["conv1"]


def outputs_of(model: torch.nn.Module, names: list[str], x: torch.Tensor) -> list[torch.Tensor]:
    """The outputs of the submodules `names` in a forward pass of `x`."""
    seen: dict[str, torch.Tensor] = {}
    hooks = [model.get_submodule(n).register_forward_hook(
        lambda m, i, out, n=n: seen.__setitem__(n, out)) for n in names]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return [seen[n] for n in names]


def test_folded_module_matches_in_eval_mode(spec_text):
    spec = spec_text(MIXED)
    model = netspec.build(spec, seed=1)
    randomise_statistics(model)
    model.eval()
    assert [model.get_submodule(n).eps for n in ("bn1", "plain_bn")] == [0.5, 2.0]
    fused = netspec.fuse(spec, model)
    assert sum(p.numel() for p in fused.parameters()) == netspec.check(spec, fuse_bn=True).params
    x = torch.randn(4, 3, 12, 12)
    pairs = foldable_pairs(graph_of(spec))
    # each folded conv gives what its BatchNorm gave
    for want, got in zip(outputs_of(model, list(pairs), x), outputs_of(fused, list(pairs.values()), x),
                         strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())
    with torch.no_grad():
        want, got = model(x), fused(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


@pytest.mark.parametrize("name", zoo(["vgg11_bn"]))
def test_zoo_folds_exactly(name):
    spec = netspec.load(SPECS / f"{name}.yaml")
    model = netspec.build(spec, seed=0)
    randomise_statistics(model)
    model.eval()
    fused = netspec.build(spec, seed=0, fuse_bn=True)  # fresh weights: folding is seeded too
    assert not fused.training
    fused = netspec.fuse(spec, model)
    report = netspec.check(spec, fuse_bn=True)
    assert report.buffers == 0 and report.params == netspec.check(spec).params - sum(
        2 * m.num_features for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want, got = model(x), fused(x)
    assert ((got - want).abs().max() / want.abs().max()).item() < 1e-5
