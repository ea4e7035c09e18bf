"""Block instances seen from a depth: the one grouping behind `draw --depth` and
`check --depth`.

Expansion records the block instances holding each layer (`Node.groups`, outermost first;
top-level instances are at depth 0). Seen from depth N, an instance nested deeper than N
becomes one unit (a drawing's box, a table's row), unless it holds a failing layer (a
person must see it); the same block with the same parameters chained instance after
instance rolls into one unit counted `×35`. Nothing here imports torch.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from netspec.ir import Graph, Group, Node


@dataclass(slots=True)
class Unit:
    """A layer, or a collapsed block instance (`count` > 1 once identical chained instances
    are rolled into it)."""

    id: str
    clusters: tuple[str, ...]
    """The enclosing block instances still shown whole, outermost first."""
    members: list[Node] = field(default_factory=list)
    group: Group | None = None
    count: int = 1
    last: str = ""
    """The last rolled instance's name."""

    @property
    def scope(self) -> str | None:
        """The innermost instance shown whole around this unit."""
        return self.clusters[-1] if self.clusters else None

    def title(self, scope: str | None = None) -> str:
        """The layer's or instance's name seen from the instance `scope`: `layer3.1–35`
        (`1–35` from `layer3`) for rolled instances layer3.1 to layer3.35."""
        if self.group is None:
            return local(self.members[0].name, scope)
        first = local(self.group.name, scope)
        return span(first, local(self.last, scope)) if self.count > 1 else first

    @property
    def block(self) -> str | None:
        """`bottleneck`, `bottleneck ×35` once rolled; None for a layer."""
        if self.group is None:
            return None
        return f"{self.group.block} ×{self.count}" if self.count > 1 else self.group.block

    @property
    def instances(self) -> list[str]:
        """The names of the block instances in the unit, in order (none for a layer)."""
        if self.group is None:
            return []
        level = len(self.clusters)
        return list(dict.fromkeys(n.groups[level] for n in self.members))


