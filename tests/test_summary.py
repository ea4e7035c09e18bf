"""The summary habits: `print(report)` is the table `netspec check` prints; `check --depth N`
and `Report.table(depth=N)` collapse block instances as `draw --depth N` does; `draw` of a
big net without `--depth` names a depth that draws it readably.

Expected row counts come from the specs' YAML, expected sums from the full report's layers
(and, for one case, from torch's parameters of the built submodules)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

import netspec
from netspec.api import diagnose, graph_of
from netspec.backends.drawing import to_digraph
from netspec.cli import main
from netspec.report import Report

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
ENTRY_KEYS = {"name", "from", "repeat"}


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def members(report: Report, row: dict[str, Any]) -> list[Any]:
    """The full report's layers inside a collapsed row, found from the row's name alone:
    `layer3.1–5` holds instances layer3.1 to layer3.5, each holding `layer3.k.*`."""
    found = re.fullmatch(r"(.*?)(\d+)–(\d+)", row["name"])
    if found:
        prefix, first, last = found.group(1), int(found.group(2)), int(found.group(3))
        instances = [f"{prefix}{k}" for k in range(first, last + 1)]
    else:
        instances = [row["name"]]
    return [r for r in report.layers if any(r.name.startswith(i + ".") for i in instances)]


# -- print(report) and repr ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["lenet5", "resnet50"])
def test_print_report_is_the_cli_table(name: str, capsys: pytest.CaptureFixture[str]):
    path = SPECS / f"{name}.yaml"
    print(netspec.check(path))
    printed = capsys.readouterr().out
    result = run("check", str(path))
    assert result.exit_code == 0, result.output
    assert printed == result.stdout
    assert printed.splitlines()[0].startswith(f"{name}: input ")


def test_repr_is_one_short_line_with_the_totals():
    report = netspec.check(SPECS / "lenet5.yaml")
    text = repr(report)
    assert "\n" not in text and len(text) < 120
    # LeNet-5: conv 1->6 5x5 (156), conv 6->16 5x5 (2,416), fc 400->120, 120->84, 84->10
    params = (6 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert text.startswith("<Report lenet5: ") and text.endswith(">")
    assert f"{params:,} params" in text
    assert f"{len(report.layers)} layers" in text


# -- collapsed rows --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["resnet18", "resnet50", "googlenet", "vgg16", "unet"])
@pytest.mark.parametrize("depth", [0, 1])
def test_collapsed_rows_sum_their_layers(name: str, depth: int):
    """Each collapsed row's params and MACs are the sums of its layers in the full report;
    its shape and receptive field are those of its last layer; together the rows hold every
    layer once, so the totals are those of the full report."""
    report = netspec.check(SPECS / f"{name}.yaml")
    rows = report.to_dict(depth)["collapsed"]["rows"]
    seen: list[str] = []
    for row in rows:
        if row["block"] is None:
            layer = report.layer(row["name"])
            assert (row["params"], row["macs"]) == (layer.params, layer.macs)
            seen.append(layer.name)
            continue
        inside = members(report, row)
        assert inside, row["name"]
        assert row["params"] == sum(r.params for r in inside)
        assert row["macs"] == sum(r.macs for r in inside)
        assert row["shape"] == list(inside[-1].shape)
        assert row["rf"] == inside[-1].rf
        seen += [r.name for r in inside]
    assert sorted(seen) == sorted(r.name for r in report.layers)
    assert sum(r["params"] for r in rows) == report.params
    assert sum(r["macs"] for r in rows) == report.macs


def test_collapsed_params_are_torchs():
    """resnet18 at depth 1: a stage's first block, and its rest rolled, hold the parameters
    torch counts in the built submodules."""
    pytest.importorskip("torch")
    report = netspec.check(SPECS / "resnet18.yaml")
    model = netspec.build(SPECS / "resnet18.yaml", seed=0)
    rows = {r.name: r for r in report.rows(depth=1)}
    for name, instances in (("layer1.0–1", ["layer1.0", "layer1.1"]), ("layer3.0", ["layer3.0"]),
                            ("layer3.1", ["layer3.1"])):
        expected = sum(p.numel() for i in instances for p in model.get_submodule(i).parameters())
        assert rows[name].params == expected, name


def test_resnet50_at_depth_1():
    """The stages' first blocks change the width and stride; the rest of each stage rolls:
    layerK.0, then layerK.1–(n-1) ×(n-1) for stages of 3, 4, 6 and 3 blocks."""
    report = netspec.check(SPECS / "resnet50.yaml")
    rows = {r.name: r for r in report.rows(depth=1)}
    assert [n for n, r in rows.items() if r.block] == [
        "layer1.0", "layer1.1–2", "layer2.0", "layer2.1–3", "layer3.0", "layer3.1–5",
        "layer4.0", "layer4.1–2"]
    rolled = rows["layer3.1–5"]
    assert (rolled.label, rolled.count) == ("bottleneck ×5", 5)
    assert rolled.instances == [f"layer3.{k}" for k in range(1, 6)]
    assert rolled.shapes == [(1024, 14, 14)]
    # the bottleneck ends `add` then `relu`: its third relu is the instance's output
    assert rolled.rf == report.layer("layer3.5.relu3").rf
    assert rolled.inputs == ["layer3.0"]
    text = report.table(depth=1)
    assert len(text.splitlines()) <= 50  # one screen
    assert "layer3.1–5" in text and "bottleneck ×5" in text
    assert text.splitlines()[-4:] == report.table().splitlines()[-4:]  # the same totals


def _blocks(path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """The blocks a spec defines or `use:`s, by name."""
    blocks = dict(doc.get("blocks", {}))
    for used in doc.get("use", []):
        blocks.update(yaml.safe_load((path.parent / used).read_text())["blocks"])
    return blocks


def _rows(entries: list[Any], blocks: dict[str, Any], depth: int, level: int,
          layers: set[str]) -> int:
    """Rows of `entries`, called at nesting `level`, seen from `depth`: a layer is a row; a
    block instance at `level` >= `depth` is one row, else its layers' rows one level down.
    A `repeat` is an instance at `level` holding its copies one level down; copies whose
    parameters single out `i == 0`, or whose first copy has layers the second has not (a
    projection, where the first reads other channels), give two rows (the first, the rest
    rolled), else one (its copies counted among `layers`, the network's layer names: a
    `repeat` may be an expression)."""
    count = 0
    for entry in entries:
        op = entry if isinstance(entry, str) else next(k for k in entry if k not in ENTRY_KEYS)
        assert isinstance(entry, str) or "if" not in entry, "not handled: conditional layers"
        if op not in blocks or depth <= level:  # a layer, or an instance seen whole
            count += 1
        elif isinstance(entry, dict) and "repeat" in entry:
            assert depth == level + 1 == 1, "not handled: repeats expanded in full or nested"
            copies = [{n.removeprefix(f"{entry['name']}.{k}.") for n in layers
                       if n.startswith(f"{entry['name']}.{k}.")} for k in (0, 1)]
            first_differs = "i == 0" in json.dumps(entry[op]) or copies[0] != copies[1]
            repeat = len({n.split(".")[1] for n in layers if n.startswith(f"{entry['name']}.")})
            count += 2 if first_differs and repeat > 1 else 1
        else:
            count += _rows(blocks[op]["layers"], blocks, depth, level + 1, layers)
    return count


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "googlenet"])
def test_row_count_follows_the_block_structure(name: str):
    path = SPECS / f"{name}.yaml"
    doc = yaml.safe_load(path.read_text())
    report = netspec.check(path)
    for depth in (0, 1):
        expected = _rows(doc["layers"], _blocks(path, doc), depth, 0,
                         {layer.name for layer in report.layers})
        assert len(report.rows(depth)) == expected, depth
        lines = report.table(depth).splitlines()
        assert len(lines) == len(report.table().splitlines()) - len(report.layers) + expected
    deepest = 2  # resnets: stage > block instance; googlenet: inception > basic_conv
    assert report.table(deepest) == report.table()
    assert [r.name for r in report.rows(deepest)] == [r.name for r in report.layers]


@pytest.mark.parametrize("name", ["resnet50", "googlenet", "vgg16"])
@pytest.mark.parametrize("depth", [0, 1])
def test_the_table_collapses_as_the_drawing_does(name: str, depth: int):
    """Every collapsed row is a collapsed node of `draw --depth N`, rolled alike."""
    spec, report, errors = diagnose(SPECS / f"{name}.yaml")
    assert spec is not None and report is not None and not errors
    source = to_digraph(graph_of(spec), report, errors, depth=depth).source
    drawn = re.findall(r'^\s*"([^"]+) \(block\)" \[label=<<b>([^<]+)</b><br/>([^<]+)<br/>',
                       source, flags=re.M)
    rows = [r for r in report.rows(depth) if r.block]
    assert [(r.instances[0], r.label) for r in rows] == [(first, block) for first, _, block in drawn]
    for row, (_, title, _) in zip(rows, drawn, strict=True):
        assert row.name.endswith(title)  # drawn inside its cluster: the name's local part


def test_check_depth_on_the_command_line():
    path = str(SPECS / "resnet50.yaml")
    result = run("check", path, "--depth", "1")
    assert result.exit_code == 0, result.output
    report = netspec.check(path)
    assert result.stdout == report.table(depth=1) + "\n"
    assert len(result.stdout.splitlines()) <= 50
    assert run("check", path, "--depth", "-1").exit_code == 2


def test_json_keeps_every_layer_and_adds_the_collapsed_rows():
    path = str(SPECS / "resnet50.yaml")
    full = json.loads(run("check", path, "--format", "json").stdout)
    assert "collapsed" not in full
    collapsed = json.loads(run("check", path, "--format", "json", "--depth", "0").stdout)
    assert collapsed["layers"] == full["layers"]
    assert {k: v for k, v in collapsed.items() if k != "collapsed"} == full
    assert collapsed["collapsed"]["depth"] == 0
    rows = collapsed["collapsed"]["rows"]
    # depth 0: the spec's top-level entries (stem, four stages, pool, flatten, fc)
    assert [r["name"] for r in rows] == ["stem1", "layer1", "layer2", "layer3", "layer4",
                                         "avgpool1", "flatten1", "fc"]
    layer3 = rows[3]
    assert (layer3["block"], layer3["inputs"], layer3["shape"]) == ("bottleneck (repeat 6)",
                                                                  ["layer2"], [1024, 14, 14])
    assert layer3["layers"] == [r["name"] for r in full["layers"] if r["name"].startswith("layer3.")]


# -- draw's note -----------------------------------------------------------------------------

def test_draw_of_a_big_net_names_a_readable_depth(tmp_path: Path):
    result = run("draw", str(SPECS / "resnet152.yaml"), "-o", str(tmp_path / "r.dot"))
    assert result.exit_code == 0, result.output
    assert "note: " in result.stderr and "--depth 1" in result.stderr
    # at depth 1: input, the stem's 4 layers, 8 stage rows, pool, flatten, fc
    assert "draws 16 nodes" in result.stderr
    picture = run("draw", str(SPECS / "resnet152.yaml"), "-o", str(tmp_path / "d.dot"),
                  "--depth", "1")
    assert "note: " not in picture.stderr
    assert '"layer3.35.conv1"' in (tmp_path / "r.dot").read_text()  # still every layer


def test_draw_of_a_small_net_has_no_note(tmp_path: Path):
    result = run("draw", str(SPECS / "lenet5.yaml"), "-o", str(tmp_path / "l.dot"))
    assert result.exit_code == 0, result.output
    assert "note" not in result.stderr
