"""One spec as the language server knows it: its text and the analysis of that text.

The analysis is `netspec.api.diagnose`, the one `netspec check` runs, plus the outline
(`netspec.outline`) that maps it back onto the text. A file of shared blocks (`blocks:`
and no `layers:`) is read as a library: its own errors of form here, the errors in its
blocks from the specs that call them. None of this imports pygls or torch.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

import yaml
from pydantic import ValidationError

from netspec.api import diagnose
from netspec.errors import Diagnostic, SpecError
from netspec.ir import Graph
from netspec.outline import Outline, outline
from netspec.report import LayerReport, Report
from netspec.spec.document import Spec
from netspec.spec.library import Library
from netspec.spec.source import Source, editing, read_source
from netspec.spec.validation import diagnostics, document_locator


@dataclass
class Analysis:
    """What `check` knows about one text of a file, and where in the text it is."""

    path: str
    """The file's absolute path (block files named by `use:` resolve against it)."""
    text: str
    diagnostics: list[Diagnostic]
    """Every error and warning, in whichever file each is (a block's are in its file)."""
    spec: Spec | None = None
    report: Report | None = None
    outline: Outline | None = None
    """None when the text could not be read or expanded (see `good`)."""
    library: bool = False
    """A file of shared blocks, not a spec."""
    files: frozenset[str] = field(default_factory=frozenset)
    """The block files its blocks come from (a change there calls for a new analysis)."""

    @property
    def good(self) -> bool:
        """Whether it holds an outline (hover and hints from it)."""
        return self.outline is not None

    @property
    def graph(self) -> Graph | None:
        return self.spec._graph if self.spec is not None else None

    @cached_property
    def layers(self) -> dict[str, LayerReport]:
        """The analysed layers by name (those the errors left intact)."""
        return {layer.name: layer for layer in self.report.layers} if self.report else {}

    @cached_property
    def members(self) -> dict[str, list[str]]:
        """The layers of each block instance, in order (a nested instance's too)."""
        found: dict[str, list[str]] = {}
        for node in self.graph.layers() if self.graph is not None else ():
            for group in node.groups:
                found.setdefault(group, []).append(node.name)
        return found

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def line_map(self, text: str) -> dict[int, int]:
        """Which line (1-based) of `text` each unchanged line of this analysis's text has
        become: how an analysis of an earlier text places its hints in the text now."""
        if text == self.text:
            return {n: n for n in range(1, len(self.lines) + 1)}
        matcher = difflib.SequenceMatcher(None, self.lines, text.splitlines(), autojunk=False)
        return {a + k + 1: b + k + 1 for a, b, size in matcher.get_matching_blocks()
                for k in range(size)}

    def line_before(self, text: str, line: int) -> int | None:
        """The line of this analysis's text that `line` of `text` was (None: a new one)."""
        if text == self.text:
            return line
        return next((old for old, new in self.line_map(text).items() if new == line), None)


NETSPEC_KEYS = frozenset({"input", "inputs", "layers", "blocks", "use"})


def is_netspec(data: object) -> bool:
    """Whether a YAML document is netspec's (a spec or a block file), not some other YAML
    an editor opened (a CI workflow): one of the keys only netspec's documents start with."""
    return isinstance(data, dict) and not NETSPEC_KEYS.isdisjoint(data)


def is_library(data: object) -> bool:
    """A file of shared blocks: `blocks:` (or `use:`) without `layers:`."""
    return isinstance(data, dict) and "layers" not in data and ("blocks" in data or "use" in data)


def analyse(path: str, text: str, edited: Mapping[str, str] | None = None,
            previous: Analysis | None = None) -> Analysis:
    """The analysis of `text` as the file `path`; `edited` gives the texts of other open
    files (absolute paths), which `use:` reads instead of the files on disk.

    `previous`, the analysis of the text before an edit, is reused when the edit changed
    no value and moved none (a comment, trailing spaces): the rest would be the same."""
    try:
        source = read_source(path, text)
    except SpecError as exc:
        return Analysis(path, text, exc.errors)
    if previous is not None and previous.spec is not None and same_values(
            previous.spec._source, source):
        return replace(previous, text=text)
    if not is_netspec(source.data):
        return Analysis(path, text, [], library=True)  # some other YAML: nothing to say
    if is_library(source.data):
        return _library(path, text, source)
    with editing(edited or {}):
        spec, report, errors = diagnose(source, previous=previous.report if previous else None)
    found = [*errors, *(report.warnings if report else [])]
    if spec is None or spec._graph is None:
        return Analysis(path, text, found, spec)
    index = outline(spec._graph, source, spec._blocks)
    files = frozenset(b.source.file for b in spec._blocks.values()) - {path}
    return Analysis(path, text, found, spec, report, index, files=files)


def same_values(before: Source, after: Source) -> bool:
    """Whether two readings of a file hold the same values at the same places (their YAML
    nodes alike, mark for mark): an edit of a comment or of spaces between them."""
    pairs = [(before.node(before.data), after.node(after.data))]
    while pairs:
        a, b = pairs.pop()
        if a is None or b is None:
            return a is b
        if (type(a) is not type(b) or a.tag != b.tag or a.start_mark.index != b.start_mark.index
                or a.end_mark.index != b.end_mark.index):
            return False
        if isinstance(a, yaml.ScalarNode):
            if a.value != b.value:
                return False
        elif len(a.value) != len(b.value):
            return False
        elif isinstance(a, yaml.MappingNode):
            pairs += [pair for (ka, va), (kb, vb) in zip(a.value, b.value, strict=True)
                      for pair in ((ka, kb), (va, vb))]
        else:
            pairs += zip(a.value, b.value, strict=True)
    return True


def _library(path: str, text: str, source: Source) -> Analysis:
    """A block file on its own: its errors of form (those of its blocks' layers come from
    the specs that call them)."""
    try:
        Library.model_validate(source.data)
    except ValidationError as exc:
        errors = diagnostics(exc, Library, "a block file", "", document_locator(source))
        return Analysis(path, text, errors, library=True)
    return Analysis(path, text, [], library=True)
