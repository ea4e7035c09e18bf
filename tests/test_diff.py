"""`netspec diff A B` and `netspec.diff`: two specs, or one at two parameter values, compared
layer by layer. Expected numbers come from each side's own `netspec.check` report or from
the layers' arithmetic (a conv of `in` to `out` channels, kernel k, holds
out * (in * k * k + 1) parameters and out * H * W * in * k * k MACs), never from the diff."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import netspec
from netspec.cli import main
from netspec.diff import CHANGES, Diff, DiffError

SPECS = Path(__file__).resolve().parent.parent / "specs"
LENET = SPECS / "lenet5.yaml"
LENET_TEXT = LENET.read_text()
CONV2 = "  - conv2d: {out: 16, kernel: 5}"


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def variant(tmp_path: Path, old: str, new: str, name: str = "b.yaml") -> Path:
    """LeNet-5 with one edit, written to `name`."""
    assert old in LENET_TEXT
    path = tmp_path / name
    path.write_text(LENET_TEXT.replace(old, new))
    return path


def conv_params(cin: int, out: int, k: int) -> int:
    return out * (cin * k * k + 1)


def conv_macs(cin: int, out: int, k: int, h: int, w: int) -> int:
    return out * h * w * cin * k * k


def table_rows(output: str) -> list[str]:
    """The layer rows of `netspec diff`'s table: the lines between its two rules."""
    lines = output.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("─")]
    return lines[rules[0] + 1:rules[1]] if rules else []


