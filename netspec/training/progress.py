"""A one-line progress bar for an epoch, redrawn in place with `\\r` on a terminal:

    train [##########----------]  412/938  loss 0.1234  acc 95.1%  5,120 img/s  ETA 00:42

It writes nothing when disabled (by default, when its stream is not a terminal: logs and
pipes get only the epoch summary lines), and `close` clears the line so that the summary
prints cleanly in its place.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

MAX_BAR = 30  # the bar's widest, in characters
MIN_BAR = 5  # narrower than this, the bar is left out


def _clock_text(seconds: float) -> str:
    """`mm:ss`, or `h:mm:ss` from an hour on."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _stat_text(name: str, value: float) -> str:
    """`name value`: a stat whose name contains `acc` (a fraction) as a percentage."""
    return f"{name} {100 * value:.1f}%" if "acc" in name else f"{name} {value:.4f}"


class ProgressBar:
    """The progress of one epoch of `total` steps, of which the first `start` (and
    `start_images` images) were done before this process began: a resumed epoch. Rates and
    the ETA count only what this process did, timed from the bar's creation.

    `enabled=None` means: when `stream` (default sys.stderr) is a terminal. Redraws happen
    at most every `min_interval` seconds of `clock`, and always at the last step. The line
    fits the terminal's width (`shutil.get_terminal_size`, which honours $COLUMNS)."""

    def __init__(self, total: int, desc: str, stream: TextIO | None = None, enabled: bool | None = None,
                 min_interval: float = 0.1, clock: Callable[[], float] = time.monotonic, start: int = 0,
                 start_images: int = 0) -> None:
        self.total = total
        self.desc = desc
        self.stream = sys.stderr if stream is None else stream
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.min_interval = min_interval
        self.start = start
        self.start_images = start_images
        self._clock = clock
        self._began = clock()
        self._drawn_at: float | None = None
        self._drawn = 0  # the length of the line on screen

    def update(self, done: int, images: int, **stats: float) -> None:
        """Steps `done` and `images` seen so far this epoch (both counting the resumed part),
        and stats to show (e.g. loss=0.1234, acc=0.951)."""
        if not self.enabled:
            return
        now = self._clock()
        if done < self.total and self._drawn_at is not None and now - self._drawn_at < self.min_interval:
            return
        self._drawn_at = now
        line = self._render(done, images, now - self._began, shutil.get_terminal_size().columns, stats)
        self.stream.write("\r" + line.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(line)

    def _render(self, done: int, images: int, elapsed: float, columns: int, stats: dict[str, float]) -> str:
        """The line for `done` steps and `images` images after `elapsed` seconds of this
        process, in fewer than `columns` characters (the last column would wrap on some
        terminals)."""
        steps, seen = done - self.start, images - self.start_images
        rate = f"{seen / elapsed:,.0f} img/s" if elapsed > 0 else "- img/s"
        eta = _clock_text((self.total - done) * elapsed / steps) if steps > 0 else "--:--"
        count = f"{done:>{len(str(self.total))}}/{self.total}"
        rest = "  ".join([count, *(_stat_text(name, value) for name, value in stats.items()), rate,
                          f"ETA {eta}"])
        room = min(columns - 1 - len(self.desc) - len(rest) - 4, MAX_BAR)
        bar = f" {self._bar(done, room)} " if room >= MIN_BAR else " "
        return (self.desc + bar + rest)[: columns - 1]

    def close(self) -> None:
        """Clear the line, leaving the cursor at its start (idempotent)."""
        if self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()
            self._drawn = 0

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def _bar(self, done: int, width: int) -> str:
        filled = min(width, width * done // self.total) if self.total > 0 else width
        return "[" + "#" * filled + "-" * (width - filled) + "]"
