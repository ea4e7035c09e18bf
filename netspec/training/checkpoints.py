"""Checkpoints a person can trust: written atomically, read without running code, and tied to
the architecture they were trained for.

A checkpoint is a dict of plain values and tensors (read back with `weights_only=True`):

    format      1
    spec        {"name", "text", "hash"}: the spec's YAML and the hash of its architecture;
                {"scale", "params"}: the scale and parameter values it was loaded with
                (`Spec.choice`; absent from checkpoints written before they existed)
    config      the resolved `train:` section (a dict)
    epoch       epochs finished
    step        steps finished in the epoch after them (0 at an epoch's end)
    partial     running sums of the unfinished epoch (empty at an epoch's end)
    model, optimizer, scheduler, scaler     their state_dicts
    rng         {"torch", "cuda", "python", "numpy"}: every generator's state
    history     the metrics rows of the finished epochs
    best        {"metric", "value", "epoch"} or None
    data        {"mean", "std", "classes"}: what inference needs to prepare an input

`load` trusts none of it: the archive's CRC-32s are checked first (a flipped byte anywhere is
refused, naming the tensor or record it hit), then every key above for its type, so that a
damaged or hand-made file ends in a CheckpointError, never in an error inside training.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import re
import shutil
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from netspec.ir import Graph
from netspec.training.config import TrainConfig
from netspec.training.metrics import ADDED, COLUMNS

FORMAT = 1

FULL_DISK_BYTES = 1 << 20
"""A write that failed with less than this free on its file system failed for want of space
(torch's zip writer reports a short write as `unexpected pos`, not as ENOSPC)."""

VERIFY_CHUNK = 1 << 22
"""Bytes read at a time when `load` checks a record's CRC-32."""

DOS_FOLDER = 0x10
"""The zip directory's attribute bit that makes torch's reader take a record for a folder."""

TEMPORARY = re.compile(r"\.(?P<name>.+\.pt)\.[a-z0-9_]+\.tmp")
"""The name of a checkpoint being written: `.last.pt.k3j_x9a2.tmp` (`save`) or `.best.pt.PID.tmp`
(`copy`); a process killed mid-write leaves it behind, for `remove_temporary`."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be written, read or used; str() is the whole message."""


class Writer:
    """Writes checkpoints on a background thread while training goes on, one at a time and
    in order. `submit` snapshots the state first (tensors copied to the CPU), so the next
    steps cannot change what is being written; `wait` returns once everything submitted is
    on disk and raises the CheckpointError of a write that failed. The thread never dies
    with an exception of its own: whatever a write raises is kept for `wait` to raise."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: CheckpointError | None = None

    def submit(self, state: dict[str, Any], path: Path, copies: tuple[Path, ...] = ()) -> None:
        """Write `state` to `path`, then make each of `copies` a copy of it."""
        self.wait()
        snapshot = _snapshot(state)
        # A daemon: a second Ctrl-C ends the process at once, abandoning a write in flight,
        # which leaves the previous checkpoint whole (and a temporary file for the next run).
        self._thread = threading.Thread(target=self._write, args=(snapshot, path, copies),
                                        name="netspec-checkpoint", daemon=True)
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
        except Exception as exc:  # a bug, not the disk: still reported, by `wait`
            error = CheckpointError(f"cannot write checkpoint {path}: {type(exc).__name__}: "
                                    f"{_first_line(exc)}")
            error.__cause__ = exc
            self._error = error


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
    returned = [graph.outputs, *([graph.auxiliary] if graph.auxiliary else [])]  # as before
    text = json.dumps([graph.inputs, layers, *returned], sort_keys=True, separators=(",", ":"))
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
    random.setstate(_python_state(states["python"]))
    np.random.set_state(_numpy_state(states["numpy"]))


def _python_state(saved: Any) -> tuple[Any, ...]:
    version, internal, gauss = saved
    return version, tuple(internal), gauss


def _numpy_state(saved: Any) -> tuple[Any, ...]:
    kind, keys, pos, has_gauss, gauss = saved
    return kind, np.frombuffer(keys, dtype=np.uint32).copy(), pos, has_gauss, gauss


def _bytes(state: torch.Tensor) -> bytes:
    return state.numpy().tobytes()


def _tensor(state: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(state), dtype=torch.uint8)


def save(state: dict[str, Any], path: Path) -> None:
    """Write `state` to `path` atomically: a temporary file beside it, flushed and fsynced,
    then renamed over it. A crash or a full disk leaves the previous checkpoint whole and no
    temporary file (but a process killed mid-write leaves one: see `remove_temporary`).
    Raises CheckpointError naming the path and the reason for any failure."""
    path = Path(path)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as stream, _crc32_on():
            torch.save(state, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        error = _write_error(path, exc)  # before the unlink frees the space
        Path(temp).unlink(missing_ok=True)
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt and the like stay what they are
        raise error from exc
    _fsync_dir(path.parent)


def copy(source: Path, target: Path) -> None:
    """Make `target` a checkpoint equal to `source`, atomically: a hard link (no bytes
    copied; a later rename over `source` leaves `target` alone) or, where links are not
    supported, a copy through a temporary file. Raises CheckpointError as `save` does."""
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temp.unlink(missing_ok=True)
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)
            with open(temp, "rb+") as stream:
                os.fsync(stream.fileno())
        os.replace(temp, target)
    except Exception as exc:
        error = _write_error(target, exc)
        temp.unlink(missing_ok=True)
        raise error from exc
    _fsync_dir(target.parent)


def _write_error(path: Path, exc: BaseException) -> CheckpointError:
    """The CheckpointError for a failed write of `path`: the system's reason where an OSError
    gives one (No space left on device, Permission denied, ...), `No space left on device`
    too for torch's own RuntimeError when the file system is full, else torch's message."""
    reason = None
    for cause in _chain(exc):
        if isinstance(cause, OSError):
            reason = cause.strerror or str(cause)
            if cause.errno == errno.ENOSPC:
                break
    if reason is None:
        reason = os.strerror(errno.ENOSPC) if _full(path.parent) else _first_line(exc)
    kept = "the previous one is unchanged" if path.exists() else "there was none before"
    return CheckpointError(f"cannot write checkpoint {path}: {reason}; {kept}")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and the exceptions it was raised from or while handling, most recent first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _full(folder: Path) -> bool:
    """Whether the file system holding `folder` has (almost) no room left for us."""
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        return False
    return stats.f_bavail * stats.f_frsize < FULL_DISK_BYTES


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


@contextmanager
def _crc32_on() -> Iterator[None]:
    """torch.save writes each record's CRC-32 unless a program turned that off
    (`torch.serialization.set_crc32_options`, torch >= 2.6); `load` checks them, so they are
    on while netspec saves."""
    get = getattr(torch.serialization, "get_crc32_options", None)
    if get is None or get():
        yield
        return
    torch.serialization.set_crc32_options(True)
    try:
        yield
    finally:
        torch.serialization.set_crc32_options(False)


def remove_temporary(folder: Path) -> list[Path]:
    """Remove the temporary checkpoints (`.last.pt.XXXX.tmp`, `.best.pt.PID.tmp`) that writes
    killed midway left in the run folder `folder`, and return them; no other file is touched.
    Call it only while no process writes into `folder` (once the run has claimed it)."""
    folder = Path(folder)
    removed = [entry for entry in sorted(folder.iterdir())
               if TEMPORARY.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink()]
    for entry in removed:
        entry.unlink(missing_ok=True)
    return removed


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


def locate(path: Path) -> Path:
    """The checkpoint `path` names: the file itself, or in a run folder `best.pt` (else
    `last.pt`). CheckpointError when a folder holds neither."""
    path = Path(path)
    if not path.is_dir():
        return path
    for name in ("best.pt", "last.pt"):
        if (path / name).is_file():
            return path / name
    raise CheckpointError(f"no checkpoint in {path} (best.pt or last.pt): is it a run folder?")


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint without running code (`weights_only=True`), once it has passed two
    checks: every record's CRC-32 (`_verify`), then every key the training loop reads, with its
    type (`_validate`). Raises CheckpointError for a missing, truncated, damaged, foreign or
    incomplete file, naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    _verify(path)
    state = _read(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a netspec training checkpoint (format {FORMAT})")
    _validate(state, path)
    return state


def _read(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, pickle errors, EOFError, zip errors
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: BaseException) -> CheckpointError:
    return CheckpointError(f"cannot read checkpoint {path}: it is truncated, corrupted or not a "
                           f"netspec checkpoint ({_first_line(exc)})")


def _verify(path: Path) -> None:
    """Refuse a checkpoint any byte of which changed since it was written, naming the tensor
    (or the record) that the damage hit.

    A checkpoint is a zip archive in which torch stores, for every record (the pickle of the
    dict, each tensor's bytes, the version files), the CRC-32 of its bytes; torch.load
    ignores them. Reading every record through `zipfile` checks them all. Chosen over a
    SHA-256 per tensor stored in the dict: the CRCs cover every byte torch reads, the pickle
    and its numbers included, not only the tensors; torch already writes them (nothing to
    add at save, and older checkpoints are covered too); a CRC-32 detects every error
    confined to 32 consecutive bits, so every flipped byte; and a digest stored beside the
    data proves no more than a CRC against someone who rewrites the file (`weights_only`
    is what keeps such a file from running code). The cost is one more read of the file:
    0.08-0.09 s per 100 MB from the page cache (zlib's CRC-32), about what torch.load itself
    takes for it."""
    try:
        archive = zipfile.ZipFile(path)
    except Exception as exc:  # BadZipFile, and worse for a mangled directory
        raise _unreadable(path, exc) from None
    with archive:
        for record in archive.infolist():
            if record.is_dir() or record.external_attr & DOS_FOLDER:
                raise CheckpointError(f"checkpoint {path} is damaged: record `{record.filename}` "
                                      f"is marked as a folder")  # torch would read no bytes
            try:
                with archive.open(record) as stream:
                    while stream.read(VERIFY_CHUNK):
                        pass
            except Exception as exc:
                raise CheckpointError(f"checkpoint {path} is damaged: "
                                      f"{_damage(path, archive, record, exc)}") from None


def _damage(path: Path, archive: zipfile.ZipFile, record: zipfile.ZipInfo, exc: Exception) -> str:
    """What failed, in words: the tensor whose bytes changed where the rest of the file still
    loads, else the record."""
    what = f"record `{record.filename}`"
    if record.filename.rsplit("/", 2)[-2:-1] == ["data"]:  # archive/data/N: a tensor's bytes
        name = _changed_tensor(path, {r.CRC for r in archive.infolist()})
        if name is not None:
            what = f"tensor `{name}`"
    if isinstance(exc, zipfile.BadZipFile) and str(exc).startswith("Bad CRC-32"):
        return f"{what} fails its checksum"
    return f"{what} cannot be read ({_first_line(exc)})"


def _changed_tensor(path: Path, crcs: set[int]) -> str | None:
    """The first tensor in the checkpoint whose bytes match none of the records' CRC-32s."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        for where, tensor in _tensors(state):
            storage = torch.empty(0, dtype=torch.uint8).set_(tensor.untyped_storage())
            if zlib.crc32(storage.numpy()) not in crcs:
                return where
    except Exception:  # the damage is reported by record instead
        return None
    return None


def _tensors(value: Any, where: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor in `value` with its dotted path (`model.conv1.weight`, `rng[0]...`)."""
    if isinstance(value, torch.Tensor):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _tensors(item, f"{where}[{index}]")


def check_spec(state: dict[str, Any], path: Path, name: str, arch_hash: str) -> None:
    """Refuse a checkpoint written for another architecture, naming both."""
    theirs = state["spec"]
    if theirs["hash"] != arch_hash:
        raise CheckpointError(
            f"{path} was trained for spec `{theirs['name']}` (architecture {theirs['hash'][:12]}), "
            f"not for `{name}` (architecture {arch_hash[:12]}); its weights do not fit")


# -- validation: every key the training loop reads, with its type -----------------------------


class _Invalid(Exception):
    """A value of the wrong type or form; str() says which and what it should be."""


class _Missing(_Invalid):
    """A key that is not there; str() is its dotted path."""


def _validate(state: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint (made by hand, or by another program) that lacks a key the loop
    reads or holds a value it cannot use, before anything uses it."""
    try:
        for key, check in _CHECKS.items():
            check(_item(state, "", key), key)
    except _Missing as exc:
        raise CheckpointError(f"{path} is not a complete netspec checkpoint: "
                              f"missing `{exc}`") from None
    except _Invalid as exc:
        raise CheckpointError(f"{path} is not a valid netspec checkpoint: {exc}") from None


def _item(mapping: Any, where: str, key: str) -> Any:
    """`mapping[key]`, where `mapping` (found at `where`) must be a dict holding `key`."""
    _expect(isinstance(mapping, dict), where, "a dict", mapping)
    if key not in mapping:
        raise _Missing(f"{where}.{key}" if where else key)
    return mapping[key]


def _expect(ok: bool, where: str, expected: str, value: Any) -> None:
    if not ok:
        raise _Invalid(f"`{where}` must be {expected}, found {_shown(value)}")


def _shown(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, dict | list | tuple | bytes | str) and len(value) > 40:
        return f"a {type(value).__name__} of length {len(value)}"
    return repr(value)


def _is_count(value: Any, least: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_spec(value: Any, where: str) -> None:
    for key in ("name", "text", "hash"):
        item = _item(value, where, key)
        _expect(isinstance(item, str), f"{where}.{key}", "text", item)
    scale, params = value.get("scale"), value.get("params", {})
    _expect(scale is None or isinstance(scale, str), f"{where}.scale", "a scale's name", scale)
    _expect(isinstance(params, dict) and all(isinstance(k, str) for k in params),
            f"{where}.params", "parameter values by name", params)


def _check_config(value: Any, where: str) -> None:
    _expect(isinstance(value, dict), where, "a dict (the `train:` section)", value)
    try:
        TrainConfig.model_validate(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        place = ".".join(map(str, error["loc"]))
        raise _Invalid(f"`{where}` is not a valid `train:` section: {place}: {error['msg']}") from None


def _check_count(value: Any, where: str) -> None:
    _expect(_is_count(value), where, "a non-negative integer", value)


def _check_partial(value: Any, where: str) -> None:
    _expect(isinstance(value, dict), where, "a dict", value)
    if not value:
        return
    for key in ("loss", "correct"):
        item = _item(value, where, key)
        _expect(isinstance(item, torch.Tensor) and item.dim() == 0 and item.is_floating_point(),
                f"{where}.{key}", "a float tensor of one value", item)
    for key in ("samples", "units"):
        _check_count(_item(value, where, key), f"{where}.{key}")


def _check_state_dict(value: Any, where: str) -> None:
    _expect(isinstance(value, dict), where, "a dict (a state_dict)", value)


def _check_model(value: Any, where: str) -> None:
    _check_state_dict(value, where)
    for key, item in value.items():
        _expect(isinstance(key, str) and isinstance(item, torch.Tensor), f"{where}.{key}",
                "a tensor", item)


def _check_optimizer(value: Any, where: str) -> None:
    state, groups = _item(value, where, "state"), _item(value, where, "param_groups")
    _expect(isinstance(state, dict), f"{where}.state", "a dict", state)
    _expect(isinstance(groups, list) and all(isinstance(g, dict) and isinstance(g.get("params"), list)
                                             for g in groups),
            f"{where}.param_groups", "a list of parameter groups", groups)


def _check_rng(value: Any, where: str) -> None:
    _expect(isinstance(value, list) and len(value) > 0, where,
            "a list of generator states, one per process", value)
    for rank, states in enumerate(value):
        _check_generators(states, f"{where}[{rank}]")


def _check_generators(states: Any, where: str) -> None:
    """Each state is tried on a fresh generator of its kind: what `restore_rng` will do."""
    torch_state, cuda = _item(states, where, "torch"), _item(states, where, "cuda")
    _expect(isinstance(torch_state, bytes), f"{where}.torch", "bytes", torch_state)
    _expect(isinstance(cuda, list) and all(isinstance(s, bytes) for s in cuda), f"{where}.cuda",
            "a list of bytes", cuda)
    trials = {"torch": lambda s: torch.Generator().set_state(_tensor(s)),
              "python": lambda s: random.Random().setstate(_python_state(s)),
              "numpy": lambda s: np.random.RandomState().set_state(_numpy_state(s))}
    for key, trial in trials.items():
        item = _item(states, where, key)
        try:
            trial(item)
        except Exception:
            raise _Invalid(f"`{where}.{key}` is not a state of the {key} random generator, "
                           f"found {_shown(item)}") from None


def _check_history(value: Any, where: str) -> None:
    _expect(isinstance(value, list), where, "a list of metrics rows", value)
    for index, row in enumerate(value):
        at = f"{where}[{index}]"
        epoch = _item(row, at, "epoch")
        _expect(_is_count(epoch, 1), f"{at}.epoch", "a positive integer", epoch)
        for key in COLUMNS[1:]:
            item = row.get(key) if key in ADDED else _item(row, at, key)
            _expect(item is None or _is_number(item), f"{at}.{key}", "a number or None", item)


def _check_best(value: Any, where: str) -> None:
    if value is None:
        return
    metric, number = _item(value, where, "metric"), _item(value, where, "value")
    _expect(metric in COLUMNS[1:], f"{where}.metric", "a metrics column", metric)
    _expect(_is_number(number), f"{where}.value", "a number", number)
    epoch = _item(value, where, "epoch")
    _expect(_is_count(epoch, 1), f"{where}.epoch", "a positive integer", epoch)


def _check_data(value: Any, where: str) -> None:
    for key in ("mean", "std"):
        item = _item(value, where, key)
        _expect(isinstance(item, list) and all(map(_is_number, item)), f"{where}.{key}",
                "a list of numbers", item)
    classes = _item(value, where, "classes")
    _expect(isinstance(classes, list) and all(isinstance(c, str) for c in classes),
            f"{where}.classes", "a list of class names", classes)


_CHECKS = {"spec": _check_spec, "config": _check_config, "epoch": _check_count,
           "step": _check_count, "partial": _check_partial, "model": _check_model,
           "optimizer": _check_optimizer, "scheduler": _check_state_dict,
           "scaler": _check_state_dict, "rng": _check_rng, "history": _check_history,
           "best": _check_best, "data": _check_data}
"""What `_validate` checks, key by key, in the order of the module docstring."""
