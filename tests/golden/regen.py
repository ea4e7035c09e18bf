"""Rewrite the zoo's golden files from `netspec check` output.

    python3 tests/golden/regen.py

For each spec in SPECS: `NAME.table.txt` (the table `netspec check` prints) and `NAME.json`
(`netspec check --format json`). Review the diff before committing: every changed number
is a change in what netspec tells its users.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from click.testing import CliRunner

GOLDEN = Path(__file__).resolve().parent
ROOT = GOLDEN.parents[1]
SPECS = ("lenet5", "alexnet", "vgg16", "vgg11_bn")
FORMATS = {"table.txt": "table", "json": "json"}


def render(name: str, fmt: str) -> str:
    """What `netspec check specs/NAME.yaml --format FMT` prints to stdout, run from the
    repository root (paths in warnings are relative to it)."""
    from netspec.cli import main

    here = Path.cwd()
    os.chdir(ROOT)
    try:
        result = CliRunner().invoke(main, ["check", f"specs/{name}.yaml", "--format", fmt])
    finally:
        os.chdir(here)
    if result.exit_code != 0:
        raise RuntimeError(f"netspec check {name} exited {result.exit_code}:\n{result.output}")
    return result.stdout


def main() -> None:
    for name in SPECS:
        for suffix, fmt in FORMATS.items():
            path = GOLDEN / f"{name}.{suffix}"
            path.write_text(render(name, fmt), encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
