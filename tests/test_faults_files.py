"""Checkpoints and output files under faults (issue 14): a disk that fills at any stage of a
write, a write killed midway, a flipped byte, a hand-made checkpoint; metrics, plots and
TensorBoard on a full disk. Each ends in a clear error naming the file (a warning for
TensorBoard), no temporary file, and the previous checkpoint whole."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from netspec.cli import main
from netspec.errors import TrainError
from netspec.training import checkpoints, metrics, plots
from netspec.training.checkpoints import CheckpointError

FULL = os.strerror(errno.ENOSPC)  # "No space left on device"
TORCH_SHORT_WRITE = "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"
"""What torch 2.13's zip writer raised when a tmpfs filled up under it (a RuntimeError)."""

ROW = {"epoch": 1, "lr": 1e-3, "train_loss": 2.0, "val_loss": 2.1, "train_acc": 0.2,
       "val_acc": 0.25, "images_per_s": 100.0, "seconds": 1.5}


def complete_state(epoch: int = 1) -> dict[str, Any]:
    """A checkpoint dict with every key the training loop reads, from a real model and
    optimizer after one step (as `Trainer._state` makes it, without training)."""
    torch.manual_seed(epoch)
    model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(4, 8)).sum().backward()
    optimizer.step()
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return {"format": 1, "spec": {"name": "tiny", "text": "name: tiny\n", "hash": "0" * 64},
            "config": {"epochs": 3, "batch_size": 8, "device": "cpu"}, "epoch": epoch,
            "step": 0, "partial": {}, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict(),
            "scaler": {}, "rng": [checkpoints.rng_states()],
            "history": [dict(ROW, epoch=e) for e in range(1, epoch + 1)],
            "best": {"metric": "val_acc", "value": 0.25, "epoch": 1},
            "data": {"mean": [0.5], "std": [0.25], "classes": ["a", "b", "c"]}}


