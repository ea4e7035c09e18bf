"""How fast `netspec check` is, side by side with what a torch-based summary must do.

    NETSPEC_TORCHVISION=DIR python3 benchmarks/bench_check.py [--runs 7]

Prints markdown tables (the README's figures come from here):
1. Whole processes, median wall time: `netspec check` on the zoo and on a generated
   10,000-layer spec, against a fresh process that imports torch, builds VGG-16 and runs
   one forward pass with hooks to record shapes (what torchinfo, torchview or Keras'
   summary must do because they run the model). The VGG-16 is torchvision's, a plain
   torch.nn model, with torch's default initialisation only (`init_weights=False`). What
   torchvision itself adds to that process (importing its models, transforms, PIL... and
   unloading them at exit), which a model of one's own does not need, is left out: the
   median of a process that imports torch and torchvision, less one that imports torch.
2. Scaling: load + check time in one process for 1,250 to 10,000 layers; a constant time
   per layer means analysis grows linearly.

Needs torchvision's model code for that VGG-16: installed, or the folder
`../shared/tools/reference-torchvision.sh DIR` fills, named by NETSPEC_TORCHVISION=DIR.

The console script is run directly (`<python's bin>/netspec`), not through a version
manager's shim, which would add its own start-up to every command.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NETSPEC = Path(sys.executable).parent / "netspec"

TORCHVISION = """
import sys, torch
if sys.argv[1]:
    sys.path.insert(0, sys.argv[1])
from torchvision.models import vgg16
"""
"""Run with the folder holding torchvision, or "" where it is installed."""
TORCH_SUMMARY = TORCHVISION + """
model = vgg16(init_weights=False).eval()
shapes = []
for m in model.modules():
    if not list(m.children()):
        m.register_forward_hook(lambda mod, i, o: shapes.append(tuple(o.shape)))
with torch.no_grad():
    model(torch.zeros(1, 3, 224, 224))
print(sum(p.numel() for p in model.parameters()), len(shapes))
"""


def deep_spec(layers: int, kind: str = "conv") -> str:
    """A chain of `layers` layers written out in full: 3x3 conv and ReLU in turn on 8x32x32
    (`conv`), or linear and ReLU on 16 features (`linear`)."""
    shape, layer = {"conv": ("[8, 32, 32]", "conv2d: {out: 8, kernel: 3, padding: 1}"),
                    "linear": ("[16]", "linear: 16")}[kind]
    lines = ["name: deep", f"input: {shape}", "layers:"]
    for i in range(layers):
        lines.append(f"  - {layer}" if i % 2 == 0 else "  - relu")
    return "\n".join(lines) + "\n"


def median_wall(command: list[str], runs: int) -> float:
    """Median wall-clock seconds of a whole process, after one warm-up run."""
    subprocess.run(command, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torchvision_folder() -> str:
    """The folder NETSPEC_TORCHVISION names ("" where torchvision is installed); exits with
    the usage text where torchvision's model code is nowhere to be found."""
    folder = os.environ.get("NETSPEC_TORCHVISION", "")
    if folder:
        sys.path.insert(0, folder)
    if importlib.util.find_spec("torchvision") is None:
        sys.exit(f"torchvision's model code not found\n\n{__doc__}")
    return folder


def in_process(path: Path, runs: int) -> float:
    """Median seconds of `check(load(path))` inside one process (the cyclic GC paused, as the
    CLI runs)."""
    import netspec

    times = []
    for _ in range(runs):
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        netspec.check(netspec.load(path))
        times.append(time.perf_counter() - start)
        gc.enable()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    folder = torchvision_folder()
    tmp = Path(tempfile.mkdtemp())
    sizes = (1_250, 2_500, 5_000, 10_000)
    for n in sizes:
        (tmp / f"deep{n}.yaml").write_text(deep_spec(n))
        (tmp / f"mlp{n}.yaml").write_text(deep_spec(n, "linear"))

    print(f"## Whole process (median of {args.runs}, {sys.platform}, Python "
          f"{sys.version.split()[0]})\n")
    print("| command | seconds |\n|---|---:|")
    cases = [(f"netspec check specs/{s}.yaml", [str(NETSPEC), "check", str(ROOT / "specs" / f"{s}.yaml")])
             for s in ("lenet5", "vgg16", "resnet152", "densenet169")
             if (ROOT / "specs" / f"{s}.yaml").exists()]
    cases.append(("netspec check (10,000 generated layers)",
                  [str(NETSPEC), "check", str(tmp / "deep10000.yaml")]))
    results = {}
    for label, command in cases:
        results[label] = median_wall(command, args.runs)
        print(f"| `{label}` | {results[label]:.3f} |")
    torchvision_cost = (median_wall([sys.executable, "-c", TORCHVISION, folder], args.runs)
                        - median_wall([sys.executable, "-c", "import torch"], args.runs))
    peer = median_wall([sys.executable, "-c", TORCH_SUMMARY, folder], args.runs) - torchvision_cost
    print(f"| torch: import, build VGG-16, forward 1x3x224x224 with shape hooks | {peer:.3f} |")
    ours = results["netspec check specs/vgg16.yaml"]
    print(f"\nVGG-16: netspec check is **{peer / ours:.1f}x** faster than a torch-based summary.\n")

    print("## Scaling (load + check in one process)\n")
    print("| layers | conv, ReLU: seconds | µs per layer | linear, ReLU: seconds | µs per layer |")
    print("|---:|---:|---:|---:|---:|")
    per_layer: dict[str, list[float]] = {"deep": [], "mlp": []}
    for n in sizes:
        cells = []
        for kind, times in per_layer.items():
            seconds = in_process(tmp / f"{kind}{n}.yaml", max(3, args.runs // 2))
            times.append(seconds / n)
            cells += [f"{seconds:.3f}", f"{seconds / n * 1e6:.1f}"]
        print(f"| {n:,} | {' | '.join(cells)} |")
    growth = ", ".join(f"{kind} {times[-1] / times[0]:.2f}x" for kind, times in per_layer.items())
    print(f"\nTime per layer at 10,000 vs 1,250 layers: {growth} (1.0 = linear).")


if __name__ == "__main__":
    main()
