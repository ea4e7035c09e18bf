"""The `netspec check` command on valid specs: the table, the JSON report of DESIGN.md, input
overrides, usage errors and unreadable files. Expected numbers follow from LeNet-5's arithmetic."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from netspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.yaml"
CONV1_LINE = next(n for n, line in enumerate(LENET.read_text().splitlines(), 1) if "conv2d" in line)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))




def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_shape(value: object) -> bool:
    return isinstance(value, list) and all(is_int(d) and d >= 1 for d in value)


def test_check_prints_the_table_and_exits_0():
    result = run("check", str(LENET))
    assert result.exit_code == 0, result.output
    assert "61,706" in result.stdout  # parameters
    assert "416,520" in result.stdout  # MACs
    for name in ("conv1", "maxpool2", "flatten1", "fc3"):
        assert name in result.stdout
    assert ": error: " not in result.output


def test_check_json_has_every_key_of_the_design_with_its_type():
    result = run("check", "--format", "json", str(LENET))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert isinstance(report["name"], str) and report["name"] == "lenet5"
    for key in ("inputs", "outputs"):
        assert isinstance(report[key], dict) and report[key]
        assert all(isinstance(k, str) and is_shape(v) for k, v in report[key].items())
    assert report["inputs"] == {"input": [1, 32, 32]}
    assert report["outputs"] == {"fc3": [10]}
    for key in ("params", "trainable_params", "buffers", "macs", "flops"):
        assert is_int(report[key]), key
    assert (report["params"], report["trainable_params"], report["buffers"]) == (61_706, 61_706, 0)
    assert report["macs"] == 416_520
    assert report["flops"] == 2 * report["macs"]
    assert isinstance(report["warnings"], list)
    layers = report["layers"]
    assert isinstance(layers, list) and len(layers) == 12
    names = {"input"}
    for layer in layers:
        assert isinstance(layer["name"], str) and isinstance(layer["op"], str)
        assert layer["torch"] is None or isinstance(layer["torch"], str)
        assert isinstance(layer["inputs"], list) and all(i in names for i in layer["inputs"])
        assert is_shape(layer["shape"])
        assert is_int(layer["params"]) and is_int(layer["macs"])
        rf = layer["rf"]
        assert rf is None or (isinstance(rf, dict) and {"size", "stride"} <= rf.keys()
                              and all(isinstance(rf[k], list) for k in ("size", "stride")))
        names.add(layer["name"])
    assert sum(layer["params"] for layer in layers) == report["params"]
    assert sum(layer["macs"] for layer in layers) == report["macs"]
    conv1 = layers[0]
    assert (conv1["name"], conv1["op"], conv1["torch"]) == ("conv1", "conv2d", "Conv2d")
    assert (conv1["shape"], conv1["params"], conv1["macs"]) == ([6, 28, 28], 156, 117_600)


def test_input_override_changes_the_report():
    default = run("check", str(LENET))
    small = run("check", "--input", "1,28,28", str(LENET))
    assert small.exit_code == 0, small.output
    assert small.stdout != default.stdout
    assert "1x28x28" in small.stdout
    report = json.loads(run("check", "--input", "1,28,28", "--format", "json", str(LENET)).stdout)
    assert report["inputs"] == {"input": [1, 28, 28]}
    # 28 -> conv5 24 -> pool 12 -> conv5 8 -> pool 4: flatten gives 16*4*4 = 256 features
    flatten = next(layer for layer in report["layers"] if layer["op"] == "flatten")
    assert flatten["shape"] == [256]
    assert report["params"] == 61_706 - (400 - 256) * 120
    # conv1 6*24*24*25 + conv2 16*8*8*150 + fc 256*120 + 120*84 + 84*10
    assert report["macs"] == 86_400 + 153_600 + 30_720 + 10_080 + 840


def test_named_input_override_works_too():
    result = run("check", "--input", "input=1,28,28", "--format", "json", str(LENET))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["inputs"] == {"input": [1, 28, 28]}


@pytest.mark.parametrize("value", ["bad", "1,x,28", "0,28,28"])
def test_a_bad_input_option_is_a_usage_error(value: str):
    result = run("check", "--input", value, str(LENET))
    assert result.exit_code == 2, result.output
    assert "--input" in result.output
    assert "Traceback" not in result.output


def test_an_input_with_too_few_dimensions_says_to_fix_the_input():
    """`--input 3,16` for an image net: the first layer is what needs 3 numbers; moving it
    before `flatten` (the advice for a layer deep in the net) would not help."""
    result = run("check", "--input", "3,16", str(LENET))
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[0] == (
        f"{LENET}:{CONV1_LINE}:13: error: conv1: conv2d expects a [C,H,W] input but input gives [3,16]; "
        "the net's first layer is conv2d, which needs [C,H,W] (3 numbers): give `input` 3 numbers")


def test_a_missing_file_is_a_clear_error_without_traceback(tmp_path: Path):
    missing = tmp_path / "nope.yaml"
    result = run("check", str(missing))
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert f"{missing}:" in result.stderr
    assert "error: cannot read spec: No such file or directory" in result.stderr
    as_json = run("check", "--format", "json", str(missing))
    assert as_json.exit_code == 1
    [error] = json.loads(as_json.stdout)["errors"]
    assert error["file"] == str(missing) and "cannot read spec" in error["message"]


def test_python_dash_m_netspec_runs_the_cli():
    ok = subprocess.run([sys.executable, "-m", "netspec", "check", "specs/lenet5.yaml"], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "61,706" in ok.stdout and "416,520" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "netspec", "check", "tests/bad/unknown_arg.yaml"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "tests/bad/unknown_arg.yaml:5:22: error: conv1: unknown key `kernal` for conv2d" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("args", [
    ["check", "specs/lenet5.yaml"],             # success
    ["check", "tests/bad/unknown_op.yaml"],     # spec errors, exit 1
    ["check", "specs/lenet5.yaml", "-i", "x"],  # usage error, exit 2
], ids=["ok", "errors", "usage"])
def test_commands_give_the_garbage_collector_back(args):
    """A command pauses the cyclic collector while it runs; a tool embedding the CLI (or this
    test session) gets it back whatever the outcome."""
    gc.enable()
    CliRunner().invoke(main, [a if a.startswith("-") or "/" not in a else str(ROOT / a) for a in args])
    assert gc.isenabled()