def json_of(*args: object) -> dict:
    result = run("diff", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- what pairs with what ----------------------------------------------------------------


def test_a_spec_against_itself_has_no_differences():
    result = run("diff", LENET, LENET)
    assert result.exit_code == 0, result.output
    layers = len(netspec.check(LENET).layers)
    assert "no differences (12 layers)" in result.stdout and layers == 12
    assert table_rows(result.stdout) == []
    out = json_of(LENET)  # B defaults to A
    assert out["summary"] == {"added": 0, "removed": 0, "changed": 0, "same": 12, "renamed": 0}
    assert all(t["delta"] == 0 for k, t in out["totals"].items()
               if k not in ("inputs", "outputs", "auxiliary"))


def test_an_inserted_layer_is_one_added_row_though_the_names_after_it_renumber(tmp_path):
    """A 3x3 conv of 6 channels (padding 1) inserted before conv2 is named conv2 in B, and
    LeNet's conv2 becomes conv3: the same conv, renamed, its wiring seen through."""
    b = variant(tmp_path, CONV2, "  - conv2d: {out: 6, kernel: 3, padding: 1}\n" + CONV2)
    result = run("diff", LENET, b)
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    assert len(rows) == 1 and rows[0].split()[:2] == ["added", "conv2"]
    assert "1 added, 12 same (1 renamed)" in result.stdout
    out = json_of(LENET, b)
    added = [row for row in out["layers"] if row["status"] == "added"]
    assert [(r["a"], r["b"]) for r in added] == [(None, "conv2")]
    assert added[0]["params"] == {"a": None, "b": conv_params(6, 6, 3),
                                  "delta": conv_params(6, 6, 3)}
    assert added[0]["macs"]["b"] == conv_macs(6, 6, 3, 14, 14)
    pairs = {r["a"]: r["b"] for r in out["layers"] if r["a"] and r["b"]}
    assert pairs["conv2"] == "conv3" and pairs["relu2"] == "relu2" and pairs["fc3"] == "fc3"
    assert {r["status"] for r in out["layers"]} == {"added", "same"}
    assert out["totals"]["params"]["delta"] == (netspec.check(b).params
                                               - netspec.check(LENET).params)


def test_an_inserted_layer_of_other_width_changes_only_the_layer_reading_it(tmp_path):
    """An inserted conv of 8 channels: LeNet's conv2 (now conv3) reads 8 channels, not 6."""
    b = variant(tmp_path, CONV2, "  - conv2d: {out: 8, kernel: 3, padding: 1}\n" + CONV2)
    out = json_of(LENET, b)
    by_status = {s: [(r["a"], r["b"]) for r in out["layers"] if r["status"] == s]
                 for s in ("added", "removed", "changed")}
    assert by_status == {"added": [(None, "conv2")], "removed": [], "changed": [("conv2", "conv3")]}
    changed = next(r for r in out["layers"] if r["status"] == "changed")
    assert changed["changes"] == ["params", "macs"]
    assert changed["params"] == {"a": conv_params(6, 16, 5), "b": conv_params(8, 16, 5),
                                 "delta": conv_params(8, 16, 5) - conv_params(6, 16, 5)}


def test_a_removed_layer_is_one_removed_row(tmp_path):
    b = variant(tmp_path, "  - conv2d: {out: 6, kernel: 5}     # 6x28x28\n  - relu\n",
                "  - conv2d: {out: 6, kernel: 5}     # 6x28x28\n")
    result = run("diff", LENET, b)
    assert result.exit_code == 0, result.output
    assert [row.split()[:2] for row in table_rows(result.stdout)] == [["removed", "relu1"]]
    assert "1 removed, 11 same (3 renamed)" in result.stdout  # relu2-4 are relu1-3 in B


def test_removing_a_linear_layer_changes_the_one_after_it(tmp_path):
    """Without `linear: 84` and its relu, fc3 (fc2 in B) reads fc1's 120 features."""
    b = variant(tmp_path, "  - linear: 84\n  - relu\n", "")
    out = json_of(LENET, b)
    assert [(r["status"], r["a"], r["b"]) for r in out["layers"] if r["status"] != "same"] == [
        ("removed", "fc2", None), ("removed", "relu4", None), ("changed", "fc3", "fc2")]
    fc3 = out["layers"][-1]
    assert fc3["params"] == {"a": 10 * (84 + 1), "b": 10 * (120 + 1), "delta": 10 * 36}
    assert fc3["changes"] == ["params", "macs"]
    assert out["totals"]["outputs"] == {"a": {"fc3": [10]}, "b": {"fc2": [10]}}


def test_a_changed_kernel_shows_its_shape_params_and_macs_and_what_follows(tmp_path):
    """conv2 5x5 -> 3x3 on 6x14x14: 16x12x12 out, so flatten gives 576 features to fc1."""
    b = variant(tmp_path, CONV2, "  - conv2d: {out: 16, kernel: 3}")
    out = json_of(LENET, b)
    rows = {r["a"]: r for r in out["layers"]}
    conv2 = rows["conv2"]
    assert conv2["status"] == "changed" and conv2["b"] == "conv2"
    assert conv2["changes"] == ["args", "shape", "params", "macs"]
    assert conv2["args"] == {"kernel": {"a": 5, "b": 3}}
    assert conv2["shape"] == {"a": [16, 10, 10], "b": [16, 12, 12]}
    assert conv2["params"]["delta"] == conv_params(6, 16, 3) - conv_params(6, 16, 5)
    assert conv2["macs"] == {"a": conv_macs(6, 16, 5, 10, 10), "b": conv_macs(6, 16, 3, 12, 12),
                             "delta": conv_macs(6, 16, 3, 12, 12) - conv_macs(6, 16, 5, 10, 10)}
    assert rows["fc1"]["params"]["b"] == 120 * (16 * 6 * 6 + 1)
    assert rows["fc1"]["changes"] == ["params", "macs"]  # the same linear 120, more inputs
    assert rows["relu2"]["changes"] == ["shape"]
    assert [r["a"] for r in out["layers"] if r["status"] == "changed"] == [
        "conv2", "relu2", "maxpool2", "flatten1", "fc1"]
    a_report, b_report = netspec.check(LENET), netspec.check(b)
    for key in ("params", "macs", "flops"):
        total = out["totals"][key]
        assert (total["a"], total["b"]) == (getattr(a_report, key), getattr(b_report, key))
        assert total["percent"] == pytest.approx(100 * total["delta"] / total["a"])
    table = run("diff", LENET, b).stdout
    conv_row = next(row for row in table_rows(table) if row.split()[1] == "conv2")
    assert "16x10x10 → 16x12x12" in conv_row and "kernel 5 → 3" in conv_row
    assert f"{conv_params(6, 16, 5):,} → {conv_params(6, 16, 3):,}" in conv_row


def test_rewiring_a_merge_is_a_change_of_its_inputs(tmp_path):
    spec = """\
name: g
input: [4, 8, 8]
layers:
  - conv2d: {out: 4, kernel: 3, padding: 1}
  - relu
  - conv2d: {out: 4, kernel: 3, padding: 1}
  - add: [relu1, conv2]
"""
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(spec)
    b.write_text(spec.replace("add: [relu1, conv2]", "add: [conv1, conv2]"))
    out = json_of(a, b)
    assert [(r["a"], r["changes"]) for r in out["layers"] if r["status"] != "same"] == [
        ("add1", ["inputs"])]
    assert out["layers"][-1]["inputs"] == {"a": ["relu1", "conv2"], "b": ["conv1", "conv2"]}
    assert "from relu1, conv2 → conv1, conv2" in run("diff", a, b).stdout


def test_a_named_layer_whose_op_changed_is_one_changed_layer(tmp_path):
    spec = """\
name: act
input: [8]
layers:
  - linear: 8
  - {relu: {}, name: act}
  - linear: 2
"""
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(spec)
    b.write_text(spec.replace("relu", "gelu"))
    out = json_of(a, b)
    assert [(r["status"], r["a"], r["b"], r["changes"], r["op"]) for r in out["layers"]] == [
        ("same", "fc1", "fc1", [], {"a": "linear", "b": "linear"}),
        ("changed", "act", "act", ["op"], {"a": "relu", "b": "gelu"}),
        ("same", "fc2", "fc2", [], {"a": "linear", "b": "linear"})]
    assert "relu → gelu" in run("diff", a, b).stdout


def test_past_full_the_alignment_keeps_near_the_diagonal_and_finds_a_local_edit(tmp_path,
                                                                               monkeypatch):
    b = variant(tmp_path, CONV2, "  - conv2d: {out: 6, kernel: 3, padding: 1}\n" + CONV2)
    full = netspec.diff(LENET, b).to_dict()
    module = importlib.import_module("netspec.diff")  # `netspec.diff` is the function
    monkeypatch.setattr(module, "FULL", 0)
    monkeypatch.setattr(module, "BAND", 1)  # one layer either side of the shifted diagonal
    assert netspec.diff(LENET, b).to_dict() == full


# -- one spec at two values ----------------------------------------------------------------


def test_set_b_compares_one_spec_at_two_values():
    """LeNet for 100 classes: only fc3 changes, 84 features to 100 classes."""
    result = run("diff", LENET, "--set-b", "classes=100")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == [f"A: {LENET}", f"B: {LENET} --set classes=100"]
    [row] = table_rows(result.stdout)
    assert row.split()[:3] == ["changed", "fc3", "linear"] and "out 10 → 100" in row
    assert "outputs    fc3 10 → fc3 100" in lines
    out = json_of(LENET, "--set", "classes=5", "--set-b", "classes=100")
    assert (out["a"]["params"], out["b"]["params"]) == ({"classes": 5}, {"classes": 100})
    assert out["totals"]["params"]["delta"] == 84 * 95 + 95


def test_a_width_change_at_depth_0_is_one_row_per_stage():
    """ResNet-50 with 32 channels per group: each stage a row, stem and head the same."""
    resnet = SPECS / "resnet50.yaml"
    result = run("diff", resnet, "--set-b", "width_per_group=32", "--depth", "0")
    assert result.exit_code == 0, result.output
    rows = [row.split()[:2] for row in table_rows(result.stdout)]
    assert rows == [["changed", f"layer{k}"] for k in range(1, 5)]
    out = json_of(resnet, "--set-b", "width_per_group=32", "--depth", "0")
    assert out["depth"] == 0
    a_rows = netspec.check(resnet).rows(0)
    b_rows = netspec.check(resnet, params={"width_per_group": 32}).rows(0)
    assert [(r["a"], r["params"]["a"], r["params"]["b"], r["macs"]["b"]) for r in out["layers"]] \
        == [(x.name, x.params, y.params, y.macs) for x, y in zip(a_rows, b_rows, strict=True)]
    assert [r["block"] for r in out["layers"]] == [x.block is not None for x in a_rows]


def test_more_blocks_at_depth_1_change_a_rolled_row(tmp_path):
    """ResNet-18 with 3 blocks in stage 3: its rolled row layer3.1 becomes layer3.1–2."""
    out = json_of(SPECS / "resnet18.yaml", "--set-b", "layers=[2, 2, 3, 2]", "--depth", "1")
    changed = [r for r in out["layers"] if r["status"] != "same"]
    assert [(r["a"], r["b"], r["args"]) for r in changed] == [
        ("layer3.1", "layer3.1–2", {"count": {"a": 1, "b": 2}})]
    assert changed[0]["params"]["delta"] == changed[0]["params"]["a"]  # one more such block


WIDE = """\
name: wide
input: [3, 8, 8]
params: {width: 1.0, classes: 10, c: "make_divisible(16 * width, 8)"}
scales:
  small: {width: 0.5}
  big: {width: 2, classes: 20}
layers:
  - conv2d: [c, 3]
  - flatten
  - linear: classes
"""


def test_scale_and_scale_b_compare_two_scales(tmp_path):
    path = tmp_path / "wide.yaml"
    path.write_text(WIDE)
    result = run("diff", path, "--scale", "small", "--scale-b", "big")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:2] == [f"A: {path} --scale small",
                                              f"B: {path} --scale big"]
    out = json_of(path, "--scale", "small", "--scale-b", "big")
    assert (out["a"]["scale"], out["b"]["scale"]) == ("small", "big")
    conv, _, linear = out["layers"]
    assert conv["args"] == {"out": {"a": 8, "b": 32}}
    assert conv["params"] == {"a": conv_params(3, 8, 3), "b": conv_params(3, 32, 3),
                              "delta": conv_params(3, 32, 3) - conv_params(3, 8, 3)}
    assert linear["params"]["b"] == 20 * (32 * 36 + 1)
    small, big = netspec.check(path, scale="small"), netspec.check(path, scale="big")
    assert out["totals"]["macs"] == {"a": small.macs, "b": big.macs, "delta": big.macs - small.macs,
                                     "percent": pytest.approx(100 * (big.macs / small.macs - 1))}
    # --scale applies to both sides unless --scale-b says otherwise
    same = json_of(path, "--scale", "big", "--set-b", "classes=3")
    assert (same["b"]["scale"], same["b"]["params"]) == ("big", {"classes": 3})


