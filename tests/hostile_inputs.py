"""Hostile specs, each with the message netspec must refuse it with, and a way to run
`netspec check` on one as a whole process, measuring its wall time and peak memory.

Used by tests/test_hostile.py (the refusal, the message, the memory bound) and by
benchmarks/bench_hostile.py (the time and memory figures in the README).
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Hostile:
    make: Callable[[], bytes]
    message: str


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
    "expression: indexing": Hostile(lambda: expression("w[0]"), "indexing"),
    "expression: import": Hostile(lambda: expression('__import__("os")'),
                                  "is not an allowed function call"),
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


def run_check(path: Path) -> Run:
    """`netspec check PATH` in a fresh interpreter: exit code, wall time, peak RSS, stderr."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], capture_output=True,
                          text=True, cwd=path.parent, timeout=60)
    seconds = time.perf_counter() - start
    body, _, peak = done.stderr.rpartition("peak_kb=")
    return Run(done.returncode, seconds, int(peak) / 1024, body)
