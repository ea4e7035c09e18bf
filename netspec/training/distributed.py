"""Several processes, one model: DistributedDataParallel on one machine.

`netspec train --nproc N SPEC` starts N worker processes itself (`launch`), as does
`torchrun --nproc-per-node N -m netspec train SPEC`; each worker trains on its share of every
global batch and DDP averages the gradients, so N ranks at batch B/N per rank step like one
process at B (augmentation included: it depends on the seed, the epoch and the sample, see
`netspec.training.data`). Only dropout and BatchNorm's batch statistics differ, since each
rank draws its own dropout masks and normalises its own share of the batch. Rank 0 alone
prints and writes files.

How the ranks hold the model is the run's `strategy` (`placement`): `ddp` replicates it
(`Replicated`); `fsdp` shards every weight, its gradient and its optimizer state over the
ranks with torch's FSDP2 (`Sharded`), gathering a unit's weights just before it runs. Either
way a checkpoint holds the whole model and optimizer state as one process has them, so a run
resumes under another strategy or process count.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from netspec.errors import PeerLost, TrainError


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

    def least(self, value: int, device: torch.device) -> int:
        """The smallest of `value` over every rank: all ranks take the same."""
        if not self.distributed:
            return value
        tensor = torch.tensor([value], device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
        return int(tensor.item())

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


@contextmanager
def peer_errors(world: World) -> Iterator[None]:
    """A collective that fails because another rank is gone (its TCP pair reset, the store
    unreachable) raises `PeerLost` with the first line of torch's message, not a traceback."""
    try:
        yield
    except RuntimeError as exc:
        if not (world.distributed and _lost_peer(exc)):
            raise
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PeerLost(f"rank {world.rank} lost contact with another training process "
                       f"({reason})") from None


def _lost_peer(error: RuntimeError) -> bool:
    """Whether `error` is a collective's failure to reach another rank: torch's DistError
    (nccl, the rendezvous store) or gloo's transport error, which torch raises as a plain
    RuntimeError naming gloo's transport source file."""
    return isinstance(error, dist.DistError) or "gloo/transport/" in str(error)


class Placement(ABC):
    """How the ranks hold the model; the run's checkpoints hold it whole either way."""

    def __init__(self, world: World, device: torch.device) -> None:
        self.world, self.device = world, device

    @abstractmethod
    def prepare(self, model: torch.nn.Module) -> None:
        """Lay `model` out over the ranks, before the optimizer is made over its parameters."""

    @abstractmethod
    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """What the training steps call."""

    @abstractmethod
    def state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The model's and the optimizer's state_dicts, whole, as one process has them (on
        rank 0 at least); every rank calls it."""

    @abstractmethod
    def load(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             model_state: dict[str, Any], optimizer_state: dict[str, Any]) -> None:
        """Load whole state_dicts (what `state` returns, read by every rank)."""


class Replicated(Placement):
    """A whole model on every rank: alone, or under DistributedDataParallel."""

    def prepare(self, model: torch.nn.Module) -> None:
        pass

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """DDP over several ranks (it averages the gradients), else the model itself."""
        if not self.world.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[self.device.index]
                                       if self.device.type == "cuda" else None)

    def state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        return model.state_dict(), optimizer.state_dict()

    def load(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             model_state: dict[str, Any], optimizer_state: dict[str, Any]) -> None:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)


class Sharded(Placement):
    """FSDP2: each rank keeps 1/N of every weight, of its gradient and of its optimizer
    state. A unit's weights are gathered whole just before it runs and freed after (in the
    backward pass too), so the largest unit, not the model, must fit one device. The units
    are the layers of each block instance together (`layer2.0.conv1`, `layer2.0.bn1`, ...:
    the weights of one transformer or residual block), each layer at the top level alone,
    and the root for the rest (see `units`). Mixed precision stays autocast's: the weights
    are gathered in fp32 and each op casts them, exactly as one process computes."""

    def prepare(self, model: torch.nn.Module) -> None:
        """Shard `model` in place (its parameters become DTensors): before the optimizer is
        made, which must hold the sharded parameters."""
        from torch.distributed.fsdp import fully_shard

        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)  # the device mesh's
        for unit in units(model):
            fully_shard(unit)
        fully_shard(model)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The sharded model itself: FSDP2 reduces the gradients from its own hooks."""
        return model

    def state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The whole state_dicts on rank 0, as one process has them; every tensor is
        gathered in turn, so every rank must call this (the others get None for them)."""
        return (_gathered(model.state_dict(), self.world.main),
                _gathered(optimizer.state_dict(), self.world.main))

    def load(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             model_state: dict[str, Any], optimizer_state: dict[str, Any]) -> None:
        """Load whole state_dicts, every rank its shard of each tensor (all read them)."""
        own = model.state_dict()
        model.load_state_dict({key: _shard_like(value, own.get(key))
                               for key, value in model_state.items()})
        params = [p for group in optimizer.param_groups for p in group["params"]]
        state = {index: {key: _shard_like(value, params[index]) for key, value in entry.items()}
                 for index, entry in optimizer_state["state"].items()}
        optimizer.load_state_dict({**optimizer_state, "state": state})


def placement(strategy: str, world: World, device: torch.device) -> Placement:
    """How this run holds its model: sharded for `fsdp` over several processes, else whole.
    TrainError where this torch cannot shard on `device`."""
    if strategy != "fsdp" or not world.distributed:
        return Replicated(world, device)
    refusal = fsdp_refusal(device)
    if refusal:
        raise TrainError(refusal)
    return Sharded(world, device)


def _cpu_streams_record_events() -> bool:
    return hasattr(torch.cpu.Stream, "record_event")


def fsdp_refusal(device: torch.device) -> str | None:
    """Why FSDP2 cannot run on `device` with this torch, if it cannot: on the CPU it waits
    on streams' events, which CPU streams record from torch 2.7 on."""
    if device.type == "cpu" and not _cpu_streams_record_events():
        return (f"strategy: fsdp on the CPU needs torch 2.7 or newer (its CPU streams record "
                f"the events FSDP waits on); this is torch {torch.__version__}: use strategy: "
                "ddp, or a newer torch")
    return None


