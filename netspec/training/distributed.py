"""Several processes, one model: DistributedDataParallel on one machine.

`netspec train --nproc N SPEC` starts N worker processes itself (`launch`), as does
`torchrun --nproc-per-node N -m netspec train SPEC`; each worker trains on its share of every
global batch and DDP averages the gradients, so N ranks at batch B/N per rank step like one
process at B (augmentation included: it depends on the seed, the epoch and the sample, see
`netspec.training.data`). Only dropout and BatchNorm's batch statistics differ, since each
rank draws its own dropout masks and normalises its own share of the batch. Rank 0 alone
prints and writes files.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

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
    """Run `netspec train ARGS` in `nproc` worker processes on this machine (gloo or nccl
    over 127.0.0.1) and return the run's exit status:

    - 0 when every worker finished;
    - 130 or 143 when SIGINT or SIGTERM stopped the run: each signal the launcher receives
      is forwarded once to every worker, which saves last.pt once (rank 0) and exits; a
      second Ctrl-C is forwarded too (the workers then stop at once);
    - 1 when a worker failed (killed by a signal, or exited with an error): the others are
      stopped (SIGTERM, then SIGKILL after GRACE seconds, since they may be blocked in a
      collective with the dead one) and one line on stderr names the worker and the last
      checkpoint.

    Each worker runs in its own session, so a terminal's Ctrl-C reaches the launcher alone
    and every worker gets it exactly once; on Linux a worker gets SIGTERM when the launcher
    dies (even by SIGKILL), so none is left behind."""
    received: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _: received.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    workers: list[subprocess.Popen[bytes]] = []
    try:
        port = _free_port()
        for rank in range(nproc):
            workers.append(_start_worker(rank, nproc, port, args))
        return _supervise(workers, received, _run_folder(args))
    finally:
        _stop(workers)  # nothing is left running, whatever happened
        for s, handler in previous.items():
            signal.signal(s, handler)


GRACE = 5.0
"""Seconds the other workers get to end after SIGTERM when one has failed, before SIGKILL."""
_POLL = 0.05
"""Seconds between looks at the workers (and at signals to forward)."""
_STOPPED = frozenset({128 + signal.SIGINT, 128 + signal.SIGTERM})
"""Exit statuses of a worker that a signal stopped cleanly (after saving)."""
_PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal a process gets when its parent dies (Linux)."""


def _start_worker(rank: int, size: int, port: int, args: Sequence[str]) -> subprocess.Popen[bytes]:
    """Worker `rank` of `size`: `python -m netspec train ARGS` in its own session, with the
    environment torchrun would give it (the CPU threads shared out between the workers)."""
    env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(size),
           "LOCAL_WORLD_SIZE": str(size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // size)))
    return subprocess.Popen([sys.executable, "-m", "netspec", "train", *args], env=env,
                            start_new_session=True, preexec_fn=_dies_with(os.getpid()))


def _dies_with(parent: int) -> Callable[[], None]:
    """A child's set-up (run between fork and exec): SIGTERM when `parent` dies (Linux)."""
    def set_up() -> None:
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took hold
            os.kill(os.getpid(), signal.SIGTERM)
    return set_up


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (rank 0 binds it soon after)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _supervise(workers: list[subprocess.Popen[bytes]], received: list[int],
               folder: Path | None) -> int:
    """Forward each signal in `received` (appended by the launcher's handler) to every
    running worker, until all have ended; stop them all as soon as one fails. Returns the
    exit status `launch` describes."""
    forwarded = 0
    while True:
        for signum in received[forwarded:]:
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signum)
            forwarded += 1
        codes = [worker.poll() for worker in workers]
        failed = next((rank for rank, code in enumerate(codes)
                       if code is not None and not _clean_exit(code, received)), None)
        if failed is not None:
            _stop(workers)
            print(f"netspec train: error: {_failure(failed, codes[failed])}; stopped the other "
                  f"workers; {_last_checkpoint(folder)}", file=sys.stderr, flush=True)
            return 1
        if all(code is not None for code in codes):
            stopped = [code for code in codes if code in _STOPPED]
            return 128 + received[0] if received else (stopped[0] if stopped else 0)
        time.sleep(_POLL)


def _clean_exit(code: int, received: list[int]) -> bool:
    """Whether a worker's exit status is part of a normal ending: done, stopped by a signal
    after saving, killed by a signal the launcher forwarded, or any ending at all once a
    second signal has asked the workers to stop at once (click's "Aborted!" is status 1)."""
    return code == 0 or code in _STOPPED or -code in received or len(received) > 1


def _failure(rank: int, code: int | None) -> str:
    what = (f"was killed by {signal.Signals(-code).name}" if code is not None and code < 0
            else f"exited with status {code}")
    return f"worker {rank} (rank {rank}) {what}"


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    """End every worker still running: SIGTERM, then SIGKILL to those left after GRACE s."""
    running = [w for w in workers if w.poll() is None]
    for worker in running:
        worker.terminate()
    deadline = time.monotonic() + GRACE
    for worker in running:
        try:
            worker.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _run_folder(args: Sequence[str]) -> Path | None:
    """The run folder the command line names (`--out`, or the folder of `--resume`'s
    checkpoint); None when rank 0 picks the default one."""
    words = list(args)
    if "--out" in words[:-1]:
        return Path(words[words.index("--out") + 1])
    if "--resume" in words[:-1]:
        return Path(words[words.index("--resume") + 1]).parent
    return None


def _last_checkpoint(folder: Path | None) -> str:
    if folder is None:
        return "the last checkpoint, if one was written, is last.pt in the run folder (runs/NAME)"
    last = folder / "last.pt"
    return f"the last checkpoint is {last}" if last.exists() else f"no checkpoint was written to {folder}"
