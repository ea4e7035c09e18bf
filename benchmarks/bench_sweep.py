"""How fast a search loop checks variants of one spec, in process.

    python3 benchmarks/bench_sweep.py [--variants 1000] [--runs 3]

Checks `--variants` variants of specs/resnet50.yaml (its `classes` from 10 to 1,000 in
steps of 10, crossed with its `width_per_group` from 16 to 160: torchvision's inner width
of the bottlenecks' 3x3), each the whole report `check --format json` prints, and prints a
markdown table, side by side:

1. the sweep as a search loop writes it: the spec loaded once, then
   `netspec.check(spec, params=...)` per variant (the YAML is read and parsed once; each
   variant expands the document again, replaying the block instances already expanded,
   and analyses it);
2. the same with every block instance expanded afresh (the replay turned off: what
   expanding costs without it);
3. `netspec.check(path, params=...)` per variant, which reads and parses the file every
   time, its block instances expanded afresh but for the repeats within one variant (a
   fifth of the variants, timed the same way);
4. a whole `netspec check --set ... --format json` process per variant (ten of them), what
   a loop driving the command line pays.

Each row is the best of `--runs` runs (the least disturbed by other work on the machine),
in seconds for the whole sweep and milliseconds per variant. Every report is checked: the
classifier holds 2048 * classes + classes parameters.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import netspec
from netspec.spec.expand import Expander

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "resnet50.yaml"
NETSPEC = Path(sys.executable).parent / "netspec"


def variants(count: int) -> Iterator[dict[str, int]]:
    """`count` parameter sets: every class count for one width, then the next width."""
    grid = itertools.product(range(16, 161, 16), range(10, 1001, 10))
    for width, classes in itertools.islice(itertools.cycle(grid), count):
        yield {"classes": classes, "width_per_group": width}


def checked(report: netspec.Report, params: dict[str, int]) -> dict[str, object]:
    """The report as JSON, after checking its classifier against the formula."""
    classes = params["classes"]
    assert report.layer("fc").params == 2048 * classes + classes, params
    return report.to_dict()


def best(runs: int, sweep: Callable[[], int]) -> tuple[float, int]:
    """The shortest wall time of `runs` runs of `sweep`, and how many variants it checks."""
    times, count = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        count = sweep()
        times.append(time.perf_counter() - start)
    return min(times), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    every = list(variants(args.variants))

    def loaded_once() -> int:
        spec = netspec.load(SPEC)
        for params in every:
            checked(netspec.check(spec, params=params), params)
        return len(every)

    def afresh() -> int:
        replay = Expander.instance_key
        Expander.instance_key = lambda *args: None  # type: ignore[method-assign]
        try:
            return loaded_once()
        finally:
            Expander.instance_key = replay  # type: ignore[method-assign]

    def from_the_file() -> int:
        for params in every[::5]:
            checked(netspec.check(SPEC, params=params), params)
        return len(every[::5])

    def processes() -> int:
        for params in every[:10]:
            sets = [part for name, value in params.items() for part in ("--set", f"{name}={value}")]
            done = subprocess.run([str(NETSPEC), "check", str(SPEC), *sets, "--format", "json"],
                                  check=True, capture_output=True, text=True)
            assert json.loads(done.stdout)["outputs"] == {"fc": [params["classes"]]}
        return 10

    rows = [("`check(spec, params=...)`, the spec loaded once", loaded_once),
            ("the same, every block instance expanded afresh", afresh),
            ("`check(path, params=...)`, the file read each time", from_the_file),
            ("`netspec check --set ... --format json`, a process each", processes)]
    print(f"resnet50 variants, best of {args.runs} runs (Python "
          f"{sys.version.split()[0]}):\n")
    print("| sweep | variants | seconds | ms per variant |")
    print("|---|---:|---:|---:|")
    for title, sweep in rows:
        seconds, count = best(args.runs, sweep)
        print(f"| {title} | {count:,} | {seconds:.2f} | {1000 * seconds / count:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
