"""`netspec check`, `netspec diff`, the language server and the analysis API never import
torch: checking must stay instant."""

from __future__ import annotations

import json
import os
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


@pytest.mark.parametrize("options", [["--device-profile", "h100-sxm"], ["--samples", "100"]])
def test_check_estimating_a_step_s_time_does_not_import_torch(options, tmp_path):
    """From a GPU's datasheet figures, or from the file `netspec bench` wrote."""
    cache = tmp_path / "throughput.json"
    cache.write_text('{"cpu": {"name": "cpu", "source": "test", "conv": {"fp32": 1e10}, '
                     '"matmul": {"fp32": 1e10}, "bandwidth": 1e10, "gpu": false}}')
    code = ("import json, sys; from netspec.cli import main\n"
            "try:\n    main(sys.argv[1:])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "finally:\n    print('torch' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code, "check", str(SPEC), "--batch", "8",
                          "--format", "json", *options], capture_output=True, text=True,
                         env={**os.environ, "NETSPEC_THROUGHPUT": str(cache)})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["step_time"]["step"] > 0
    assert out.stderr.strip().splitlines()[-1] == "False"


SERVE_WITHOUT_TORCH = """
import json, sys
from pathlib import Path
from netspec.lsp.server import server

class Sink:
    def __init__(self): self.messages = []
    def write(self, data): self.messages.append(json.loads(data.split(b"\\r\\n\\r\\n", 1)[1]))
    def close(self): pass

sink = Sink()
server.protocol.set_writer(sink)
def send(message):
    server.protocol.handle_message(server.protocol.structure_message({"jsonrpc": "2.0", **message}))
path = Path(sys.argv[1])
doc = {"uri": path.as_uri()}
send({"id": 0, "method": "initialize", "params": {"processId": None, "capabilities": {}}})
send({"method": "textDocument/didOpen", "params": {"textDocument": {
    **doc, "languageId": "yaml", "version": 1, "text": path.read_text()}}})
at = {"textDocument": doc, "position": {"line": 6, "character": 5}}
send({"id": 1, "method": "textDocument/hover", "params": at})
send({"id": 2, "method": "textDocument/completion", "params": at})
send({"id": 3, "method": "textDocument/inlayHint", "params": {"textDocument": doc, "range": {
    "start": {"line": 0, "character": 0}, "end": {"line": 99, "character": 0}}}})
answered = sorted(m["id"] for m in sink.messages if "id" in m and m.get("result"))
print(answered, "torch" in sys.modules)
"""


def test_the_server_does_not_import_torch():
    out = subprocess.run([sys.executable, "-c", SERVE_WITHOUT_TORCH, str(SPEC)],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[0,", "1,", "2,", "3]", "False"]