def units(model: torch.nn.Module) -> list[list[torch.nn.Module]]:
    """The groups of layers FSDP shards together: the layers `model`'s forward calls that
    hold weights, grouped by the block instance they are in (their name's parent:
    `layer2.0.conv1` -> `layer2.0`), a layer at the top level alone. A layer whose weight is
    also read directly (by `get_attr`) or held by another layer (a tied weight) stays with
    the root, whose weights are gathered for the whole forward: a unit's weights are whole
    only while it runs."""
    graph = model.graph  # a torch.fx GraphModule: its calls are the layers that run
    called = list(dict.fromkeys(node.target for node in graph.nodes if node.op == "call_module"))
    holders: dict[int, set[str]] = {}
    for name in called:
        for param in model.get_submodule(name).parameters():
            holders.setdefault(id(param), set()).add(name)
    for node in graph.nodes:
        if node.op == "get_attr":
            for param in _params_at(model, node.target):
                holders.setdefault(id(param), set()).add("")
    groups: dict[str, list[torch.nn.Module]] = {}
    for name in called:
        params = list(model.get_submodule(name).parameters())
        if params and all(holders[id(p)] == {name} for p in params):
            parent = name.rpartition(".")[0]
            groups.setdefault(parent or name, []).append(model.get_submodule(name))
    return list(groups.values())


def _params_at(model: torch.nn.Module, target: str) -> list[torch.nn.Parameter]:
    """The parameters an fx `get_attr` of `target` reads (one, or a module's)."""
    value = model.get_submodule(target.rpartition(".")[0]) if "." in target else model
    value = getattr(value, target.rpartition(".")[2])
    if isinstance(value, torch.nn.Module):
        return list(value.parameters())
    return [value] if isinstance(value, torch.nn.Parameter) else []


def _gathered(value: Any, keep: bool) -> Any:
    """`value` (a state_dict) with each DTensor gathered whole, in order, onto the CPU
    where `keep`, else dropped (None): one tensor at a time is whole on the device."""
    from torch.distributed.tensor import DTensor

    if isinstance(value, DTensor):
        whole = value.full_tensor()
        return whole.cpu() if keep else None
    if isinstance(value, dict):
        return {key: _gathered(item, keep) for key, item in value.items()}
    if isinstance(value, list):
        return [_gathered(item, keep) for item in value]
    return value


def _shard_like(value: Any, like: Any) -> Any:
    """`value`, a whole tensor, sharded as the DTensor `like` is (this rank's part of it,
    cut from the copy every rank holds: no communication); anything else as it is."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    if not (isinstance(like, DTensor) and isinstance(value, torch.Tensor)
            and value.shape == like.shape):
        return value
    return distribute_tensor(value.to(like.device, like.dtype), like.device_mesh,
                             like.placements, src_data_rank=None)


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


LAUNCHED = "NETSPEC_LAUNCHED"
"""Environment variable `launch` sets in its workers: a worker that lost contact with
another then exits with status LOST_PEER, silently, and the launcher names the cause."""
LOST_PEER = 3
"""Exit status of a launched worker whose collective failed because another worker ended."""
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
           "LOCAL_WORLD_SIZE": str(size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
           LAUNCHED: "1"}
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
    exit status `launch` describes. The failure named is a worker's own: one that lost
    contact with another (LOST_PEER) is named only when no other worker failed."""
    forwarded = 0
    while True:
        for signum in received[forwarded:]:
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signum)
            forwarded += 1
        codes = [worker.poll() for worker in workers]
        failures = [rank for rank, code in enumerate(codes)
                    if code is not None and not _clean_exit(code, received)]
        failed = min(failures, key=lambda rank: (codes[rank] == LOST_PEER, rank), default=None)
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
            else "lost contact with the others" if code == LOST_PEER
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
