"""PNG plots of a run: the training curves and the confusion matrix.

matplotlib is imported inside the functions. Figures are made with `matplotlib.figure.Figure`
on an Agg canvas, never through pyplot: no display is needed, the process's backend is left
alone and nothing stays registered (there is no figure to close). Each function returns its
Figure after saving it, for callers and tests to inspect.

A plot is rendered in memory, then written atomically (a temporary file renamed over the
PNG), so a full disk leaves no half-written PNG, and the TrainError that reports it names
the file.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netspec.errors import TrainError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LABELLED_CELLS = 30  # up to this many classes, the counts are written in the cells
LABELLED_TICKS = 100  # up to this many classes, the ticks carry the class names


def _figure(width: float, height: float) -> Figure:
    """A Figure drawn by the Agg backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> None:
    """Write `figure` as a PNG at `path`, atomically. Raises TrainError naming `path` when the
    file cannot be written; at that point of a run the checkpoints and metrics are on disk."""
    path = Path(path)
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=100)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # open(): the umask's mode
    try:
        with open(temp, "wb") as stream:
            stream.write(image.getbuffer())
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise TrainError(f"cannot write {path}: {exc.strerror or exc}; the checkpoints and "
                         f"metrics are complete") from None


def _series(history: Sequence[dict[str, Any]], key: str, scale: float = 1.0) -> list[float]:
    """One column of the history, None as NaN (a gap in the line)."""
    return [float("nan") if row[key] is None else scale * row[key] for row in history]


def _panel(axes: Axes, epochs: list[int], train: list[float], val: list[float], ylabel: str) -> None:
    from matplotlib.ticker import MaxNLocator

    axes.plot(epochs, train, marker="o", markersize=3, label="train")
    axes.plot(epochs, val, marker="o", markersize=3, label="val")
    axes.set_title(ylabel)
    axes.set_xlabel("epoch")
    axes.set_ylabel(ylabel)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(True, alpha=0.3)
    axes.legend()


def plot_curves(history: Sequence[dict[str, Any]], path: Path, title: str = "Training curves") -> Figure:
    """Save the loss (train and val) and, when any accuracy is recorded, the accuracy in %
    side by side against the epoch, as a PNG at `path`."""
    epochs = [int(row["epoch"]) for row in history]
    accuracy = any(row[key] is not None for row in history for key in ("train_acc", "val_acc"))
    figure = _figure(10 if accuracy else 5.5, 4)
    panels = figure.subplots(1, 2 if accuracy else 1, squeeze=False)[0]
    _panel(panels[0], epochs, _series(history, "train_loss"), _series(history, "val_loss"), "loss")
    if accuracy:
        _panel(panels[1], epochs, _series(history, "train_acc", 100), _series(history, "val_acc", 100),
               "accuracy (%)")
    figure.suptitle(title)
    _save(figure, path)
    return figure


def _accuracy_text(correct: int, total: int) -> str:
    if total == 0:
        return "no samples"
    return f"accuracy {100 * correct / total:.2f}% ({correct:,}/{total:,})"


def _write_counts(axes: Axes, counts: Any, shade: Any) -> None:
    """Each cell's count, white on dark cells; small counts in small print for many classes."""
    n = len(counts)
    size = 10 if n <= 10 else 7 if n <= 20 else 5
    for i in range(n):
        for j in range(n):
            colour = "white" if shade[i, j] > 0.5 else "black"
            axes.text(j, i, f"{counts[i, j]:,}", ha="center", va="center", fontsize=size, color=colour)


def _label_ticks(axes: Axes, classes: Sequence[str], recall: Any) -> None:
    """Class names on both axes, and each true class's recall on the right."""
    n = len(classes)
    ticks = list(range(n))
    size = 10 if n <= 20 else 8 if n <= 50 else 6
    rotate = n > 10 or max(map(len, classes), default=0) > 3
    axes.set_xticks(ticks, labels=list(classes), fontsize=size, rotation=45 if rotate else 0,
                    ha="right" if rotate else "center", rotation_mode="anchor")
    axes.set_yticks(ticks, labels=list(classes), fontsize=size)
    right = axes.secondary_yaxis("right")
    labels = ["–" if math.isnan(r) else f"{100 * r:.1f}%" for r in recall]
    right.set_yticks(ticks, labels=labels, fontsize=size)
    right.set_ylabel("recall")


def plot_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: Path,
                   title: str = "Confusion matrix") -> Figure:
    """Save a confusion matrix (rows: true class, columns: predicted class) as a PNG at `path`.

    Cells are shaded by the fraction of their true class (so rare classes show as clearly as
    common ones), with the counts written in for up to LABELLED_CELLS classes; the title gives
    the overall accuracy, trace over sum. ValueError when the matrix is not square or does not
    have one row per class."""
    import numpy as np

    counts = np.asarray(matrix, dtype=np.int64)
    n = len(classes)
    if counts.shape != (n, n):
        raise ValueError(f"a confusion matrix for {n} classes must be {n}x{n}, not "
                         f"{'x'.join(map(str, counts.shape))}")
    totals = counts.sum(axis=1, keepdims=True)
    shade = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    recall = np.divide(np.diag(counts), totals[:, 0], out=np.full(n, np.nan), where=totals[:, 0] > 0)
    side = min(4 + 0.4 * n, 20)
    figure = _figure(side + 1.5, side)
    axes = figure.subplots()
    image = axes.imshow(shade, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, shrink=0.8, label="fraction of the true class")
    if n <= LABELLED_CELLS:
        _write_counts(axes, counts, shade)
    if n <= LABELLED_TICKS:
        _label_ticks(axes, classes, recall)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(f"{title}: {_accuracy_text(int(np.trace(counts)), int(counts.sum()))}")
    _save(figure, path)
    return figure
