"""`netspec check`'s training-memory estimate against real CPU steps of random networks.

    python3 benchmarks/bench_memory_random.py [--examples 80] [--batch 64] [--seed 0]
        [--precision fp32|bf16]

Draws random chains and forks of every op (tests/strategies.py, the fuzz tests'
strategies), keeps those `netspec train` would step and in which check finds no mistake (one
output of classes, trained weights a gradient reaches; no `no-gradient` or
`inplace-conflict` warning), and takes one AdamW step of each at `--batch` samples, counted
by the tests' `StoragePeak` (tests/test_train_memory.py: every storage alive at once, equal
to torch's MemTracker, which cannot hook a frozen layer's output). Prints how many
estimates fall within 5% and within 1% of the real peak, and the networks beyond 5%, worst
first (the README's figure comes from here). With `--precision bf16` the steps run under
CPU autocast, and the counts are also given for the networks autocast is described for in
every layer (`Op.autocast`). The test of the same name in tests/test_train_memory.py draws
fewer, at one seed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=80, help="networks drawn")
    parser.add_argument("--batch", type=int, default=64, help="samples per step")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis's seed")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="bf16: the steps under CPU autocast")
    args = parser.parse_args()
    sys.path.insert(0, str(TESTS))
    import torch
    from hypothesis import HealthCheck, given, seed, settings
    from hypothesis import strategies as st
    from strategies import chain_specs, fork_specs
    from test_train_memory import step_peak, steps_as_measured

    import netspec
    from netspec import train_step
    from netspec.training.config import TrainConfig

    torch.set_num_threads(1)
    errors: list[tuple[float, bool, dict]] = []  # (error, described, spec)
    train = TrainConfig(precision=args.precision)

    @seed(args.seed)
    @settings(max_examples=args.examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(chain_specs(), fork_specs()))
    def measure(case) -> None:
        report = netspec.check(case.spec)
        if not steps_as_measured(report):
            return
        estimate = train_step.memory(report, train, batch=args.batch).peak
        truth = step_peak(case.spec, batch=args.batch, tracker="storages",
                          precision=args.precision)
        described = all(row.node.op.autocast("cpu", row.input_shapes) is not None
                        for row in report.layers)
        errors.append(((estimate - truth) / truth, described, case.spec))

    measure()
    groups = [("networks", errors)]
    if args.precision != "fp32":
        groups.append(("networks described in every layer", [e for e in errors if e[1]]))
    for what, group in groups:
        within = sum(abs(error) <= 0.05 for error, *_ in group)
        close = sum(abs(error) <= 0.01 for error, *_ in group)
        print(f"{within} of {len(group)} {what} within 5% of a real step, {close} within 1% "
              f"(batch {args.batch}, seed {args.seed}, {args.precision})")
    for error, described, spec in sorted(errors, key=lambda e: -abs(e[0])):
        if abs(error) > 0.05:
            mark = "" if described or args.precision == "fp32" else "  (not described)"
            print(f"{error:+.1%}  {json.dumps(spec['layers'])}{mark}")


if __name__ == "__main__":
    main()
