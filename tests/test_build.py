"""`netspec.build`: the compiled torch.fx module has the spec's names, readable code,
reproducible weights and frozen layers, computes what torch's functions compute, and an
invalid spec raises the check's positioned errors.

The zoo's compiled modules are held elsewhere: to their reports' shapes, parameters and
buffers by tests/test_truth.py, to torchvision's outputs with the same weights by
tests/test_zoo_torchvision.py, and LeNet-5 to the hand-written one's by tests/test_weights.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import netspec

SPECS = Path(__file__).resolve().parent.parent / "specs"


def test_state_dict_keys_and_code_use_the_spec_names(spec_text):
    spec = spec_text("""
        input: [3, 8, 8]
        blocks:
          unit:
            params: {c: null}
            layers:
              - conv2d: {out: c, kernel: 3, padding: 1}
              - batchnorm2d
              - add: [input, bn1]
        layers:
          - unit: {c: 3}
            repeat: 2
            name: layer1
          - concat: [layer1, input]
    """)
    model = netspec.build(spec, seed=0)
    assert list(model.state_dict())[:3] == ["layer1.0.conv1.weight", "layer1.0.conv1.bias",
                                           "layer1.0.bn1.weight"]
    code = model.code
    assert "layer1_0_add1 = input_1 + layer1_0_bn1" in code
    assert "torch.cat((layer1_1_add1, input_1), dim = 1)" in code
    assert "getattr(self.layer1, \"1\").conv1(layer1_0_add1)" in code
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 6, 8, 8)


def test_seeded_builds_are_reproducible_and_leave_the_global_rng_alone():
    path = SPECS / "lenet5.yaml"
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = netspec.build(path, seed=7), netspec.build(path, seed=7)
    after = torch.rand(1)
    assert torch.equal(before, after)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    c = netspec.build(path, seed=8)
    assert not torch.equal(a.state_dict()["conv1.weight"], c.state_dict()["conv1.weight"])


def test_functional_layers_compute_what_torch_does(spec_text):
    spec = spec_text("""
        inputs: {skip: [4, 12, 12], up: [4, 8, 8], gate: [4, 1, 1]}
        outputs: [mul1, crop1, add1]
        layers:
          - center_crop:
            from: [skip, up]
          - add: [crop1, up, up]
          - mul: [up, gate]
    """)
    model = netspec.build(spec)
    skip, up, gate = torch.randn(2, 4, 12, 12), torch.randn(2, 4, 8, 8), torch.randn(2, 4, 1, 1)
    mul, crop, add = model(skip, up, gate)
    torch.testing.assert_close(crop, skip[:, :, 2:10, 2:10])
    torch.testing.assert_close(add, skip[:, :, 2:10, 2:10] + 2 * up)
    torch.testing.assert_close(mul, up * gate)


def test_frozen_layers_do_not_train(spec_text):
    model = netspec.build(spec_text("""
        input: [3, 8, 8]
        layers:
          - conv2d: [4, 3]
            frozen: true
          - flatten
          - linear: 2
    """))
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["fc1.weight", "fc1.bias"]


def test_building_an_invalid_spec_raises_the_checks_positioned_errors(spec_text):
    with pytest.raises(netspec.SpecError) as info:
        netspec.build(netspec.load("input: [1, 4, 4]\nlayers:\n  - conv2d: [2, 5]\n"))
    error = info.value.errors[0]
    assert (error.where.line, error.path) == (3, "conv1")
    assert "needs at least 5x5 input but input gives 4x4" in error.message


def test_a_head_resized_to_its_input_is_right_at_every_input_size():
    """`upsample` to a second input's size compiles to F.interpolate to that tensor's size,
    so one built module serves any input size (FCN and DeepLab heads)."""
    net = netspec.build("""
        input: [3, 37, 45]
        layers:
          - conv2d: {out: 4, kernel: 3, stride: 4, padding: 1}
          - upsample: {mode: bilinear, align_corners: false}
            from: [conv1, input]
    """, seed=0).eval()
    for size in [(37, 45), (64, 64), (100, 31), (5, 9)]:
        x = torch.randn(2, 3, *size)
        low = net.conv1(x)
        want = torch.nn.functional.interpolate(low, size=size, mode="bilinear", align_corners=False)
        assert torch.equal(net(x), want)
