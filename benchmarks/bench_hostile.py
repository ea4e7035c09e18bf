"""Hostile specs against their bounds: each refused within 1 s in at most 200 MB.

    python3 benchmarks/bench_hostile.py [--runs 5]

Each case (tests/hostile_inputs.py) runs as a whole `netspec check` process, interpreter
start-up included; the figures are the best and the median wall time over the runs and the
peak memory (VmHWM). The best time is what the work itself takes (a machine busy with other
work slows every run, the interpreter's start-up as much as the check, and a hang is slow
in every run); the verdict holds it and the memory against SECONDS and MEMORY_MB. The first
row is the floor under every case: Python starting and importing netspec.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hostile_inputs import CASES, MEMORY_MB, SECONDS, Run, run_check  # noqa: E402


def row(name: str, results: list[Run], note: str = "") -> tuple[float, float]:
    """Print one case's figures; return its best time and peak memory."""
    best = min(r.seconds for r in results)
    median = statistics.median(r.seconds for r in results)
    peak = max(r.peak_mb for r in results)
    codes = "/".join(map(str, sorted({r.exit_code for r in results})))
    print(f"{name:36} {codes:>4} {best:6.2f} {median:8.2f} {peak:8.0f}{note}")
    return best, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    print(f"{'input':36} {'exit':>4} {'best':>6} {'median':>8} {'peak MB':>8}")
    row("(start-up: Python, import netspec)", [run_check(None) for _ in range(runs)])
    worst_time = worst_memory = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for number, (name, case) in enumerate(CASES.items()):
            path = Path(folder) / str(number) / "hostile.yaml"  # a folder per case: files beside it
            path.parent.mkdir()
            case.write(path)
            results = [run_check(path) for _ in range(runs)]
            refused = all(r.exit_code == 1 and case.message in r.stderr for r in results)
            best, peak = row(name, results, "" if refused else "  NOT REFUSED AS EXPECTED")
            worst_time, worst_memory = max(worst_time, best), max(worst_memory, peak)
    verdict = "within" if worst_time <= SECONDS and worst_memory <= MEMORY_MB else "OUTSIDE"
    print(f"slowest {worst_time:.2f} s, largest {worst_memory:.0f} MB: {verdict} the bounds "
          f"({SECONDS:g} s, {MEMORY_MB} MB)")


if __name__ == "__main__":
    main()
