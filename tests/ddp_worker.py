"""One rank of the distributed test: `torchrun --nproc-per-node 2 tests/ddp_worker.py SPEC OUT`
trains SPEC with netspec and saves this rank's final weights to OUT/rank{RANK}.pt."""

import os
import sys
from pathlib import Path

import torch

import netspec

spec, out = sys.argv[1], Path(sys.argv[2])
result = netspec.train(spec, out=out / "run", verbose=False)
torch.save(result.model.state_dict(), out / f"rank{os.environ['RANK']}.pt")
