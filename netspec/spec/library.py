"""Blocks shared between specs: `use: [blocks/resnet.yaml]` reads the `blocks` of another
file, relative to the file that names it.

A used file holds `blocks` (and may `use` others); the spec's own blocks override used
ones, two used files defining one name is an error. Includes stay inside the folder of the
spec being loaded or the limits' `use_folders` (no `..` escapes, no absolute paths
elsewhere), name regular files, cannot form a cycle and nest at most `use_depth` deep.
Each file is read once per load, however many files use it, and the includes, counted as
the include tree unfolds, are at most `use_includes`. Errors point into the file they are
about.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from netspec import limits
from netspec.errors import Diagnostic, SpecError, clipped
from netspec.spec.document import BlockDef, Identifier, Spec, _Strict
from netspec.spec.source import Source, edited_text, not_regular, read_bytes, read_source
from netspec.spec.validation import diagnostics, document_locator


class Library(_Strict):
    """A file of shared blocks: what `use:` reads."""

    description: str | None = None
    use: list[str] = Field(default_factory=list)
    blocks: dict[Identifier, BlockDef] = Field(default_factory=dict)


@dataclass(frozen=True)
class BlockSource:
    """A block definition and the YAML it was read from (for positions).

    `instances` keeps the expansions of its instances for replay (`expand.Expander.block`):
    a spec loaded once and expanded again with other parameter values shares them."""

    definition: BlockDef
    source: Source
    raw: Any
    instances: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def words(self) -> frozenset[str]:
        """Every name-like word its YAML writes, keys and values: a superset of the
        parameters, shapes and blocks its expansion can read."""
        found: set[str] = set()
        stack = [self.raw]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                stack += [*value, *value.values()]
            elif isinstance(value, list):
                stack += value
            elif isinstance(value, str):
                found.update(_WORD.findall(value))
        return frozenset(found)


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def collect_blocks(spec: Spec, source: Source) -> tuple[dict[str, BlockSource], list[Diagnostic]]:
    """Every block the spec can call: its own, over those of the files it uses.

    A used file is read once while it stays the same (on disk, or in an editor's buffer):
    its blocks keep the instances they expanded (`BlockSource.instances`), so the next load
    of a spec that uses it (the next keystroke in an editor) replays them. Not where one
    of the spec's own blocks takes a name a used block may call: that block could differ."""
    collector = _Collector(source)
    with contextlib.suppress(_TooManyIncludes):  # reported; the blocks found so far are kept
        collector.visit(source, spec.use, ())
    raw = source.data.get("blocks", {}) if isinstance(source.data, dict) else {}
    own = {name: BlockSource(block, source, raw.get(name)) for name, block in spec.blocks.items()}
    used = collector.blocks
    if any(own.keys() & block.words for block in used.values()):
        used = {name: replace(block, instances={}) for name, block in used.items()}
    return {**used, **own}, collector.errors


@dataclass(frozen=True)
class _Read:
    """A block file as read, while its stamp stays the same."""

    stamp: tuple[Any, ...] | None
    source: Source
    library: Library
    blocks: dict[str, BlockSource]


_READS: dict[Path, _Read] = {}
READS_KEPT = 64
"""Block files kept read (the least recently read are dropped first)."""


def _stamp(path: Path) -> tuple[Any, ...] | None:
    """The file's text: an editor's, or its bytes (reading them costs a fraction of
    parsing them; a modification time can miss a quick rewrite); None when it cannot be
    read (then `read_source` says why)."""
    text = edited_text(path)
    if text is not None:
        return ("edited", text)
    try:
        return ("file", read_bytes(path, limits.current().spec_bytes + 1))
    except (OSError, ValueError):
        return None


class _TooManyIncludes(Exception):
    """The includes passed `use_includes` (reported): stop reading files."""


class _Collector:
    def __init__(self, root: Source):
        path = Path(root.file)
        self.root = path.name
        # a file, or an editor's buffer named by its absolute path (saved or not yet)
        known = path.is_file() or (path.is_absolute() and path.parent.is_dir())
        self.folder = path.resolve().parent if known else None
        self.limits = limits.current()
        self.blocks: dict[str, BlockSource] = {}
        self.errors: list[Diagnostic] = []
        self.includes = 0
        """`use:` includes so far, each counted with the includes beneath it."""
        self.beneath: dict[Path, int] = {}
        """Files already read (their blocks collected), with the includes beneath each."""

    def error(self, source: Source, index: int, message: str, hint: str | None = None,
              code: str = "bad-use") -> None:
        self.errors.append(Diagnostic(source.where(source.data, "use", index), "", message, hint,
                                      code=code))

    def visit(self, source: Source, uses: list[str], chain: tuple[Path, ...]) -> None:
        """Collect the blocks of the files `source` uses (`chain`: the files that led to it)."""
        for index, ref in enumerate(uses):
            path = self.resolve(source, index, ref, chain)
            if path is None:
                continue
            known = self.beneath.get(path)
            self.count(1 + (known or 0), source, index, (*chain, path))
            if known is None:
                before = self.includes
                self.read(path, chain)
                self.beneath[path] = self.includes - before

    def count(self, includes: int, source: Source, index: int, chain: tuple[Path, ...]) -> None:
        """Add `includes`; past `use_includes`, report it at this `use:` with the chain of
        files that led to it, and stop."""
        self.includes += includes
        if self.includes > self.limits.use_includes:
            files = " → ".join([self.root, *(p.name for p in chain)])
            self.error(source, index, f"`use` includes more than {self.limits.use_includes:,} "
                       f"files in one load (limit `use_includes`; a file used again counts "
                       f"again, with its own includes): {files}",
                       limits.raise_hint("use_includes"), code="limit")
            raise _TooManyIncludes

    def read(self, path: Path, chain: tuple[Path, ...]) -> None:
        """Read the block file `path` and, through its own `use:`, those it uses."""
        stamp = _stamp(path)
        known = _READS.pop(path, None)  # put back last: the most recently read
        if known is None or known.stamp != stamp or stamp is None:
            try:
                used = read_source(path)
                library = Library.model_validate(used.data if used.data is not None else {})
            except SpecError as exc:
                self.errors.extend(exc.errors)
                return
            except ValidationError as exc:
                self.errors.extend(diagnostics(exc, Library, "a block file", "",
                                               document_locator(used)))
                return
            raw = used.data.get("blocks", {}) if isinstance(used.data, dict) else {}
            known = _Read(stamp, used, library, {
                name: BlockSource(block, used, raw.get(name))
                for name, block in library.blocks.items()})
        _READS[path] = known
        while len(_READS) > READS_KEPT:
            del _READS[next(iter(_READS))]
        used = known.source
        self.visit(used, known.library.use, (*chain, path))
        for name, block in known.blocks.items():
            earlier = self.blocks.get(name)
            if earlier is not None and earlier.source.file != used.file:
                self.errors.append(Diagnostic(
                    used.where(used.data["blocks"], name), "", f"block `{name}` is defined in "
                    f"both {earlier.source.file} and {used.file}", code="duplicate-block"))
                continue
            self.blocks[name] = block

    def resolve(self, source: Source, index: int, ref: str, chain: tuple[Path, ...]) -> Path | None:
        """The file `ref` names, or None after an error (outside the allowed folders, a
        cycle, too deep, missing, not a regular file)."""
        if self.folder is None:
            self.error(source, index, "`use` needs a spec read from a file (its folder is where "
                       "used files are found)")
            return None
        shown = clipped(ref, 80)
        try:
            here = Path(source.file).resolve()
            path = (here.parent / ref).resolve()
            mode = _mode(path)
        except (OSError, ValueError) as exc:  # a name too long, a NUL in it
            self.error(source, index, f"cannot use `{shown}`: {getattr(exc, 'strerror', exc)}")
            return None
        if not any(path.is_relative_to(f) for f in (self.folder, *self.limits.use_folders)):
            self.error(source, index, f"`{shown}` is outside the spec's folder {self.folder}",
                       "used files must sit in the spec's folder or below it, or in a folder "
                       "allowed with `--allow-use DIR` (`Limits(use_folders=...)` in the API)")
            return None
        if path in chain or path == here:
            self.error(source, index, f"`{shown}` uses itself (through "
                       f"{' → '.join(p.name for p in (*chain, path))})")
            return None
        if len(chain) >= self.limits.use_depth:
            self.error(source, index, f"`use` nests more than {self.limits.use_depth} files deep "
                       "(limit `use_depth`)", limits.raise_hint("use_depth"), code="limit")
            return None
        if mode is None:
            self.error(source, index, f"no such file `{shown}` (looked for {path})")
            return None
        kind = not_regular(mode)
        if kind is not None:
            self.error(source, index, f"`{shown}` is {kind}, not a file of blocks ({path})",
                       "`use` lists YAML files that hold `blocks:`")
            return None
        return path


def _mode(path: Path) -> int | None:
    """The file mode of `path` (links followed), or None when there is no such file."""
    try:
        return path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
