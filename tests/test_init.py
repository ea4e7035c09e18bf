"""Initialisation named in the spec: whole net, block call, layer; nearest wins. Expected
statistics come from torch.nn.init's documented formulas."""

from __future__ import annotations

import math

import pytest
import torch

import netspec

SPEC = """
    input: [16, 32, 32]
    init: {kaiming_normal: {mode: fan_out, nonlinearity: relu}}
    blocks:
      pair:
        params: {c: 64}
        layers:
          - conv2d: [c, 3, 1, 1]
          - batchnorm2d
          - conv2d: [c, 1]
            init: {weight: ones, bias: {constant: {val: 0.5}}}
    layers:
      - conv2d: [64, 3, 1, 1]
      - pair: {c: 64}
        init: {weight: xavier_uniform, bias: zeros}
      - flatten
      - linear: 10
        init: {weight: {normal: {std: 0.01}}, bias: zeros}
"""


@pytest.fixture(scope="module")
def model():
    import textwrap

    return netspec.build(netspec.load(textwrap.dedent(SPEC).strip() + "\n"), seed=0)


def test_the_whole_net_default_applies_where_nothing_nearer_is_named(model):
    weight = model.get_submodule("conv1").weight
    fan_out = 64 * 3 * 3
    assert weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.05)


def test_a_block_calls_init_covers_its_layers_and_a_layers_own_wins(model):
    weight = model.get_submodule("pair1.conv1").weight
    bound = math.sqrt(6 / (64 * 9 + 64 * 9))  # xavier uniform: gain * sqrt(6 / (fan_in + fan_out))
    assert weight.abs().max().item() <= bound
    assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert torch.all(model.get_submodule("pair1.conv1").bias == 0)
    inner = model.get_submodule("pair1.conv2")
    assert torch.all(inner.weight == 1) and torch.all(inner.bias == 0.5)


def test_fan_based_schemes_leave_one_dimensional_weights_alone(model):
    bn = model.get_submodule("pair1.bn1")
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)  # torch's defaults


def test_layer_init_with_arguments(model):
    fc = model.get_submodule("fc1")
    assert fc.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert torch.all(fc.bias == 0)


def test_layers_without_init_keep_torch_defaults(spec_text):
    model = netspec.build(spec_text("""
        input: [8]
        layers: [{linear: 4}]
    """), seed=3)
    torch.manual_seed(3)
    assert torch.equal(model.get_submodule("fc1").weight, torch.nn.Linear(8, 4).weight)


@pytest.mark.parametrize(("init", "message", "hint"), [
    ("kaiming_normel", "unknown init scheme `kaiming_normel`", "did you mean `kaiming_normal`?"),
    ({"kaiming_normal": {"mod": "fan_out"}}, "unknown argument `mod` for init `kaiming_normal`",
     "did you mean `mode`?"),
    ({"kaiming_normal": {"mode": "fan_ot"}}, "`mode` of `kaiming_normal` must be one of",
     "did you mean `fan_out`?"),
    ({"normal": {"std": "big"}}, "`std` of `normal` expects a number", None),
    (3, "an init is a scheme name", "e.g. `kaiming_normal` or `{weight: xavier_uniform, bias: zeros}`"),
])
def test_bad_init_is_a_positioned_error(init, message, hint):
    spec = {"input": [3, 8, 8], "layers": [{"conv2d": [4, 3], "init": init}]}
    with pytest.raises(netspec.SpecError) as info:
        netspec.load(spec)
    error = info.value.errors[0]
    assert message in error.message and error.hint == hint and error.path == "conv1"


def test_bad_init_points_at_its_line():
    with pytest.raises(netspec.SpecError) as info:
        netspec.load("input: [3, 8, 8]\ninit: zeroes\nlayers: [relu]\n")
    error = info.value.errors[0]
    assert (error.where.line, error.where.column) == (2, 7)
    assert error.hint == "did you mean `zeros`?"
