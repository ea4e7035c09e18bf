"""Hostile input to `netspec check`: each refused with a positioned message and exit 1,
never a traceback, and nothing in it runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hostile_inputs import CASES, MEMORY_MB, run_check

from netspec.cli import MAX_SHOWN, main
from netspec.limits import DEFAULTS

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
    path.write_bytes(CASES[name].make())
    monkeypatch.chdir(tmp_path)
    code, err = check(path)
    assert code == 1 and CASES[name].message in err
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.slow
def test_hostile_documents_stay_within_the_memory_bound(tmp_path: Path, name: str) -> None:
    """A whole `netspec check` process, interpreter included, peaks under MEMORY_MB."""
    path = tmp_path / "hostile.yaml"
    path.write_bytes(CASES[name].make())
    run = run_check(path)
    assert run.exit_code == 1 and CASES[name].message in run.stderr
    assert "Traceback" not in run.stderr
    assert run.peak_mb < MEMORY_MB
