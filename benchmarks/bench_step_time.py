"""`netspec check`'s estimate of a training step's time against real steps on this CPU.

    python3 benchmarks/bench_step_time.py [--rounds 3] [--threads N] [--seconds 1] [--steps 10]

Each round, this machine's CPU is measured as `netspec bench` measures it (the figures are
printed, not saved); then for each case, the estimate `netspec check --batch N` gives with
those figures, next to real steps of the model `netspec.build` compiles: random inputs and labels
already in memory, forward, cross-entropy, `zero_grad(set_to_none=True)`, backward and the
spec's optimizer step (AdamW by default), as `netspec train` runs them without its data
pipeline. After `--warmup` steps, the median of `--steps`. Ratio = measured / estimate.
Prints a markdown table of the medians over the rounds, the ratio's range beside its median
(the README's figures come from here): on a shared machine the figures and the steps both
move with the load, so each round's estimate uses that round's figures. `--threads` sets torch's
threads for all of it: on cores shared with other jobs, threads that wait for each other
at every kernel measure the contention more than the machine.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import netspec
from netspec.report import seconds
from netspec.throughput import measure
from netspec.training.optim import make_optimizer

ROOT = Path(__file__).resolve().parent.parent
CASES = (("lenet5", None, 64), ("resnet18", (3, 64, 64), 64), ("vit_tiny", None, 64))
"""Spec, input shape (None: the spec's), batch."""


def real_step(spec: netspec.Spec, shape: tuple[int, ...], batch: int, classes: int,
              warmup: int, steps: int) -> float:
    """The median seconds of a training step of the built model, after `warmup` steps."""
    model = netspec.build(spec, seed=0).train()
    optimizer = make_optimizer(spec.training.optimizer, model.parameters())
    x, y = torch.randn(batch, *shape), torch.randint(classes, (batch,))
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per bench measurement")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in CASES}
    shapes: dict[str, str] = {}
    for round_ in range(args.rounds):
        figures, lines = measure("cpu", args.seconds)
        print(f"round {round_ + 1}: {figures.name}, {datetime.date.today().isoformat()}")
        for line in lines:
            print(f"  {line}")
        for name, shape, batch in CASES:
            spec = netspec.load(ROOT / "specs" / f"{name}.yaml")
            report = netspec.check(spec, inputs=shape, batch=batch, throughput=figures)
            estimate = report.step_time
            assert estimate is not None, report.step_time_hint
            [(_, shown)] = report.inputs.items()
            [(_, out)] = report.outputs.items()
            shapes[name] = "x".join(map(str, shown))
            measured = real_step(spec, shown, batch, out[-1], args.warmup, args.steps)
            results[name].append((estimate.step, measured))
            print(f"  {name}: estimate {seconds(estimate.step)}, measured {seconds(measured)}",
                  flush=True)
    print("\n| spec | input | batch | estimate per step | measured | measured / estimate |")
    print("|---|---|---:|---:|---:|---:|")
    for name, _, batch in CASES:
        estimates, measured = zip(*results[name], strict=True)
        ratios = [m / e for e, m in results[name]]
        print(f"| {name} | {shapes[name]} | {batch} | {seconds(statistics.median(estimates))} | "
              f"{seconds(statistics.median(measured))} | {statistics.median(ratios):.2f} "
              f"({min(ratios):.2f}-{max(ratios):.2f}) |")


if __name__ == "__main__":
    main()
