"""`strategy: fsdp` on the CPU with gloo (torch's FSDP2 runs there): 2 processes holding half
of every weight step like one process at the same global batch, and their checkpoints are
the whole single-process state, so a run resumes under another strategy or process count.
(DDP: test_train_distributed.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from test_tie import TIED

import netspec
from netspec.cli import main
from netspec.training import checkpoints, distributed
from netspec.training.distributed import fsdp_refusal, units

# Residual blocks (units of several layers), a top-level conv and linear (units alone), no
# dropout, batch norm or augmentation: their per-rank randomness or statistics are meant to
# differ. 96 training samples: 3 steps of 32 per epoch. AdamW and clipping: the optimizer
# state and the gradient norm are sharded too.
SPEC = """
    name: fsdp
    input: [2, 8, 8]
    blocks:
      res:
        layers:
          - conv2d: {out: 4, kernel: 3, padding: 1}
          - relu
          - conv2d: {out: 4, kernel: 3, padding: 1}
            name: body
          - add: [body, input]
    layers:
      - conv2d: {out: 4, kernel: 3, padding: 1}
      - res:
        repeat: 2
        name: stage
      - flatten
      - linear: 10
    train:
      epochs: 1
      batch_size: 32
      data: {synthetic: {size: 120, val_split: 0.2}}
      optimizer: {adamw: {lr: 0.01}}
      clip_grad: 0.5
      device: cpu
"""


def write_spec(folder: Path) -> Path:
    spec = folder / "fsdp.yaml"
    spec.write_text(textwrap.dedent(SPEC))
    return spec


def train(spec: Path, out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`netspec train SPEC --out OUT OPTIONS`, every process on one thread (CPU kernels sum
    in an order that depends on the thread count)."""
    return subprocess.run([sys.executable, "-m", "netspec", "train", str(spec), "--quiet",
                           "--out", str(out), *options], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def assert_same_run(a: Path, b: Path) -> None:
    """The checkpoints `a` and `b` hold the same weights and optimizer state (to 1e-5)."""
    first, second = checkpoints.load(a), checkpoints.load(b)
    assert first["model"].keys() == second["model"].keys()
    for key, value in first["model"].items():
        torch.testing.assert_close(second["model"][key], value, rtol=0, atol=1e-5, msg=key)
    assert first["optimizer"]["param_groups"] == second["optimizer"]["param_groups"]
    torch.testing.assert_close(second["optimizer"]["state"], first["optimizer"]["state"],
                               rtol=0, atol=1e-5)


def test_units_are_block_instances_and_top_level_layers() -> None:
    model = netspec.build(textwrap.dedent(SPEC))
    names = {id(module): name for name, module in model.named_modules()}
    assert [[names[id(m)] for m in unit] for unit in units(model)] == [
        ["conv1"], ["stage.0.conv1", "stage.0.body"], ["stage.1.conv1", "stage.1.body"], ["fc1"]]


def test_tied_weights_stay_with_the_root() -> None:
    model = netspec.build(TIED)
    assert units(model) == [[model.ln1]]


CPU_FSDP = pytest.mark.skipif(fsdp_refusal(torch.device("cpu")) is not None,
                              reason=str(fsdp_refusal(torch.device("cpu"))))
"""FSDP2 runs on the CPU from torch 2.7 on (netspec refuses it before: see the test below)."""


def test_fsdp_on_the_cpu_is_refused_where_torch_cannot_run_it(monkeypatch) -> None:
    """torch 2.6, the oldest netspec takes, has CPU streams that record no events."""
    monkeypatch.setattr(distributed, "_cpu_streams_record_events", lambda: False)
    refusal = fsdp_refusal(torch.device("cpu"))
    assert refusal is not None and "needs torch 2.7 or newer" in refusal
    assert fsdp_refusal(torch.device("cuda")) is None


@pytest.fixture(scope="module")
def first_epochs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the spec and two runs of its one epoch: `fsdp` (2 processes, sharded)
    and `alone` (1 process: `strategy: fsdp` is plain training there)."""
    folder = tmp_path_factory.mktemp("fsdp")
    spec = write_spec(folder)
    for name, options in (("fsdp", ("--nproc", "2")), ("alone", ())):
        run = train(spec, folder / name, "--strategy", "fsdp", *options)
        assert run.returncode == 0, run.stderr[-3000:]
    return folder


@CPU_FSDP
@pytest.mark.slow  # two processes
def test_two_sharded_processes_step_like_one(first_epochs: Path) -> None:
    saved = checkpoints.load(first_epochs / "fsdp" / "last.pt")
    assert (saved["epoch"], len(saved["rng"]), saved["config"]["strategy"]) == (1, 2, "fsdp")
    for name in ("last.pt", "best.pt"):
        assert_same_run(first_epochs / "alone" / name, first_epochs / "fsdp" / name)


@CPU_FSDP
@pytest.mark.slow  # two processes
def test_a_sharded_run_resumes_alone_and_a_lone_run_sharded(first_epochs: Path,
                                                            tmp_path: Path) -> None:
    """A second epoch under the other strategy (and process count) ends where a lone run
    resumed alone does: the checkpoint is the whole state either way."""
    spec = first_epochs / "fsdp.yaml"
    for first, then, options in (("fsdp", "alone", ()), ("alone", "fsdp", ("--nproc", "2")),
                                 ("alone", "alone", ())):
        shutil.copytree(first_epochs / first, tmp_path / f"{first}-{then}")
        run = train(spec, tmp_path / f"{first}-{then}", "--epochs", "2", "--resume",
                    str(tmp_path / f"{first}-{then}" / "last.pt"), *options)
        assert run.returncode == 0, run.stderr[-3000:]
    reference = tmp_path / "alone-alone" / "last.pt"
    assert_same_run(reference, tmp_path / "fsdp-alone" / "last.pt")
    assert_same_run(reference, tmp_path / "alone-fsdp" / "last.pt")


def test_an_unknown_strategy_in_the_spec_is_one_positioned_error(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(textwrap.dedent(SPEC).replace("device: cpu", "device: cpu\n  strategy: zero3"))
    run = CliRunner().invoke(main, ["train", str(spec), "--out", str(tmp_path / "run")])
    assert run.exit_code == 1
    assert run.stderr.splitlines() == [
        f"{spec}:26:13: error: `train.strategy` must be 'ddp' or 'fsdp', found 'zero3'", "1 error"]
    assert not (tmp_path / "run").exists()


def test_an_unknown_strategy_option_is_a_usage_error(tmp_path: Path) -> None:
    run = CliRunner().invoke(main, ["train", str(write_spec(tmp_path)), "--strategy", "zero3"])
    assert run.exit_code == 2  # click's usage error, as for --precision
    assert "Invalid value for '--strategy': 'zero3' is not one of 'ddp', 'fsdp'." in run.stderr