def test_input_b_compares_two_input_sizes():
    out = json_of(LENET, "--input-b", "1,36,36")
    assert out["b"]["inputs"] == {"input": [1, 36, 36]} and out["a"]["inputs"] is None
    assert out["layers"][0]["macs"] == {"a": conv_macs(1, 6, 5, 28, 28),
                                        "b": conv_macs(1, 6, 5, 32, 32),
                                        "delta": conv_macs(1, 6, 5, 32, 32)
                                        - conv_macs(1, 6, 5, 28, 28)}
    assert "B: " + str(LENET) + " --input 1,36,36" in run("diff", LENET, "--input-b",
                                                             "1,36,36").stdout


# -- output ----------------------------------------------------------------------------------


def test_the_json_has_its_documented_fields(tmp_path):
    b = variant(tmp_path, CONV2, "  - conv2d: {out: 6, kernel: 3, padding: 1}\n"
                                 "  - conv2d: {out: 16, kernel: 3}")
    out = json_of(LENET, b)
    assert set(out) == {"a", "b", "depth", "summary", "layers", "totals"}
    assert set(out["a"]) == {"file", "name", "scale", "params", "inputs"}
    assert out["b"]["file"] == str(b) and out["a"]["name"] == "lenet5"
    assert set(out["totals"]) == {"params", "trainable_params", "buffers", "macs", "flops",
                                  "inputs", "outputs", "auxiliary"}
    assert all(set(out["totals"][k]) == {"a", "b", "delta", "percent"}
               for k in ("params", "trainable_params", "buffers", "macs", "flops"))
    assert out["totals"]["buffers"]["percent"] is None  # LeNet has none: no percentage of 0
    counts = {s: sum(r["status"] == s for r in out["layers"])
              for s in ("added", "removed", "changed", "same")}
    assert out["summary"] == {**counts, "renamed": sum(r["renamed"] for r in out["layers"])}
    for row in out["layers"]:
        assert set(row) == {"status", "a", "b", "renamed", "block", "op", "label", "inputs",
                            "shape", "params", "macs", "changes", "args"}
        for key in ("params", "macs"):
            assert row[key]["delta"] == (row[key]["b"] or 0) - (row[key]["a"] or 0)
        assert set(row["changes"]) <= set(CHANGES)
        assert (row["a"] is None) == (row["status"] == "added")
        assert (row["b"] is None) == (row["status"] == "removed")
        assert (row["status"] == "changed") == bool(row["changes"])
    a_layers = [r["a"] for r in out["layers"] if r["a"]]
    b_layers = [r["b"] for r in out["layers"] if r["b"]]
    assert a_layers == [r.name for r in netspec.check(LENET).layers]
    assert b_layers == [r.name for r in netspec.check(b).layers]


