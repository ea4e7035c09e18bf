"""Receptive fields of chains, worked out by hand.

Through a window of span e = d*(k-1) + 1 and stride s (convolutions and pooling):
    size_out = size_in + (e - 1) * stride_in,   stride_out = stride_in * s
An input pixel has size 1, stride 1; pointwise layers keep their input's field; a merge
takes the largest size of its inputs and the largest stride of those on its output's grid
(a gate broadcast over the grid does not set it); flatten and linear end it (None).
Upsampling by a factor f reads 1 (nearest) or 2 (interpolating) neighbours and divides the
stride by f; a transposed convolution (k, s) reads ceil(k/s) neighbours and divides it by s.
"""

import math
from typing import Any

import pytest

import netspec

RF = dict[str, list[int | float]] | None


def rf(size: list[int | float], stride: list[int | float]) -> RF:
    return {"size": size, "stride": stride}


def square(size: int | float, stride: int | float) -> RF:
    """The field of a 2-D layer with equal height and width."""
    return rf([size, size], [stride, stride])


def conv(k: int, s: int = 1, **more: Any) -> dict[str, Any]:
    return {"conv2d": {"out": 4, "kernel": k, "stride": s, **more}}


CHAINS = [
    pytest.param(
        [3, 32, 32], [conv(3), conv(3), conv(3)],
        # 1 + 2*1 = 3, 3 + 2*1 = 5, 5 + 2*1 = 7
        [square(1 + 2 * 1, 1), square(3 + 2 * 1, 1), square(5 + 2 * 1, 1)],
        id="conv3x3-stack"),
    pytest.param(
        [3, 224, 224],
        [conv(7, 2, padding=3), {"maxpool2d": {"kernel": 3, "stride": 2, "padding": 1}},
         conv(3, padding=1), conv(3, padding=1)],
        # conv7/2: 7, stride 2; pool3/2: 7 + 2*2 = 11, stride 4; conv3: 11 + 2*4 = 19; 19 + 2*4
        [square(7, 2), square(7 + 2 * 2, 2 * 2), square(11 + 2 * 4, 4), square(19 + 2 * 4, 4)],
        id="resnet-stem"),
    pytest.param(
        [3, 32, 32],
        [conv(3, padding=1), conv(3, padding=1), {"maxpool2d": 2},
         conv(3, padding=1), conv(3, padding=1), {"maxpool2d": 2}],
        # 3, 5; pool2/2: 5 + 1*1 = 6, stride 2; 6 + 2*2 = 10; 10 + 2*2 = 14; 14 + 1*2 = 16, stride 4
        [square(3, 1), square(5, 1), square(5 + 1 * 1, 2), square(6 + 2 * 2, 2),
         square(10 + 2 * 2, 2), square(14 + 1 * 2, 2 * 2)],
        id="vgg-blocks"),
    pytest.param(
        [3, 64, 64], [conv(3), conv(3, dilation=2), conv(3, dilation=4)],
        # spans 3, 2*(3-1)+1 = 5, 4*(3-1)+1 = 9: 3, 3 + 4 = 7, 7 + 8 = 15
        [square(3, 1), square(3 + (5 - 1), 1), square(7 + (9 - 1), 1)],
        id="dilated-stack"),
    pytest.param(
        [3, 64, 64], [conv(3, 2, dilation=2), conv(3, padding="same", dilation=3)],
        # span 5, stride 2; span 7: 5 + 6*2
        [square(5, 2), square(5 + (7 - 1) * 2, 2)],
        id="dilated-strided"),
    pytest.param(
        [3, 32, 32], [conv([1, 7]), conv([7, 1]), conv([3, 5], [2, 1])],
        # [1,7]; [7,7]; [7 + 2, 7 + 4], stride [2, 1]
        [rf([1, 7], [1, 1]), rf([7, 7], [1, 1]), rf([7 + 2, 7 + 4], [2, 1])],
        id="asymmetric-kernels"),
    pytest.param(
        [2, 100],
        [{"conv1d": {"out": 4, "kernel": 5, "stride": 2}}, {"conv1d": {"out": 4, "kernel": 3}},
         {"maxpool1d": 2}, {"avgpool1d": {"kernel": 3, "stride": 1, "ceil_mode": True}}],
        # 5, stride 2; 5 + 2*2 = 9; 9 + 1*2 = 11, stride 4; 11 + 2*4 = 19 (ceil_mode changes nothing)
        [rf([5], [2]), rf([5 + 2 * 2], [2]), rf([9 + 1 * 2], [2 * 2]), rf([11 + 2 * 4], [4])],
        id="conv1d-chain"),
    pytest.param(
        [3, 16, 16],
        [conv(3, 2), "relu", {"batchnorm2d": {}}, {"dropout": 0.1}, {"zeropad2d": 1},
         "flatten", {"linear": 10}],
        # pointwise layers and padding keep the field; flatten and linear end it
        [square(3, 2), square(3, 2), square(3, 2), square(3, 2), square(3, 2), None, None],
        id="pointwise-then-head"),
    pytest.param(
        [3, 32, 32],
        [conv(3, 2), conv(3, 2), {"upsample": 2}, {"upsample": {"scale": 2, "mode": "bilinear"}}],
        # 3, stride 2; 3 + 2*2 = 7, stride 4; nearest x2: 7, stride 4/2; bilinear reads
        # 2 neighbours 2 apart: 7 + 1*2 = 9, stride 2/2
        [square(3, 2), square(3 + 2 * 2, 2 * 2), square(7, 4 / 2), square(7 + 1 * 2, 2 / 2)],
        id="upsample"),
    pytest.param(
        [1, 8, 8], [{"upsample": 3}],
        [square(1, round(1 / 3, 6))],
        id="fractional-stride"),
    pytest.param(
        [3, 31, 31],
        [conv(3, 2), {"conv_transpose2d": {"out": 4, "kernel": 4, "stride": 2}},
         {"conv_transpose2d": {"out": 4, "kernel": 3, "stride": 2}}],
        # 3, stride 2; ceil(4/2) = 2 neighbours 2 apart: 3 + 1*2 = 5, stride 2/2;
        # ceil(3/2) = 2 neighbours 1 apart: 5 + 1*1 = 6, stride 1/2
        [square(3, 2), square(3 + (math.ceil(4 / 2) - 1) * 2, 2 / 2),
         square(5 + (math.ceil(3 / 2) - 1) * 1, 1 / 2)],
        id="conv-transpose"),
    pytest.param(
        [3, 9, 9], [conv(3), {"adaptive_avgpool2d": 1}],
        # 7x7 -> 1: one region of 7 cells: 3 + 6*1 = 9, stride 7/1
        [square(3, 1), square(3 + (7 - 1) * 1, 7)],
        id="global-pool"),
    pytest.param(
        [3, 7, 5], [{"adaptive_maxpool2d": {"size": [3, None]}}],
        # 7 -> 3: regions [0,3) [2,5) [4,7), widest 3, stride 7/3; None keeps W: 1, stride 1
        [rf([1 + (3 - 1), 1], [round(7 / 3, 6), 1])],
        id="adaptive-pool"),
    pytest.param(
        [3, 16, 16], [conv(3), {"pixel_unshuffle": 2}, {"channel_shuffle": 4}, conv(3),
                      {"pixel_shuffle": 2}],
        # 3; an r x r block r apart: 3 + (2-1)*1 = 4, stride 2; channel_shuffle keeps it;
        # 4 + 2*2 = 8; one pixel each, 1/2 of an input pixel apart: 8, stride 2/2
        [square(3, 1), square(3 + (2 - 1) * 1, 2), square(4, 2), square(4 + 2 * 2, 2),
         square(8, 2 / 2)],
        id="pixel-shuffle"),
]


