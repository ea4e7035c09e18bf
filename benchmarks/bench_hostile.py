"""Hostile specs against their bounds: each refused within 1 s in at most 200 MB.

    python3 benchmarks/bench_hostile.py [--runs 3]

Each case (tests/hostile_inputs.py) runs as a whole `netspec check` process, interpreter
start-up included; the figures are the median wall time, the median CPU time (user and
system: on a busy machine, nearer a quiet machine's wall time) and the peak memory (VmHWM)
over the runs. The verdict holds the wall time and the memory against SECONDS and
MEMORY_MB (a hang, waiting on a pipe, takes no CPU time).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hostile_inputs import CASES, MEMORY_MB, SECONDS, run_check  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    print(f"{'input':32} {'exit':>4} {'seconds':>8} {'CPU s':>6} {'peak MB':>8}")
    worst_time = worst_cpu = worst_memory = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for number, (name, case) in enumerate(CASES.items()):
            path = Path(folder) / str(number) / "hostile.yaml"  # a folder per case: files beside it
            path.parent.mkdir()
            case.write(path)
            results = [run_check(path) for _ in range(runs)]
            seconds = statistics.median(r.seconds for r in results)
            cpu = statistics.median(r.cpu_seconds for r in results)
            peak = max(r.peak_mb for r in results)
            codes = {r.exit_code for r in results}
            refused = codes == {1} and all(case.message in r.stderr for r in results)
            print(f"{name:32} {'/'.join(map(str, codes)):>4} {seconds:8.2f} {cpu:6.2f} {peak:8.0f}"
                  f"{'' if refused else '  NOT REFUSED AS EXPECTED'}")
            worst_time, worst_memory = max(worst_time, seconds), max(worst_memory, peak)
            worst_cpu = max(worst_cpu, cpu)
    verdict = "within" if worst_time <= SECONDS and worst_memory <= MEMORY_MB else "OUTSIDE"
    print(f"slowest {worst_time:.2f} s ({worst_cpu:.2f} s CPU), largest {worst_memory:.0f} MB: "
          f"{verdict} the bounds ({SECONDS:g} s, {MEMORY_MB} MB)")


if __name__ == "__main__":
    main()