def test_all_lists_every_layer_and_the_totals_close_the_table():
    result = run("diff", LENET, "--set-b", "classes=3", "--all")
    rows = table_rows(result.stdout)
    assert [row.split()[1] for row in rows] == [r.name for r in netspec.check(LENET).layers]
    assert [row.split()[0] for row in rows] == ["same"] * 11 + ["changed"]
    tail = result.stdout.splitlines()[-8:]
    assert [line.split()[0] for line in tail] == ["A", "params", "trainable", "buffers", "MACs",
                                                  "FLOPs", "inputs", "outputs"]


# -- errors ----------------------------------------------------------------------------------


def test_an_error_on_one_side_is_positioned_and_says_its_side(tmp_path):
    result = run("diff", LENET, "--set-b", "classes=0")
    assert result.exit_code == 1
    line, column = next((i + 1, m.start() + 1) for i, text in enumerate(LENET_TEXT.splitlines())
                        if (m := re.search(r"classes$", text)))
    assert result.stderr.splitlines() == [
        f"{LENET}:{line}:{column}: error: fc3: `out` must be at least 1, found 0 (in B)", "1 error"]
    assert result.stdout == ""
    bad = json.loads(run("diff", LENET, "--set-b", "classes=0", "--format", "json").stdout)
    assert [(e["side"], e["line"], e["message"]) for e in bad["errors"]] == [
        ("b", line, "`out` must be at least 1, found 0 (in B)")]
    missing = run("diff", tmp_path / "none.yaml", LENET)
    assert missing.exit_code == 1
    assert missing.stderr.startswith(f"{tmp_path / 'none.yaml'}:1:1: error: ")
    assert "(in A)" in missing.stderr.splitlines()[0]


