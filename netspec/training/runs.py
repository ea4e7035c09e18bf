"""Run folders: each claimed by one run, atomically, before anything is written into it.

A run folder holds one run. It is claimed by creating its marker file, `.netspec-run`, with
`O_CREAT | O_EXCL`, which exactly one process can do; the process then holds an exclusive
`flock` on the marker while it trains (where the platform has `fcntl`), so a resume cannot
enter a folder another process is training into. Two runs started together with the same
`--out` cannot both get it; with the default folder, the second takes `runs/NAME-2`.

A folder holds a run when its marker or a `last.pt` exists (folders written before markers
existed have only `last.pt`). A new run never enters such a folder; a resume continues in its
own run's folder, or claims the `--out` it is given like a new run. A run that ends without
writing `last.pt` (it failed before its first epoch ended) gives its claim back, so the
folder can be used again.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path

from netspec.errors import TrainError

MARKER = ".netspec-run"

try:
    import fcntl
except ImportError:  # Windows: the O_EXCL claim alone
    fcntl = None  # type: ignore[assignment]


class RunFolder:
    """A claimed run folder; `release()` ends the claim (the lock; the marker too when no
    checkpoint was written). Use `claim_new`, `claim_default` or `reenter`."""

    def __init__(self, path: Path, fd: int | None, created: bool) -> None:
        self.path = path
        self._fd = fd
        self._created = created

    @property
    def claimed(self) -> bool:
        """Whether this process holds the folder (rank 0 does; other ranks write nothing)."""
        return self._fd is not None

    @classmethod
    def unclaimed(cls, path: Path) -> RunFolder:
        """The folder as a rank other than 0 names it: it writes nothing, so claims nothing."""
        return cls(path, None, False)

    @classmethod
    def claim_new(cls, path: Path) -> RunFolder:
        """Claim `path` for a new run (creating it); TrainError when it holds a run or cannot
        be written."""
        folder = cls._try_claim(path)
        if folder is None:
            raise TrainError(f"{path} already holds a run; continue it with --resume "
                             f"{path / 'last.pt'}, or choose another --out")
        return folder

    @classmethod
    def claim_default(cls, name: str, parent: Path = Path("runs")) -> RunFolder:
        """Claim the first of `runs/NAME`, `runs/NAME-2`, ... that is free: neither holding
        a run nor holding other files."""
        n = 1
        while True:
            path = parent / (name if n == 1 else f"{name}-{n}")
            if not (path.exists() and any(path.iterdir())):
                folder = cls._try_claim(path)
                if folder is not None:
                    return folder
            n += 1

    @classmethod
    def reenter(cls, path: Path) -> RunFolder:
        """Lock the folder of the run being resumed; TrainError when another process is
        training into it."""
        marker = path / MARKER
        try:
            fd = os.open(marker, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise TrainError(f"cannot write to the run folder {path}: "
                             f"{exc.strerror or exc}") from None
        if not _lock(fd):
            holder = _describe(marker)
            os.close(fd)
            raise TrainError(f"the run in {path} is being trained by another process{holder}; "
                             f"wait for it to end, or resume into another folder with --out")
        _write_owner(fd)
        return cls(path, fd, False)

    @classmethod
    def _try_claim(cls, path: Path) -> RunFolder | None:
        """The claim of `path`, or None when it holds a run."""
        created = not path.exists()
        try:
            path.mkdir(parents=True, exist_ok=True)
            fd = os.open(path / MARKER, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return None
        except OSError as exc:
            raise TrainError(f"cannot write to the run folder {path}: "
                             f"{exc.strerror or exc}") from None
        if (path / "last.pt").exists() or not _lock(fd):  # a run from before markers
            (path / MARKER).unlink(missing_ok=True)
            os.close(fd)
            return None
        _write_owner(fd)
        return cls(path, fd, created)

    def release(self) -> None:
        """End the claim: unlock, and give the folder back when the run wrote no checkpoint."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if not (self.path / "last.pt").exists():
            (self.path / MARKER).unlink(missing_ok=True)
            if self._created:
                with contextlib.suppress(OSError):
                    self.path.rmdir()  # only when empty
        os.close(fd)  # closing drops the lock, after the marker is gone


def _lock(fd: int) -> bool:
    """Take the exclusive lock on the marker without waiting; False when another holds it."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _write_owner(fd: int) -> None:
    """Record who trains into the folder (for the message another process would print)."""
    owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                        "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode()
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, owner)


def _describe(marker: Path) -> str:
    """` (pid N on HOST since TIME)` from the marker, or nothing when it cannot be read."""
    try:
        owner = json.loads(marker.read_text()[:1000])
        return f" (pid {int(owner['pid'])} on {str(owner['host'])[:64]} since {str(owner['since'])[:32]})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""
