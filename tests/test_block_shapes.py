"""Blocks read their inputs' shapes: `cin`, `in_shape` and `in_shapes` inside a block are the
inferred per-sample shapes of what the instance reads, so no caller passes a channel count.
Expected values follow from the spec text and the layer formulas."""

from __future__ import annotations

import pytest

import netspec
from netspec.api import graph_of
from netspec.backends.source import python_source
from netspec.spec import expand

SE = """
    input: [24, 8, 8]
    blocks:
      se:                               # squeeze-and-excitation: a quarter of cin in the middle
        params: {squeeze: "max(1, cin // 4)"}
        layers:
          - adaptive_avgpool2d: 1
          - conv2d: [squeeze, 1]
          - relu
          - conv2d: [cin, 1]
          - sigmoid
          - mul: [input, sigmoid1]
    layers:
      - se
      - conv2d: [40, 1]
      - se
"""


def test_a_block_reads_its_input_channels(spec_text):
    report = netspec.check(spec_text(SE))
    for name, c in (("se1", 24), ("se2", 40)):
        squeeze = max(1, c // 4)
        assert report.layer(f"{name}.conv1").shape == (squeeze, 1, 1)
        assert report.layer(f"{name}.conv1").params == c * squeeze + squeeze
        assert report.layer(f"{name}.conv2").params == squeeze * c + c
        assert report.layer(f"{name}.mul1").shape == (c, 8, 8)


def test_another_input_shape_expands_the_blocks_again(spec_text):
    spec = spec_text(SE)
    report = netspec.check(spec, inputs=(12, 5, 5))
    assert report.layer("se1.conv1").shape == (3, 1, 1)
    assert report.layer("se1.mul1").shape == (12, 5, 5)
    assert netspec.check(spec).layer("se1.conv1").shape == (6, 1, 1)  # the loaded graph is kept
    model = netspec.build(spec, inputs=(12, 5, 5))
    assert model.get_submodule("se1.conv1").weight.shape[:2] == (3, 12)
    assert "nn.Conv2d(in_channels=12, out_channels=3, " in python_source(spec, inputs=(12, 5, 5))


def test_a_block_reads_every_input_shape(spec_text):
    report = netspec.check(spec_text("""
        input: [4, 16, 12]
        blocks:
          fuse:
            inputs: [x, skip]
            params: {out: "in_shapes[0][0] + in_shapes[1][0]", size: "in_shape[1] * in_shape[2]"}
            layers:
              - concat: [x, skip]
              - conv2d: [out, 1]
              - flatten
              - linear: size
        layers:
          - conv2d: [6, 3, 1, 1]
          - fuse:
            from: [conv1, input]
    """))
    assert report.layer("fuse1.conv1").shape == (6 + 4, 16, 12)
    assert report.layer("fuse1.fc1").shape == (16 * 12,)  # in_shape: x's, 6x16x12


def test_a_declared_parameter_named_cin_wins(spec_text):
    report = netspec.check(spec_text("""
        input: [8, 4, 4]
        blocks:
          b:
            params: {cin: 5}
            layers: [{conv2d: [cin, 1]}]
        layers: [b]
    """))
    assert report.layer("b1.conv1").shape == (5, 4, 4)


def test_a_failed_layer_before_a_block_is_reported_once(spec_text):
    """The block cannot know its input's channels; the layer that failed says why, and the
    block adds nothing."""
    with pytest.raises(netspec.SpecError) as caught:
        netspec.check(spec_text("""
            input: [3, 8, 8]
            blocks:
              b:
                layers: [{conv2d: [cin * 2, 1]}]
            layers:
              - conv2d: {out: 4, kernel: 9}
              - b
        """))
    errors = caught.value.errors
    assert len(errors) == 1, errors
    assert errors[0].path == "conv1" and errors[0].where.line == 6


def test_blocks_that_read_no_shape_infer_nothing_while_expanding(spec_text):
    assert not graph_of(spec_text("""
        input: [3, 8, 8]
        blocks:
          b:
            params: {c: 4}
            layers: [{conv2d: [c, 1]}]
        layers: [b, b]
    """)).reads_shapes


def test_each_layer_is_inferred_once_while_blocks_expand(spec_text, monkeypatch):
    """Expansion infers shapes in order, each layer once: a chain of n blocks each reading
    its input's channels costs n inferences per layer, not n squared."""
    calls: list[str] = []
    real = expand.output_of

    def counted(node, op, tensors):
        calls.append(node.name)
        return real(node, op, tensors)

    monkeypatch.setattr(expand, "output_of", counted)
    spec = spec_text("""
        input: [3, 8, 8]
        blocks:
          grow:
            layers: [{conv2d: [cin + 1, 1]}, relu]
        layers:
          - grow:
            repeat: 50
    """)
    assert len(calls) == len(set(calls)) == 1 + 2 * 49  # the input and the 49 blocks before the last
    assert netspec.check(spec).layers[-1].shape == (3 + 50, 8, 8)
