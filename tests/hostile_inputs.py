"""Hostile specs, each with the message netspec must refuse it with, and a way to run
`netspec check` on one as a whole process, measuring its wall time and peak memory.

Used by tests/test_hostile.py (the refusal, the message, the memory bound) and by
benchmarks/bench_hostile.py (the time and memory figures in the README).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HEAD = b"input: [1, 8, 8]\nlayers:\n"
MEMORY_MB = 200  # the bound on a whole `netspec check` process
SECONDS = 1.0  # the bound on the time it takes to refuse one
DEEP = 100_000  # nesting levels: PyYAML 6.0 composing 90,000 crashed the process


def big_file() -> bytes:
    line = b"  - relu  # " + b"x" * 80 + b"\n"
    return HEAD + line * (50 * 2**20 // len(line))


def alias_bomb() -> bytes:
    levels = [b"a: &a [" + b", ".join([b"x"] * 10) + b"]\n"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        alias = f"*{prev}".encode()
        levels.append(f"{name}: &{name} [".encode() + b", ".join([alias] * 10) + b"]\n")
    return b"".join(levels) + HEAD + b"  - relu\n"


def expression(text: str) -> bytes:
    return b"input: [1, 8, 8]\nparams: {w: 4}\nlayers:\n  - linear: '" + text.encode() + b"'\n"


USE = b"input: [1, 8, 8]\nuse: [blocks]\nlayers: [relu]\n"
FAN_OUT = 10  # each block file uses the next this many times
FAN_FILES = 7  # 10**7 includes as the tree unfolds


def fan_out(spec: Path) -> None:
    """Block files b0.yaml ... b6.yaml beside `spec`, each using the next FAN_OUT times
    (about 150 bytes each); the spec (which uses `blocks`) is made to use b0.yaml."""
    spec.write_bytes(USE.replace(b"[blocks]", b"[b0.yaml]"))
    for i in range(FAN_FILES):
        uses = f"[{', '.join([f'b{i + 1}.yaml'] * FAN_OUT)}]" if i + 1 < FAN_FILES else "[]"
        (spec.parent / f"b{i}.yaml").write_text(f"use: {uses}\nblocks: {{}}\n")


def named_pipe(spec: Path) -> None:
    """The spec's path made a named pipe that no one writes to (reading it would block)."""
    spec.unlink()
    os.mkfifo(spec)


@dataclass(frozen=True)
class Hostile:
    make: Callable[[], bytes]
    message: str
    around: Callable[[Path], None] | None = None
    """Given the spec's path once `make()` is written there, makes what it needs beside it
    (the files it uses), or replaces it (a named pipe)."""

    def write(self, spec: Path) -> None:
        """Write the case to `spec`, in a folder of its own."""
        spec.write_bytes(self.make())
        if self.around is not None:
            self.around(spec)


