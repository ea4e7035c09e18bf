"""`netspec check`'s training-memory estimate beside a real step on a device.

    python3 benchmarks/bench_memory_device.py [--specs resnet50 vit_b_16]
        [--batches 16 64 128] [--device cuda] [--shape 3,224,224] [--precision fp32 bf16]

For each zoo spec (specs/NAME.yaml) and batch size: the peak of a training step as `netspec
check SPEC --batch N --device DEVICE` estimates it, and as a real step takes it (the second
of two, as netspec's loop runs them: tests/test_train_memory.py's `step_peak`): on CUDA
`torch.cuda.max_memory_allocated`, which counts the caching allocator's blocks (sizes
rounded up to 512 bytes) and kernels' workspaces; on the CPU every tensor's storage. Prints
a Markdown table headed by the device's name and torch's version: the README's GPU figures
come from here. Each spec's input is its own unless `--shape` is given; each step runs in
every precision of `--precision` (bf16: under autocast, as `precision: auto` trains on a
GPU).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="+", default=["resnet50", "vit_b_16"],
                        help="zoo specs, by name")
    parser.add_argument("--batches", nargs="+", type=int, default=[16, 64, 128],
                        help="samples per step")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--shape", help="the input shape, C,H,W (default: each spec's own)")
    parser.add_argument("--precision", nargs="+", choices=["fp32", "bf16"],
                        default=["fp32", "bf16"])
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    import torch
    from test_train_memory import step_peak

    import netspec
    from netspec import train_step
    from netspec.training.config import TrainConfig

    shape = tuple(int(size) for size in args.shape.split(",")) if args.shape else None
    if args.device == "cuda":
        from netspec.training.devices import tune

        tune(torch.device("cuda"))  # as `netspec train` sets CUDA up: cudnn.benchmark, TF32
        name = torch.cuda.get_device_name()
    else:
        torch.set_num_threads(1)
        name = "CPU"
    print(f"{name}, torch {torch.__version__}\n")
    print("| spec | precision | batch | estimate | torch | difference |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for spec_name in args.specs:
        spec = netspec.load(ROOT / "specs" / f"{spec_name}.yaml")
        report = netspec.check(spec, shape)
        for precision in args.precision:
            train = (spec.training or TrainConfig()).model_copy(update={"precision": precision})
            for batch in args.batches:
                estimate = train_step.memory(report, train, batch, args.device).peak
                truth = step_peak(spec, shape, batch, tracker="storages", device=args.device,
                                  precision=precision)
                print(f"| {spec_name} | {precision} | {batch} | {estimate / 2**20:,.1f} MiB | "
                      f"{truth / 2**20:,.1f} MiB | {(estimate - truth) / truth:+.2%} |",
                      flush=True)
            if args.device == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
