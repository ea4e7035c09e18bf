"""Scopes read off a torch model, written as a spec: each module class becomes one block
(instances that lack a layer others have keep it under `if:`; arguments that differ become
parameters), a Sequential of one block's instances chained becomes a `repeat`, and every
layer keeps its module's name (a Sequential's `0` as `name: 0`), so the built spec's
`state_dict` keys are the model's."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from netspec.importer.trace import Scope, Traced
from netspec.ops import OPS

CONTAINERS = {"Sequential", "ModuleList", "ModuleDict"}


@dataclass
class Item:
    """A layer of a form: an op or a block call, reading `refs` (local names, `input`)."""

    name: str
    kind: str
    args: dict[str, Any]
    refs: tuple[str, ...]
    repeat: int = 1
    note: str | None = None

    def key(self) -> tuple[str, str, tuple[str, ...]]:
        return self.name, self.kind, self.refs


@dataclass
class Block:
    name: str
    instances: list[Scope]
    inputs: int
    items: list[Item] = field(default_factory=list)
    when: dict[int, str] = field(default_factory=dict)
    """Item index -> its `if:` condition."""
    params: dict[str, Any] = field(default_factory=dict)
    slots: dict[tuple[int, str], str] = field(default_factory=dict)
    """(item index, argument) -> the parameter giving it."""
    output: str | None = None
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Instance path -> its call's arguments."""


