"""One check of a zoo spec against its reference network run by torch: torchvision's model,
or, where torchvision has none, the one written by hand (LeNet-5 in `reference_models`,
U-Net in `reference_unet`).

`compare(spec, reference, size, also, ordered)` runs the reference once on a batch of 1
with a hook on every leaf module and FlopCounterMode around it, and compares with
`netspec.check` at the same input size:
- totals: parameters, buffers, output shape, MACs (FlopCounterMode's FLOPs / 2);
- the multiset of (torch class, per-sample output shape, params, buffers, MACs) over every
  Conv2d, ConvTranspose2d, Linear and BatchNorm2d layer, and over every layer of the
  classes in `also` (pools, activations, dropout: only classes the reference runs as
  modules, as a call to a function has no hook). A multiset, so branch order and names
  are free; for a chain, `ordered` compares the sequence instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import netspec

COUNTED = frozenset({"Conv2d", "ConvTranspose2d", "Linear", "BatchNorm2d"})
"""The layers every comparison counts: those with weights."""
Layer = tuple[str, tuple[int, ...], int, int, int]
"""One layer: torch class, output shape per sample, parameters, buffers, MACs."""


@dataclass(frozen=True)
class Traced:
    """What the reference network does at one input size; `layers` in the order they ran."""

    params: int
    buffers: int
    macs: int
    output: tuple[int, ...]
    layers: list[Layer]


def trace(reference: nn.Module, size: tuple[int, ...], classes: frozenset[str]) -> Traced:
    """Run `reference` (eval mode, no grad) on one random `size` sample, recording each call
    of a leaf module whose class is in `classes`. A layer's MACs are what FlopCounterMode
    counts under its name, shared out over its calls (torchvision's ResNet blocks call one
    ReLU two or three times)."""
    leaves = {m: name for name, m in reference.named_modules() if not any(m.children())}
    calls: list[tuple[nn.Module, tuple[int, ...]]] = []

    def record(module: nn.Module, args: object, out: torch.Tensor) -> None:
        if type(module).__name__ in classes:
            calls.append((module, tuple(out.shape[1:])))

    hooks = [m.register_forward_hook(record) for m in leaves]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = reference.eval()(torch.randn(1, *size))
    finally:
        for hook in hooks:
            hook.remove()
    flops = counter.get_flop_counts()
    times = Counter(module for module, _ in calls)
    root = type(reference).__name__
    layers = [(type(module).__name__, shape, count(module.parameters()), count(module.buffers()),
               sum(flops.get(f"{root}.{leaves[module]}", {}).values()) // 2 // times[module])
              for module, shape in calls]
    return Traced(
        params=count(reference.parameters()),
        buffers=count(reference.buffers()),
        macs=counter.get_total_flops() // 2,
        output=tuple(out.shape[1:]),
        layers=layers,
    )


def count(tensors: Iterable[torch.Tensor]) -> int:
    return sum(t.numel() for t in tensors)


def spec_layers(report: netspec.Report, classes: frozenset[str]) -> list[Layer]:
    """The report's rows of those torch classes, in order, as `trace` records the reference's."""
    return [(r.torch, tuple(r.shape), r.params, r.buffers, r.macs)
            for r in report.layers if r.torch in classes]


def compare(spec: Path | str | dict[str, Any], reference: Callable[[], nn.Module],
            size: tuple[int, ...], also: Iterable[str] = (), ordered: bool = False) -> None:
    """Assert the spec's analysis at `size` equals what the reference network does, layer
    by layer over the weighted layers and the classes in `also`, in order if `ordered`."""
    classes = COUNTED | frozenset(also)
    torch.manual_seed(0)
    want = trace(reference(), size, classes)
    report = netspec.check(netspec.load(spec), inputs=size)
    assert (report.params, report.buffers, report.macs) == (want.params, want.buffers, want.macs)
    assert list(report.outputs.values()) == [want.output]
    ours = spec_layers(report, classes)
    if ordered:
        assert ours == want.layers
    else:
        spec_has, reference_has = Counter(ours), Counter(want.layers)
        assert (spec_has - reference_has, reference_has - spec_has) == (Counter(), Counter()), \
            "(layers only the spec has, layers only the reference has)"
