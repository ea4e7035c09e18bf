"""Warnings `check` gives about valid specs: input rows a floor never reads, windows sliding
over a map collapsed to 1, a linear layer holding over half of all parameters, a linear
over a spatial dimension. Expected
amounts follow from the output-size formula: rows lost = (n + 2p - k) mod s - p."""

from __future__ import annotations

import pytest

import netspec


def warnings(spec_text, text: str, code: str) -> list[netspec.Diagnostic]:
    report = netspec.check(spec_text(text))
    return [w for w in report.warnings if w.code == code]


@pytest.mark.parametrize(("layer", "size", "lost"), [
    ("{conv2d: {out: 2, kernel: 3, stride: 2}}", "8, 8", "the last 1 row and the last 1 column"),  # 5 % 2
    ("{conv2d: {out: 2, kernel: 3, stride: 2}}", "8, 9", "the last 1 row of"),        # W: 6 % 2 = 0
    ("{conv2d: {out: 2, kernel: 5, stride: 4}}", "12, 12", "the last 3 rows"),       # 7 % 4 = 3
    ("{maxpool2d: 2}", "7, 7", "the last 1 row and the last 1 column"),              # 5 % 2
    ("{conv2d: {out: 2, kernel: 3, stride: 3, padding: 1}}", "9, 9", "the last 1 row"),  # 9 % 3 - 1
])
def test_a_floor_that_drops_input_is_named(spec_text, layer, size, lost):
    [warning] = warnings(spec_text, f"input: [1, {size}]\nlayers: [{layer}]", "floor-drops-input")
    assert lost in warning.message and warning.severity == "warning"
    assert f"of its {size.replace(', ', 'x')} input from input" in warning.message


@pytest.mark.parametrize("layer", [
    "{conv2d: {out: 2, kernel: 3, stride: 2, padding: 1}}",  # (8 + 2 - 3) % 2 = 1, all padding
    "{maxpool2d: {kernel: 2, ceil_mode: true}}",            # rounds up: nothing dropped
    "{conv2d: {out: 2, kernel: 1, stride: 2}}",             # skips rows by design, not at the end
    "{conv2d: {out: 2, kernel: 3, stride: 1}}",
])
def test_no_floor_warning_when_nothing_real_is_lost(spec_text, layer):
    assert warnings(spec_text, f"input: [1, 8, 8]\nlayers: [{layer}]", "floor-drops-input") == []


def test_a_window_over_a_collapsed_map_is_flagged(spec_text):
    text = """
        input: [4, 8, 8]
        layers:
          - adaptive_avgpool2d: 1
          - conv2d: {out: 4, kernel: 3, padding: 1}
          - conv2d: {out: 4, kernel: 1}
    """
    [warning] = warnings(spec_text, text, "spatial-collapsed")
    assert warning.path == "conv1" and "collapsed to 1x1" in warning.message
    assert "3x3 window sees mostly padding" in warning.message


def test_a_linear_layer_holding_most_parameters_is_flagged(spec_text):
    text = """
        input: [8, 16, 16]
        layers: [flatten, {linear: 64}, relu, {linear: 10}]
    """
    report = netspec.check(spec_text(text))
    big = 8 * 16 * 16 * 64 + 64
    total = big + 64 * 10 + 10
    [warning] = [w for w in report.warnings if w.code == "big-linear"]
    assert warning.path == "fc1"
    assert f"holds {big / total:.0%} of all parameters ({big:,} of {total:,})" in warning.message
    mlp = netspec.check(spec_text("""
        input: [64]
        layers: [{linear: 8}, {linear: 64}, {linear: 64}]
    """))  # 520, 576, 4,160 of 5,256: the largest holds 79%, so one warning
    assert [w.path for w in mlp.warnings if w.code == "big-linear"] == ["fc3"]
    even = netspec.check(spec_text("""
        input: [32]
        layers: [{linear: 32}, {linear: 32}, {linear: 32}]
    """))  # 1,056 each: a third apiece
    assert [w for w in even.warnings if w.code == "big-linear"] == []


