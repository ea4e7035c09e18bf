"""Runs a person can trust to resume: run folders claimed by one run at a time, a resume that
says what changed in its settings and refuses what a run cannot take, data read as the spec
says (never as a checkpoint says), and schedules that carry on without a jump when the
number of epochs changes."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import netspec
from netspec.training import checkpoints
from netspec.training.config import ScheduleConfig
from netspec.training.optim import load_schedule, make_schedule, rebase
from netspec.training.runs import MARKER, RunFolder

SPEC = """
    name: tiny
    input: [1, 8, 8]
    layers:
      - flatten
      - linear: 10
    train:
      epochs: 2
      batch_size: 256
      optimizer: {sgd: {lr: 0.1, momentum: 0.9}}
      schedule: cosine
      device: cpu
"""


def write_spec(tmp_path: Path, text: str = SPEC, name: str = "tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# -- run folders ---------------------------------------------------------------------------

def test_a_folder_is_claimed_once_and_given_back_when_no_checkpoint_was_written(
        tmp_path: Path) -> None:
    first = RunFolder.claim_new(tmp_path / "run")
    with pytest.raises(netspec.TrainError, match="already holds a run"):
        RunFolder.claim_new(tmp_path / "run")
    first.release()  # no last.pt: the folder is free again, and removed as it was created
    assert not (tmp_path / "run").exists()
    again = RunFolder.claim_new(tmp_path / "run")
    (tmp_path / "run" / "last.pt").write_bytes(b"a checkpoint")
    again.release()
    assert (tmp_path / "run" / MARKER).exists()
    with pytest.raises(netspec.TrainError, match="already holds a run"):
        RunFolder.claim_new(tmp_path / "run")


def test_a_folder_from_before_markers_holds_a_run_by_its_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "last.pt").write_bytes(b"a checkpoint")
    with pytest.raises(netspec.TrainError, match="already holds a run"):
        RunFolder.claim_new(tmp_path / "old")
    assert not (tmp_path / "old" / MARKER).exists()


def test_the_default_folder_takes_the_next_free_name(tmp_path: Path) -> None:
    taken = RunFolder.claim_default("net", tmp_path)
    (tmp_path / "net-2").mkdir()
    (tmp_path / "net-2" / "notes.txt").write_text("someone's files")
    third = RunFolder.claim_default("net", tmp_path)
    assert (taken.path.name, third.path.name) == ("net", "net-3")
    taken.release()
    third.release()


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_a_run_being_trained_cannot_be_entered_by_another_process(tmp_path: Path) -> None:
    folder = RunFolder.claim_new(tmp_path / "run")
    (tmp_path / "run" / "last.pt").write_bytes(b"a checkpoint")
    code = ("import sys; from pathlib import Path; from netspec.training.runs import RunFolder\n"
            "try:\n    RunFolder.reenter(Path(sys.argv[1]))\n"
            "except Exception as exc:\n    print(exc)\n")
    other = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")],
                           capture_output=True, text=True, timeout=60)
    assert "is being trained by another process" in other.stdout
    assert f"pid {os.getpid()}" in other.stdout
    folder.release()
    after = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")],
                           capture_output=True, text=True, timeout=60)
    assert after.stdout == "" and after.returncode == 0


@pytest.mark.slow
def test_two_runs_started_together_with_one_out_cannot_both_write_it(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC.replace("epochs: 2", "epochs: 3"))
    command = [sys.executable, "-m", "netspec", "train", str(spec), "--out",
               str(tmp_path / "run"), "-q"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]  # type: ignore[union-attr]
    assert sorted(code for code, _ in results) == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    assert "already holds a run" in loser and "Traceback" not in loser
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 3  # one run's epochs, not two interleaved
    assert checkpoints.load(tmp_path / "run" / "last.pt")["epoch"] == 3


@pytest.mark.slow
def test_a_resume_into_another_runs_folder_is_refused(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC.replace("epochs: 2", "epochs: 1"))
    netspec.train(spec, out=tmp_path / "a", verbose=False)
    netspec.train(spec, out=tmp_path / "b", verbose=False)
    before = (tmp_path / "b" / "last.pt").read_bytes()
    with pytest.raises(netspec.TrainError, match="already holds a run"):
        netspec.train(spec, epochs=2, resume=tmp_path / "a" / "last.pt", out=tmp_path / "b",
                      verbose=False)
    assert (tmp_path / "b" / "last.pt").read_bytes() == before
    moved = netspec.train(spec, epochs=2, resume=tmp_path / "a" / "last.pt",
                          out=tmp_path / "c", verbose=False)
    assert moved.out == tmp_path / "c" and [r["epoch"] for r in moved.history] == [1, 2]
    assert checkpoints.load(tmp_path / "a" / "last.pt")["epoch"] == 1  # A is left as it was


@pytest.mark.slow
def test_temporary_files_of_killed_writes_are_removed_when_a_run_enters_its_folder(
        tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC.replace("epochs: 2", "epochs: 1"))
    netspec.train(spec, out=tmp_path / "run", verbose=False)
    left = tmp_path / "run" / ".last.pt.k2j4x9.tmp"
    left.write_bytes(b"half a checkpoint")
    netspec.train(spec, epochs=2, resume=tmp_path / "run" / "last.pt", verbose=False)
    assert not left.exists()


# -- the settings of a resumed run ------------------------------------------------------------

def test_a_changed_train_section_is_listed_with_what_it_does(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    netspec.train(spec, epochs=1, out=tmp_path / "run", verbose=False)
    edited = write_spec(tmp_path, SPEC.replace("momentum: 0.9", "momentum: 0.8")
                        .replace("epochs: 2", "epochs: 3"), "edited.yaml")
    result = netspec.train(edited, resume=tmp_path / "run" / "last.pt", verbose=False)
    (note,) = [w for w in result.warnings if w.startswith("resuming with settings")]
    assert "epochs: 1 -> 3: training runs to epoch 3" in note
    assert "optimizer.sgd.momentum: 0.9 -> 0.8: the optimizer keeps its state" in note
    assert len(result.history) == 3
    state = checkpoints.load(tmp_path / "run" / "last.pt")
    assert state["optimizer"]["param_groups"][0]["momentum"] == 0.8


@pytest.mark.slow
@pytest.mark.parametrize(("change", "named"), [
    (("sgd: {lr: 0.1, momentum: 0.9}", "adam: {lr: 0.001}"), "a run keeps its optimizer"),
    (("schedule: cosine", "schedule: constant"), "a run keeps its schedule kind"),
    (("batch_size: 256", "batch_size: 128"), "a run keeps its batch size"),
])
def test_changes_a_run_cannot_take_are_refused_before_anything_is_written(
        tmp_path: Path, change: tuple[str, str], named: str) -> None:
    spec = write_spec(tmp_path)
    netspec.train(spec, epochs=1, out=tmp_path / "run", verbose=False)
    before = (tmp_path / "run" / "last.pt").read_bytes()
    edited = write_spec(tmp_path, SPEC.replace(*change), "edited.yaml")
    with pytest.raises(netspec.TrainError) as err:
        netspec.train(edited, resume=tmp_path / "run" / "last.pt", verbose=False)
    assert named in str(err.value) and "Start a new run" in str(err.value)
    assert (tmp_path / "run" / "last.pt").read_bytes() == before


@pytest.mark.slow
def test_no_file_named_in_a_checkpoint_is_read(tmp_path: Path) -> None:
    """A checkpoint whose settings name another data file (a foreign checkpoint, or one
    edited by hand) makes netspec read the spec's data, and say so."""
    spec = write_spec(tmp_path)
    netspec.train(spec, epochs=1, out=tmp_path / "run", verbose=False)
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    bait = tmp_path / "elsewhere" / "secret.npz"  # does not exist: reading it would fail
    state["config"]["data"] = {"npz": {"path": str(bait)}}
    forged = tmp_path / "forged"
    forged.mkdir()
    torch.save(state, forged / "last.pt")
    try:
        result = netspec.train(spec, resume=forged / "last.pt", verbose=False)
    except netspec.TrainError as exc:  # a checkpoint netspec did not write may be refused
        assert str(bait) not in str(exc) or "damaged" in str(exc) or "checksum" in str(exc)
        return
    (note,) = [w for w in result.warnings if w.startswith("resuming with settings")]
    assert "data: {npz: {" in note and f"path: '{bait}'" in note
    assert "} -> {digits: {val_split: 0.2" in note and len(result.history) == 2


