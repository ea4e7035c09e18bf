"""Compiled specs against the same networks hand-written in plain torch, side by side.

    NETSPEC_TORCHVISION=DIR python3 benchmarks/bench_build.py [--steps 20]

The hand-written networks are torchvision's plain torch.nn models (AlexNet, VGG-11-BN,
VGG-16) and LeNet-5 from tests/reference_models.py, which torchvision lacks. Needs
torchvision's model code: installed, or the folder `../shared/tools/reference-torchvision.sh
DIR` fills, named by NETSPEC_TORCHVISION=DIR.

1. Training step speed: forward + backward + SGD step, batch 32, CPU, with identical
   weights; the two models alternate step by step so machine drift hits both alike.
   Ratio = hand-written time / netspec time (1.0 = as fast; above 0.98 is the target).
2. Build time: `netspec.build` of the largest zoo spec (VGG-16) against constructing
   torchvision's without its second initialisation (`init_weights=False`), so that both
   are torch's default weight initialisation, which dominates either.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import reference_models  # noqa: E402

import netspec  # noqa: E402

CASES = [  # spec (and the hand-written model's name), per-sample input shape, label
    ("lenet5", (1, 32, 32), "LeNet-5, 1x32x32"),
    ("vgg11_bn", (3, 32, 32), "VGG-11-BN, 3x32x32"),
    ("alexnet", (3, 128, 128), "AlexNet, 3x128x128"),
]


def torchvision_models() -> ModuleType:
    """`torchvision.models`, from the folder NETSPEC_TORCHVISION names if it is set; exits
    with the usage text where torchvision's model code is nowhere to be found."""
    folder = os.environ.get("NETSPEC_TORCHVISION")
    if folder:
        sys.path.insert(0, folder)
    try:
        from torchvision import models
    except ImportError:
        sys.exit(f"torchvision's model code not found\n\n{__doc__}")
    return models


def hand_written(name: str, models: ModuleType) -> Callable[[], torch.nn.Module]:
    """The constructor of the plain-torch model of the zoo spec `name`."""
    return reference_models.lenet5 if name == "lenet5" else getattr(models, name)


def step_time(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
              optimizer: torch.optim.Optimizer) -> float:
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def compare(name: str, hand_written: Callable[[], torch.nn.Module], shape: tuple[int, ...],
            steps: int) -> tuple[float, float]:
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


def build_times(vgg16: Callable[[], torch.nn.Module], repeats: int = 3) -> tuple[float, float]:
    """Median seconds of (netspec.build of specs/vgg16.yaml, `vgg16()`)."""
    ours, theirs = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        netspec.build(ROOT / "specs" / "vgg16.yaml")
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        vgg16()
        theirs.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    models = torchvision_models()
    print(f"## Training step, batch 32, CPU ({torch.get_num_threads()} threads, torch "
          f"{torch.__version__}), median of {args.steps}\n")
    print("| network | netspec ms | hand-written ms | speed ratio |\n|---|---:|---:|---:|")
    for name, shape, label in CASES:
        ours, theirs = compare(name, hand_written(name, models), shape, args.steps)
        print(f"| {label} | {ours * 1e3:.1f} | {theirs * 1e3:.1f} | {theirs / ours:.3f} |")
    ours, theirs = build_times(lambda: models.vgg16(init_weights=False))
    print("\n## Build (VGG-16, 138M parameters, torch already imported)\n")
    print(f"| netspec.build | hand-written |\n|---:|---:|\n| {ours:.2f} s | {theirs:.2f} s |")


if __name__ == "__main__":
    main()