class Writer:
    """Turns a traced model into spec YAML text."""

    def __init__(self, traced: Traced):
        self.traced = traced
        self.owner: dict[torch.fx.Node, Scope] = {}
        self.scopes: list[Scope] = []
        self._collect(traced.root)
        self.inputs = {s.path: self._inputs(s) for s in self.scopes}
        self.blocks: dict[str, Block] = {}
        self.block_of: dict[str, Block] = {}
        self.repeats: dict[str, tuple[Block, int]] = {}

    def _collect(self, scope: Scope) -> None:
        self.scopes.append(scope)
        for node in scope.made:
            self.owner[node] = scope
        for entry in scope.entries:
            if entry.scope is not None:
                self._collect(entry.scope)

    def _inputs(self, scope: Scope) -> list[torch.fx.Node]:
        """The values a scope reads from outside it, in order of first reading."""
        seen: dict[torch.fx.Node, None] = {}
        stack = [scope]
        while stack:
            s = stack.pop(0)
            for e in s.entries:
                for r in e.reads:
                    if r not in scope.inside:
                        seen.setdefault(r)
                if e.scope is not None:
                    stack.append(e.scope)
        return list(seen)

    def ref(self, node: torch.fx.Node, scope: Scope) -> str:
        """How a layer of `scope` names the value `node`."""
        if node in scope.made:
            return scope.made[node]
        if node in scope.inside:
            child = next(e for e in scope.entries if e.scope is not None and node in e.scope.inside)
            return child.name
        ins = self.inputs[scope.path]
        if scope.path == "":
            return "input"
        return "input" if len(ins) == 1 else f"x{ins.index(node)}"

    def form(self, scope: Scope) -> list[Item]:
        """A scope's layers as items, its child scopes as calls of their blocks."""
        items = []
        for e in scope.entries:
            refs = tuple(self.ref(r, scope) for r in (self.inputs[e.scope.path] if e.scope else e.reads))
            if e.scope is None:
                note = str(e.missing) if e.missing else None
                items.append(Item(e.name, e.kind, e.args, refs, note=note))
            elif e.scope.path in self.repeats:
                block, n = self.repeats[e.scope.path]
                items.append(Item(e.name, block.name, self._per_copy(block, e.scope), refs, n))
            else:
                block = self.block_of[e.scope.path]
                items.append(Item(e.name, block.name, block.calls[e.scope.path], refs))
        return items

    def _per_copy(self, block: Block, seq: Scope) -> dict[str, Any]:
        """A repeated call's arguments: copy i's values, as one value or an expression of i."""
        copies = [block.calls[e.scope.path] for e in seq.entries if e.scope is not None]
        args: dict[str, Any] = {}
        for key in copies[0]:
            values = [c[key] for c in copies]
            if all(v == values[0] for v in values):
                args[key] = values[0]
            elif all(v == values[1] for v in values[1:]):
                args[key] = f"{_expr(values[0])} if i == 0 else {_expr(values[1])}"
            else:
                args[key] = f"{_expr(values)}[i]"
        return args

    def build(self) -> None:
        """Group the scopes into blocks, children first."""
        pending = [s for s in self.scopes if s.path]
        while pending:
            ready = [s for s in pending
                     if all(e.scope is None or e.scope.path in self.block_of or
                            e.scope.path in self.repeats for e in s.entries)]
            waiting = {s.cls for s in pending if s not in ready and s.cls not in CONTAINERS}
            ready = [s for s in ready if s.cls not in waiting]  # a class's instances at once
            groups: dict[Any, list[Scope]] = {}
            for s in ready:
                groups.setdefault(self._group_key(s), []).append(s)
            for members in groups.values():
                for alike in self._alike(members):
                    self._add_block(alike)
            pending = [s for s in pending if s not in ready]

    def _alike(self, members: list[Scope]) -> list[list[Scope]]:
        """`members` in parts that one block can hold: a repeat's arguments are expressions
        of its own `i`, so the instances of a part repeat with the same ones (MobileNetV3's
        blocks of three Conv2dNormActivation, their widths differing) and never pass them
        as the block's parameters; and instances sharing no layer name are apart (RegNet's
        stages, of blocks `block1-0` and `block2-0`: one block would hold each stage's
        layers under `if:`)."""
        parts: list[tuple[dict[str, Any], set[str], list[Scope]]] = []
        for scope in members:
            form = self.form(scope)
            keys = {it.name: it.args for it in form if it.repeat > 1}
            names = {it.name for it in form}
            for seen, named, part in parts:
                if all(seen.get(name, key) == key for name, key in keys.items()) and \
                        (names & named or not names):
                    seen.update(keys)
                    named.update(names)
                    part.append(scope)
                    break
            else:
                parts.append((keys, names, [scope]))
        return [part for _, _, part in parts]

    def _group_key(self, scope: Scope) -> Any:
        ins = len(self.inputs[scope.path])
        if scope.cls in CONTAINERS:
            return ("seq", ins, tuple((i.name, i.kind, i.refs) for i in self.form(scope)))
        return (scope.cls, ins)

    def _add_block(self, members: list[Scope]) -> None:
        forms = [self.form(s) for s in members]
        first = members[0]
        stem = _snake(first.cls) if first.cls not in CONTAINERS else \
            (first.path.rpartition(".")[2].lstrip("_") or "seq")
        if stem[:1].isdigit() or not stem:
            stem = f"seq{stem}"
        name = stem
        k = 1
        while name in self.blocks or name in OPS:
            k += 1
            name = f"{stem}_{k}"
        block = Block(name, members, len(self.inputs[first.path]))
        self._merge(block, forms)
        self.blocks[name] = block
        for s in members:
            self.block_of[s.path] = block
        for s in members:
            self._maybe_repeat(s)

    def _maybe_repeat(self, seq: Scope) -> None:
        """A Sequential of instances of one block, each reading the one before: a repeat."""
        if seq.cls not in CONTAINERS or not seq.entries:
            return
        children = [e.scope for e in seq.entries]
        if any(c is None for c in children):
            return
        blocks = {id(self.block_of.get(c.path)) for c in children}  # type: ignore[union-attr]
        if len(blocks) != 1 or None in (self.block_of.get(c.path) for c in children):  # type: ignore[union-attr]
            return
        items = self.form(seq)
        chained = all(it.refs == (("input",) if k == 0 else (items[k - 1].name,))
                      for k, it in enumerate(items))
        numbered = [it.name for it in items] == [str(k) for k in range(len(items))]
        outputs = self._outputs(seq)
        if chained and numbered and outputs == [items[-1].name] and len(items) > 1:
            self.repeats[seq.path] = (self.block_of[children[0].path], len(items))  # type: ignore[union-attr]

    def _outputs(self, scope: Scope) -> list[str]:
        """The local names of the values of `scope` read outside it."""
        out: list[str] = []
        for node in scope.inside:
            users = list(node.users)
            if node is self.traced.output or node in self.traced.more or \
                    node in self.traced.auxiliary or \
                    any(u not in scope.inside for u in users):
                name = self.ref(node, scope)
                if name not in out:
                    out.append(name)
        return out

    def _merge(self, block: Block, forms: list[list[Item]]) -> None:
        """One block for several instances' forms: the union of their items in order, each
        under `if:` where some instances lack it, differing arguments as parameters."""
        union: list[Item] = []
        keys: list[Any] = []
        for form in forms:
            after = -1
            for it in form:
                if it.key() in keys:
                    after = keys.index(it.key())
                    continue
                after += 1
                union.insert(after, it)
                keys.insert(after, it.key())
        block.items = union
        present = [[next((it for it in f if it.key() == k), None) for f in forms] for k in keys]
        flags: dict[tuple[bool, ...], str] = {}
        for index, found in enumerate(present):
            pattern = tuple(it is not None for it in found)
            if all(pattern):
                continue
            negated = tuple(not p for p in pattern)
            if negated in flags:
                block.when[index] = f"not {flags[negated]}"
            else:
                flag = flags.get(pattern) or _unused(f"has_{union[index].name}", block.params,
                                                     flags.values())
                flags[pattern] = flag
                block.when[index] = flag
        for pattern, flag in flags.items():
            block.params[flag] = None
            for s, p in zip(block.instances, pattern, strict=True):
                block.calls.setdefault(s.path, {})[flag] = p
        shared: dict[str, str] = {}
        """Each instance's values (by repr: a shape is a list) -> the parameter passing them."""
        for index, found in enumerate(present):
            names = list(dict.fromkeys(k for it in found if it is not None for k in it.args))
            for arg in names:
                values = tuple(None if it is None else it.args.get(arg) for it in found)
                given = [v for v in values if v is not None]
                if all(v == given[0] for v in given):
                    continue
                param = shared.get(repr(values)) or _unused(f"{union[index].name}_{arg}", block.params,
                                                      flags.values())
                shared[repr(values)] = param
                block.slots[(index, arg)] = param
                block.params[param] = None
                for s, v in zip(block.instances, values, strict=True):
                    # an instance without the item passes a value it does not read
                    block.calls.setdefault(s.path, {})[param] = given[0] if v is None else v
        for s in block.instances:
            block.calls.setdefault(s.path, {})
        block.output = self._output(block.instances, forms)

    def _output(self, instances: list[Scope], forms: list[list[Item]]) -> str | None:
        """A block's `output:`, None where each instance returns its own last layer (the
        default, also where a later layer is left out by `if:`: a residual's `add`)."""
        outputs = [self._outputs(s)[:1] for s in instances]
        if all(out in ([], [form[-1].name]) for out, form in zip(outputs, forms, strict=True)):
            return None
        return outputs[0][0] if outputs[0] else None


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.rpartition(".")[2]).lower()


def _ident(text: str) -> str:
    text = re.sub(r"\W", "_", text)
    return text if text[:1].isalpha() else f"p{text}"


def _unused(stem: str, *taken: Iterable[str]) -> str:
    """A parameter name from `stem` that none of `taken` holds: `has_2`, then `has_2_2`
    (a block whose `2` is a ReLU in some instances and a Hardswish in others)."""
    used = {name for names in taken for name in names}
    name, k = _ident(stem), 1
    while name in used:
        k += 1
        name = _ident(f"{stem}_{k}")
    return name


def _expr(value: Any) -> str:
    """A value written inside an expression: lists as `[1, 2]`, strings quoted."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_expr(v) for v in value) + "]"
    return str(value)
