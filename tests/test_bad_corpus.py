"""The corpus of bad specs: every file in tests/bad/ holds one or a few mistakes, and its header says
where netspec must point and what it must say.

Header lines (YAML comments at the top of the file):

    # expect: LINE:COL SUBSTRING            one line per error the check must report

LINE:COL is 1-based in the file itself. SUBSTRING is looked for in the error's text (the part after
`error: `: the layer path, the message and the hint); ` ... ` separates parts that must appear in
that order. The number of errors reported must equal the number of expect lines.

Where netspec is known to fall short of a file's expectations, the case is listed in `KNOWN_GAPS`
with the reason, and marked `xfail(strict=True)`: fixing netspec turns it into a failure that asks
for the mark to be removed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import netspec
from netspec.cli import main
from netspec.spec.expand import Expander

BAD = Path(__file__).resolve().parent / "bad"
FILES = sorted(BAD.glob("*.yaml"))

EXPECT = re.compile(r"# expect: (\d+):(\d+) (.+)")
ERROR_LINE = re.compile(r"(?P<file>.+):(?P<line>\d+):(?P<col>\d+): error: (?P<text>.*)")
SUMMARY = re.compile(r"\d+ errors?")

KNOWN_GAPS: dict[str, str] = {}


@dataclass(frozen=True)
class Expected:
    line: int
    column: int
    parts: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.line}:{self.column} {' ... '.join(self.parts)}"


@dataclass(frozen=True)
class Reported:
    file: str
    line: int
    column: int
    text: str


def expectations(path: Path) -> list[Expected]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = EXPECT.fullmatch(line.strip())
        if match:
            parts = tuple(p.strip() for p in match[3].split(" ... "))
            out.append(Expected(int(match[1]), int(match[2]), parts))
    return out


def contains_in_order(text: str, parts: tuple[str, ...]) -> bool:
    at = 0
    for part in parts:
        found = text.find(part, at)
        if found < 0:
            return False
        at = found + len(part)
    return True


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def reported(result: Result) -> list[Reported]:
    """The error lines a text-format check printed on stderr."""
    out = []
    for line in result.stderr.splitlines():
        match = ERROR_LINE.fullmatch(line)
        if match:
            out.append(Reported(match["file"], int(match["line"]), int(match["col"]), match["text"]))
    return out


def case(path: Path):
    marks = []
    if path.stem in KNOWN_GAPS:
        marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[path.stem]))
    return pytest.param(path, id=path.stem, marks=marks)


def ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]




def test_the_corpus_is_large_and_every_file_states_its_expectations():
    assert len(FILES) >= 35
    for path in FILES:
        assert expectations(path), f"{path.name} has no `# expect:` line"
    assert set(KNOWN_GAPS) <= {p.stem for p in FILES}, "KNOWN_GAPS names a file that does not exist"


@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_check_fails_cleanly(path: Path):
    """Exit 1, no traceback, and stderr holds nothing but error lines (and warnings) and the count."""
    result = run("check", str(path))
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    errors = reported(result)
    assert errors, result.output
    for line in result.stderr.splitlines():
        assert ERROR_LINE.fullmatch(line) or SUMMARY.fullmatch(line) or ": warning: " in line, line
    count = len(errors)
    assert result.stderr.splitlines()[-1] == f"{count} error{'s' if count > 1 else ''}"


@pytest.mark.parametrize("path", [case(p) for p in FILES])
def test_check_reports_each_expected_error(path: Path):
    result = run("check", str(path))
    assert result.exit_code == 1, result.output
    errors = reported(result)
    unmatched = list(errors)
    missing = []
    for want in expectations(path):
        hit = next((e for e in unmatched if e.file == str(path) and (e.line, e.column) ==
                    (want.line, want.column) and contains_in_order(e.text, want.parts)), None)
        if hit is None:
            missing.append(str(want))
        else:
            unmatched.remove(hit)
    shown = "\n".join(f"{e.line}:{e.column} {e.text}" for e in errors)
    assert not missing, f"expected but not reported: {missing}\nreported:\n{shown}"
    assert not unmatched, f"reported but not expected:\n{shown}"


@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_json_errors_match_the_text_errors(path: Path):
    text = reported(run("check", str(path)))
    result = run("check", "--format", "json", str(path))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = json.loads(result.stdout)["errors"]
    assert len(errors) == len(text)
    for error in errors:
        assert {"file", "line", "column", "path", "message"} <= error.keys()
        assert error["file"] == str(path)
        assert isinstance(error["line"], int) and isinstance(error["column"], int)
        assert isinstance(error["path"], str) and isinstance(error["message"], str)
        assert error["message"]
    assert sorted((e["line"], e["column"]) for e in errors) == sorted((e.line, e.column) for e in text)
    for error, line in zip(errors, text, strict=True):
        assert error["message"] in line.text
        if error["path"]:
            assert line.text.startswith(f"{error['path']}: ")


@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_python_api_raises_spec_error(path: Path):
    """`load` then `check` raise SpecError (a ValueError), never any other exception, and each
    error they carry is one the CLI reports."""
    with pytest.raises(netspec.SpecError) as info:
        netspec.check(netspec.load(str(path)))
    assert isinstance(info.value, ValueError)
    assert info.value.errors
    cli = {(e.line, e.column, e.text) for e in reported(run("check", str(path)))}
    for error in info.value.errors:
        assert (error.where.line, error.where.column, error.text) in cli
        assert str(error.where) in str(info.value)


def test_a_huge_repeat_is_refused_before_expanding_a_layer(monkeypatch: pytest.MonkeyPatch):
    """`repeat: 1000000000` is refused from its count alone: no layer is expanded (every
    layer the expansion makes goes through Expander.add). The time it takes is
    benchmarks/bench_hostile.py's to measure."""
    added = []
    add = Expander.add
    monkeypatch.setattr(Expander, "add", lambda self, node: added.append(node.name) or add(self, node))
    result = run("check", str(BAD / "repeat_huge.yaml"))
    assert result.exit_code == 1
    assert "100,000 layers" in result.stderr
    assert added == []
