"""What a training run writes besides checkpoints: the metrics files, TensorBoard scalars, the
epoch summary line, the PNG plots and the progress bar."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from netspec.training.metrics import COLUMNS, MetricsLog, TensorBoardLog, epoch_line
from netspec.training.plots import plot_confusion, plot_curves
from netspec.training.progress import ProgressBar


def row(epoch: int, loss: float, acc: float | None, **changes: float) -> dict:
    """A metrics row whose floats need full precision to round-trip."""
    values = {"epoch": epoch, "lr": 1e-3 / epoch, "train_loss": loss + 1 / 3, "val_loss": loss + 0.1 + 0.2,
              "train_acc": None if acc is None else acc - 1 / 7, "val_acc": acc,
              "train_ppl": None, "val_ppl": None,
              "images_per_s": 5120.25 * epoch, "seconds": 1.9 + 1 / 9}
    return {**values, **changes}


ROWS = [row(1, 1.0, 0.5), row(2, 0.5, 0.75), row(3, 0.25, 0.875)]
REGRESSION = [row(1, 2.0, None), row(2, 1.5, None)]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    """The header and the rows, cells parsed back: empty is None, epoch an int, the rest floats."""
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        rows = [{key: None if cell == "" else int(cell) if key == "epoch" else float(cell)
                 for key, cell in line.items()} for line in reader]
        return list(reader.fieldnames or []), rows


# --- metrics.jsonl and metrics.csv ---


def test_both_files_round_trip_every_row_exactly(tmp_path):
    with MetricsLog(tmp_path) as log:
        for item in ROWS + REGRESSION:
            log.append(item)
    parsed = read_jsonl(tmp_path / "metrics.jsonl")
    assert parsed == ROWS + REGRESSION
    assert all(list(item) == list(COLUMNS) for item in parsed)
    header, rows = read_csv(tmp_path / "metrics.csv")
    assert header == list(COLUMNS)
    assert rows == ROWS + REGRESSION


def test_none_is_null_in_jsonl_and_an_empty_cell_in_csv(tmp_path):
    with MetricsLog(tmp_path, REGRESSION):
        pass
    assert all(item["train_acc"] is None and item["val_acc"] is None
               for item in read_jsonl(tmp_path / "metrics.jsonl"))
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    cells = next(csv.reader(lines[1:]))
    assert cells[COLUMNS.index("train_acc")] == "" and cells[COLUMNS.index("val_acc")] == ""


def test_each_append_is_on_disk_before_close(tmp_path):
    log = MetricsLog(tmp_path)
    try:
        for count, item in enumerate(ROWS, 1):
            log.append(item)
            assert read_jsonl(tmp_path / "metrics.jsonl") == ROWS[:count]
            assert read_csv(tmp_path / "metrics.csv")[1] == ROWS[:count]
    finally:
        log.close()


def test_reopening_with_a_history_drops_the_later_epochs(tmp_path):
    with MetricsLog(tmp_path) as log:
        for item in ROWS:
            log.append(item)
    redone = row(2, 0.4, 0.8)
    with MetricsLog(tmp_path, ROWS[:1]) as log:
        assert read_jsonl(tmp_path / "metrics.jsonl") == ROWS[:1]
        log.append(redone)
    assert read_jsonl(tmp_path / "metrics.jsonl") == [ROWS[0], redone]
    assert read_csv(tmp_path / "metrics.csv")[1] == [ROWS[0], redone]


def test_numpy_scalars_are_written_as_plain_numbers(tmp_path):
    item = row(np.int64(1), 1.0, 0.5, val_loss=np.float32(0.5), images_per_s=np.float64(10.5))
    with MetricsLog(tmp_path, [item]):
        pass
    written = read_jsonl(tmp_path / "metrics.jsonl")[0]
    assert written["epoch"] == 1 and written["val_loss"] == 0.5 and written["images_per_s"] == 10.5


def test_a_row_missing_a_column_is_refused(tmp_path):
    incomplete = {key: value for key, value in ROWS[0].items() if key != "lr"}
    with MetricsLog(tmp_path) as log, pytest.raises(KeyError):
        log.append(incomplete)


# --- TensorBoard ---


def scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(directory))
    accumulator.Reload()
    return {tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}


def test_tensorboard_holds_each_epochs_scalars(tmp_path):
    log = TensorBoardLog.open(tmp_path)
    assert log is not None
    for item in ROWS[:2]:
        log.append(item)
    log.close()
    read = scalars(tmp_path / "tensorboard")
    keys = {"loss/train": "train_loss", "loss/val": "val_loss", "accuracy/train": "train_acc",
            "accuracy/val": "val_acc", "lr": "lr", "images_per_s": "images_per_s"}
    assert set(read) == set(keys)
    for tag, key in keys.items():
        assert read[tag] == [(item["epoch"], pytest.approx(item[key], rel=1e-6)) for item in ROWS[:2]]


def test_tensorboard_leaves_out_accuracies_that_are_none(tmp_path):
    log = TensorBoardLog.open(tmp_path)
    assert log is not None
    log.append(REGRESSION[0])
    log.close()
    assert set(scalars(tmp_path / "tensorboard")) == {"loss/train", "loss/val", "lr", "images_per_s"}


def test_without_tensorboard_there_is_no_log(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # importing it raises ImportError
    assert TensorBoardLog.open(tmp_path) is None
    assert not (tmp_path / "tensorboard").exists()


# --- the epoch line ---


SUMMARY = {"epoch": 3, "lr": 1e-3, "train_loss": 0.12341, "val_loss": 0.09874, "train_acc": 0.96523,
           "val_acc": 0.97221, "images_per_s": 5120.4, "seconds": 1.94}


def test_the_epoch_line_shows_each_number():
    line = epoch_line(SUMMARY, 20, best=True)
    for text in ("3/20", "train loss 0.1234", "acc 96.52%", "val loss 0.0987", "acc 97.22%", "5,120 img/s",
                 "1.9 s", "lr 1.00e-03"):
        assert text in line, text
    assert line.index("train") < line.index("val") and line.endswith("*best")
    assert "best" not in epoch_line(SUMMARY, 20, best=False)


def test_the_epoch_line_leaves_out_accuracies_that_are_none():
    line = epoch_line({**SUMMARY, "train_acc": None, "val_acc": None}, 20, best=False)
    assert "acc" not in line and "%" not in line
    assert "train loss 0.1234" in line and "val loss 0.0987" in line


@pytest.mark.parametrize("acc", [0.5, None])
def test_epoch_lines_of_different_magnitudes_line_up(acc):
    small = {**SUMMARY, "epoch": 1, "train_acc": acc, "val_acc": acc}
    large = {"epoch": 10, "lr": 0.25, "train_loss": 12.5, "val_loss": 345.678, "train_acc": acc and 1.0,
             "val_acc": acc and 0.031, "images_per_s": 123456.0, "seconds": 612.3}
    lines = [epoch_line(item, 10, best=False) for item in (small, large)]
    assert len(lines[0]) == len(lines[1])
    for field in ("train loss", "val loss", "img/s", " s ", "lr "):
        assert lines[0].index(field) == lines[1].index(field), field


# --- plots ---


def read_png(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.ndim == 3 and image.min() < image.max()  # drawn on, not blank
    return image


def test_curves_have_a_loss_and_an_accuracy_panel(tmp_path):
    figure = plot_curves(ROWS, tmp_path / "curves.png")
    loss, accuracy = figure.axes
    assert [list(line.get_ydata()) for line in loss.get_lines()] == [
        [item["train_loss"] for item in ROWS], [item["val_loss"] for item in ROWS]]
    val_acc = [100 * item["val_acc"] for item in ROWS]
    assert list(accuracy.get_lines()[1].get_ydata()) == pytest.approx(val_acc)
    assert list(loss.get_lines()[0].get_xdata()) == [1, 2, 3]
    assert [text.get_text() for text in loss.get_legend().get_texts()] == ["train", "val"]
    height, width, _ = read_png(tmp_path / "curves.png").shape
    assert width > 2 * height


def test_curves_of_a_regression_have_no_accuracy_panel(tmp_path):
    figure = plot_curves(REGRESSION, tmp_path / "curves.png")
    assert len(figure.axes) == 1
    with_accuracy = read_png(tmp_path / "curves.png").shape[1]
    plot_curves(ROWS, tmp_path / "both.png")
    assert read_png(tmp_path / "both.png").shape[1] > 1.5 * with_accuracy


def test_the_confusion_matrix_shows_counts_recall_and_accuracy(tmp_path):
    matrix = [[5, 1, 0], [2, 7, 1], [0, 0, 4]]
    figure = plot_confusion(matrix, ["cat", "dog", "emu"], tmp_path / "confusion.png")
    axes = figure.axes[0]
    counts = np.array(matrix)
    assert f"{100 * np.trace(counts) / counts.sum():.2f}%" in axes.get_title()
    assert sorted(text.get_text() for text in axes.texts) == sorted(str(n) for n in counts.flat)
    assert [label.get_text() for label in axes.get_yticklabels()] == ["cat", "dog", "emu"]
    recall = [label.get_text() for label in axes.child_axes[0].get_yticklabels()]
    assert recall == [f"{100 * counts[i, i] / counts[i].sum():.1f}%" for i in range(3)]
    read_png(tmp_path / "confusion.png")


def test_a_large_confusion_matrix_is_colour_only(tmp_path):
    n = 40
    matrix = np.eye(n, dtype=int) * 9 + 1
    figure = plot_confusion(matrix.tolist(), [f"class {i}" for i in range(n)], tmp_path / "confusion.png")
    assert not figure.axes[0].texts
    assert f"{100 * np.trace(matrix) / matrix.sum():.2f}%" in figure.axes[0].get_title()
    read_png(tmp_path / "confusion.png")


def test_a_confusion_matrix_must_have_one_row_and_column_per_class(tmp_path):
    with pytest.raises(ValueError, match="3x3"):
        plot_confusion([[1, 2], [3, 4]], ["a", "b", "c"], tmp_path / "confusion.png")


# --- the progress bar ---


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def screen(written: str) -> str:
    """What a terminal line shows after `written`: `\\r` returns to the start, then overwrites."""
    line: list[str] = []
    column = 0
    for char in written:
        if char == "\r":
            column = 0
            continue
        line[column:column + 1] = [char]
        column += 1
    return "".join(line)


def bar(total: int = 100, **options) -> tuple[ProgressBar, io.StringIO, Clock]:
    clock, stream = Clock(), io.StringIO()
    return ProgressBar(total, "train", stream, enabled=True, clock=clock, **options), stream, clock


@pytest.fixture(autouse=True)
def columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")


def test_the_bar_shows_progress_stats_rate_and_eta():
    progress, stream, clock = bar()
    clock.now = 2.0
    progress.update(10, 640, loss=0.12345, acc=0.951)  # 5 steps/s: 90 steps left take 18 s
    shown = screen(stream.getvalue())
    for text in ("train", "10/100", "loss 0.1235", "acc 95.1%", "320 img/s", "ETA 00:18"):
        assert text in shown, text
    assert "[###" in shown


def test_a_long_eta_shows_hours():
    progress, stream, clock = bar(total=10_000)
    clock.now = 1.0
    progress.update(1, 64)
    assert "ETA 2:46:39" in screen(stream.getvalue())


def test_a_resumed_epoch_times_only_this_processes_steps():
    progress, stream, clock = bar(start=50, start_images=3200)
    clock.now = 5.0
    progress.update(60, 3840)  # 10 steps and 640 images in 5 s: 40 steps left take 20 s
    shown = screen(stream.getvalue())
    assert "60/100" in shown and "128 img/s" in shown and "ETA 00:20" in shown


def test_redraws_wait_for_min_interval_but_not_at_the_end():
    progress, stream, clock = bar(min_interval=0.1)
    progress.update(1, 64)
    draws = stream.getvalue().count("\r")
    clock.now = 0.05
    progress.update(2, 128)
    assert stream.getvalue().count("\r") == draws
    clock.now = 0.1
    progress.update(3, 192)
    assert stream.getvalue().count("\r") == draws + 1 and "3/100" in screen(stream.getvalue())
    clock.now = 0.11
    progress.update(100, 6400)
    assert "100/100" in screen(stream.getvalue())


def test_the_line_fits_the_terminal(monkeypatch):
    for columns in (30, 60, 200):
        monkeypatch.setenv("COLUMNS", str(columns))
        progress, stream, clock = bar()
        clock.now = 1.0
        progress.update(50, 3200, loss=0.5, acc=0.5)
        drawn = [part for part in stream.getvalue().split("\r") if part]
        assert drawn and all(len(part) < columns for part in drawn)
        assert ("[" in drawn[0]) == (columns > 60)


def test_a_shorter_redraw_leaves_nothing_of_the_longer_one():
    progress, stream, clock = bar()
    clock.now = 1.0
    progress.update(50, 3200, loss=0.5, acc=0.5)
    clock.now = 2.0
    progress.update(60, 3840)
    assert "acc" not in screen(stream.getvalue())


def test_close_clears_the_line():
    progress, stream, clock = bar()
    with progress:
        clock.now = 1.0
        progress.update(50, 3200, loss=0.5)
        assert screen(stream.getvalue()).strip()
    assert screen(stream.getvalue()).strip() == ""
    assert stream.getvalue().endswith("\r")


def test_a_disabled_bar_writes_nothing():
    stream = io.StringIO()  # not a terminal: disabled by default
    for progress in (ProgressBar(10, "train", stream), ProgressBar(10, "train", stream, enabled=False)):
        progress.update(5, 320, loss=0.5)
        progress.update(10, 640, loss=0.5)
        progress.close()
    assert stream.getvalue() == ""


def test_importing_the_output_modules_imports_neither_torch_nor_matplotlib():
    code = ("import sys, netspec.training.metrics, netspec.training.plots, netspec.training.progress; "
            "print('torch' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