def test_an_error_both_sides_share_is_listed_once():
    result = run("diff", LENET, "--set", "classes=0", "--set-b", "clases=3")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 3 and lines[-1] == "2 errors"
    assert sum("`out` must be at least 1, found 0 (in A and B)" in x for x in lines) == 1
    assert sum("no parameter `clases` to set (in B)" in x for x in lines) == 1


@pytest.mark.parametrize("args", [
    [], ["--set-b", "classes"], ["--scale", "all"], ["--scale-b", "all"], ["--depth", "-1"],
    ["--format", "xml"], ["--input-b", "1,x"], ["--input", "a=1,32,32", "--input", "1,32,32"],
    [LENET, LENET],
])
def test_usage_errors_exit_2(args):
    result = run("diff", LENET, *args) if args else run("diff")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_usage_errors_name_the_option_of_b():
    assert "Invalid value for --set-b: 'x': write NAME=VALUE" in run(
        "diff", LENET, "--set-b", "x").stderr
    assert "Invalid value for --scale-b" in run("diff", LENET, "--scale-b", "all").stderr


# -- the library -----------------------------------------------------------------------------


def test_the_api_returns_a_diff_printed_as_the_command_prints_it(tmp_path):
    b = variant(tmp_path, CONV2, "  - conv2d: {out: 16, kernel: 3}")
    result = netspec.diff(LENET, b)
    assert isinstance(result, Diff)
    assert str(result) == run("diff", LENET, b).stdout.rstrip("\n")
    assert result.to_dict() == json_of(LENET, b)
    assert result.to_dict(depth=0)["depth"] == 0
    assert [r.status for r in result.rows()].count("changed") == 5
    assert result.table(all_layers=True).count("\nsame ") == 7
    assert "<Diff " in repr(result) and "5 changed" in repr(result)


def test_the_api_takes_loaded_specs_params_and_inputs():
    spec = netspec.load(LENET)
    result = netspec.diff(spec, params={"classes": 5}, params_b={"classes": 7},
                          inputs_b=(1, 36, 36))
    assert (result.a.params, result.b.params) == ({"classes": 5}, {"classes": 7})
    assert result.b.report.outputs == {"fc3": (7,)} and result.b.report.inputs["input"] == (1, 36, 36)
    assert result.a.report.inputs["input"] == (1, 32, 32)  # A's report untouched by B's check
    assert [t.key for t in result.totals] == ["params", "trainable_params", "buffers", "macs",
                                             "flops"]
    fc3 = result.rows()[-1]
    assert (fc3.a.params, fc3.b.params) == (5 * 85, 7 * 85)  # type: ignore[union-attr]


def test_the_api_raises_one_error_of_both_sides():
    with pytest.raises(DiffError) as caught:
        netspec.diff(LENET, params_b={"classes": 0})
    assert isinstance(caught.value, netspec.SpecError)
    assert caught.value.sides == ["b"]
    assert caught.value.errors[0].message.endswith("(in B)")
