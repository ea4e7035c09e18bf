"""How soon the language server answers a keystroke: after a one-character edit, the time
until its diagnostics are published and the inlay hints of the whole file are answered,
in process (the server's own handlers and JSON-RPC encoding; no pipe, no client).

    python3 benchmarks/bench_lsp.py [--edits 40] [--spec resnet152]

Prints a markdown table (the README's figures come from here): per kind of edit, the
median, the 90th percentile and the slowest of `--edits` edits, side by side with
`netspec.api.diagnose` (what `check` runs) of the same text without the earlier report.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import netspec
from netspec.lsp import server as lsp
from netspec.spec.source import read_source

ROOT = Path(__file__).resolve().parent.parent


class Sink:
    """The server's output stream: the messages it writes, decoded."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        self.messages.append(json.loads(data.split(b"\r\n\r\n", 1)[1]))

    def close(self) -> None:
        pass


def connect(sink: Sink) -> Callable[[dict[str, Any]], None]:
    """The server, started as an editor starts it; a function sending it one message."""
    protocol = lsp.server.protocol
    protocol.set_writer(sink)

    def send(message: dict[str, Any]) -> None:
        protocol.handle_message(protocol.structure_message({"jsonrpc": "2.0", **message}))

    send({"id": 0, "method": "initialize",
          "params": {"processId": None, "rootUri": ROOT.as_uri(), "capabilities": {}}})
    send({"method": "initialized", "params": {}})
    return send


EDITS = {
    "a parameter's digit": ("classes: 1000", "classes: 100{}"),
    "a block's argument": ("width: 256,", "width: 25{},"),
    "a comment": ("# 2048x7x7", "# 2048x7x{}"),
}
"""Kinds of one-character edits: the text replaced, and its replacement with one digit."""


def keystrokes(send: Callable[[dict[str, Any]], None], sink: Sink, uri: str, text: str,
               edit: tuple[str, str], count: int) -> list[float]:
    """Seconds from each edit to its diagnostics and hints, over `count` edits."""
    old, new = edit
    assert old in text, old
    lines = len(text.splitlines())
    times = []
    for version in range(count):
        changed = text.replace(old, new.format(version % 10), 1)
        sink.messages.clear()
        start = time.perf_counter()
        send({"method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": version + 2},
            "contentChanges": [{"text": changed}]}})
        send({"id": version + 1, "method": "textDocument/inlayHint", "params": {
            "textDocument": {"uri": uri},
            "range": {"start": {"line": 0, "character": 0},
                      "end": {"line": lines, "character": 0}}}})
        times.append(time.perf_counter() - start)
        published = [m for m in sink.messages if m.get("method") == "textDocument/publishDiagnostics"]
        hints = [m for m in sink.messages if m.get("id") == version + 1]
        assert published and hints and hints[0]["result"], "no diagnostics or hints came"
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=40)
    parser.add_argument("--spec", default="resnet152")
    args = parser.parse_args()
    path = ROOT / "specs" / f"{args.spec}.yaml"
    text, uri = path.read_text(), path.as_uri()
    sink = Sink()
    send = connect(sink)
    send({"method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "yaml", "version": 1, "text": text}}})
    layers = len(netspec.check(path).layers)
    print(f"{args.spec} ({layers} layers), {args.edits} edits of each kind, milliseconds\n")
    print("| edit | diagnostics and hints, median | 90th percentile | slowest "
          "| `check` alone, median | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, edit in EDITS.items():
        served = keystrokes(send, sink, uri, text, edit, args.edits)
        changed = text.replace(edit[0], edit[1].format(1), 1)
        checked = []
        for _ in range(args.edits):
            start = time.perf_counter()
            netspec.api.diagnose(read_source(str(path), changed))
            checked.append(time.perf_counter() - start)
        median = statistics.median(served)
        p90 = statistics.quantiles(served, n=10)[-1]
        print(f"| {kind} | {1000 * median:.1f} | {1000 * p90:.1f} | {1000 * max(served):.1f} | "
              f"{1000 * statistics.median(checked):.1f} | {median / statistics.median(checked):.2f} |")


if __name__ == "__main__":
    main()
