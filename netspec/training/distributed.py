"""Several processes, one model: DistributedDataParallel under torchrun.

`torchrun --nproc-per-node N -m netspec train SPEC` (or `netspec train --nproc N SPEC`, which
runs torchrun) starts N processes; each trains on its share of every global batch and
DDP averages the gradients, so N ranks at batch B/N per rank step like one process at B.
Rank 0 alone prints and writes files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process prints and writes (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """`tensor` summed over every rank (in place; itself when alone)."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def any(self, flag: bool, device: torch.device) -> bool:
        """Whether `flag` holds on any rank: all ranks take the same decision."""
        if not self.distributed:
            return flag
        return bool(self.sum(torch.tensor([int(flag)], device=device)).item())

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def join(device_type: str) -> World:
    """Join the process group torchrun describes in the environment (RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR/PORT): nccl on CUDA, gloo elsewhere. Alone without torchrun."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return world


def launch(nproc: int, args: Sequence[str]) -> int:
    """Run `netspec train ARGS` in `nproc` processes with torchrun (single node) and return
    its exit status."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={nproc}", "-m", "netspec", "train", *args]
    return subprocess.call(command)
