"""The classic zoo (LeNet-5, AlexNet, VGG-16, VGG-11-BN): netspec's static analysis against
published totals, against a hand-written torch model layer by layer, and against golden files.

The oracle is `reference_models` run for real (batch 1, no grad): a forward hook on every
leaf module records its class, output shape, parameters and buffers, and
`torch.utils.flop_counter.FlopCounterMode` counts each layer's multiply-accumulates.
"""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import reference_models
import torch
from golden.regen import FORMATS, SPECS, render
from tiers import zoo
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import netspec

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"


@dataclass(frozen=True)
class Published:
    """A network's published totals at its standard input size."""

    params: int
    buffers: int
    macs: int
    output: tuple[int, ...]


# Parameters and buffers are torchvision's `num_params` (and its models' buffers). MACs follow
# DESIGN.md's convention (conv/linear multiply-accumulates only), which is torchvision's
# "GFLOPS" column (0.714, 15.47, 7.609) and what FlopCounterMode counts on torchvision's models.
PUBLISHED = {
    "lenet5": Published(61_706, 0, 416_520, (10,)),
    "alexnet": Published(61_100_840, 0, 714_188_480, (1000,)),
    "vgg16": Published(138_357_544, 0, 15_470_264_320, (1000,)),
    "vgg11_bn": Published(132_868_840, 5_512, 7_609_090_048, (1000,)),
}
# The issue quotes larger MAC totals for these three: they also count one add per output
# element of every biased conv and linear layer, which the report gives as `macs_with_bias`.
ISSUE_MACS_WITH_BIAS = {
    "alexnet": 714_682_664,
    "vgg16": 15_483_821_032,
    "vgg11_bn": 7_616_525_288,
}

REFERENCES = {
    "lenet5": reference_models.lenet5,
    "alexnet": reference_models.alexnet,
    "vgg16": reference_models.vgg16,
    "vgg11_bn": reference_models.vgg11_bn,
}
# The standard size, an odd one (floor rounding in every strided layer) and a larger,
# non-square one (the adaptive pool really pools). LeNet's flatten fixes its input size.
IMAGENET_SIZES = ((3, 224, 224), (3, 227, 229), (3, 256, 320))
SIZES = {"lenet5": ((1, 32, 32),), "alexnet": IMAGENET_SIZES, "vgg16": IMAGENET_SIZES,
         "vgg11_bn": IMAGENET_SIZES}
CASES = [(name, size) for name, sizes in SIZES.items() for size in sizes]
CASE_IDS = [f"{name}-{'x'.join(map(str, size))}" for name, size in CASES]

Row = tuple[str, tuple[int, ...], int, int]
"""One layer: torch class, output shape per sample, parameters, buffers."""


def spec_path(name: str) -> Path:
    return ROOT / "specs" / f"{name}.yaml"


@functools.cache
def report(name: str, size: tuple[int, ...] | None = None) -> netspec.Report:
    return netspec.check(netspec.load(spec_path(name)), inputs=size)


@functools.cache
def reference(name: str) -> nn.Module:
    torch.manual_seed(0)
    return REFERENCES[name]().eval()


@functools.cache
def traced(name: str, size: tuple[int, ...]) -> tuple[list[Row], list[int]]:
    """The reference model's leaf layers in execution order, and each one's MACs."""
    model = reference(name)
    leaves = {m: n for n, m in model.named_modules() if not any(m.children())}
    order: list[nn.Module] = []
    shapes: list[tuple[int, ...]] = []

    def record(module: nn.Module, args: object, out: torch.Tensor) -> None:
        order.append(module)
        shapes.append(tuple(out.shape[1:]))

    hooks = [m.register_forward_hook(record) for m in leaves]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.randn(1, *size))
    finally:
        for hook in hooks:
            hook.remove()
    flops = counter.get_flop_counts()
    root = type(model).__name__
    rows = [(type(m).__name__, shape, sum(p.numel() for p in m.parameters()),
             sum(b.numel() for b in m.buffers())) for m, shape in zip(order, shapes, strict=True)]
    macs = [sum(flops.get(f"{root}.{leaves[m]}", {}).values()) // 2 for m in order]
    return rows, macs


def spec_rows(r: netspec.Report) -> list[Row]:
    return [(row.torch, tuple(row.shape), row.params, row.buffers) for row in r.layers if row.torch]


# -- totals ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", PUBLISHED)
def test_totals_match_published(name: str) -> None:
    r, want = report(name), PUBLISHED[name]
    assert (r.params, r.trainable_params, r.buffers, r.macs, r.flops) == \
        (want.params, want.params, want.buffers, want.macs, 2 * want.macs)
    assert list(r.outputs.values()) == [want.output]


@pytest.mark.parametrize("name", ISSUE_MACS_WITH_BIAS)
def test_issue_macs_are_ours_plus_one_add_per_bias(name: str) -> None:
    assert report(name).macs_with_bias == ISSUE_MACS_WITH_BIAS[name]


# -- every layer against torch ---------------------------------------------------------


@pytest.mark.parametrize(("name", "size"), zoo(CASES), ids=CASE_IDS)
def test_every_layer_matches_torch(name: str, size: tuple[int, ...]) -> None:
    rows, _ = traced(name, size)
    assert spec_rows(report(name, size)) == rows


@pytest.mark.parametrize(("name", "size"), zoo(CASES), ids=CASE_IDS)
def test_macs_match_flop_counter(name: str, size: tuple[int, ...]) -> None:
    """Per layer, named by the spec; FlopCounterMode counts conv and linear layers only."""
    rows, macs = traced(name, size)
    layers = [row for row in report(name, size).layers if row.torch]
    assert [(row.name, row.macs) for row in layers] == \
        [(row.name, m) for row, m in zip(layers, macs, strict=True)]
    assert all(m == 0 for (cls, *_), m in zip(rows, macs, strict=True) if cls not in ("Conv2d", "Linear"))
    assert report(name, size).macs == sum(macs)


@pytest.mark.slow
def test_reference_models_match_published() -> None:
    for name, want in PUBLISHED.items():
        model = reference(name)
        assert sum(p.numel() for p in model.parameters()) == want.params, name
        assert sum(b.numel() for b in model.buffers()) == want.buffers, name


# -- golden files ----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("name", SPECS)
def test_check_output_matches_golden(name: str, suffix: str) -> None:
    path = GOLDEN / f"{name}.{suffix}"
    golden, current = path.read_text(encoding="utf-8"), render(name, FORMATS[suffix])
    diff = "".join(difflib.unified_diff(golden.splitlines(True), current.splitlines(True),
                                        f"{path.name} (golden)", f"{path.name} (now)"))
    assert current == golden, f"`netspec check` output changed:\n{diff}\n" \
        "if the change is intended: python3 tests/golden/regen.py"


@pytest.mark.parametrize("name", SPECS)
def test_golden_totals_are_the_published_ones(name: str) -> None:
    data, want = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8")), PUBLISHED[name]
    assert (data["params"], data["buffers"], data["macs"]) == (want.params, want.buffers, want.macs)
    assert list(data["outputs"].values()) == [list(want.output)]
