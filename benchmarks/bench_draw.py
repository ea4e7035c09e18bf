"""How fast `netspec draw` is: ResNet-152 (562 nodes, 50 clusters) to SVG, analysis and `dot`
included. The target is 3 s on a 2-core machine.

    python3 benchmarks/bench_draw.py [--runs 7] [--spec specs/resnet152.yaml]

Prints a markdown table: in one process, the median time of each stage (load + check,
building the Digraph, `dot` rendering the SVG) at full depth and at depth 0; then whole
processes (Python start-up and imports included), median wall time of `netspec draw` when
the command exists, else of the same calls through `python3 -c`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from netspec.api import diagnose, graph_of  # noqa: E402
from netspec.backends.drawing import to_digraph, write  # noqa: E402

NETSPEC = Path(sys.executable).parent / "netspec"
SCRIPT = """
import sys
from netspec.api import diagnose, graph_of
from netspec.backends.drawing import to_digraph, write
spec, report, errors = diagnose(sys.argv[1])
write(to_digraph(graph_of(spec), report, errors), sys.argv[2])
"""


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def stages(spec: Path, depth: int | None, out: Path, runs: int) -> tuple[float, float, float]:
    """Median seconds of analysis, Digraph building and rendering."""
    spec_, report, errors = diagnose(spec)
    assert spec_ is not None and not errors, errors
    dot = to_digraph(graph_of(spec_), report, errors, depth=depth)
    return (median_seconds(lambda: diagnose(spec), runs),
            median_seconds(lambda: to_digraph(graph_of(spec_), report, errors, depth=depth), runs),
            median_seconds(lambda: write(dot, out), runs))


def whole_process(spec: Path, out: Path, runs: int) -> tuple[str, float]:
    has_command = NETSPEC.exists() and subprocess.run(
        [str(NETSPEC), "draw", "--help"], capture_output=True).returncode == 0
    if has_command:
        label, cmd = f"`netspec draw {spec.relative_to(ROOT)} -o x.svg`", \
            [str(NETSPEC), "draw", str(spec), "-o", str(out)]
    else:
        label, cmd = "`python3 -c` (load, check, draw, render)", \
            [sys.executable, "-c", SCRIPT, str(spec), str(out)]
    run = lambda: subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)  # noqa: E731
    run()  # warm the file cache
    return label, median_seconds(run, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "resnet152.yaml")
    args = parser.parse_args()
    spec = args.spec.resolve()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "net.svg"
        print(f"{spec.name}, {cores} cores, median of {args.runs}\n")
        print("| depth | load + check | build Digraph | dot -> SVG | total |")
        print("|---|---:|---:|---:|---:|")
        for depth in (None, 0):
            times = stages(spec, depth, out, args.runs)
            cells = " | ".join(f"{t:.3f} s" for t in (*times, sum(times)))
            print(f"| {'full' if depth is None else depth} | {cells} |")
        label, seconds = whole_process(spec, out, args.runs)
        print(f"\nwhole process, {label}: {seconds:.2f} s (target: 3 s)")


if __name__ == "__main__":
    main()
