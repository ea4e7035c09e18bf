"""Training faults: a checkpoint that cannot be written (a full disk), and a truncated,
corrupted or foreign checkpoint given to `--resume`. Each gets a clear message, and the last
good checkpoint stays whole."""

from __future__ import annotations

import errno
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import netspec
from netspec.cli import main
from netspec.training import checkpoints

SPEC = """
    name: faults
    input: [1, 8, 8]
    layers:
      - flatten
      - linear: 10
    train:
      epochs: 3
      batch_size: 64
      device: cpu
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "faults.yaml"
    path.write_text(textwrap.dedent(SPEC))
    return path


@pytest.mark.slow
def test_a_full_disk_stops_the_run_and_keeps_the_last_checkpoint(spec: Path, tmp_path: Path,
                                                                   monkeypatch) -> None:
    out = tmp_path / "run"
    real_save = torch.save
    writes = []

    def save_until_full(state, stream, *args, **kwargs):
        writes.append(state["epoch"])
        if state["epoch"] == 2:  # half a file, then the disk is full
            stream.write(b"PK\x03\x04 partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(state, stream, *args, **kwargs)

    monkeypatch.setattr(checkpoints.torch, "save", save_until_full)
    with pytest.raises(netspec.TrainError) as err:
        netspec.train(spec, out=out, verbose=False)
    assert "cannot write checkpoint" in str(err.value) and "No space left" in str(err.value)
    assert "previous one is unchanged" in str(err.value)
    assert writes == [1, 2]
    monkeypatch.undo()
    kept = checkpoints.load(out / "last.pt")
    assert kept["epoch"] == 1
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp")) == []


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign", "empty"])
def test_a_damaged_checkpoint_is_refused_and_the_run_left_intact(spec: Path, tmp_path: Path,
                                                                 damage: str) -> None:
    out = tmp_path / "run"
    netspec.train(spec, epochs=1, out=out, verbose=False)
    good = (out / "last.pt").read_bytes()
    bad = tmp_path / "bad.pt"
    if damage == "truncate":
        bad.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        bad.write_bytes(bytes(range(256)) * 64)
    elif damage == "foreign":
        torch.save({"weights": torch.zeros(3)}, bad)
    else:
        bad.write_bytes(b"")
    result = CliRunner().invoke(main, ["train", str(spec), "--resume", str(bad), "--epochs", "2"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert str(bad) in result.stderr
    assert ("truncated, corrupted" in result.stderr) or ("not a netspec training checkpoint"
                                                         in result.stderr)
    assert (out / "last.pt").read_bytes() == good


def test_a_missing_checkpoint_is_named(spec: Path, tmp_path: Path) -> None:
    with pytest.raises(netspec.TrainError, match=r"no checkpoint at .*nothing\.pt"):
        netspec.train(spec, resume=tmp_path / "nothing.pt", verbose=False)


def test_a_checkpoint_that_would_run_code_is_not_loaded(spec: Path, tmp_path: Path) -> None:
    """weights_only: a pickle that calls a function on load is refused, not run."""
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = tmp_path / "evil.pt"
    torch.save({"format": 1, "payload": Payload()}, evil)
    with pytest.raises(netspec.TrainError, match="cannot read checkpoint"):
        netspec.train(spec, resume=evil, verbose=False)
    assert not marker.exists()
