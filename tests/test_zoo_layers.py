"""Every layer of the zoo's specs against the reference network run by torch, at the
standard input size and at odd, non-square sizes: floor and ceil rounding in every strided
layer, partial pool windows and adaptive pools that really pool, which the small square
inputs of tests/test_zoo_torchvision.py do not all reach.

The references are torchvision's models (`reference()` from tests/test_zoo_torchvision.py,
which also compares their weights, MACs and outputs) and, for LeNet-5, which torchvision
lacks, the hand-written one in tests/reference_models.py (U-Net's is tests/test_zoo_unet.py).
tests/zoo_harness.py compares the totals, the output shape, and each conv, linear and
batch-norm layer's class, output shape, parameters, buffers and MACs, and likewise each
layer of the classes in ALSO; in order for the chains (CHAINS).

Also: MobileNetV2 at width multipliers against torchvision's `width_mult`, GoogLeNet and
SqueezeNet at the smallest input torchvision accepts, and their compiled modules computing
torchvision's function at an odd, non-square size.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import reference_models
import torch
import yaml
import zoo_harness
from test_zoo_torchvision import reference
from tiers import zoo

import netspec

SPECS = Path(__file__).resolve().parent.parent / "specs"
Size = tuple[int, ...]

STANDARD = (3, 224, 224)
ODD = (STANDARD, (3, 227, 229), (3, 193, 257))
CLASSIC = (STANDARD, (3, 227, 229), (3, 256, 320))  # larger: the adaptive pool really pools
SIZES: dict[str, tuple[Size, ...]] = {
    "alexnet": CLASSIC, "vgg16": CLASSIC, "vgg11_bn": CLASSIC,
    "resnet18": ODD, "resnet50": ODD, "resnet34": ((3, 97, 131),), "resnet152": ((3, 97, 131),),
    "densenet121": ODD, "mobilenet_v2": ODD, "googlenet": ODD, "squeezenet1_0": ODD,
}
"""The sizes each spec is compared at with torchvision's model."""

CHAIN = ("ReLU", "MaxPool2d", "AdaptiveAvgPool2d", "Dropout")
RESNET = ("ReLU", "MaxPool2d", "AdaptiveAvgPool2d")
ALSO: dict[str, tuple[str, ...]] = {
    "lenet5": ("ReLU", "MaxPool2d", "Flatten"),
    # every layer; torchvision flattens with a call to torch.flatten
    "alexnet": CHAIN, "vgg16": CHAIN, "vgg11_bn": CHAIN, "squeezenet1_0": CHAIN,
    "resnet18": RESNET, "resnet34": RESNET, "resnet50": RESNET, "resnet152": RESNET,
    "densenet121": ("MaxPool2d", "AvgPool2d"),  # its last ReLU and global pool are calls
    "mobilenet_v2": ("ReLU6", "Dropout"),  # its global pool is a call
    "googlenet": ("MaxPool2d", "AdaptiveAvgPool2d", "Dropout"),  # its ReLUs are calls
}
"""Besides the weighted layers, the torch classes compared layer by layer: those the
reference runs as modules (a call to a function has no hook to record it)."""
CHAINS = frozenset({"lenet5", "alexnet", "vgg16", "vgg11_bn"})
"""Specs compared layer by layer in order: one layer after another, as the reference runs."""

CASES = [(name, size) for name, sizes in SIZES.items() for size in sizes]


def spec_path(name: str) -> Path:
    return SPECS / f"{name}.yaml"


def ids(cases: list[tuple[Any, Size]]) -> list[str]:
    return [f"{first}-{'x'.join(map(str, size))}" for first, size in cases]


def torchvision_model(name: str) -> Callable[[], torch.nn.Module]:
    """A builder of torchvision's model of the zoo spec `name`."""
    return lambda: reference(name)


def test_lenet5_matches_the_hand_written_reference() -> None:
    zoo_harness.compare(spec_path("lenet5"), reference_models.lenet5, (1, 32, 32), ALSO["lenet5"],
                        ordered=True)


@pytest.mark.needs("torchvision")
@pytest.mark.parametrize(("name", "size"), zoo(CASES), ids=ids(CASES))
def test_every_layer_matches_torchvision_s(name: str, size: Size) -> None:
    zoo_harness.compare(spec_path(name), torchvision_model(name), size, ALSO[name],
                        ordered=name in CHAINS)


def with_width(width: float) -> dict[str, Any]:
    """The MobileNetV2 spec as a dict with `params.width` changed."""
    data = yaml.safe_load(spec_path("mobilenet_v2").read_text())
    data["params"]["width"] = width
    return data


WIDTH_CASES = [(0.5, STANDARD), (0.5, (3, 227, 229)), (1.4, STANDARD), (1.4, (3, 193, 257))]


@pytest.mark.needs("torchvision")
@pytest.mark.slow
@pytest.mark.parametrize(("width", "size"), WIDTH_CASES, ids=ids(WIDTH_CASES))
def test_mobilenet_v2_width_is_torchvision_s_width_mult(width: float, size: Size) -> None:
    from torchvision import models

    zoo_harness.compare(with_width(width), lambda: models.mobilenet_v2(width_mult=width), size,
                        ALSO["mobilenet_v2"])


@pytest.mark.needs("torchvision")
@pytest.mark.parametrize("name", ["googlenet", "squeezenet1_0"])
def test_layers_match_at_the_smallest_input_torchvision_accepts(name: str) -> None:
    """At torchvision's `min_size`, the smallest input the network runs on
    (tests/test_zoo_structure.py: netspec refuses one pixel less)."""
    from torchvision import models

    min_size = models.get_model_weights(name).DEFAULT.meta["min_size"]
    zoo_harness.compare(spec_path(name), torchvision_model(name), (3, *min_size), ALSO[name])


@pytest.mark.needs("torchvision")
@pytest.mark.parametrize("name", zoo(["googlenet", "squeezenet1_0"]))
def test_compiled_module_computes_torchvision_s_function_at_an_odd_size(name: str) -> None:
    """131x97, taller than wide: the first ceil-mode max pool's last window runs past the
    edge in one direction only (tests/test_zoo_torchvision.py runs square inputs)."""
    size = (3, 131, 97)
    ref = reference(name)
    model = netspec.build(spec_path(name), seed=1, inputs=size).eval()
    netspec.load_weights(model, ref.state_dict(), strict=True)
    x = torch.randn(2, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = ref(x), model(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())
