"""Specs that name their input sizes (`input: [3, H, W]`): every layer's shape, params and
MACs as formulas in the names, checked against `netspec.check` at concrete sizes; the
example each name takes; errors at the line."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import netspec
from netspec.cli import main
from netspec.errors import SpecError
from netspec.symbolic import Sym

SPECS = Path(__file__).parent.parent / "specs"


@pytest.fixture
def named(tmp_path):
    """Write the zoo spec with its input declared as `dims` (its blocks beside it); the
    path."""
    shutil.copytree(SPECS / "blocks", tmp_path / "blocks")

    def write(spec_file: str, dims: str) -> Path:
        text = (SPECS / spec_file).read_text()
        line = next(li for li in text.splitlines() if li.startswith("input:"))
        path = tmp_path / f"{Path(spec_file).stem}_{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(text.replace(line, f"input: {dims}", 1))
        return path

    return write


def value(d, at):
    return d.poly.value(at) if isinstance(d, Sym) else d


def assert_formulas_hold(spec, pairs):
    """At each (name -> size) assignment, every layer of `check` at those sizes has the
    shape, params and MACs the formulas give."""
    report = netspec.check(spec)
    formulas = report.formulas
    assert formulas is not None
    places = spec.size_places()
    for at in pairs:
        shapes = {n: list(s) for n, s in spec.input_shapes().items()}
        for name, size in at.items():
            for i, d in places[name]:
                shapes[i][d] = size
        concrete = netspec.check(spec, {n: tuple(s) for n, s in shapes.items()})
        for row in concrete.layers:
            shape, params, macs = formulas.layers[row.name]
            assert tuple(value(d, at) for d in shape) == row.shape, (row.name, at)
            assert value(params, at) == row.params, (row.name, at)
            assert value(macs, at) == row.macs, (row.name, at)
        assert value(formulas.macs, at) == concrete.macs
        assert value(formulas.params, at) == concrete.params


def test_unet_in_h_and_w(named):
    """U-Net takes every size from 188; 188 is the least that reads every row, so it is
    the example; the formulas hold at every pair of sizes that work."""
    spec = netspec.load(named("unet.yaml", "[1, H, W]"), params={"width": 4})
    assert spec.input_shapes() == {"input": (1, 188, 188)}
    rng = random.Random(0)
    pairs = [{"H": h, "W": w} for h, w in [(188, 188), (189, 600), (204, 191), (572, 572)]]
    pairs += [{"H": rng.randint(188, 900), "W": rng.randint(188, 900)} for _ in range(12)]
    assert_formulas_hold(spec, pairs)
    report = netspec.check(spec)
    found = {d.name: d for d in report.sizes}
    assert found["H"].valid.min() == 188 and found["H"].lossless.describe()["period"] == 16
    conv = report.formulas.layers["enc1.conv1"]
    assert [str(d) for d in conv[0]] == ["4", "H-2", "W-2"]


def test_lenet_params_follow_the_size(named):
    """LeNet's first linear layer reads 16 x h x w features, h = ((H - 4)/2 - 4)/2: its
    parameters are a formula in H and W (a polynomial of floors)."""
    spec = netspec.load(named("lenet5.yaml", "[1, H, W]"))
    report = netspec.check(spec)
    h = lambda n: ((n - 4) // 2 - 4) // 2  # noqa: E731
    for size_h, size_w in [(16, 16), (32, 32), (35, 60), (100, 17)]:
        at = {"H": size_h, "W": size_w}
        _, params, _ = report.formulas.layers["fc1"]
        assert value(params, at) == 16 * h(size_h) * h(size_w) * 120 + 120
    assert_formulas_hold(spec, [{"H": 16 + k, "W": 40 - k} for k in range(0, 20, 3)])


def test_one_name_twice_is_one_size(named):
    spec = netspec.load(named("resnet18.yaml", "[3, S, S]"), params={"classes": 3})
    assert spec.size_places() == {"S": [("input", 1), ("input", 2)]}
    report = netspec.check(spec)
    assert [d.name for d in report.sizes][:1] == ["S"]
    assert report.sizes[0].places == (("input", 1), ("input", 2))
    assert_formulas_hold(spec, [{"S": s} for s in (1, 2, 31, 32, 33, 224, 225)])


def test_an_example_and_a_range_choose_the_size(named):
    text = named("unet.yaml", "[1, H: 572, W: 200..]")
    spec = netspec.load(text, params={"width": 2})
    assert spec.input_shapes() == {"input": (1, 572, 204)}  # 204 = 188 + 16: reads all rows
    spec = netspec.load(named("unet.yaml", "[1, H: 190..200, W: 190..200]"), params={"width": 2})
    assert spec.input_shapes() == {"input": (1, 190, 190)}  # none reads every row: the least


def test_no_size_in_range_is_an_error_at_the_name(named):
    path = named("unet.yaml", "[1, H: 1..100, W: 1..100]")
    with pytest.raises(SpecError) as caught:
        netspec.load(path)
    [error] = caught.value.errors
    line = path.read_text().splitlines().index("input: [1, H: 1..100, W: 1..100]") + 1
    assert (error.where.line, error.where.column) == (line, 12)
    assert error.message == "no size H in 1..100, W in 1..100 works"
    assert error.hint.startswith("the sizes that do alike: every H, W from 188")


@pytest.mark.parametrize(("dims", "message"), [
    ("[1, H: 5..2, W]", "the range 5..2 of H holds no size"),
    ("[1, H: 0..2, W]", "`H: 0..2` is not a size or a range of sizes"),
    ("[1, h-1, W]", "a dimension is a positive size, a name (`H`)"),
    ("[1, H: 0, W]", "`H: 0` is not a size"),
])
def test_bad_names_are_positioned(dims, message):
    text = f"input: {dims}\nlayers: [relu]\n"
    with pytest.raises(SpecError) as caught:
        netspec.load(text)
    [error] = caught.value.errors
    assert (error.where.line, error.where.column) == (1, 12)
    assert message in error.message


def test_token_length_by_name(named):
    """GPT-tiny adds learned positions for its 128 tokens: T works at 128 (and at 1, by
    broadcasting), the formulas hold there."""
    spec = netspec.load(named("gpt_tiny.yaml", "{tokens: [T], vocab: 256}"))
    assert spec.input_shapes() == {"input": (1,)}
    found = netspec.check(spec).sizes[0]
    assert found.name == "T" and found.valid.members(4096) == [1, 128]


def test_cli_table_and_json(named):
    runner = CliRunner()
    path = named("unet.yaml", "[1, H, W]")
    table = runner.invoke(main, ["check", str(path), "--set", "width=2"])
    assert table.exit_code == 0, table.output
    assert "2x(H-2)x(W-2)" in table.stdout
    assert "in H, W (the numbers above are at H = 188, W = 188):" in table.stdout
    assert "reads every row: H = 188 + 16k" in table.stdout
    out = runner.invoke(main, ["check", str(path), "--set", "width=2", "--format", "json"])
    report = json.loads(out.stdout)
    assert report["inputs"] == {"input": [1, 188, 188]}
    assert report["formulas"]["layers"]["enc1.conv1"]["shape"] == ["2", "H-2", "W-2"]
    assert report["formulas"]["examples"] == {"H": 188, "W": 188}
    assert [d["name"] for d in report["sizes"]] == ["H", "W"]
