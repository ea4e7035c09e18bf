"""`netspec train` against a minimal hand-written PyTorch loop: same model, data, batch size,
optimizer and schedule, measured side by side in one process.

    python3 benchmarks/bench_train.py [--epochs 6] [--rounds 3]

Per-epoch wall time, a whole epoch each: training steps, validation, and for netspec also its
bookkeeping (progress sums, NaN checks, the atomic fsynced checkpoint, metrics files). The
two alternate, round by round, so machine drift hits both alike; the first epoch of each
run is warm-up and not counted. Ratio = netspec / hand-written (target: at most 1.05).
The spec is LeNet-5 with its own `train:` section (AdamW, one-cycle, digits), which the hand
loop mirrors.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import netspec
from netspec.training.data import load_data

ROOT = Path(__file__).resolve().parent.parent


def hand_loop(spec: Path, epochs: int, device: torch.device, data_kind: str | None = None
              ) -> list[float]:
    """The loop a person writes by hand: tensors on the device, a random permutation per
    epoch, forward, loss, backward, step, schedule; then an evaluation pass. Returns the
    seconds of each epoch."""
    loaded = netspec.load(spec)
    config = loaded.training
    data = load_data(config.data if data_kind is None else _kind(data_kind, config),
                     loaded.input_shapes()["input"], seed=0, root=spec.parent, classes=10)
    train_x, train_y, val_x, val_y = _tensors(data, device)
    model = netspec.build(loaded, seed=0).to(device)
    o = config.optimizer.options
    optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    batch = config.batch_size
    steps = (len(train_x) + batch - 1) // batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, o.lr, total_steps=epochs * steps)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_x), device=device)
        for i in range(0, len(train_x), batch):
            index = order[i:i + batch]
            loss = F.cross_entropy(model(train_x[index]), train_y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(val_x), batch):
                correct += int((model(val_x[i:i + batch]).argmax(1) == val_y[i:i + batch]).sum())
        seconds.append(time.perf_counter() - start)
    return seconds


def _kind(kind: str, config: Any) -> Any:
    from netspec.training.config import data_from_arg

    return data_from_arg(kind, config.data)


def _tensors(data: Any, device: torch.device) -> tuple[torch.Tensor, ...]:
    """The normalised training and validation tensors, as the hand loop keeps them."""
    parts = []
    for split in ("train", "val"):
        xs, ys = zip(*data.loader(split, 4096, device).epoch(0), strict=True)
        parts += [torch.cat(xs), torch.cat(ys)]
    return tuple(parts)


def netspec_epochs(spec: Path, epochs: int, device: str, data_kind: str | None = None
                   ) -> list[float]:
    """Seconds of each `netspec.train` epoch, from one epoch's end to the next (the first
    from the start of its training)."""
    marks = [time.perf_counter()]
    with tempfile.TemporaryDirectory() as out:
        netspec.train(spec, epochs=epochs, out=Path(out) / "run", device=device, verbose=False,
                      data=data_kind, on_epoch=lambda row: marks.append(time.perf_counter()))
    return [b - a for a, b in itertools.pairwise(marks)]


def cpu(args: argparse.Namespace, folder: Path) -> None:
    # LeNet-5's own `train:` section without augmentation, which the hand loop lacks.
    spec = folder / "lenet5.yaml"
    spec.write_text((ROOT / "specs" / "lenet5.yaml").read_text().replace(
        "data: {digits: {augment: {crop: 2}}}", "data: digits"))
    ours: list[float] = []
    theirs: list[float] = []
    for round_ in range(args.rounds):
        pair = [("netspec", netspec_epochs), ("hand", hand_loop)]
        if round_ % 2:
            pair.reverse()
        for label, run in pair:
            if label == "netspec":
                ours += run(spec, args.epochs, "cpu")[1:]
            else:
                theirs += run(spec, args.epochs, torch.device("cpu"))[1:]
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"{spec.stem} on the CPU ({torch.get_num_threads()} threads), "
          f"{args.rounds} rounds x {args.epochs - 1} timed epochs")
    print(f"  netspec train  {a * 1000:8.1f} ms/epoch")
    print(f"  hand loop      {b * 1000:8.1f} ms/epoch")
    print(f"  ratio netspec/hand  {a / b:.3f}   (target <= 1.05)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cpu(args, Path(folder))


if __name__ == "__main__":
    sys.exit(main())