@pytest.mark.parametrize(("shape", "layers", "expected"), CHAINS)
def test_chain(shape: list[int], layers: list[Any], expected: list[RF]) -> None:
    report = netspec.check(netspec.load({"name": "t", "input": shape, "layers": layers}))
    assert [layer.rf for layer in report.layers] == expected


def test_merges_take_the_widest_field() -> None:
    spec = {"name": "t", "input": [3, 32, 32], "layers": [
        {**conv(3, 2, padding=1), "name": "narrow"},
        {**conv(7, 2, padding=3), "name": "wide", "from": "input"},
        {"add": ["narrow", "wide"], "name": "sum"},
        {**conv(1), "name": "fine", "from": "input"},
        {"upsample": 2, "name": "coarse", "from": "narrow"},
        {"concat": ["coarse", "fine", "input"], "name": "mixed"},
    ]}
    fields = {layer.name: layer.rf for layer in netspec.check(netspec.load(spec)).layers}
    assert fields["sum"] == square(max(3, 7), max(2, 2))
    # coarse: 3, stride 2/2 (nearest x2); fine: 1, stride 1; the input itself: 1, stride 1
    assert fields["mixed"] == square(max(3, 1, 1), max(2 / 2, 1, 1))


def test_a_gate_broadcast_over_the_grid_widens_the_field_not_the_stride() -> None:
    """Squeeze-and-excitation: the [C,1,1] gate sees the whole input (a global pool's field
    is every pixel), so the gated units do too; but they sit on the gated map's grid, and
    the layers after it step as that grid does."""
    spec = {"name": "t", "input": [3, 32, 32], "layers": [
        {**conv(3, 2, padding=1), "name": "features"},           # 16x16: size 3, stride 2
        {"adaptive_avgpool2d": 1, "name": "pool"},               # sees all 16 rows of it
        {"conv2d": [4, 1], "name": "excite"},
        {"sigmoid": None, "name": "gate"},
        {"mul": ["features", "gate"], "name": "gated"},
        {**conv(3), "name": "after"},
    ]}
    fields = {layer.name: layer.rf for layer in netspec.check(netspec.load(spec)).layers}
    pool = fields["pool"]
    assert pool["size"] == [3 + (16 - 1) * 2] * 2  # a 16-wide window over stride-2 units
    assert fields["gated"] == square(pool["size"][0], 2)
    assert fields["after"] == square(pool["size"][0] + (3 - 1) * 2, 2)
