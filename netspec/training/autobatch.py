"""`batch_size: auto`: the largest batch whose training step fits in the memory there is.

The estimate is netspec.train_step's (the peak of a step: weights, gradients, optimizer
state, the batch, what autograd keeps), searched by `largest_batch` to take at most
`MARGIN` (90%) of the budget; the rest is for what it leaves out (the allocator's caching
and rounding, kernels' workspaces, the framework's own). The budget is `--memory SIZE`
when given, else the memory free on this process's CUDA GPU, or on the CPU the machine's
available memory (Linux's MemAvailable) shared evenly by the processes on the machine.
Each process finds its own batch; all take the smallest (their free memory may differ),
and the run's batch is that times the process count. With `fsdp` the estimate still counts
a whole copy of the weights on each process: it errs on the safe side.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from netspec import train_step
from netspec.errors import TrainError
from netspec.report import Report, human_bytes
from netspec.training.config import TrainConfig
from netspec.training.distributed import World

MEMINFO = Path("/proc/meminfo")


@dataclass(frozen=True)
class Budget:
    """The bytes one process's training step may use, and where the figure comes from."""

    size: int
    source: str


def budget(device: torch.device, memory: int | None = None) -> Budget:
    """This process's memory budget: `memory` when given, else what `device` has free (see
    the module). TrainError where that cannot be known."""
    if memory is not None:
        return Budget(memory, "given")
    if device.type == "cuda":
        return Budget(torch.cuda.mem_get_info(device)[0], f"free on {device}")
    if device.type == "cpu" and MEMINFO.is_file():
        fields = dict(line.split(":", 1) for line in MEMINFO.read_text().splitlines())
        if "MemAvailable" in fields:
            share = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
            kib = int(fields["MemAvailable"].split()[0])
            return Budget(kib * 1024 // share, "available on the CPU" +
                          (f", shared by {share} processes" if share > 1 else ""))
    raise TrainError(f"batch_size: auto cannot tell how much memory {device} has free here; "
                     "give a budget with --memory SIZE (e.g. 8GiB) or a batch size")


def choose(report: Report, config: TrainConfig, device: torch.device, world: World,
           train_size: int, memory: int | None = None) -> tuple[int, str]:
    """The run's batch for `batch_size: auto` (`config`'s precision resolved), and the line
    that says how it was found. TrainError when not even one sample fits."""
    room = budget(device, memory)
    kind = "cuda" if device.type == "cuda" else "cpu"  # whose dropout masks the step keeps
    found = train_step.largest_batch(report, room.size, config, kind)
    if found == 0:
        one = train_step.memory(report, config, 1, kind).peak
        raise TrainError(f"batch_size: auto: not even one sample fits: a training step of one "
                         f"sample takes an estimated {human_bytes(one)}, more than "
                         f"{train_step.MARGIN:.0%} of the {human_bytes(room.size)} {room.source}")
    cap = max(1, train_size // world.size)  # a batch beyond the training set is no larger
    each = world.least(min(found, cap), device)
    peak = train_step.memory(report, config, each, kind).peak
    processes = f"{world.size} processes x {each}; " if world.distributed else ""
    capped = "at most the training set; " if cap < found else ""
    return each * world.size, (
        f"batch size: auto -> {each * world.size} ({processes}{capped}peak "
        f"{human_bytes(peak)} of {human_bytes(room.size)} {room.source}, "
        f"{train_step.MARGIN:.0%} margin)")
