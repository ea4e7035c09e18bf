"""DistributedDataParallel on the CPU with gloo: 2 processes stay in lockstep and step like
one process at the same global batch, augmentation included; `--nproc` starts the workers
itself and `torchrun -m netspec train` works as well. (Faults: test_faults_distributed.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import netspec
from netspec.training import checkpoints

pytestmark = pytest.mark.slow  # two processes each (tests/tiers.py)

HERE = Path(__file__).resolve().parent
LENET5 = HERE.parent / "specs" / "lenet5.yaml"

# No dropout, batch norm or augmentation: their randomness or per-rank statistics are
# meant to differ between 1 and 2 processes. 256 training samples: 8 full batches of 32.
SPEC = """
    name: ddp
    input: [1, 12, 12]
    layers:
      - conv2d: {out: 6, kernel: 3}
      - relu
      - maxpool2d: 2
      - flatten
      - linear: 10
    train:
      epochs: 2
      batch_size: 32
      data: {synthetic: {size: 320, val_split: 0.2}}
      optimizer: {sgd: {lr: 0.05, momentum: 0.9}}
      device: cpu
"""


def torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node=2", *args], capture_output=True, text=True,
                          timeout=300)


def test_two_gloo_ranks_agree_and_match_one_process(tmp_path: Path) -> None:
    spec = tmp_path / "ddp.yaml"
    spec.write_text(textwrap.dedent(SPEC))
    run = torchrun(str(HERE / "ddp_worker.py"), str(spec), str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    alone = netspec.train(spec, out=tmp_path / "alone", verbose=False).model.state_dict()
    for key in rank0:
        torch.testing.assert_close(rank0[key], alone[key], rtol=1e-4, atol=1e-5)
    # Rank 0 alone wrote the run: one metrics line per epoch, one checkpoint.
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2]
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert len(saved["rng"]) == 2


def test_netspec_train_nproc_launches_its_workers(tmp_path: Path) -> None:
    spec = tmp_path / "ddp.yaml"
    spec.write_text(textwrap.dedent(SPEC))
    run = subprocess.run([sys.executable, "-m", "netspec", "train", str(spec), "--nproc", "2",
                          "--epochs", "1", "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("epoch 1/1") == 1  # printed by rank 0 only
    assert run.stdout.count("ddp: input 1x12x12") == 1
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["epoch"] == 1


def test_lenet5_with_augmentation_steps_alike_in_one_and_two_processes(tmp_path: Path) -> None:
    """The zoo's lenet5 as written (digits, random crops, adamw, one-cycle), 2 epochs at its
    global batch of 64: a sample's crop depends on the seed, the epoch and the sample, not
    on the rank, so 2 processes end with the weights of 1 (lenet5 has no dropout or
    BatchNorm, the only parts that may differ). Its 1,438 training samples split evenly.
    Every process computes on one thread: CPU kernels sum in an order that depends on the
    thread count, which alone moves these weights by about 1e-5 (rank-seeded crops: 0.06)."""
    weights = {}
    for nproc in (1, 2):
        out = tmp_path / f"nproc{nproc}"
        run = subprocess.run([sys.executable, "-m", "netspec", "train", str(LENET5), "--nproc",
                              str(nproc), "--epochs", "2", "--device", "cpu", "--quiet", "--out",
                              str(out)], capture_output=True, text=True, timeout=300,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert run.returncode == 0, run.stderr[-3000:]
        weights[nproc] = checkpoints.load(out / "last.pt")["model"]
    assert weights[1].keys() == weights[2].keys()
    for key in weights[1]:
        torch.testing.assert_close(weights[2][key], weights[1][key], rtol=0, atol=1e-5, msg=key)