def same(a: Any, b: Any) -> bool:
    """Deep equality of checkpoint states (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and torch.equal(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


def temporary_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def previous(tmp_path: Path) -> Path:
    """A run folder whose last.pt and best.pt hold epoch 1."""
    checkpoints.save(complete_state(1), tmp_path / "last.pt")
    checkpoints.copy(tmp_path / "last.pt", tmp_path / "best.pt")
    return tmp_path


def assert_kept(folder: Path, message: str, target: str = "last.pt") -> None:
    """The message names the file and why; no temporary file; both checkpoints still epoch 1."""
    assert f"cannot write checkpoint {folder / target}: " in message
    assert message.endswith("; the previous one is unchanged")
    assert temporary_files(folder) == []
    for name in ("last.pt", "best.pt"):
        assert same(checkpoints.load(folder / name), complete_state(1))


# -- a checkpoint write that fails, stage by stage ---------------------------------------------


class _FullStream(io.FileIO):
    """A file that takes `room` bytes, then fails as a full disk does."""

    room = 4096

    def write(self, data: Any) -> int:
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, FULL)
        return super().write(data)


def _no_room(stage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `stage` of a checkpoint write fail as on a full disk."""
    def torch_runtime_error(state: Any, stream: Any, *args: Any, **kwargs: Any) -> None:
        stream.write(b"PK\x03\x04 half a record")
        raise RuntimeError(TORCH_SHORT_WRITE)

    def enospc(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, FULL)

    def fdopen_full(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        return io.BufferedWriter(_FullStream(fd, "wb"))

    if stage == "torch.save RuntimeError":
        monkeypatch.setattr(torch, "save", torch_runtime_error)
        monkeypatch.setattr(os, "statvfs", lambda folder: os.statvfs_result((4096,) * 2 + (0,) * 8))
    elif stage == "torch.save OSError":
        monkeypatch.setattr(torch, "save", enospc)
    elif stage == "file write":
        monkeypatch.setattr(os, "fdopen", fdopen_full)
    else:  # os.fsync, os.replace, tempfile.mkstemp
        module, name = stage.rsplit(".", 1)
        monkeypatch.setattr(sys.modules[module], name, enospc)


@pytest.mark.parametrize("stage", ["tempfile.mkstemp", "torch.save RuntimeError",
                                   "torch.save OSError", "file write", "os.fsync", "os.replace"])
def test_a_full_disk_at_any_stage_of_save_keeps_the_previous_checkpoint(
        previous: Path, stage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        _no_room(stage, patch)
        with pytest.raises(CheckpointError) as err:
            checkpoints.save(complete_state(2), previous / "last.pt")
    assert f": {FULL};" in str(err.value)
    assert_kept(previous, str(err.value))


def test_torch_s_own_error_is_given_when_the_disk_is_not_full(
        previous: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(state: Any, stream: Any, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(TORCH_SHORT_WRITE + "\nmore lines of C++")

    monkeypatch.setattr(torch, "save", fails)
    with pytest.raises(CheckpointError) as err:
        checkpoints.save(complete_state(2), previous / "last.pt")
    assert f": {TORCH_SHORT_WRITE};" in str(err.value)
    monkeypatch.undo()
    assert_kept(previous, str(err.value))


@pytest.mark.parametrize("stage", ["link and copy", "os.replace"])
def test_a_full_disk_while_copying_to_best_keeps_the_previous_best(
        previous: Path, stage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def enospc(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, FULL)

    if stage == "link and copy":
        monkeypatch.setattr(os, "link", enospc)
        monkeypatch.setattr(shutil, "copyfile", enospc)
    else:
        monkeypatch.setattr(os, "replace", enospc)
    with pytest.raises(CheckpointError) as err:
        checkpoints.copy(previous / "last.pt", previous / "best.pt")
    monkeypatch.undo()
    assert f": {FULL};" in str(err.value)
    assert_kept(previous, str(err.value), target="best.pt")


def test_the_writer_reports_every_failure_and_goes_on(previous: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed write is raised by the next wait(), a bug as much as a full disk; the thread
    never dies with a traceback of its own, and a later write succeeds."""
    hooked: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", hooked.append)
    writer = checkpoints.Writer()
    with monkeypatch.context() as patch:
        _no_room("torch.save RuntimeError", patch)
        writer.submit(complete_state(2), previous / "last.pt", (previous / "best.pt",))
        with pytest.raises(CheckpointError) as err:
            writer.wait()
    assert f": {FULL};" in str(err.value)
    with monkeypatch.context() as patch:
        patch.setattr(checkpoints, "save", lambda state, path: [][0])
        writer.submit(complete_state(2), previous / "last.pt")
        with pytest.raises(CheckpointError, match=r"cannot write checkpoint .*last\.pt: "
                                                  r"IndexError: list index out of range"):
            writer.wait()
    writer.wait()  # reported once
    assert_kept(previous, str(err.value))
    writer.submit(complete_state(2), previous / "last.pt", (previous / "best.pt",))
    writer.wait()
    assert checkpoints.load(previous / "best.pt")["epoch"] == 2
    assert hooked == []


@pytest.mark.skipif(not hasattr(torch.serialization, "set_crc32_options"),
                    reason="this torch cannot turn CRC-32s off")
def test_checkpoints_carry_crcs_even_when_a_program_turned_them_off(tmp_path: Path) -> None:
    torch.serialization.set_crc32_options(False)
    try:
        checkpoints.save(complete_state(1), tmp_path / "last.pt")
        assert torch.serialization.get_crc32_options() is False
    finally:
        torch.serialization.set_crc32_options(True)
    with zipfile.ZipFile(tmp_path / "last.pt") as archive:
        assert all(record.CRC != 0 for record in archive.infolist() if record.file_size)
    assert same(checkpoints.load(tmp_path / "last.pt"), complete_state(1))


# -- a real full disk: a small tmpfs -----------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs, where this machine lets us mount one (root on Linux)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root on Linux; the injected faults above "
                    "cover the same failures")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, leave: int = 0) -> None:
    """Fill the file system holding `folder` until `leave` bytes (rounded to pages) are free."""
    with open(folder / "filler", "wb") as stream, contextlib.suppress(OSError):
        while True:
            stats = os.statvfs(folder)
            free = stats.f_bavail * stats.f_frsize - leave
            if free <= 0:
                break
            stream.write(b"\0" * min(free, 1 << 16))
            stream.flush()


def test_a_real_full_disk_keeps_the_previous_checkpoint(small_disk: Path) -> None:
    checkpoints.save(complete_state(1), small_disk / "last.pt")
    checkpoints.copy(small_disk / "last.pt", small_disk / "best.pt")
    big = dict(complete_state(2), partial={"loss": torch.zeros(()), "correct": torch.zeros(()),
                                           "samples": 1, "units": 1, "ballast": torch.ones(600_000)})
    with pytest.raises(CheckpointError) as err:
        checkpoints.save(big, small_disk / "last.pt")
    assert f": {FULL};" in str(err.value)
    assert_kept(small_disk, str(err.value))


def test_a_real_full_disk_stops_metrics_with_their_file_named(small_disk: Path) -> None:
    log = metrics.MetricsLog(small_disk, [ROW])
    fill(small_disk)
    with pytest.raises(TrainError) as err:
        for epoch in range(2, 1000):  # the first rows fit in the file's last page
            log.append(dict(ROW, epoch=epoch))
    log.close()
    assert str(err.value).startswith(f"cannot write {small_disk / 'metrics.jsonl'}: {FULL}")
    with pytest.raises(TrainError, match=f"cannot write {small_disk / 'curves.png'}: {FULL}"):
        plots.plot_curves([ROW], small_disk / "curves.png")
    assert not (small_disk / "curves.png").exists() and temporary_files(small_disk) == []


# -- metrics, plots and TensorBoard ------------------------------------------------------------


def test_metrics_that_cannot_be_opened_name_the_file(tmp_path: Path) -> None:
    """/dev/full: a real ENOSPC from the kernel on the first flush."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    (tmp_path / "metrics.csv").symlink_to("/dev/full")
    with pytest.raises(TrainError) as err:
        metrics.MetricsLog(tmp_path, [ROW])
    assert str(err.value) == (f"cannot write {tmp_path / 'metrics.csv'}: {FULL}; training stopped "
                              f"(a resumed run rewrites the metrics from its checkpoint)")


def test_metrics_that_fill_the_disk_mid_run_name_the_file(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = Path.open
    full = {"now": False}

    class Filling(io.TextIOWrapper):
        def write(self, text: str) -> int:
            if full["now"]:
                raise OSError(errno.ENOSPC, FULL)
            return super().write(text)

    def opening(path: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        stream = real_open(path, mode.replace("w", "wb") if "w" in mode else mode)
        return Filling(stream, encoding="utf-8", newline=kwargs.get("newline"))

    with monkeypatch.context() as patch:
        patch.setattr(Path, "open", opening)
        log = metrics.MetricsLog(tmp_path, [ROW])
    log.append(dict(ROW, epoch=2))
    full["now"] = True
    with pytest.raises(TrainError, match=f"cannot write {tmp_path / 'metrics.jsonl'}: {FULL}"):
        log.append(dict(ROW, epoch=3))
    log.close()  # the failure was reported: closing says nothing more
    assert [line[:11] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [
        '{"epoch": 1', '{"epoch": 2']


@pytest.mark.parametrize("plot", ["curves", "confusion"])
@pytest.mark.parametrize("fault", ["folder missing", "rename fails"])
def test_a_plot_that_cannot_be_written_names_the_file(tmp_path: Path, plot: str, fault: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "gone" if fault == "folder missing" else tmp_path
    target = folder / f"{plot}.png"
    if fault == "rename fails":
        target.write_bytes(b"the previous plot")

        def enospc(*args: Any) -> None:
            raise OSError(errno.ENOSPC, FULL)

        monkeypatch.setattr(os, "replace", enospc)
    with pytest.raises(TrainError) as err:
        if plot == "curves":
            plots.plot_curves([ROW, dict(ROW, epoch=2)], target)
        else:
            plots.plot_confusion([[3, 1], [0, 4]], ["a", "b"], target)
    reason = FULL if fault == "rename fails" else os.strerror(errno.ENOENT)
    assert str(err.value) == (f"cannot write {target}: {reason}; the checkpoints and metrics "
                              f"are complete")
    if fault == "rename fails":
        assert target.read_bytes() == b"the previous plot"
        assert temporary_files(tmp_path) == []


def test_a_plot_is_still_a_png_when_all_goes_well(tmp_path: Path) -> None:
    plots.plot_curves([ROW], tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert temporary_files(tmp_path) == []


def test_tensorboard_failing_in_its_own_thread_is_one_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.summary.writer import record_writer

    hooked: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", hooked.append)
    log = metrics.TensorBoardLog.open(tmp_path)
    assert log is not None

    def enospc(self: Any, data: bytes) -> None:
        raise OSError(errno.ENOSPC, FULL)

    monkeypatch.setattr(record_writer.RecordWriter, "write", enospc)  # runs in tensorboard's thread
    for epoch in range(1, 4):
        log.append(dict(ROW, epoch=epoch))
    log.close()
    err = capsys.readouterr().err
    assert err == (f"warning: TensorBoard logging stopped: cannot write {tmp_path / 'tensorboard'}: "
                   f"{FULL}; metrics.jsonl and metrics.csv still record every epoch\n")
    assert hooked == []  # the thread's death printed no traceback


# -- loading: damaged and hand-made checkpoints ------------------------------------------------


def _record_spans(data: bytes) -> dict[str, range]:
    """Each zip record's stored bytes, by name."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        spans = {}
        for record in archive.infolist():
            name_length, extra_length = (int.from_bytes(data[record.header_offset + at:
                                                             record.header_offset + at + 2], "little")
                                         for at in (26, 28))
            start = record.header_offset + 30 + name_length + extra_length
            spans[record.filename] = range(start, start + record.compress_size)
        return spans


def _flip_positions(data: bytes, spread: int, metadata: int) -> list[int]:
    """The first and last byte of each zip record, `spread` positions spread over the file
    and every `metadata`th byte outside the records (headers, padding, the directory; none
    for 0)."""
    spans = _record_spans(data).values()
    inside = {p for span in spans for p in span}
    chosen = {p for span in spans if span for p in (span[0], span[-1])}
    chosen |= set(range(0, len(data), max(1, len(data) // spread)))
    if metadata:
        chosen |= set(sorted(set(range(len(data))) - inside)[::metadata])
    return sorted(chosen)


def _flip(good: bytes, position: int, path: Path) -> None:
    data = bytearray(good)
    data[position] ^= 0xFF
    path.write_bytes(data)


@pytest.mark.parametrize("metadata", [0, pytest.param(3, marks=pytest.mark.slow)])
def test_a_flipped_byte_anywhere_is_refused_or_harmless(tmp_path: Path, metadata: int) -> None:
    """Flips spread over the file (and, in the slow tier, at every third byte of the zip's
    own structures): each is refused with a CheckpointError, or (zip metadata torch does not
    use) loads the very same state; none inside a record loads. (Every byte of a 26 KB
    checkpoint was flipped once by hand, 102 s: the same held.)"""
    checkpoints.save(complete_state(1), tmp_path / "last.pt")
    good = (tmp_path / "last.pt").read_bytes()
    original = checkpoints.load(tmp_path / "last.pt")
    inside = {p for span in _record_spans(good).values() for p in span}
    bad = tmp_path / "flipped.pt"
    harmless = []
    positions = _flip_positions(good, 300 if metadata else 100, metadata)
    assert len(positions) > (1000 if metadata else 100)
    for position in positions:
        _flip(good, position, bad)
        try:
            state = checkpoints.load(bad)
        except CheckpointError as exc:
            assert str(bad) in str(exc)
            continue
        assert same(state, original), position
        harmless.append(position)
    assert not inside & set(harmless)


def test_a_flipped_byte_in_a_tensor_names_the_tensor(tmp_path: Path) -> None:
    state = complete_state(1)
    checkpoints.save(state, tmp_path / "last.pt")
    good = (tmp_path / "last.pt").read_bytes()
    spans = _record_spans(good)
    # the model's first weight is the first tensor pickled: its bytes are record data/0
    data0 = next(span for name, span in spans.items() if name.endswith("/data/0"))
    assert len(data0) == state["model"]["0.weight"].numel() * 4
    for position in (data0[0], data0[len(data0) // 2], data0[-1]):
        _flip(good, position, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError) as err:
            checkpoints.load(tmp_path / "bad.pt")
        assert str(err.value) == (f"checkpoint {tmp_path / 'bad.pt'} is damaged: tensor "
                                  f"`model.0.weight` fails its checksum")
    pickle = next(span for name, span in spans.items() if name.endswith("/data.pkl"))
    _flip(good, pickle[len(pickle) // 2], tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"is damaged: record `[^`]*/data\.pkl` fails its "
                                              r"checksum"):
        checkpoints.load(tmp_path / "bad.pt")


def test_a_record_marked_as_a_folder_is_refused(tmp_path: Path) -> None:
    """torch's reader reads no bytes for a record whose DOS attributes say `folder`: the
    tensor would hold whatever memory held (found by flipping every byte of a checkpoint)."""
    checkpoints.save(complete_state(1), tmp_path / "last.pt")
    good = (tmp_path / "last.pt").read_bytes()
    directory = good.index(b"PK\x01\x02")  # the first entry of the central directory
    data = bytearray(good)
    data[directory + 38] |= 0x10  # its external attributes
    (tmp_path / "bad.pt").write_bytes(data)
    with pytest.raises(CheckpointError, match=r"is damaged: record `[^`]*` is marked as a folder"):
        checkpoints.load(tmp_path / "bad.pt")


@pytest.mark.parametrize("key", ["spec", "config", "epoch", "step", "partial", "model",
                                 "optimizer", "scheduler", "scaler", "rng", "history", "best",
                                 "data"])
def test_a_checkpoint_missing_a_key_is_refused(tmp_path: Path, key: str) -> None:
    state = complete_state(1)
    del state[key]
    torch.save(state, tmp_path / "hand.pt")
    with pytest.raises(CheckpointError) as err:
        checkpoints.load(tmp_path / "hand.pt")
    assert str(err.value) == (f"{tmp_path / 'hand.pt'} is not a complete netspec checkpoint: "
                              f"missing `{key}`")


def _set(state: Any, where: tuple[Any, ...], value: Any) -> None:
    """Set the value at a path of keys (`("rng", 0, "torch")`), or delete it for DELETE."""
    *parents, last = where
    for key in parents:
        state = state[key]
    if value is DELETE:
        del state[last]
    else:
        state[last] = value


DELETE = object()

WRONG = [
    (("epoch",), "x", "`epoch` must be a non-negative integer, found 'x'"),
    (("epoch",), -1, "`epoch` must be a non-negative integer, found -1"),
    (("step",), True, "`step` must be a non-negative integer, found True"),
    (("spec", "hash"), 7, "`spec.hash` must be text, found 7"),
    (("spec", "name"), DELETE, "missing `spec.name`"),
    (("config",), [], "`config` must be a dict (the `train:` section), found []"),
    (("config", "epochs"), "many", "`config` is not a valid `train:` section: epochs: Input should be "
                              "a valid integer"),
    (("partial",), {"loss": 1.0}, "`partial.loss` must be a float tensor of one value, found 1.0"),
    (("model",), [1, 2], "`model` must be a dict (a state_dict), found [1, 2]"),
    (("model", "0.weight"), [1.0], "`model.0.weight` must be a tensor, found [1.0]"),
    (("optimizer", "param_groups"), DELETE, "missing `optimizer.param_groups`"),
    (("optimizer", "param_groups"), {"lr": 1}, "`optimizer.param_groups` must be a list of parameter "
                                          "groups, found {'lr': 1}"),
    (("scheduler",), None, "`scheduler` must be a dict (a state_dict), found None"),
    (("rng",), [], "`rng` must be a list of generator states, one per process, found []"),
    (("rng", 0, "torch"), b"123", "`rng[0].torch` is not a state of the torch random generator, "
                            "found b'123'"),
    (("rng", 0, "torch"), 5056, "`rng[0].torch` must be bytes, found 5056"),
    (("rng", 0, "python"), "x", "`rng[0].python` is not a state of the python random generator, "
                          "found 'x'"),
    (("rng", 0, "numpy"), DELETE, "missing `rng[0].numpy`"),
    (("history", 0, "lr"), DELETE, "missing `history[0].lr`"),
    (("history", 0, "val_loss"), "low", "`history[0].val_loss` must be a number or None, found 'low'"),
    (("best", "metric"), "speed", "`best.metric` must be a metrics column, found 'speed'"),
    (("data", "classes"), "abc", "`data.classes` must be a list of class names, found 'abc'"),
]


@pytest.mark.parametrize(("where", "value", "message"), WRONG,
                         ids=[f"{'.'.join(map(str, w))}={v!r}"[:40] for w, v, _ in WRONG])
def test_a_hand_made_checkpoint_with_a_wrong_value_is_refused(tmp_path: Path,
                                                               where: tuple[Any, ...],
                                                               value: Any, message: str) -> None:
    state = complete_state(1)
    _set(state, where, value)
    torch.save(state, tmp_path / "hand.pt")
    with pytest.raises(CheckpointError) as err:
        checkpoints.load(tmp_path / "hand.pt")
    kind = "complete" if message.startswith("missing") else "valid"
    assert str(err.value) == f"{tmp_path / 'hand.pt'} is not a {kind} netspec checkpoint: {message}"


def test_resuming_a_hand_made_checkpoint_is_exit_1_with_the_message(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text("name: tiny\ninput: [1, 8, 8]\nlayers:\n  - flatten\n  - linear: 10\n")
    state = complete_state(1)
    del state["optimizer"]
    torch.save(state, tmp_path / "hand.pt")
    result = CliRunner().invoke(main, ["train", str(spec), "--resume", str(tmp_path / "hand.pt"),
                                       "-q"])
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(f"{tmp_path / 'hand.pt'} is not a complete netspec "
                                          f"checkpoint: missing `optimizer`")
    assert "Traceback" not in result.output


# -- a write killed midway ---------------------------------------------------------------------


def test_remove_temporary_removes_exactly_netspec_s_temporary_checkpoints(tmp_path: Path) -> None:
    ours = [".last.pt.k3j_x9a2.tmp", ".best.pt.12345.tmp"]
    others = ["last.pt", "best.pt", ".netspec-run", "metrics.jsonl", "notes.tmp", ".last.pt.tmp",
              "last.pt.abc.tmp", ".curves.png.123.tmp", ".last.pt.ABC.tmp", ".last.pt.x.tmp.bak"]
    for name in ours + others:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".last.pt.folder.tmp").mkdir()
    removed = checkpoints.remove_temporary(tmp_path)
    assert sorted(p.name for p in removed) == sorted(ours)
    assert all(p.parent == tmp_path for p in removed)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*others, ".last.pt.folder.tmp"])
    assert checkpoints.remove_temporary(tmp_path) == []


WRITER = """
import sys, torch
from pathlib import Path
from netspec.training import checkpoints
checkpoints.save({"ballast": torch.ones(50_000_000)}, Path(sys.argv[1]))  # 200 MB
"""


@pytest.mark.slow
def test_a_write_killed_midway_leaves_the_previous_checkpoint_and_a_temporary_file(
        previous: Path) -> None:
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(previous / "last.pt")])
    try:
        deadline = time.monotonic() + 60
        while not temporary_files(previous):
            assert writer.poll() is None and time.monotonic() < deadline, "no write to kill"
            time.sleep(0.001)
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    left = temporary_files(previous)
    assert len(left) == 1 and left[0].startswith(".last.pt.")
    assert same(checkpoints.load(previous / "last.pt"), complete_state(1))
    assert [p.name for p in checkpoints.remove_temporary(previous)] == left
    assert sorted(p.name for p in previous.iterdir()) == ["best.pt", "last.pt"]


# -- end to end: `netspec train` whose checkpoint cannot be written ----------------------------


SPEC = """
    name: faults
    input: [1, 8, 8]
    layers:
      - flatten
      - linear: 256
      - relu
      - linear: 10
    train:
      batch_size: 256
      device: cpu
"""

FULL_AT_EPOCH_2 = """
import errno, os, sys, torch
real_save = torch.save
def save(state, stream, *args, **kwargs):
    if state["epoch"] == 2:  # half a file, then the disk is full, as torch reports it
        stream.write(b"PK\\x03\\x04 half a record")
        os.statvfs = lambda folder: os.statvfs_result((4096,) * 2 + (0,) * 8)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    return real_save(state, stream, *args, **kwargs)
torch.save = save
from netspec.cli import main
sys.argv = ["netspec", *sys.argv[1:]]
main()
"""


def _train(spec: Path, out: Path, epochs: int,
           wrapper: str | None = None) -> subprocess.CompletedProcess[str]:
    start = [sys.executable, "-c", wrapper] if wrapper else [sys.executable, "-m", "netspec"]
    return subprocess.run([*start, "train", str(spec), "--epochs", str(epochs), "--out", str(out),
                           "-q"], capture_output=True, text=True, timeout=300)


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "faults.yaml"
    path.write_text(textwrap.dedent(SPEC))
    return path


def assert_failed_write(result: subprocess.CompletedProcess[str], last: Path,
                        kept: str = "the previous one is unchanged") -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "Exception in" not in result.stderr
    assert "wrote" not in result.stdout + result.stderr
    assert f"error: cannot write checkpoint {last}: {FULL}; {kept}" in result.stderr
    assert temporary_files(last.parent) == []


@pytest.mark.slow
def test_train_whose_checkpoint_write_fails_exits_1_and_keeps_the_last_one(
        spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _train(spec, out, 2, FULL_AT_EPOCH_2)
    assert_failed_write(result, out / "last.pt")
    kept = checkpoints.load(out / "last.pt")
    assert kept["epoch"] == 1 and len(kept["history"]) == 1
    assert checkpoints.load(out / "best.pt")["epoch"] == 1


@pytest.mark.slow
def test_train_on_a_full_disk_exits_1_naming_the_checkpoint(spec: Path, small_disk: Path) -> None:
    """A real full disk: room for the metrics, not for a checkpoint (~300 KB here). The
    checkpoint is written in the background while the epoch's metrics are appended: on a
    busy machine the checkpoint's temporary file may take the last free bytes first, and
    the metrics' append is the write that fails, named as such. Either way: exit 1, no
    checkpoint, nothing temporary left."""
    out = small_disk / "run"
    out.mkdir()
    fill(small_disk, leave=96 * 1024)
    result = _train(spec, out, 1)
    metrics = f"error: cannot write {out / 'metrics.jsonl'}: {FULL}; training stopped"
    if metrics in result.stderr:
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert temporary_files(out) == []
    else:
        assert_failed_write(result, out / "last.pt", kept="there was none before")
    assert not (out / "last.pt").exists() and not (out / "curves.png").exists()