def test_a_linear_over_a_spatial_last_dimension_is_flagged_not_one_over_channels(spec_text):
    """On [C, H, W] a linear mixes the W values of each row: likely a missing flatten. With
    the channels moved last (ConvNeXt's pointwise MLP) it is what the net means."""
    text = """
        input: [8, 6, 5]
        layers:
          - linear: 4
          - permute: [0, 2, 3, 1]
            from: input
          - linear: 32
    """
    [warning] = warnings(spec_text, text, "linear-on-last-dim")
    assert warning.path == "fc1"
    assert "linear acts on the last dimension only (5) of [8,6,5] from input" in warning.message


def test_warnings_are_positioned_in_the_json_report(spec_text):
    report = netspec.check(spec_text("input: [1, 7, 7]\nlayers:\n  - maxpool2d: 2\n"))
    [entry] = report.to_dict()["warnings"]
    assert (entry["line"], entry["path"], entry["code"]) == (3, "maxpool1", "floor-drops-input")


@pytest.mark.parametrize(("shape", "groups", "single"), [
    ("4", 4, True),          # [C]: one channel per group, no spatial extent
    ("4, 1, 1", 2, False),   # two channels per group
    ("2, 1, 1", 2, True),
    ("2, 3, 1", 2, False),   # three positions per group
])
def test_a_groupnorm_over_single_values_is_flagged(spec_text, shape, groups, single):
    """Flagged exactly when torch's GroupNorm returns its bias whatever the input."""
    import torch

    found = warnings(spec_text, f"input: [{shape}]\nlayers: [{{groupnorm: {groups}}}]",
                     "single-element-norm")
    dims = [int(d) for d in shape.split(",")]
    norm = torch.nn.GroupNorm(groups, dims[0])
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(3, *dims)
    bias = norm.bias.view(1, -1, *[1] * (len(dims) - 1)).expand_as(x)
    assert torch.allclose(norm(x), bias, atol=1e-3) == single
    assert len(found) == int(single)


def test_trained_parameters_no_gradient_reaches_are_named_with_their_count(spec_text):
    """A layer read by `sinusoidal_positions` (which reads only its input's shape) before
    the net's trained head: its weights never train, the head's do."""
    text = ("input: [8]\nlayers:\n  - {linear: 8, name: early}\n  - reshape: [2, 4]\n"
            "  - sinusoidal_positions: {dim: 4}\n  - flatten\n  - {linear: 3, name: head}\n")
    [warning] = warnings(spec_text, text, "no-gradient")
    assert (warning.path, warning.where.line) == ("early", 3)
    assert warning.message.startswith(f"its {8 * 8 + 8:,} trained parameters get no gradient")
    frozen = text.replace("name: early}", "name: early, frozen: true}")
    assert warnings(spec_text, frozen, "no-gradient") == []


def test_an_in_place_layer_overwriting_what_a_backward_needs_is_named(spec_text):
    """A sigmoid keeps its output for its backward pass; a relu in place after it overwrites
    it: valid for inference, a warning naming both (training refuses it)."""
    text = "input: [8]\nlayers:\n  - linear: 8\n  - sigmoid\n  - relu: {inplace: true}\n"
    [warning] = warnings(spec_text, text, "inplace-conflict")
    assert (warning.path, warning.where.line) == ("relu1", 5)
    assert warning.message == ("`inplace: true` overwrites `sigmoid1`, which `sigmoid1` keeps "
                               "for its backward pass: training would stop")
    assert warnings(spec_text, text.replace("sigmoid", "batchnorm1d"), "inplace-conflict") == []


def test_an_in_place_layer_changing_what_a_later_layer_reads_is_the_error_said(spec_text):
    """Both wrong (the sigmoid keeps its output; `b` reads it after the relu overwrote it):
    the error, which holds in inference too, is the one said."""
    text = ("input: [8]\nlayers:\n  - {sigmoid, name: s}\n  - {relu: {inplace: true}, name: r}\n"
            "  - {linear: 8, from: s, name: b}\n  - {add: [r, b]}\n")
    with pytest.raises(netspec.SpecError) as raised:
        netspec.check(spec_text(text))
    [error] = [e for e in raised.value.errors if e.code == "inplace-conflict"]
    assert error.message == ("`inplace: true` overwrites `s`, which `b` reads after it (the "
                             "new values, not the old)")
