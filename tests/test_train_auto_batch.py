"""`batch_size: auto` (issue 19, item 4): `netspec train` takes the largest batch whose
training step's estimated peak fits in 90% of the memory budget (netspec.train_step's
`largest_batch`), prints and records it, and a resume keeps it; the budget of the CPU is
Linux's MemAvailable; the errors are positioned or said before training starts."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import netspec
from netspec import train_step
from netspec.cli import main
from netspec.errors import TrainError
from netspec.spec.schema import spec_schema
from netspec.training import autobatch, checkpoints

SPEC = """
    name: tiny_conv
    input: [1, 8, 8]
    layers:
      - conv2d: {out: 4, kernel: 3, padding: 1}
      - relu
      - flatten
      - linear: 10
    train:
      epochs: 1
      batch_size: auto
      data: {synthetic: {size: 500}}
      optimizer: {sgd: {lr: 0.05}}
      device: cpu
"""
BUDGET = 2**20  # room for about 270 samples of SPEC: fewer than its 400 training ones


def write_spec(tmp_path: Path, text: str = SPEC) -> Path:
    path = tmp_path / "tiny_conv.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def largest(spec: Path, budget: int) -> int:
    """The answer of netspec.train_step for `spec` in `budget` bytes on the CPU."""
    loaded = netspec.load(spec)
    return train_step.largest_batch(netspec.check(loaded, batch=1), budget, loaded.training)


def test_auto_trains_with_the_largest_batch_that_fits_and_records_it(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    expected = largest(spec, BUDGET)
    assert 1 < expected < 400
    result = CliRunner().invoke(main, ["train", str(spec), "--memory", "1MiB", "--out",
                                       str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert f"batch size: auto -> {expected} (peak " in result.output
    assert "of 1.00 MiB given, 90% margin)" in result.output
    state = checkpoints.load(tmp_path / "run" / "last.pt")
    assert state["config"]["batch_size"] == expected
    assert state["step"] == 0 and state["epoch"] == 1


def test_a_resume_keeps_the_run_s_batch_and_sees_no_change(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    first = netspec.train(spec, memory=BUDGET, out=tmp_path / "run", verbose=False)
    batch = checkpoints.load(tmp_path / "run" / "last.pt")["config"]["batch_size"]
    # Elsewhere, with four times the memory: the run's batch all the same, and no change.
    resumed = netspec.train(spec, epochs=2, memory=4 * BUDGET, verbose=False,
                            resume=tmp_path / "run" / "last.pt")
    (note,) = [w for w in resumed.warnings if w.startswith("resuming with settings")]
    assert "epochs: 1 -> 2" in note and "batch_size" not in note
    assert checkpoints.load(tmp_path / "run" / "last.pt")["config"]["batch_size"] == batch
    assert [r["epoch"] for r in resumed.history] == [1, 2] and first.history[0]["epoch"] == 1
    with pytest.raises(TrainError, match="a run keeps its batch size"):
        netspec.train(spec, epochs=3, batch_size=batch + 1, verbose=False,
                      resume=tmp_path / "run" / "last.pt")


def test_auto_is_at_most_the_training_set(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    result = netspec.train(spec, batch_size="auto", memory=2**30, out=tmp_path / "run",
                           verbose=False)
    assert checkpoints.load(tmp_path / "run" / "last.pt")["config"]["batch_size"] == 400
    assert len(result.history) == 1


def test_a_budget_too_small_for_one_sample_stops_before_training(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    result = CliRunner().invoke(main, ["train", str(spec), "--memory", "32KiB", "--out",
                                       str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "batch_size: auto: not even one sample fits: a training step of one sample " \
           "takes an estimated" in result.output
    assert "more than 90% of the 32.00 KiB given" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run" / "last.pt").exists()


def test_batch_size_auto_on_the_command_line_overrides_the_spec(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC.replace("batch_size: auto", "batch_size: 32"))
    result = CliRunner().invoke(main, ["train", str(spec), "--batch-size", "auto", "--memory",
                                       "1MiB", "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    assert checkpoints.load(tmp_path / "run" / "last.pt")["config"]["batch_size"] == \
        largest(spec, BUDGET)


def test_check_on_an_auto_spec_estimates_at_the_default_and_finds_the_largest(
        tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    plain = CliRunner().invoke(main, ["check", str(spec), "--format", "json"])
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.output)["train_memory"]["batch"] == train_step.DEFAULT_BATCH
    found = CliRunner().invoke(main, ["check", str(spec), "--memory", "1MiB", "--format", "json"])
    assert json.loads(found.output)["largest_batch"]["batch"] == largest(spec, BUDGET)


def test_a_misspelt_auto_is_a_positioned_error_with_a_hint(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC.replace("batch_size: auto", "batch_size: autp"))
    result = CliRunner().invoke(main, ["check", str(spec)])
    assert result.exit_code == 1
    assert (f"{spec}:11:15: error: `train.batch_size`: expects a positive integer or `auto`, "
            "found 'autp'; did you mean `auto`?") in result.output
    for bad in ("0", "1.5", "true"):
        result = CliRunner().invoke(main, ["check", str(write_spec(
            tmp_path, SPEC.replace("batch_size: auto", f"batch_size: {bad}")))])
        assert result.exit_code == 1 and "expects a positive integer or `auto`" in result.output


def test_a_misspelt_auto_on_the_command_line_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", str(write_spec(tmp_path)), "--batch-size", "autp"])
    assert result.exit_code == 2
    assert "'autp' is not a positive integer or `auto`" in result.output


def test_the_schema_takes_auto_or_a_positive_integer() -> None:
    batch = spec_schema()["properties"]["train"]["properties"]["batch_size"]
    assert {"const": "auto"} in batch["anyOf"]
    assert {"type": "integer", "minimum": 1} in batch["anyOf"]


def test_the_cpu_budget_is_the_available_memory_shared_by_the_machine_s_processes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16384 kB\nMemFree:  1024 kB\nMemAvailable:   8192 kB\n")
    monkeypatch.setattr(autobatch, "MEMINFO", meminfo)
    cpu = torch.device("cpu")
    assert autobatch.budget(cpu).size == 8192 * 1024
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert autobatch.budget(cpu) == autobatch.Budget(2048 * 1024, "available on the CPU, "
                                                     "shared by 4 processes")
    assert autobatch.budget(cpu, 1000).size == 1000  # --memory wins
    meminfo.write_text("MemTotal:       16384 kB\n")
    with pytest.raises(TrainError, match="cannot tell how much memory cpu has free here; "
                                         "give a budget with --memory SIZE"):
        autobatch.budget(cpu)