@pytest.mark.slow
def test_a_checkpoint_whose_tensors_do_not_fit_is_refused_by_name(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    netspec.train(spec, epochs=1, out=tmp_path / "run", verbose=False)
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    state["model"] = {k: v[:5] for k, v in state["model"].items()}
    forged = tmp_path / "forged"
    forged.mkdir()
    torch.save(state, forged / "last.pt")
    with pytest.raises(netspec.TrainError) as err:
        netspec.train(spec, resume=forged / "last.pt", verbose=False)
    assert str(forged / "last.pt") in str(err.value)


# -- schedules when the number of epochs changes ----------------------------------------------

def schedule_at(kind: str, epochs: int, steps: int, lr: float = 0.1):
    """A fresh optimizer and schedule of `kind` over `epochs` x `steps`."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)
    return make_schedule(ScheduleConfig.model_validate(kind), optimizer, steps, epochs)


def walk(schedule, steps: int) -> list[float]:
    """The rate of each of the next `steps` steps."""
    rates = []
    for _ in range(steps):
        rates.append(schedule.optimizer.param_groups[0]["lr"])
        schedule.optimizer.step()
        schedule.step()
    return rates


def resumed(kind: str, saved_epochs: int, epochs: int, steps: int, done: int):
    """A schedule of `saved_epochs` stepped `done` times, saved, and restored into one built
    for `epochs`, as a resumed run does."""
    first = schedule_at(kind, saved_epochs, steps)
    walk(first, done)
    state = torch.load(_saved({"opt": first.optimizer.state_dict(), "s": first.state_dict()}),
                       weights_only=True)
    second = schedule_at(kind, epochs, steps)
    second.optimizer.load_state_dict(state["opt"])
    load_schedule(second, state["s"])
    rebase(second, 0.1)
    return first, second


def _saved(state) -> object:
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize("kind", ["cosine", {"cosine": {"min_lr": 0.001, "warmup": 1}},
                                  "onecycle", {"onecycle": {"pct_start": 0.5}}])
@pytest.mark.parametrize(("old", "new", "done"), [(3, 5, 5), (3, 5, 20), (3, 5, 30), (5, 3, 12)])
def test_a_run_resumed_with_other_epochs_takes_the_rates_planned_for_its_length(
        kind, old: int, new: int, done: int) -> None:
    """After the resume step, each step's rate is the one a run planned for the new number
    of epochs has there (one-cycle among them: it used to fail past its old length)."""
    steps = 10
    _, second = resumed(kind, old, new, steps, done)
    planned = schedule_at(kind, new, steps)
    walk(planned, done)
    left = new * steps - done
    assert walk(second, left)[1:] == walk(planned, left)[1:]


def test_an_unchanged_run_resumes_on_its_own_curve() -> None:
    for kind in ("cosine", "onecycle"):
        first, second = resumed(kind, 3, 3, 10, 12)
        assert walk(second, 18) == walk(first, 18)


@pytest.mark.parametrize("kind", ["constant", {"step": {"every": 1, "gamma": 0.5}}])
def test_rates_that_do_not_depend_on_the_length_are_unchanged(kind) -> None:
    first, second = resumed(kind, 3, 5, 10, 12)
    assert walk(second, 18) == walk(first, 18)


@pytest.mark.slow
def test_a_one_cycle_run_resumed_with_more_epochs_trains_them(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC.replace("schedule: cosine", "schedule: onecycle"))
    netspec.train(spec, epochs=1, out=tmp_path / "run", verbose=False)
    longer = netspec.train(spec, epochs=3, resume=tmp_path / "run" / "last.pt", verbose=False)
    assert [row["epoch"] for row in longer.history] == [1, 2, 3]
    steps = math.ceil(1437 / 256)  # digits: 1,797 samples, 20% held out
    planned = schedule_at("onecycle", 3, steps)
    walk(planned, steps)  # epoch 1
    for row in longer.history[1:]:  # after the resume: the rates of a 3-epoch run
        walk(planned, steps)
        assert row["lr"] == pytest.approx(planned.get_last_lr()[0], rel=1e-12), row["epoch"]


def test_a_ctrl_c_inside_an_extension_import_is_still_a_ctrl_c(tmp_path: Path,
                                                              monkeypatch) -> None:
    """A KeyboardInterrupt raised while a C extension initialises (matplotlib's, imported
    for the plots) reaches Python as an ImportError chained to it: training still stops as
    for Ctrl-C, and the checkpoint it wrote resumes."""
    def interrupted_import(*args: object) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    monkeypatch.setattr("netspec.training.loop.plot_curves", interrupted_import)
    spec = write_spec(tmp_path, SPEC.replace("epochs: 2", "epochs: 1"))
    with pytest.raises(KeyboardInterrupt):
        netspec.train(spec, out=tmp_path / "run", verbose=False)
    assert checkpoints.load(tmp_path / "run" / "last.pt")["epoch"] == 1


def test_a_ctrl_c_inside_code_an_extension_runs_still_exits_130(tmp_path: Path) -> None:
    """A KeyboardInterrupt that surfaces inside PyRun_String (as code run by an extension's
    initialisation does) leaves CPython's "unhandled KeyboardInterrupt" flag set; under
    `python -m` the interpreter then kills itself with SIGINT at exit, whatever sys.exit
    said. The command still exits 130."""
    spec = write_spec(tmp_path, SPEC.replace("epochs: 2", "epochs: 1"))
    (tmp_path / "interrupted_train.py").write_text(textwrap.dedent(f"""
        import ctypes
        import netspec.training.loop
        from netspec.cli import main

        def interrupted_in_c(*args):
            run = ctypes.pythonapi.PyRun_String
            run.restype = ctypes.py_object
            run.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.py_object, ctypes.py_object]
            run(b"raise KeyboardInterrupt", 257, {{}}, {{}})  # 257: Py_file_input

        netspec.training.loop.plot_curves = interrupted_in_c
        main(["train", {str(spec)!r}, "--quiet", "--out", {str(tmp_path / "run")!r}])
    """))
    done = subprocess.run([sys.executable, "-m", "interrupted_train"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 130, done.stderr
    assert "interrupted: stopped at once" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("gap", [0.0, 0.3])
def test_a_second_ctrl_c_stops_at_once_and_leaves_the_run_resumable(tmp_path: Path,
                                                                     gap: float) -> None:
    """The first SIGINT asks for a save at the next step; a second one, during that save or
    before it, leaves at once: exit 130, one line, no traceback, and the checkpoint on disk
    (epoch 1's, or the one saved at the stop) loads and resumes."""
    import signal
    import time

    spec = write_spec(tmp_path, SPEC.replace("epochs: 2", "epochs: 3").replace(
        "device: cpu", "device: cpu\n      data: {synthetic: {size: 40000, classes: 10}}"))
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "netspec", "train", str(spec), "--out",
                                str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    for line in process.stdout:  # type: ignore[union-attr]
        if line.startswith("epoch 1/3"):
            break
    # Epoch 1's checkpoint is written in the background while epoch 2 runs; a second Ctrl-C
    # abandons a write in flight (the README's contract), so the signals wait for it.
    deadline = time.monotonic() + 60
    while not (out / "last.pt").exists():
        assert time.monotonic() < deadline, "epoch 1's checkpoint was never written"
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    time.sleep(gap)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr
    assert checkpoints.load(out / "last.pt")["epoch"] >= 1  # epoch 1's, or the one saved at the stop
    resumed = netspec.train(spec, resume=out / "last.pt", verbose=False)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
