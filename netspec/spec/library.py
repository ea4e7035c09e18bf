"""Blocks shared between specs: `use: [blocks/resnet.yaml]` reads the `blocks` of another
file, relative to the file that names it.

A used file holds `blocks` (and may `use` others); the spec's own blocks override used
ones, two used files defining one name is an error. Includes stay inside the folder of the
spec being loaded or the limits' `use_folders` (no `..` escapes, no absolute paths
elsewhere), cannot form a cycle and nest at most `use_depth` deep. Errors point into the
file they are about.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from netspec import limits
from netspec.errors import Diagnostic, SpecError
from netspec.spec.document import BlockDef, Identifier, Spec, _Strict
from netspec.spec.source import Source, read_source
from netspec.spec.validation import diagnostics, document_locator


class Library(_Strict):
    """A file of shared blocks: what `use:` reads."""

    description: str | None = None
    use: list[str] = Field(default_factory=list)
    blocks: dict[Identifier, BlockDef] = Field(default_factory=dict)


@dataclass(frozen=True)
class BlockSource:
    """A block definition and the YAML it was read from (for positions)."""

    definition: BlockDef
    source: Source
    raw: Any


def collect_blocks(spec: Spec, source: Source) -> tuple[dict[str, BlockSource], list[Diagnostic]]:
    """Every block the spec can call: its own, over those of the files it uses."""
    collector = _Collector(source)
    collector.visit(source, spec.use, ())
    raw = source.data.get("blocks", {}) if isinstance(source.data, dict) else {}
    own = {name: BlockSource(block, source, raw.get(name)) for name, block in spec.blocks.items()}
    return {**collector.blocks, **own}, collector.errors


class _Collector:
    def __init__(self, root: Source):
        path = Path(root.file)
        self.folder = path.resolve().parent if path.is_file() else None
        self.limits = limits.current()
        self.blocks: dict[str, BlockSource] = {}
        self.errors: list[Diagnostic] = []

    def error(self, source: Source, index: int, message: str, hint: str | None = None,
              code: str = "bad-use") -> None:
        self.errors.append(Diagnostic(source.where(source.data, "use", index), "", message, hint,
                                      code=code))

    def visit(self, source: Source, uses: list[str], chain: tuple[Path, ...]) -> None:
        for index, ref in enumerate(uses):
            path = self.resolve(source, index, ref, chain)
            if path is None:
                continue
            try:
                used = read_source(path)
                library = Library.model_validate(used.data if used.data is not None else {})
            except SpecError as exc:
                self.errors.extend(exc.errors)
                continue
            except ValidationError as exc:
                self.errors.extend(diagnostics(exc, Library, "a block file", "",
                                               document_locator(used)))
                continue
            self.visit(used, library.use, (*chain, path))
            raw = used.data.get("blocks", {}) if isinstance(used.data, dict) else {}
            for name, block in library.blocks.items():
                earlier = self.blocks.get(name)
                if earlier is not None and earlier.source.file != used.file:
                    self.errors.append(Diagnostic(
                        used.where(raw, name), "", f"block `{name}` is defined in both "
                        f"{earlier.source.file} and {used.file}", code="duplicate-block"))
                    continue
                self.blocks[name] = BlockSource(block, used, raw.get(name))

    def resolve(self, source: Source, index: int, ref: str, chain: tuple[Path, ...]) -> Path | None:
        if self.folder is None:
            self.error(source, index, "`use` needs a spec read from a file (its folder is where "
                       "used files are found)")
            return None
        try:
            here = Path(source.file).resolve()
            path = (here.parent / ref).resolve()
            found = path.is_file()
        except (OSError, ValueError) as exc:  # a name too long, a NUL in it
            self.error(source, index, f"cannot use `{ref[:80]}`: {getattr(exc, 'strerror', exc)}")
            return None
        if not any(path.is_relative_to(f) for f in (self.folder, *self.limits.use_folders)):
            self.error(source, index, f"`{ref}` is outside the spec's folder {self.folder}",
                       "used files must sit in the spec's folder or below it, or in a folder "
                       "allowed with `--allow-use DIR` (`Limits(use_folders=...)` in the API)")
            return None
        if path in chain or path == here:
            self.error(source, index, f"`{ref}` uses itself (through "
                       f"{' → '.join(p.name for p in (*chain, path))})")
            return None
        if len(chain) >= self.limits.use_depth:
            self.error(source, index, f"`use` nests more than {self.limits.use_depth} files deep "
                       "(limit `use_depth`)", limits.raise_hint("use_depth"), code="limit")
            return None
        if not found:
            self.error(source, index, f"no such file `{ref}` (looked for {path})")
            return None
        return path
