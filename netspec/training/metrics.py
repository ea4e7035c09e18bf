"""What a run records per epoch: `metrics.jsonl` and `metrics.csv` (appended and flushed after
every epoch, so a crash never loses a finished one), TensorBoard scalars when tensorboard is
installed, and the one summary line printed per epoch. No torch at import time.

A metrics file that cannot be written (a full disk) stops the run with a TrainError naming it:
the record must be whole. TensorBoard is optional: its failure is one warning on stderr, and
the run goes on.

An epoch's metrics are a row: a dict with the keys of COLUMNS. The accuracies are fractions
in 0..1, or None for regression losses. The perplexities, exp(mean loss) (`perplexity`), are
those of a language model, None for other tasks; with `label_smoothing` the loss, and so the
perplexity, includes the smoothing term.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from netspec.errors import TrainError

COLUMNS = ("epoch", "lr", "train_loss", "val_loss", "train_acc", "val_acc", "train_ppl", "val_ppl",
           "images_per_s", "seconds")
ADDED = frozenset({"train_ppl", "val_ppl"})
"""Columns added after checkpoints were first written: a row of an older run lacks them (None)."""

SCALARS = {"loss/train": "train_loss", "loss/val": "val_loss", "accuracy/train": "train_acc",
           "accuracy/val": "val_acc", "perplexity/train": "train_ppl", "perplexity/val": "val_ppl",
           "lr": "lr", "images_per_s": "images_per_s"}


def perplexity(loss: float) -> float:
    """exp(`loss`), a mean cross-entropy in nats; inf past what a float holds."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """The row's COLUMNS in order, as plain Python numbers (`epoch` an int, the rest floats or
    None), so numpy and tensor scalars serialise. Other keys are dropped; a missing one raises
    KeyError, but for the ADDED columns (None)."""
    out: dict[str, Any] = {"epoch": int(row["epoch"])}
    for key in COLUMNS[1:]:
        value = row.get(key) if key in ADDED else row[key]
        out[key] = None if value is None else float(value)
    return out


class MetricsLog:
    """`out/metrics.jsonl` and `out/metrics.csv`, rewritten from `history` on opening (a
    resumed run passes the rows up to its checkpoint, dropping any later epochs), then one
    line per `append`, flushed at once. In the CSV, None is an empty cell.

    Raises TrainError naming the file when one cannot be written; a resumed run rewrites both
    from its checkpoint, so nothing the checkpoint holds is lost."""

    def __init__(self, out: Path, history: Sequence[dict[str, Any]] = ()) -> None:
        out = Path(out)
        self.jsonl_path = out / "metrics.jsonl"
        self.csv_path = out / "metrics.csv"
        self._jsonl: IO[str] | None = None
        self._csv_file: IO[str] | None = None
        self._failed = False
        try:
            with self._writing(out):
                out.mkdir(parents=True, exist_ok=True)
            with self._writing(self.jsonl_path):
                self._jsonl = self.jsonl_path.open("w", encoding="utf-8")
            with self._writing(self.csv_path):
                self._csv_file = self.csv_path.open("w", encoding="utf-8", newline="")
                self._csv = csv.DictWriter(self._csv_file, fieldnames=COLUMNS)
                self._csv.writeheader()
            for row in history:
                self._write(row)
            self._flush()
        except TrainError:
            self.close()
            raise

    def append(self, row: dict[str, Any]) -> None:
        """Record one finished epoch in both files and flush them."""
        self._write(row)
        self._flush()

    def close(self) -> None:
        """Close both files (idempotent). What could not be written after a failure already
        raised is dropped quietly."""
        failed, error = self._failed, None
        for path, stream in ((self.jsonl_path, self._jsonl), (self.csv_path, self._csv_file)):
            if stream is not None and not stream.closed:
                try:
                    with self._writing(path):
                        stream.close()
                except TrainError as exc:
                    error = error or exc
        if error is not None and not failed:
            raise error

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def _write(self, row: dict[str, Any]) -> None:
        row = _clean(row)
        with self._writing(self.jsonl_path):
            self._jsonl.write(json.dumps(row) + "\n")  # type: ignore[union-attr]
        with self._writing(self.csv_path):
            self._csv.writerow(row)

    def _flush(self) -> None:
        with self._writing(self.jsonl_path):
            self._jsonl.flush()  # type: ignore[union-attr]
        with self._writing(self.csv_path):
            self._csv_file.flush()  # type: ignore[union-attr]

    @contextmanager
    def _writing(self, path: Path) -> Iterator[None]:
        """An OSError inside becomes the TrainError naming `path`."""
        try:
            yield
        except OSError as exc:
            self._failed = True
            raise TrainError(f"cannot write {path}: {exc.strerror or exc}; training stopped "
                             f"(a resumed run rewrites the metrics from its checkpoint)") from None


class TensorBoardLog:
    """Per-epoch scalars in `out/tensorboard` (step = epoch): loss/train, loss/val,
    accuracy/train, accuracy/val (fractions; skipped when None), lr and images_per_s.

    TensorBoard is optional, so a write that fails (a full disk) prints one warning on stderr
    and turns this log off; the run goes on, with metrics.jsonl and metrics.csv as its record."""

    def __init__(self, writer: Any, folder: Path) -> None:
        self._writer: Any = writer
        self.folder = folder

    @classmethod
    def open(cls, out: Path) -> TensorBoardLog | None:
        """A log writing into `out/tensorboard`, or None when tensorboard is not installed or
        the folder cannot be written (with a warning)."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        folder = Path(out) / "tensorboard"
        _quiet_tensorboard_threads()
        try:
            return cls(SummaryWriter(log_dir=str(folder)), folder)
        except Exception as exc:
            _warn_tensorboard(folder, exc)
            return None

    def append(self, row: dict[str, Any]) -> None:
        """Write one epoch's scalars and flush them."""
        row = _clean(row)
        if self._writer is None:
            return
        try:
            for tag, key in SCALARS.items():
                if row[key] is not None:
                    self._writer.add_scalar(tag, row[key], global_step=row["epoch"])
            self._writer.flush()
        except Exception as exc:
            self._stop(exc)

    def close(self) -> None:
        """Flush and close the event file."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception as exc:
                self._stop(exc)

    def _stop(self, exc: Exception) -> None:
        writer, self._writer = self._writer, None
        _warn_tensorboard(self.folder, exc)
        with suppress(Exception):  # the warning said it all
            writer.close()


def _quiet_tensorboard_threads() -> None:
    """Keep `threading.excepthook` from printing a traceback when tensorboard's writer thread
    dies of a failed write: the writer raises that error again at the next flush, where
    TensorBoardLog turns it into its warning. Other threads' exceptions go to the hook that was
    there before; installed once per process."""
    global _previous_excepthook
    if threading.excepthook is _quiet_excepthook:
        return
    _previous_excepthook = threading.excepthook
    threading.excepthook = _quiet_excepthook


def _quiet_excepthook(args: threading.ExceptHookArgs) -> None:
    if not type(args.thread).__module__.startswith("tensorboard."):
        _previous_excepthook(args)


_previous_excepthook = threading.excepthook


def _warn_tensorboard(folder: Path, exc: Exception) -> None:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
    print(f"warning: TensorBoard logging stopped: cannot write {folder}: {reason}; "
          f"metrics.jsonl and metrics.csv still record every epoch", file=sys.stderr)


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


def _split(name: str, loss: float, acc: float | None, ppl: float | None) -> str:
    text = f"{name} loss {_fixed(loss, 6, 4)}"
    text = text if acc is None else f"{text} acc {_fixed(100 * acc, 5, 2)}%"
    return text if ppl is None else f"{text} ppl {_fixed(ppl, 6, 2)}"


def epoch_line(row: dict[str, Any], epochs: int, best: bool) -> str:
    """The summary line printed after an epoch, in fixed-width fields so that consecutive
    lines line up:

        epoch  3/20  train loss 0.1234 acc 96.52%  val loss 0.0987 acc 97.22%    5,120 img/s  ...

    The `acc` parts are left out when the accuracy is None, the `ppl` parts (perplexity)
    when it is None; `*best` ends the line of a new best epoch."""
    row = _clean(row)
    parts = [
        f"epoch {row['epoch']:>{len(str(epochs))}}/{epochs}",
        _split("train", row["train_loss"], row["train_acc"], row["train_ppl"]),
        _split("val", row["val_loss"], row["val_acc"], row["val_ppl"]),
        f"{row['images_per_s']:>7,.0f} img/s",
        f"{_fixed(row['seconds'], 5, 1)} s",
        f"lr {row['lr']:.2e}",
    ]
    if best:
        parts.append("*best")
    return "  ".join(parts)
