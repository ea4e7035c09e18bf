"""Hostile input to `netspec check`: each refused with a positioned message and exit 1,
never a traceback, and nothing in it runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hostile_inputs import CASES, MEMORY_MB, expression, run_check

import netspec
from netspec.api import graph_of
from netspec.cli import MAX_SHOWN, main
from netspec.errors import SpecError
from netspec.limits import DEFAULTS, Limits
from netspec.spec.source import read_source

HEAD = "input: [1, 8, 8]\nlayers:\n"


def check(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check", str(path)])
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    line = "  - relu  # " + "x" * 80 + "\n"
    path.write_text(HEAD + line * (DEFAULTS.spec_bytes // len(line) + 1))
    code, err = check(path)
    assert code == 1 and f"larger than {DEFAULTS.spec_bytes:,} bytes (limit `spec_bytes`" in err


def test_a_million_mistakes_print_a_bounded_list(tmp_path: Path) -> None:
    path = tmp_path / "dupes.yaml"
    path.write_text(HEAD + "  - relu\n" + "input: [1, 8, 8]\n" * 5000)
    code, err = check(path)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == MAX_SHOWN + 1
    assert lines[-1] == f"5,000 errors ({5000 - MAX_SHOWN:,} more not shown)"


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_documents_are_refused(tmp_path: Path, name: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "hostile.yaml"
    CASES[name].write(path)
    monkeypatch.chdir(tmp_path)
    code, err = check(path)
    assert code == 1 and CASES[name].message in err
    assert len(err) < 2_000  # no message quotes the input at length
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.slow
def test_hostile_documents_stay_within_the_memory_bound(tmp_path: Path, name: str) -> None:
    """A whole `netspec check` process, interpreter included, peaks under MEMORY_MB."""
    path = tmp_path / "hostile.yaml"
    CASES[name].write(path)
    run = run_check(path)
    assert run.exit_code == 1 and CASES[name].message in run.stderr
    assert "Traceback" not in run.stderr
    assert run.peak_mb < MEMORY_MB


@pytest.mark.parametrize(("text", "message"), [
    ("make_divisible(10, 0.0)", "make_divisible(): the divisor must be positive, found 0.0"),
    ("w % 0", "division by zero"),
    ("w // 0.0", "division by zero"),
    ("0 ** -1", "division by zero"),
    ("round(w, -1000000000000000)", "round(): ndigits must be within ±15"),
    ("999999999999999 ** 64", "the result ~10**960 is out of range"),
    ("1e15 ** 60", "the result is out of range"),
    ("(-8) ** 0.5", "the result is not a real number"),
])
def test_arithmetic_errors_are_positioned(tmp_path: Path, text: str, message: str) -> None:
    """Each arithmetic failure in an expression is an error at the expression, naming it."""
    path = tmp_path / "net.yaml"
    path.write_bytes(expression(text))
    code, err = check(path)
    assert code == 1 and f"{path}:4:13: error: fc1: `{text}`: {message}" in err


@pytest.mark.parametrize(("literal", "value"), [
    ("017", 17), ("0o17", 15), ("0x1F", 31), ("+12", 12), ("-3", -3), ("1e-3", 0.001),
    (".5", 0.5), ("1.", 1.0), ("1:0", "1:0"), ("1:30:00", "1:30:00"), ("0b101", "0b101"),
    ("1_000", "1_000"), ("'12'", "12"),
])
def test_numbers_follow_yaml_1_2s_core_schema(literal: str, value: object) -> None:
    """YAML 1.1 read `1:0` as 60 (base 60), `017` as 15 and `0b101` as 5; specs read YAML 1.2."""
    assert read_source("<text>", f"x: {literal}\n").data == {"x": value}


def test_a_number_with_an_explicit_tag_must_be_one() -> None:
    with pytest.raises(SpecError, match=r"`1_000` is not an integer \(YAML 1.2 core schema\)"):
        read_source("<text>", "x: !!int 1_000\n")


BIG = "a" * 2**20
LONG_TEXT = {  # user text a message could quote, each a megabyte long (a key longer than
    # 1,024 characters is written `? KEY`: YAML's plain keys stop there)
    "unknown op": HEAD + f"  - {BIG}\n",
    "unknown layer key": HEAD + f"  - relu: {{}}\n    ? {BIG}\n    : 1\n",
    "unknown argument": HEAD + f"  - conv2d:\n      out: 4\n      ? {BIG}\n      : 1\n",
    "unknown block parameter": "input: [1, 8, 8]\nblocks: {b: {layers: [relu]}}\n"
                               f"layers:\n  - b:\n      ? {BIG}\n      : 1\n",
    "unknown reference": HEAD + f"  - relu: {{}}\n    from: {BIG}\n",
    "layer name not an identifier": HEAD + f"  - relu: {{}}\n    name: '-{BIG}'\n",
    "string for an integer": HEAD + f"  - linear: {BIG}\n",
    "a long list for a layer": HEAD + "  - [" + "1, " * 100_000 + "1]\n",
    "duplicate key": f"input: [1, 8, 8]\n? {BIG}\n: 1\n? {BIG}\n: 2\nlayers: [relu]\n",
    "unknown top-level key": f"input: [1, 8, 8]\n? {BIG}\n: 1\nlayers: [relu]\n",
    "local tag": HEAD + f"  - !{BIG} relu\n",
    "parameter name": f"input: [1, 8, 8]\nparams:\n  ? {BIG}\n  : 1\nlayers: [relu]\n",
    "block name": f"input: [1, 8, 8]\nblocks:\n  ? {BIG}\n  : {{layers: [relu]}}\nlayers: [relu]\n",
    "input name": f"inputs:\n  ? {BIG}\n  : [1, 8, 8]\nlayers: [relu]\n",
    "output name": HEAD + f"  - relu\noutputs: [{BIG}]\n",
    "use: path": f"input: [1, 8, 8]\nuse: [{BIG}]\nlayers: [relu]\n",
}


@pytest.mark.parametrize("name", list(LONG_TEXT))
def test_messages_quote_user_text_shortened(tmp_path: Path, name: str) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(LONG_TEXT[name])
    code, err = check(path)
    assert code == 1 and ("a" * 20 in err or "1, 1, 1" in err), err[:1_000]
    assert len(err) < 1_000, err[:1_000]


@pytest.mark.parametrize("where", ["params", "blocks", "inputs"])
def test_a_name_past_the_limit_is_refused_once(where: str) -> None:
    name = "a" * (DEFAULTS.name_length + 1)
    text = {"params": f"input: [1, 8, 8]\nparams: {{{name}: 1}}\nlayers: [relu]\n",
            "blocks": f"input: [1, 8, 8]\nblocks: {{{name}: {{layers: [relu]}}}}\nlayers: [relu]\n",
            "inputs": f"inputs: {{{name}: [1, 8, 8]}}\nlayers: [relu]\n"}[where]
    [error] = netspec.diagnose(text)[2]
    assert error.message == (f"`{where}.{'a' * 40}…` has {DEFAULTS.name_length + 1} characters, "
                             f"more than {DEFAULTS.name_length} (limit `name_length`)")
    assert error.code == "limit" and "--limit name_length=N" in (error.hint or "")
    assert netspec.load(text, limits=Limits(name_length=DEFAULTS.name_length + 1))


def test_exactly_the_layer_limit_is_accepted_and_one_more_refused_before_expanding() -> None:
    """The limit counts layers, not the input; past it, the list is refused before any of
    it is expanded."""
    small = Limits(layers=1_000)
    report = netspec.check(HEAD + "  - relu\n" * 1_000, limits=small)
    assert [r.name for r in report.layers][-1] == "relu1000"
    spec, _, [error] = netspec.diagnose(HEAD + "  - relu\n" * 1_001, limits=small)
    assert error.message == "the network expands to more than 1,000 layers (limit `layers`)"
    assert (error.where.line, error.where.column) == (1_003, 5)
    assert list(graph_of(spec).nodes) == ["input"]  # nothing expanded


@pytest.mark.slow
def test_exactly_100_000_layers_are_accepted() -> None:
    report = netspec.check(HEAD + "  - relu: {}\n    repeat: 100000\n")
    assert report.layers[-1].name == "relu100000"


def test_a_spec_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "f.yaml"
    os.mkfifo(fifo)
    for path, kind in [(fifo, "a named pipe"), (Path("/dev/zero"), "a character device")]:
        with pytest.raises(SpecError, match=f"{path} is not a regular file \\({kind}\\)"):
            netspec.load(path)
        code, err = check(path)
        assert code == 1 and f"{path}:1:1: error: cannot read spec: {path} is not a regular file" in err
