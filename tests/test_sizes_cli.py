"""`netspec check --sizes` at an input size that drops rows or fails: which sizes nearby do
not (issue 17, item 2). The nearest sizes are found here by checking sizes one by one."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

import netspec
from netspec.cli import main
from netspec.errors import SpecError

UNET = Path(__file__).resolve().parent.parent / "specs" / "unet.yaml"
WIDTH = 572  # a width U-Net reads whole, so only the height is in question


def _outcome(height: int) -> str:
    """`fails`, `drops` (rows lost to floor rounding) or `whole`, checked concretely."""
    try:
        report = netspec.check(UNET, (1, height, WIDTH))
    except SpecError:
        return "fails"
    return "drops" if any(w.code == "floor-drops-input" for w in report.warnings) else "whole"


def _nearest(height: int, good: set[str], span: range) -> tuple[int | None, int | None]:
    below = [h for h in span if h < height and _outcome(h) in good]
    above = [h for h in span if h > height and _outcome(h) in good]
    return (max(below) if below else None, min(above) if above else None)


def _check(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", str(UNET), "--sizes", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_height_that_drops_rows_names_the_nearest_that_do_not():
    assert _outcome(570) == "drops"
    below, above = _nearest(570, {"whole"}, range(540, 601))
    code, out, _ = _check("--input", f"1x570x{WIDTH}")
    assert code == 0
    rows = netspec.check(UNET, (1, 570, WIDTH)).layer("enc3.maxpool1").input_shapes[0][1]
    assert rows % 2 == 1  # a 2x2 pool of an odd height: its last row unread
    verdict = next(line for line in out.splitlines() if "H = 570: " in line)
    assert "H = 570: drops 1 row at `enc3.maxpool1`" in verdict
    assert verdict.endswith(f"nearest that read every row: {below}, {above}")


def test_a_height_that_fails_still_says_which_work():
    """The shape error, and below it the sizes: the smallest height that works."""
    assert _outcome(100) == "fails"
    _, smallest = _nearest(100, {"drops", "whole"}, range(1, 301))
    code, out, err = _check("--input", f"1x100x{WIDTH}")
    assert code == 1 and out == ""
    assert "error: bottom.convs.conv1: needs at least 3x3 input" in err
    assert f"H = 100: fails at `bottom.convs.conv1`; nearest that work: {smallest}" in err
    code, out, _ = _check("--input", f"1x100x{WIDTH}", "--format", "json")
    found = json.loads(out)
    assert code == 1 and found["errors"][0]["code"] == "shape"
    height = next(d for d in found["sizes"] if d["name"] == "H")
    assert height["given_works"] is False and height["nearest_working"] == [None, smallest]


def test_a_dimension_no_size_of_which_helps_says_so():
    """With the height failing, no width works: said as such, not as `none`."""
    _, _, err = _check("--input", f"1x100x{WIDTH}")
    assert f"W = {WIDTH}: fails at `bottom.convs.conv1`; no W works while the other sizes " \
        "stay" in err


def test_without_sizes_a_failing_input_gives_the_error_alone():
    result = CliRunner().invoke(main, ["check", str(UNET), "--input", f"1x100x{WIDTH}"])
    assert result.exit_code == 1 and "input sizes" not in result.stderr
