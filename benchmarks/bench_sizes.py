"""How fast `netspec check --sizes` finds every input size a network takes, side by side
with trying sizes one at a time.

    python3 benchmarks/bench_sizes.py [--runs 7] [--upto 1024]

Prints a markdown table (the README's figures come from here). For each spec, in one
process after a warm-up, the median of `--runs`:
- closed form: `netspec.sizes.of(spec, graph)`, every spatial dimension, every size
  (not only up to `--upto`);
- one by one: the per-layer shape pass (`netspec.sizes.trace`, what a check does less its
  report) at every size 1..`--upto` of each dimension, which answers for those sizes only.
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from pathlib import Path

import netspec
from netspec import sizes

ROOT = Path(__file__).resolve().parent.parent
SPECS = ("lenet5", "unet", "resnet50", "resnet152", "efficientnet_b0", "densenet121")


def timed(fn, runs: int) -> float:
    """Median seconds of `fn()` over `runs` calls, after one warm-up call."""
    fn()
    return statistics.median(timeit.repeat(fn, number=1, repeat=runs))


def one_by_one(graph, upto: int) -> int:
    """Every size 1..upto of each dimension through the shape pass; how many work."""
    works = 0
    for name, dim, _ in sizes.dims_of(graph):
        for size in range(1, upto + 1):
            works += sizes.trace(graph, {(name, dim): size}).ok
    return works


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--upto", type=int, default=1024)
    args = parser.parse_args()
    print(f"| spec | layers | closed form, every size | one by one, 1..{args.upto} | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name in SPECS:
        spec = netspec.load(ROOT / "specs" / f"{name}.yaml")
        graph = spec._graph
        closed = timed(lambda s=spec, g=graph: sizes.of(s, g), args.runs)
        slow = timed(lambda g=graph: one_by_one(g, args.upto), max(1, args.runs // 3))
        print(f"| {name} | {len(graph.layers())} | {closed * 1e3:.1f} ms | {slow:.2f} s | "
              f"{slow / closed:.0f}x |", flush=True)


if __name__ == "__main__":
    main()