class Collapsed:
    """`graph` seen from `depth` (None: every layer is its own unit).

    `params` holds each analysed layer's parameter count: rolled instances must agree on
    it, and a layer missing from it (not analysed) keeps its instance from rolling.
    `failed` names the failing layers and instances (other names are ignored): an instance
    holding one stays whole.
    """

    def __init__(self, graph: Graph, depth: int | None, params: Mapping[str, int],
                 failed: Collection[str] = ()):
        if depth is not None and depth < 0:
            raise ValueError(f"depth must be 0 or more, found {depth}")
        self.graph = graph
        self.params = params
        self.failed = set(failed)
        self.units, self.unit_of = self._units(depth)

    @cached_property
    def readers(self) -> dict[str, list[str]]:
        """Each layer -> the layers reading it, in order."""
        readers: dict[str, list[str]] = {}
        for node in self.graph.nodes.values():
            for src in node.inputs:
                readers.setdefault(src, []).append(node.name)
        return readers

    def entries(self, unit: Unit) -> list[str]:
        """The tensors `unit` reads from outside itself, in order, once each."""
        inside = {n.name for n in unit.members}
        return list(dict.fromkeys(i for n in unit.members for i in n.inputs if i not in inside))

    def exits(self, unit: Unit) -> list[str]:
        """The members read outside `unit` or leaving the network, in order."""
        inside = {n.name for n in unit.members}
        return [n.name for n in unit.members if n.name in self.graph.outputs
                or any(r not in inside for r in self.readers.get(n.name, ()))]

    def params_of(self, nodes: Iterable[Node]) -> int:
        """The parameters of `nodes` (of the analysed ones)."""
        return sum(self.params.get(n.name, 0) for n in nodes)

    def _units(self, depth: int | None) -> tuple[list[Unit], dict[str, Unit]]:
        """Group layers into units: instances deeper than `depth` become one unit, unless
        they hold a failing layer."""
        broken = {g for name in self.failed for g in self._chain(name)}
        units: list[Unit] = []
        unit_of: dict[str, Unit] = {}
        blocks: dict[str, Unit] = {}
        for node in self.graph.nodes.values():
            chain = node.groups
            cut = None if depth is None else next(
                (i for i in range(depth, len(chain)) if chain[i] not in broken), None)
            if cut is None:
                unit = Unit(node.name, chain)
            elif chain[cut] in blocks:
                unit = blocks[chain[cut]]
            else:  # ids with a space: no layer name has one
                unit = blocks[chain[cut]] = Unit(f"{chain[cut]} (block)", chain[:cut],
                                                 group=self.graph.groups[chain[cut]])
            if not unit.members:
                units.append(unit)
            unit.members.append(node)
            unit_of[node.name] = unit
        return (units if depth is None else self._roll(units, unit_of)), unit_of

    def _chain(self, name: str) -> tuple[str, ...]:
        """The instances holding the layer or instance `name`, outermost first (an
        instance holds itself)."""
        if name in self.graph.groups:
            group = self.graph.groups[name]
            return (*self._chain(group.parent), name) if group.parent else (name,)
        return self.graph.nodes[name].groups if name in self.graph.nodes else ()

    def _roll(self, units: list[Unit], unit_of: dict[str, Unit]) -> list[Unit]:
        """Merge each collapsed instance into the one before it when both are the same block
        with the same parameters and the only link between them is the chain itself."""
        producers = {id(u): {id(unit_of[i]) for n in u.members for i in n.inputs} - {id(u)}
                     for u in units}
        consumers: dict[int, set[int]] = {}
        for u in units:
            for p in producers[id(u)]:
                consumers.setdefault(p, set()).add(id(u))
        ok = {id(u) for u in units if self._ok(u)}
        layouts = {id(u): self.layout(u) for u in units}  # before any unit grows by rolling
        kept: list[Unit] = []
        tail: dict[int, int] = {}  # a kept unit -> the last instance rolled into it
        for u in units:
            prev = kept[-1] if kept else None
            if (prev is not None and u.group is not None and prev.group is not None
                    and (u.group.block, u.group.params, u.clusters)
                    == (prev.group.block, prev.group.params, prev.clusters)
                    and layouts[id(u)] == layouts[id(prev)]
                    and producers[id(u)] == {tail[id(prev)]}
                    and consumers.get(tail[id(prev)]) == {id(u)}
                    and id(u) in ok and id(prev) in ok
                    and self.params_of(u.members) * prev.count == self.params_of(prev.members)):
                prev.members.extend(u.members)
                prev.count += 1
                prev.last = u.group.name
                tail[id(prev)] = id(u)
                for n in u.members:
                    unit_of[n.name] = prev
                continue
            kept.append(u)
            tail[id(u)] = id(u)
        return kept

    @staticmethod
    def layout(unit: Unit) -> list[tuple[str, Any]]:
        """The layers of the unit's first block instance: each one's name inside it and its
        op. Instances with the same parameters differ when they read different shapes (a
        block's first instance in a stage projects its shortcut)."""
        if unit.group is None:
            return []
        name, level = unit.group.name, len(unit.clusters)
        return [(local(n.name, name), n.op) for n in unit.members if n.groups[level] == name]

    def _ok(self, unit: Unit) -> bool:
        """Every member analysed and none failing."""
        return all(n.name in self.params and n.name not in self.failed for n in unit.members)


def local(name: str, scope: str | None) -> str:
    """`conv1` for `layer1.0.conv1` seen inside `layer1.0`: the scope says the rest."""
    return name[len(scope) + 1:] if scope and name.startswith(scope + ".") else name


def span(first: str, last: str) -> str:
    """`layer3.1–35` for instances layer3.1 to layer3.35, `conv2–3`; `a … b` otherwise."""
    a, b = re.fullmatch(r"(.*?)(\d+)", first), re.fullmatch(r"(.*?)(\d+)", last)
    if a and b and a.group(1) == b.group(1):
        return f"{first}–{b.group(2)}"
    return f"{first} … {last}"


def readable_depth(graph: Graph, params: Mapping[str, int], most: int) -> tuple[int, int] | None:
    """The deepest depth from which `graph` shows at most `most` units, with that count
    (depth 0 when even it shows more); None for a graph without block instances."""
    deepest = max((len(n.groups) for n in graph.nodes.values()), default=0)
    choice = None
    for depth in range(deepest):  # from `deepest` on, nothing collapses
        count = len(Collapsed(graph, depth, params).units)
        if choice is not None and count > most:  # deeper never shows fewer
            break
        choice = (depth, count)
    return choice
