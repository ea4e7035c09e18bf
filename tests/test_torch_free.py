"""`netspec check`, `netspec diff` and the analysis API never import torch: checking must stay
instant."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SPEC = Path(__file__).resolve().parent.parent / "specs" / "lenet5.yaml"


def test_importing_and_checking_does_not_import_torch():
    code = ("import sys, netspec; r = netspec.check(netspec.load(sys.argv[1])); r.table(); "
            "r.to_dict(); print(r.params, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(SPEC)], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["61706", "False"]


@pytest.mark.parametrize("command", ["check", "diff"])
def test_the_check_and_diff_commands_do_not_import_torch(command):
    code = ("import sys; from netspec.cli import main\n"
            "try:\n    main([sys.argv[2], sys.argv[1], '--format', 'json'])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "finally:\n    print('torch' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code, str(SPEC), command], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().splitlines()[-1] == "False"