CASES: dict[str, Hostile] = {
    "50 MB file": Hostile(big_file, "(limit `spec_bytes`"),
    "alias bomb (10^9 values)": Hostile(alias_bomb, "(limit `yaml_values`"),
    "lists nested 100,000 deep": Hostile(
        lambda: b"input: [1, 8, 8]\nlayers: " + b"[" * DEEP + b"]" * DEEP + b"\n",
        "(limit `yaml_depth`)"),
    "mappings nested 100,000 deep": Hostile(
        lambda: b"input: [1, 8, 8]\nlayers: " + b"{a: " * DEEP + b"1" + b"}" * DEEP + b"\n",
        "(limit `yaml_depth`)"),
    "block lists nested 100,000 deep": Hostile(
        lambda: b"input: [1, 8, 8]\nlayers:\n" + b"- " * DEEP + b"relu\n", "(limit `yaml_depth`)"),
    "indented mappings nested 4,000 deep": Hostile(  # 8 MiB holds about 4,000 indented levels
        lambda: b"input: [1, 8, 8]\nlayers:\n" + b"".join(b" " * i + b"a:\n" for i in range(1, 4000))
        + b" " * 4000 + b"1\n", "(limit `yaml_depth`)"),
    "!!python/object tag": Hostile(
        lambda: b"input: !!python/object/apply:os.system ['touch PWNED']\nlayers: [relu]\n",
        "unsupported YAML tag `!!python/object/apply:os.system`"),
    "!!binary and local tags": Hostile(
        lambda: HEAD + b"  - !!binary aGVsbG8=\n  - !relu {}\n", "unsupported YAML tag"),
    "binary garbage": Hostile(lambda: random.Random(0).randbytes(4096), "not valid UTF-8"),
    "invalid UTF-8": Hostile(lambda: HEAD + b"  - relu  # caf\xe9\n", "not valid UTF-8"),
    "block using itself": Hostile(
        lambda: b"input: [1, 8, 8]\nblocks:\n  a: {layers: [b]}\n  b: {layers: [a]}\n"
                b"layers: [a]\n", "block `a` uses itself (a → b → a)"),
    "repeat: 1000000000": Hostile(lambda: HEAD + b"  - relu: {}\n    repeat: 1000000000\n",
                                  "would expand beyond 100,000 layers (limit `layers`)"),
    "kernel 10**12": Hostile(lambda: HEAD + b"  - conv2d: {out: 4, kernel: 1000000000000}\n",
                             "needs at least 1000000000000x1000000000000 input"),
    "weights of 10**12": Hostile(
        lambda: b"input: [1000000]\nlayers:\n  - linear: 1000000\n",
        "holds 1,000,001,000,000 parameters"),
    "expression: attribute": Hostile(lambda: expression("w.__class__"), "attribute access"),
    "expression: indexing": Hostile(lambda: expression("w[0]"), "only a list can be indexed"),
    "expression: import": Hostile(lambda: expression('__import__("os")'),
                                  "is not an allowed function call"),
    "integer of 5,000 digits": Hostile(
        lambda: HEAD + b"  - linear: " + b"9" * 5000 + b"\n",
        ".yaml:3:13: error: a number of 5,000 digits is longer than 100 digits "
        "(limit `number_digits`)"),
    "make_divisible(10, 0)": Hostile(
        lambda: expression("make_divisible(10, 0)"),
        ".yaml:4:13: error: fc1: `make_divisible(10, 0)`: make_divisible(): the divisor must "
        "be positive, found 0"),
    "100,001 relu layers": Hostile(
        lambda: HEAD + b"  - relu\n" * 100_001,
        ".yaml:100003:5: error: layers: the network expands to more than 100,000 layers "
        "(limit `layers`)"),
    "a 1 MB layer name": Hostile(
        lambda: HEAD + b"  - relu: {}\n    name: " + b"a" * 2**20 + b"\n",
        f".yaml:4:11: error: {'a' * 40}…: layer name `{'a' * 40}…` has 1,048,576 characters, "
        "more than 128 (limit `name_length`)"),
    "kernel: 1:0 (YAML 1.1 base 60)": Hostile(
        lambda: HEAD + b"  - conv2d: {out: 4, kernel: 1:0}\n",
        ".yaml:3:30: error: conv1: `kernel`: expected an integer or a list of integers, "
        "found '1:0'"),
    "the spec a named pipe": Hostile(
        lambda: b"", "hostile.yaml is not a regular file (a named pipe)", named_pipe),
    "use: of a directory": Hostile(
        lambda: USE, ".yaml:2:7: error: `blocks` is a directory, not a file of blocks",
        lambda spec: (spec.parent / "blocks").mkdir()),
    "use: fan-out (10**7 includes)": Hostile(
        lambda: USE,
        "b3.yaml:1:79: error: `use` includes more than 1,000 files in one load (limit "
        "`use_includes`; a file used again counts again, with its own includes): hostile.yaml "
        "→ b0.yaml → b1.yaml → b2.yaml → b3.yaml → b4.yaml", fan_out),
}


@dataclass(frozen=True)
class Run:
    exit_code: int
    seconds: float
    peak_mb: float
    stderr: str


# VmHWM is this process's own peak: getrusage's ru_maxrss would include the parent's peak
# at the fork (Linux keeps it across exec).
_MEASURE = """
import re, sys
from netspec.cli import main
try:
    main(["check", sys.argv[1]])
finally:
    status = open("/proc/self/status").read()
    print("peak_kb=" + re.search(r"VmHWM:\\s*(\\d+)", status).group(1), file=sys.stderr)
"""


def run_check(path: Path | None) -> Run:
    """`netspec check PATH` in a fresh interpreter: exit code, wall time, peak RSS, stderr.
    With None, only the interpreter's start-up and netspec's import: the floor of every run."""
    command = [sys.executable, "-c", _MEASURE, str(path)] if path else \
        [sys.executable, "-c", _MEASURE.replace('main(["check", sys.argv[1]])', "pass")]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True,
                          cwd=path.parent if path else None, timeout=60)
    seconds = time.perf_counter() - start
    body, _, peak = done.stderr.rpartition("peak_kb=")
    return Run(done.returncode, seconds, int(peak) / 1024, body)
