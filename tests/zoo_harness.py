"""One check for every zoo spec against its reference network written in plain torch.

`compare(spec_path, reference, size)` runs the reference once on a batch of 1 with a hook
on every leaf module and FlopCounterMode around it, and compares with `netspec.check` at
the same input size:
- totals: parameters, buffers, output shape, MACs (FlopCounterMode's FLOPs / 2);
- the multiset of (torch class, per-sample output shape, params) over every Conv2d,
  ConvTranspose2d, Linear and BatchNorm2d layer (a multiset, so branch order and names
  are free);
and, where the spec compiles, that `netspec.build` has the reference's parameter count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import netspec

COUNTED = ("Conv2d", "ConvTranspose2d", "Linear", "BatchNorm2d")
Layer = tuple[str, tuple[int, ...], int]


@dataclass(frozen=True)
class Traced:
    """What the reference network does at one input size."""

    params: int
    buffers: int
    macs: int
    output: tuple[int, ...]
    layers: Counter[Layer]


def trace(reference: nn.Module, size: tuple[int, ...]) -> Traced:
    """Run `reference` (eval mode, no grad) on one random `size` sample, recording layers."""
    layers: Counter[Layer] = Counter()

    def record(module: nn.Module, args: object, out: torch.Tensor) -> None:
        name = type(module).__name__
        if name in COUNTED:
            layers[(name, tuple(out.shape[1:]), sum(p.numel() for p in module.parameters()))] += 1

    hooks = [m.register_forward_hook(record) for m in reference.modules() if not any(m.children())]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = reference.eval()(torch.randn(1, *size))
    finally:
        for hook in hooks:
            hook.remove()
    return Traced(
        params=sum(p.numel() for p in reference.parameters()),
        buffers=sum(b.numel() for b in reference.buffers()),
        macs=counter.get_total_flops() // 2,
        output=tuple(out.shape[1:]),
        layers=layers,
    )


def spec_layers(report: netspec.Report) -> Counter[Layer]:
    return Counter((r.torch, tuple(r.shape), r.params) for r in report.layers if r.torch in COUNTED)


def compare(spec: Path | str, reference: Callable[[], nn.Module], size: tuple[int, ...]) -> None:
    """Assert the spec's analysis at `size` equals what the reference network does."""
    torch.manual_seed(0)
    want = trace(reference(), size)
    report = netspec.check(netspec.load(spec), inputs=size)
    assert (report.params, report.buffers, report.macs) == (want.params, want.buffers, want.macs)
    assert list(report.outputs.values()) == [want.output]
    assert spec_layers(report) == want.layers
