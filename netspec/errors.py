"""Positioned diagnostics: every error and warning netspec reports points at a YAML node.

A `Diagnostic` is one finding (file, line, column, the layer path, a message and an optional
hint); `SpecError` is the `ValueError` that carries all of them, so one run reports every
independent mistake instead of stopping at the first.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class Where:
    """A 1-based position in a spec file, and where the text it is about ends (the line and
    column just past its last character; 0 when unknown: an empty range at the start).
    A mapping or list written in block style ends where its first key or item does, so
    an editor underlines `conv2d` of a layer, not every line of it."""

    file: str
    line: int
    column: int
    end_line: int = field(default=0, compare=False)
    end_column: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One error or warning, positioned at the YAML node it is about."""

    where: Where
    path: str
    message: str
    hint: str | None = None
    severity: Literal["error", "warning"] = "error"
    code: str = ""

    @property
    def text(self) -> str:
        """The message with the layer path in front and the hint behind."""
        head = f"{self.path}: {self.message}" if self.path else self.message
        return f"{head}; {self.hint}" if self.hint else head

    def format(self) -> str:
        """`FILE:LINE:COL: error: PATH: MESSAGE; HINT`, the compiler-style line."""
        return f"{self.where}: {self.severity}: {self.text}"

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"file": self.where.file, "line": self.where.line,
                                  "column": self.where.column}
        if self.where.end_line:
            out["end_line"], out["end_column"] = self.where.end_line, self.where.end_column
        out["path"], out["message"] = self.path, self.message
        if self.hint:
            out["hint"] = self.hint
        if self.code:
            out["code"] = self.code
        return out


class SpecError(ValueError):
    """A spec has errors; `.errors` lists every one, each positioned at its YAML node."""

    def __init__(self, errors: Iterable[Diagnostic]):
        self.errors: list[Diagnostic] = list(errors)
        super().__init__("\n".join(d.format() for d in self.errors))


SHOWN = 40
"""Characters of a word the user wrote that a message quotes: a name of a megabyte is
quoted by its first 40 characters and `…`."""
COMPARED = 200
"""Words longer than this are like none of the choices (comparing a megabyte-long word
with each choice would take seconds; every name is shorter, see `Limits.name_length`)."""


def clipped(text: str, width: int = SHOWN) -> str:
    """`text` as a message quotes it: whole up to `width` characters, else its first
    `width` and `…`."""
    return text if len(text) <= width else text[:width] + "…"


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = 8


def shown(value: object, width: int = 60) -> str:
    """`repr(value)` as a message quotes it: at most `width` characters, however large or
    deep the value (reprlib: only what is shown is walked, six levels deep at most)."""
    text = _REPR.repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def closest(word: object, choices: Iterable[str]) -> str | None:
    """The choice most like `word`, or None when none is close."""
    if not isinstance(word, str) or len(word) > COMPARED:
        return None
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return match[0] if match else None


def did_you_mean(word: object, choices: Iterable[str]) -> str | None:
    """A 'did you mean `x`?' hint for the closest choice, or None when nothing is close."""
    match = closest(word, choices)
    return f"did you mean `{match}`?" if match else None


def quote_list(names: Iterable[str], limit: int = 12, near: object = None) -> str:
    """`a`, `b`, `c` (and N more): a readable list of choices for messages, in alphabetical
    order, or, given the word the user wrote as `near`, the most similar first (so that the
    cut at `limit` never hides the best match)."""
    names = sorted(names)
    if isinstance(near, str) and len(near) <= COMPARED:
        names.sort(key=lambda name: -difflib.SequenceMatcher(None, near, name).ratio())
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    more = len(names) - limit
    return f"{shown} and {more} more" if more > 0 else shown


class TrainError(ValueError):
    """Training cannot start or go on (bad data, an output that does not fit the labels, an
    unwritable folder, a NaN loss, an unusable checkpoint); str() is the whole message."""


class PeerLost(TrainError):
    """A collective failed because another training process is gone (killed, or ended by
    an error of its own): the cause is the other process's, not this one's."""
