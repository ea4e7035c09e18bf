"""U-Net (specs/unet.yaml): the issue's totals at 1x572x572 (by analysis only: 150 GMACs is
too slow to run here), every layer against a hand-written torch U-Net at smaller sizes, the
compiled module's outputs equal to the reference's with the same weights, and the sizes the
network accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import zoo_harness
from reference_unet import WIDTHS, UNet

import netspec

SPEC = Path(__file__).resolve().parent.parent / "specs" / "unet.yaml"
# The issue's figures; its MACs are ours (no bias adds), not `macs_with_bias`.
PARAMS, MACS = 31_030_658, 150_428_424_448


def formula(size: int) -> tuple[int, int, int, int]:
    """(params, MACs, bias adds, output side) of U-Net on a size x size input, from the
    architecture's arithmetic: a conv costs k*k*cin*cout per output pixel, an up-conv
    4*cin*cout per input pixel, and each output element of either one bias add; every 3x3
    conv trims 2, every pool halves, every up-conv doubles."""
    params = macs = adds = 0

    def layer(cin: int, cout: int, k: int, pixels: int, scale: int = 1) -> None:
        nonlocal params, macs, adds
        params, macs = params + k * k * cin * cout + cout, macs + pixels * k * k * cin * cout
        adds += pixels * scale * cout

    side, cin = size, 1
    for level, width in enumerate(WIDTHS):
        side //= 2 if level else 1
        layer(cin, width, 3, (side - 2) ** 2)
        layer(width, width, 3, (side - 4) ** 2)
        side, cin = side - 4, width
    for width in reversed(WIDTHS[:-1]):
        layer(cin, width, 2, side**2, scale=4)  # transposed: counted per input pixel
        side *= 2
        layer(2 * width, width, 3, (side - 2) ** 2)
        layer(width, width, 3, (side - 4) ** 2)
        side, cin = side - 4, width
    layer(cin, 2, 1, side**2)
    return params, macs, adds, side


@pytest.fixture(scope="module")
def spec() -> netspec.Spec:
    return netspec.load(SPEC)


def test_totals_at_572_are_the_issues(spec):
    report = netspec.check(spec)
    params, macs, adds, side = formula(572)
    assert (params, macs, side) == (PARAMS, MACS, 388)
    assert (report.params, report.trainable_params, report.buffers) == (PARAMS, PARAMS, 0)
    assert (report.macs, report.flops, report.macs_with_bias) == (MACS, 2 * MACS, MACS + adds)
    assert report.outputs == {"classifier": (2, 388, 388)} and not report.warnings


@pytest.mark.parametrize("side", [188, 252, 828])
def test_totals_follow_the_formula_at_other_sizes(spec, side):
    report = netspec.check(spec, inputs=(1, side, side))
    params, macs, adds, out = formula(side)
    assert (report.params, report.macs, report.macs_with_bias) == (params, macs, macs + adds)
    assert report.outputs["classifier"] == (2, out, out)


@pytest.mark.parametrize("size", [(1, 188, 188), (1, 188, 252)], ids=["188x188", "188x252"])
@pytest.mark.slow
def test_every_layer_matches_the_reference(size):
    zoo_harness.compare(SPEC, UNet, size)


@pytest.mark.parametrize("size", [(1, 188, 252), (1, 190, 222)], ids=["188x252", "odd-crops"])
@pytest.mark.slow
def test_compiled_net_computes_the_reference(spec, size):
    """At 190x222 pools drop rows and crops start at odd offsets (floor((89 - 8) / 2) = 40)."""
    torch.manual_seed(0)
    reference = UNet().eval()
    model = netspec.build(spec, inputs=size).eval()
    netspec.load_weights(model, reference.state_dict(), strict=True)
    x = torch.randn(1, *size)
    with torch.no_grad():
        out = model(x)
        assert torch.equal(out, reference(x))
    assert out.shape[1:] == netspec.check(spec, inputs=size).outputs["classifier"]


def test_every_size_from_188_is_accepted_and_572_mod_16_tiles_exactly(spec):
    """Pools of odd maps drop a row (a warning); below 188 some map shrinks under 3x3."""
    for side in range(150, 620):
        if side < 188:
            with pytest.raises(netspec.SpecError):
                netspec.check(spec, inputs=(1, side, side))
            continue
        report = netspec.check(spec, inputs=(1, side, side))
        assert (not report.warnings) == (side % 16 == 572 % 16), side
        if not report.warnings:
            assert report.outputs["classifier"] == (2, side - 184, side - 184)


def test_570_warns_at_each_pool_of_an_odd_map(spec):
    warnings = netspec.check(spec, inputs=(1, 570, 570)).warnings
    assert [(w.path, w.code) for w in warnings] == [
        (f"{level}.maxpool1", "floor-drops-input") for level in ("enc3", "enc4", "bottom")]
    assert "last 1 row and the last 1 column of its 279x279 input" in warnings[0].message


@pytest.mark.parametrize(("side", "layer", "message"), [
    (187, "dec3.convs.conv2", "needs at least 3x3 input but dec3.convs.relu1 gives 2x2"),
    (100, "bottom.convs.conv1", "needs at least 3x3 input but bottom.maxpool1 gives 2x2"),
])
def test_too_small_an_input_is_a_positioned_error(spec, side, layer, message):
    with pytest.raises(netspec.SpecError) as caught:
        netspec.check(spec, inputs=(1, side, side))
    [error] = caught.value.errors
    assert error.path == layer and error.message.startswith(message)
    outer = layer.split(".")[0]  # the top-level block call the error happened under
    call = next(i for i, text in enumerate(SPEC.read_text().splitlines(), start=1)
                if f"name: {outer}}}" in text)
    assert error.message.endswith(f"(in `{outer}`, called at line {call})")
    line = SPEC.read_text().splitlines()[error.where.line - 1]
    assert error.where.file.endswith("unet.yaml") and "conv2d: [width, 3]" in line
