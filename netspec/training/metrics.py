"""What a run records per epoch: `metrics.jsonl` and `metrics.csv` (appended and flushed after
every epoch, so a crash never loses a finished one), TensorBoard scalars when tensorboard is
installed, and the one summary line printed per epoch. No torch at import time.

An epoch's metrics are a row: a dict with the keys of COLUMNS. The accuracies are fractions
in 0..1, or None for regression losses.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

COLUMNS = ("epoch", "lr", "train_loss", "val_loss", "train_acc", "val_acc", "images_per_s", "seconds")

SCALARS = {"loss/train": "train_loss", "loss/val": "val_loss", "accuracy/train": "train_acc",
           "accuracy/val": "val_acc", "lr": "lr", "images_per_s": "images_per_s"}


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """The row's COLUMNS in order, as plain Python numbers (`epoch` an int, the rest floats or
    None), so numpy and tensor scalars serialise. Other keys are dropped; a missing one raises
    KeyError."""
    out: dict[str, Any] = {"epoch": int(row["epoch"])}
    for key in COLUMNS[1:]:
        out[key] = None if row[key] is None else float(row[key])
    return out


class MetricsLog:
    """`out/metrics.jsonl` and `out/metrics.csv`, rewritten from `history` on opening (a
    resumed run passes the rows up to its checkpoint, dropping any later epochs), then one
    line per `append`, flushed at once. In the CSV, None is an empty cell."""

    def __init__(self, out: Path, history: Sequence[dict[str, Any]] = ()) -> None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = out / "metrics.jsonl"
        self.csv_path = out / "metrics.csv"
        self._jsonl = self.jsonl_path.open("w", encoding="utf-8")
        self._csv_file = self.csv_path.open("w", encoding="utf-8", newline="")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=COLUMNS)
        self._csv.writeheader()
        for row in history:
            self._write(row)
        self._flush()

    def append(self, row: dict[str, Any]) -> None:
        """Record one finished epoch in both files and flush them."""
        self._write(row)
        self._flush()

    def close(self) -> None:
        """Close both files (idempotent)."""
        self._jsonl.close()
        self._csv_file.close()

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def _write(self, row: dict[str, Any]) -> None:
        row = _clean(row)
        self._jsonl.write(json.dumps(row) + "\n")
        self._csv.writerow(row)

    def _flush(self) -> None:
        self._jsonl.flush()
        self._csv_file.flush()


class TensorBoardLog:
    """Per-epoch scalars in `out/tensorboard` (step = epoch): loss/train, loss/val,
    accuracy/train, accuracy/val (fractions; skipped when None), lr and images_per_s."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    @classmethod
    def open(cls, out: Path) -> TensorBoardLog | None:
        """A log writing into `out/tensorboard`, or None when tensorboard is not installed."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        return cls(SummaryWriter(log_dir=str(Path(out) / "tensorboard")))

    def append(self, row: dict[str, Any]) -> None:
        """Write one epoch's scalars and flush them."""
        row = _clean(row)
        for tag, key in SCALARS.items():
            if row[key] is not None:
                self._writer.add_scalar(tag, row[key], global_step=row["epoch"])
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()


def _fixed(value: float, width: int, decimals: int) -> str:
    """`value` right-aligned in `width` characters, with as many of `decimals` decimals as
    fit; scientific notation when even none fit."""
    if math.isfinite(value):
        for places in range(decimals, -1, -1):
            text = f"{value:.{places}f}"
            if len(text) <= width:
                return text.rjust(width)
        return f"{value:.0e}".rjust(width)
    return str(value).rjust(width)


def _split(name: str, loss: float, acc: float | None) -> str:
    text = f"{name} loss {_fixed(loss, 6, 4)}"
    return text if acc is None else f"{text} acc {_fixed(100 * acc, 5, 2)}%"


def epoch_line(row: dict[str, Any], epochs: int, best: bool) -> str:
    """The summary line printed after an epoch, in fixed-width fields so that consecutive
    lines line up:

        epoch  3/20  train loss 0.1234 acc 96.52%  val loss 0.0987 acc 97.22%    5,120 img/s  ...

    The `acc` parts are left out when the accuracy is None; `*best` ends the line of a new
    best epoch."""
    row = _clean(row)
    parts = [
        f"epoch {row['epoch']:>{len(str(epochs))}}/{epochs}",
        _split("train", row["train_loss"], row["train_acc"]),
        _split("val", row["val_loss"], row["val_acc"]),
        f"{row['images_per_s']:>7,.0f} img/s",
        f"{_fixed(row['seconds'], 5, 1)} s",
        f"lr {row['lr']:.2e}",
    ]
    if best:
        parts.append("*best")
    return "  ".join(parts)
