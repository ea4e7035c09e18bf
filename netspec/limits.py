"""Bounds on what one spec may ask for, as named settings with defaults.

A spec is data from anywhere, so reading and analysing it is bounded: a hostile or mistaken
document is refused with an error that names the limit, not left to take unbounded time or
memory. A spec that really needs more raises the limit:

    netspec.check("huge.yaml", limits=netspec.Limits(layers=500_000))
    netspec check huge.yaml --limit layers=500000

The limits in force live in a context variable: each API call taking `limits=` sets it for
its duration, and the code that enforces a limit reads `current()`. Nothing here imports
anything heavy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from pathlib import Path


@dataclass(frozen=True)
class Limits:
    """Every bound, by name (the CLI's `--limit NAME=N` uses the same names)."""

    spec_bytes: int = 8 * 2**20
    """Size of a spec file or text; larger ones are refused before parsing."""
    yaml_values: int = 1_000_000
    """Values in one YAML document after aliases are expanded (defeats alias bombs)."""
    yaml_depth: int = 200
    """Nesting of mappings and lists in one YAML document."""
    number_digits: int = 100
    """Digits in one number literal (`64`, `1e-3`, `0x1F`): a longer one is refused before
    it is converted (Python's own bound is 4,300 digits, and values past 10**15 mean nothing
    in a spec)."""
    layers: int = 100_000
    """Layers in the network (its inputs aside) after blocks and `repeat` are expanded."""
    block_depth: int = 32
    """Blocks calling blocks, nested."""
    use_depth: int = 8
    """Files including files through `use:`, nested."""
    use_includes: int = 1_000
    """`use:` includes in one load, counted as the include tree unfolds (a file used again
    counts again, with its own includes): seven files each using the next ten times are
    about 10**7. Each file is read once however often it is used."""
    name_length: int = 128
    """Characters in a name: a layer's, a block's, a parameter's, an input's."""
    expression_length: int = 200
    """Characters in one expression (`out: "width * 4"`)."""
    tensor_elements: int = 2**31
    """Elements of one layer's output (per sample) and of its parameters and buffers
    together: 2**31 float32 values are 8 GiB."""
    classes: int = 100_000
    """Classes a training data set may have (labels are class indices 0..classes-1): a
    larger label, or more class folders, is refused before anything is allocated for them."""
    text_bytes: int = 64 * 2**20
    """Bytes a `text` data source reads, its files together (the standard library's `.py`
    files are about 30 MiB): a larger text is refused from the files' sizes, before it is
    read. Training keeps two bytes on the device per byte of text."""
    text_files: int = 100_000
    """Files a `text` data source's folder may hold, counted as the folder is walked."""
    predict_files: int = 10_000
    """Input files one `netspec predict` reads, folders' files counted as they are walked."""
    predict_file_bytes: int = 64 * 2**20
    """Bytes one input file of `netspec predict` may have; a larger one is refused from its
    size, before any input is read."""
    use_folders: tuple[Path, ...] = ()
    """Folders besides the spec's own tree that `use:` may read from."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "use_folders":
                object.__setattr__(self, f.name, tuple(Path(p).resolve() for p in value))
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"limit `{f.name}` must be a positive integer, found {value!r}")

    @classmethod
    def names(cls) -> list[str]:
        """The numeric limits' names."""
        return [f.name for f in fields(cls) if f.name != "use_folders"]

    def with_settings(self, settings: Iterable[str]) -> Limits:
        """A copy with `NAME=N` settings applied (the CLI's `--limit`); ValueError names
        the setting that is wrong."""
        numeric = self.names()
        changes: dict[str, int] = {}
        for setting in settings:
            name, _, value = setting.partition("=")
            name = name.strip().replace("-", "_")
            if name not in numeric:
                raise ValueError(f"{setting!r}: no limit `{name}`; limits: {', '.join(numeric)}")
            try:
                changes[name] = int(value.replace("_", "").replace(",", ""))
            except ValueError:
                raise ValueError(f"{setting!r}: write NAME=N with N a positive integer") from None
        return replace(self, **changes)


def raise_hint(name: str) -> str:
    """How to raise the limit `name`: the hint of every error a limit causes."""
    return f"raise the limit with `--limit {name}=N`, or `limits=Limits({name}=N)` in the API"


DEFAULTS = Limits()
_current: ContextVar[Limits | None] = ContextVar("netspec_limits", default=None)


def current() -> Limits:
    """The limits in force."""
    return _current.get() or DEFAULTS


@contextmanager
def applied(limits: Limits | None) -> Iterator[Limits]:
    """Put `limits` in force for the body (None keeps the ones in force)."""
    if limits is None:
        yield current()
        return
    token = _current.set(limits)
    try:
        yield limits
    finally:
        _current.reset(token)
