"""Compiled specs against the same networks hand-written in plain torch, side by side.

    python3 benchmarks/bench_build.py [--steps 20]

1. Training step speed: forward + backward + SGD step, batch 32, CPU, with identical
   weights; the two models alternate step by step so machine drift hits both alike.
   Ratio = hand-written time / netspec time (1.0 = as fast; above 0.98 is the target).
2. Build time: `netspec.build` of the largest zoo spec against constructing the
   hand-written model (both dominated by torch's default weight initialisation).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import reference_models  # noqa: E402

import netspec  # noqa: E402

CASES = [  # spec, hand-written builder, per-sample input shape, label
    ("lenet5", reference_models.lenet5, (1, 32, 32), "LeNet-5, 1x32x32"),
    ("vgg11_bn", reference_models.vgg11_bn, (3, 32, 32), "VGG-11-BN, 3x32x32"),
    ("alexnet", reference_models.alexnet, (3, 128, 128), "AlexNet, 3x128x128"),
]


def step_time(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
              optimizer: torch.optim.Optimizer) -> float:
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def compare(name: str, hand_written, shape: tuple[int, ...], steps: int) -> tuple[float, float]:
    """Median step seconds of (netspec, hand-written), alternating, after warm-up."""
    ours = netspec.build(ROOT / "specs" / f"{name}.yaml", seed=0, inputs=shape).train()
    theirs = hand_written().train()
    theirs.load_state_dict(dict(zip(theirs.state_dict(), ours.state_dict().values(), strict=True)))
    x = torch.randn(32, *shape)
    y = torch.randint(0, 10, (32,))
    runs = {id(ours): [], id(theirs): []}
    opts = {id(m): torch.optim.SGD(m.parameters(), lr=1e-3) for m in (ours, theirs)}
    for i in range(steps + 3):
        pair = (ours, theirs) if i % 2 == 0 else (theirs, ours)
        for model in pair:
            seconds = step_time(model, x, y, opts[id(model)])
            if i >= 3:
                runs[id(model)].append(seconds)
    return statistics.median(runs[id(ours)]), statistics.median(runs[id(theirs)])


def build_times(repeats: int = 3) -> tuple[float, float]:
    ours, theirs = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        netspec.build(ROOT / "specs" / "vgg16.yaml")
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        reference_models.vgg16()
        theirs.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    print(f"## Training step, batch 32, CPU ({torch.get_num_threads()} threads, torch "
          f"{torch.__version__}), median of {args.steps}\n")
    print("| network | netspec ms | hand-written ms | speed ratio |\n|---|---:|---:|---:|")
    for name, hand_written, shape, label in CASES:
        ours, theirs = compare(name, hand_written, shape, args.steps)
        print(f"| {label} | {ours * 1e3:.1f} | {theirs * 1e3:.1f} | {theirs / ours:.3f} |")
    ours, theirs = build_times()
    print("\n## Build (VGG-16, 138M parameters, torch already imported)\n")
    print(f"| netspec.build | hand-written |\n|---:|---:|\n| {ours:.2f} s | {theirs:.2f} s |")


if __name__ == "__main__":
    main()
