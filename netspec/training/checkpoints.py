"""Checkpoints a person can trust: written atomically, read without running code, and tied to
the architecture they were trained for.

A checkpoint is a dict of plain values and tensors (read back with `weights_only=True`):

    format      1
    spec        {"name", "text", "hash"}: the spec's YAML and the hash of its architecture
    config      the resolved `train:` section (a dict)
    epoch       epochs finished
    step        steps finished in the epoch after them (0 at an epoch's end)
    partial     running sums of the unfinished epoch (empty at an epoch's end)
    model, optimizer, scheduler, scaler     their state_dicts
    rng         {"torch", "cuda", "python", "numpy"}: every generator's state
    history     the metrics rows of the finished epochs
    best        {"metric", "value", "epoch"} or None
    data        {"mean", "std", "classes"}: what inference needs to prepare an input
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from netspec.ir import Graph

FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be written, read or used; str() is the whole message."""


class Writer:
    """Writes checkpoints on a background thread while training goes on, one at a time and
    in order. `submit` snapshots the state first (tensors copied to the CPU), so the next
    steps cannot change what is being written; `wait` returns once everything submitted is
    on disk and raises the CheckpointError of a write that failed."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: CheckpointError | None = None

    def submit(self, state: dict[str, Any], path: Path, copies: tuple[Path, ...] = ()) -> None:
        """Write `state` to `path`, then make each of `copies` a copy of it."""
        self.wait()
        snapshot = _snapshot(state)
        self._thread = threading.Thread(target=self._write, args=(snapshot, path, copies),
                                        name="netspec-checkpoint")
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def wait_quietly(self) -> None:
        """Wait for the pending write, as a run that already failed does before it ends."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _write(self, state: dict[str, Any], path: Path, copies: tuple[Path, ...]) -> None:
        try:
            save(state, path)
            for target in copies:
                copy(path, target)
        except CheckpointError as exc:
            self._error = exc


def _snapshot(value: Any) -> Any:
    """`value` with every tensor copied to the CPU (state_dicts hold live references)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_snapshot(v) for v in value)
    return value


def architecture_hash(graph: Graph) -> str:
    """A SHA-256 of what the weights depend on: every layer's name, op, arguments and inputs.

    Comments, formatting, the `train:` section and the input size do not count, so a run can
    be resumed with more epochs or another learning rate, but not with another network.
    """
    layers = [[node.name, node.kind, node.op.model_dump(mode="json") if node.op else None,
               list(node.inputs), node.frozen] for node in graph.layers()]
    text = json.dumps([graph.inputs, layers, graph.outputs], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def rng_states() -> dict[str, Any]:
    """Every random generator training draws from, as plain bytes and numbers: what
    `weights_only` loading accepts and what ranks can exchange."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": _bytes(torch.get_rng_state()),
        "cuda": [_bytes(s) for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [kind, keys.tobytes(), pos, has_gauss, gauss],
    }


def restore_rng(states: dict[str, Any]) -> None:
    """Put every generator back where `rng_states` found it."""
    torch.set_rng_state(_tensor(states["torch"]))
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_tensor(s) for s in states["cuda"]])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, np.frombuffer(keys, dtype=np.uint32).copy(), pos, has_gauss, gauss))


def _bytes(state: torch.Tensor) -> bytes:
    return state.numpy().tobytes()


def _tensor(state: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(state), dtype=torch.uint8)


def save(state: dict[str, Any], path: Path) -> None:
    """Write `state` to `path` atomically: a temporary file beside it, flushed and fsynced,
    then renamed over it. A crash or a full disk leaves the previous checkpoint whole.
    Raises CheckpointError naming the path and the reason."""
    path = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            torch.save(state, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        Path(temp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc}; "
                                  f"the previous one is unchanged") from None
        raise
    _fsync_dir(path.parent)


def copy(source: Path, target: Path) -> None:
    """Make `target` a checkpoint equal to `source`, atomically: a hard link (no bytes
    copied; a later rename over `source` leaves `target` alone) or, where links are not
    supported, a copy through a temporary file."""
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temp.unlink(missing_ok=True)
    try:
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)
            with open(temp, "rb+") as stream:
                os.fsync(stream.fileno())
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise CheckpointError(f"cannot write checkpoint {target}: {exc.strerror or exc}; "
                              f"the previous one is unchanged") from None
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint without running code (`weights_only=True`). Raises CheckpointError
    for a missing, truncated, corrupted or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, pickle errors, EOFError, zip errors
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: it is truncated, corrupted or "
                              f"not a netspec checkpoint ({reason[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a netspec training checkpoint (format {FORMAT})")
    return state


def check_spec(state: dict[str, Any], path: Path, name: str, arch_hash: str) -> None:
    """Refuse a checkpoint written for another architecture, naming both."""
    theirs = state["spec"]
    if theirs["hash"] != arch_hash:
        raise CheckpointError(
            f"{path} was trained for spec `{theirs['name']}` (architecture {theirs['hash'][:12]}), "
            f"not for `{name}` (architecture {arch_hash[:12]}); its weights do not fit")
