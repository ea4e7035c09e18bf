"""Where each part of an expanded spec is written: the index an editor reads.

A pass over the IR and the YAML it came from (no analysis of its own): which layers each
layer entry made (every instance of a block's layer, every copy of a `repeat`), what each
reference in `from:`, a merge's list or `outputs:` names, where each layer, block and
parameter is defined, and which text refers to each. Positions are `Where`s (1-based,
with the end of the text they are about), keyed by file, so a block's layers point into
the file that defines them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from netspec.errors import Where
from netspec.ir import Graph, Locator
from netspec.spec.document import as_name
from netspec.spec.library import BlockSource
from netspec.spec.source import Source


@dataclass(slots=True)
class Entry:
    """A layer entry of the YAML (`- conv2d: ...`, `- stem`) and what expanding it made."""

    where: Where
    """Its op's or block's name as written."""
    kind: str
    """The op or block it names."""
    definition: Where
    """Where the layers it makes are named: its `name:` value, else `where`."""
    nodes: list[str] = field(default_factory=list)
    """The layers made from it, in order: every instance's and every copy's."""
    groups: list[str] = field(default_factory=list)
    """The block instances it called, outermost only, in order (none for an op)."""


@dataclass(frozen=True, slots=True)
class Reference:
    """A layer name written where a layer is read (`from:`, a merge's list, `outputs:`)."""

    where: Where
    name: str
    """As written (`conv1`, `layer1.0`)."""
    target: Where
    """The definition of the layer it reads (`Entry.definition`)."""


@dataclass(frozen=True, slots=True)
class Param:
    """A parameter: the spec's (`params:`) or a block's."""

    name: str
    where: Where
    """Its key in `params:`."""
    block: str | None
    """The block it belongs to; None for the spec's own."""
    values: tuple[Any, ...]
    """The values the expansion gave it: one for the spec's, one per instance for a block's."""
    default: Any = None


@dataclass(slots=True)
class Outline:
    """The index of one expanded spec: entries by their first line, references, blocks and
    parameters (see the module docstring)."""

    entries: dict[tuple[str, int], list[Entry]] = field(default_factory=dict)
    references: list[Reference] = field(default_factory=list)
    blocks: dict[str, Where] = field(default_factory=dict)
    """Block definitions by name: the key under `blocks:`."""
    block_spans: dict[str, tuple[Where, int]] = field(default_factory=dict)
    """Each block's body: where it starts and its last line (for scoping names)."""
    params: dict[tuple[str | None, str], Param] = field(default_factory=dict)
    """Parameters by (block or None, name)."""

    def entries_at(self, file: str, line: int) -> list[Entry]:
        """The entries that start on `line` (1-based) of `file`."""
        return self.entries.get((file, line), [])

    def all_entries(self) -> Iterator[Entry]:
        for entries in self.entries.values():
            yield from entries

    def block_at(self, file: str, line: int) -> str | None:
        """The block whose definition holds `line` of `file`, if any."""
        for name, (start, last) in self.block_spans.items():
            if start.file == file and start.line <= line <= last:
                return name
        return None


def outline(graph: Graph, source: Source, blocks: dict[str, BlockSource]) -> Outline:
    """The outline of `graph`, expanded from the spec read as `source` with `blocks`."""
    index = Outline()
    by_key: dict[tuple[str, int, int], Entry] = {}
    by_loc: dict[int, Entry] = {}  # a block's instances share their layers' locators
    for node in graph.layers():
        entry = by_loc.get(id(node.loc))
        if entry is None:
            entry = by_loc[id(node.loc)] = _entry_of(node.loc, node.kind, by_key, index)
        entry.nodes.append(node.name)
    for group in graph.groups.values():
        if group.call is not None and group.block in blocks:  # not a `repeat`'s stage
            _entry_of(group.call, group.block, by_key, index).groups.append(group.name)
    _references(graph, source, blocks, by_key, index)
    _blocks(blocks, graph, index)
    _params(source, graph, index)
    return index


def _entry_of(loc: Locator, kind: str, by_key: dict[tuple[str, int, int], Entry],
              index: Outline) -> Entry:
    """The entry of the layer written at `loc`, made on first sight."""
    where = loc.source.key_where(loc.entry, loc.key) if isinstance(loc.entry, dict) \
        else loc.at()
    key = (where.file, where.line, where.column)
    if key not in by_key:
        named = isinstance(loc.entry, dict) and "name" in loc.entry
        by_key[key] = Entry(where, kind, loc.meta("name") if named else where)
        index.entries.setdefault((where.file, where.line), []).append(by_key[key])
    return by_key[key]


def _references(graph: Graph, source: Source, blocks: dict[str, BlockSource],
                by_key: dict[tuple[str, int, int], Entry], index: Outline) -> None:
    """Each written reference once, however many instances or copies read through it: the
    first (a block's first instance, a `repeat`'s first copy) tells what it names."""
    seen: set[tuple[str, int, int]] = set()

    def add(where: Where, name: Any, target: str) -> None:
        name = as_name(name)  # `from: 0` names the layer `0`
        key = (where.file, where.line, where.column)
        node = graph.nodes.get(target)
        if key in seen or not isinstance(name, str) or node is None or target in graph.inputs:
            return
        seen.add(key)
        index.references.append(Reference(where, name, _entry_of(node.loc, node.kind, by_key,
                                                                  index).definition))

    for node in graph.layers():
        entry, written = node.loc.entry, node.loc.source
        if not isinstance(entry, dict):
            continue
        key = "from" if "from" in entry else node.loc.key
        refs = entry.get(key)
        if key != "from" and not (node.op is not None and type(node.op).short_inputs):
            continue
        if isinstance(as_name(refs), str):
            add(written.where(entry, key), refs, node.inputs[0] if node.inputs else "")
        elif isinstance(refs, list):
            for i, (ref, target) in enumerate(zip(refs, node.inputs, strict=False)):
                add(written.where(entry, key, i), ref, target)
    doc = source.data if isinstance(source.data, dict) else {}
    for key in ("outputs", "auxiliary"):
        listed = doc.get(key)
        for i, name in enumerate(listed if isinstance(listed, list) else []):
            name = as_name(name)
            add(source.where(doc, key, i), name, name if isinstance(name, str) else "")
    for group in graph.groups.values():
        block = blocks.get(group.block)
        output = as_name(block.raw.get("output")) if block and isinstance(block.raw, dict) \
            else None
        if isinstance(output, str):
            add(block.source.where(block.raw, "output"), output, f"{group.name}.{output}")


def _blocks(blocks: dict[str, BlockSource], graph: Graph, index: Outline) -> None:
    """Each block's definition, body and parameters (with the values its calls gave)."""
    given: dict[str, list[dict[str, Any]]] = {}
    for group in graph.groups.values():
        given.setdefault(group.block, []).append(group.params)
    for name, block in blocks.items():
        source, data = block.source, block.source.data
        owner = data.get("blocks") if isinstance(data, dict) else None
        if not isinstance(owner, dict):
            continue
        index.blocks[name] = source.key_where(owner, name)
        body = source.node(owner, name)
        if body is not None:  # its end mark is the next line's start, or the end of the file
            index.block_spans[name] = (index.blocks[name],
                                       body.end_mark.line + (body.end_mark.column > 0))
        params = block.raw.get("params") if isinstance(block.raw, dict) else None
        for param, default in params.items() if isinstance(params, dict) else ():
            values = tuple(p[param] for p in given.get(name, []) if param in p)
            index.params[(name, param)] = Param(param, source.key_where(params, param), name,
                                                values, default)


def _params(source: Source, graph: Graph, index: Outline) -> None:
    """The spec's parameters, with the values the expansion gave them."""
    doc = source.data if isinstance(source.data, dict) else {}
    params = doc.get("params")
    for name, default in params.items() if isinstance(params, dict) else ():
        value = (graph.params[name],) if name in graph.params else ()
        index.params[(None, name)] = Param(name, source.key_where(params, name), None, value,
                                           default)
