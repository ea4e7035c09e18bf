"""The intermediate representation: a flat graph of named nodes in topological order.

Expansion turns a spec's blocks and repeats into this graph; analysis, drawing and the
torch backend all read it. Every tensor is a node (inputs included), every node knows the
YAML it came from, and `meta` holds what passes compute about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netspec.errors import Where
from netspec.init import Init
from netspec.ops import Op
from netspec.spec.source import Source


@dataclass(slots=True)
class Locator:
    """Finds the YAML position of a layer entry or of one of its arguments, on demand."""

    source: Source
    entry: Any
    key: Any = None
    found: Where | None = field(default=None, compare=False, repr=False)
    """The layer's position once asked (a source's text does not change)."""

    def at(self, arg: str | None = None) -> Where:
        """The argument `arg`'s value when the layer wrote it, else the layer entry."""
        value = self.entry[self.key] if self.key is not None and isinstance(self.entry, dict) \
            else None
        if arg is not None and isinstance(value, dict) and arg in value:
            return self.source.where(value, arg)
        if self.found is None:
            self.found = self.source.where(self.entry) if self.key is None else \
                self.source.where(self.entry, self.key)
        return self.found

    def meta(self, key: str) -> Where:
        """The layer's meta key `key` (`tie`, `from`) where written, else the layer entry."""
        if isinstance(self.entry, dict) and key in self.entry:
            return self.source.where(self.entry, key)
        return self.at()


@dataclass(slots=True)
class Node:
    """One layer (or input) of the expanded graph.

    `op` is None when the layer failed validation: its errors are already reported, and
    passes skip it and everything downstream of it.
    """

    name: str
    op: Op | None
    inputs: tuple[str, ...]
    loc: Locator
    kind: str
    groups: tuple[str, ...] = ()
    frozen: bool = False
    init: Init | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    tie: str | None = None
    """The layer whose `weight` this one shares (one tensor, counted once)."""

    @property
    def where(self) -> Where:
        return self.loc.at()


@dataclass(slots=True)
class Group:
    """One block instance (drawn as a cluster): its full name, block and parameters."""

    name: str
    block: str
    params: dict[str, Any]
    parent: str | None
    call: Locator | None = None
    """Where the instance is called (a block's layers point into its definition)."""
    checkpoint: bool = False
    """Whether the training step keeps only the instance's inputs and recomputes its
    layers in the backward pass (`checkpoint: true` on the call)."""


@dataclass(slots=True)
class Graph:
    """Nodes in topological order (a layer reads only earlier ones), inputs first."""

    name: str
    nodes: dict[str, Node]
    inputs: list[str]
    outputs: list[str]
    groups: dict[str, Group] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    """The spec's parameters as the expansion evaluated them (set, scaled or default)."""
    shape_reads: dict[tuple[str, int | None], Any] = field(default_factory=dict)
    """The layers' shapes blocks read while expanding: (layer, dim; None for the whole
    shape) -> the value read. The graph is the one for input shapes at which the layers
    have these shapes; at others the spec expands again."""

    auxiliary: list[str] = field(default_factory=list)
    """The layers returned after `outputs` in training only (auxiliary classifiers)."""

    @property
    def reads_shapes(self) -> bool:
        return bool(self.shape_reads)

    def layers(self) -> list[Node]:
        """Every node but the inputs, in order."""
        return [n for n in self.nodes.values() if n.name not in self.inputs]

    def training_only(self) -> set[str]:
        """The layers only the `auxiliary` outputs read: they run in training only, after
        every other layer (the expansion orders them last)."""
        if not self.auxiliary:
            return set()
        needed, auxiliary = self.reading(self.outputs), self.reading(self.auxiliary)
        return {n.name for n in self.layers() if n.name in auxiliary and n.name not in needed}

    def reading(self, names: list[str]) -> set[str]:
        """`names` and every node they read, directly or not."""
        found = set(names)
        for node in reversed(self.nodes.values()):
            if node.name in found:
                found.update(node.inputs)
        return found

    def runs(self) -> list[tuple[str | None, list[Node]]]:
        """The layers in order: a checkpointed block instance's together under its name
        (its layers are consecutive), every other layer alone under None."""
        found: list[tuple[str | None, list[Node]]] = []
        for node in self.layers():
            region = self.checkpoint_of(node)
            if region is not None and found and found[-1][0] == region:
                found[-1][1].append(node)
            else:
                found.append((region, [node]))
        return found

    def checkpoint_of(self, node: Node) -> str | None:
        """The outermost checkpointed block instance `node` is in, or None. Its layers are
        consecutive in the graph and named under it (`layer1.0.conv1` in `layer1.0`)."""
        return next((g for g in node.groups if self.groups[g].checkpoint), None)
