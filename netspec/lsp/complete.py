"""Completion: what may be written at the cursor, read off the text around it (which may
not parse while it is being typed) and the last good analysis.

- a list item of `layers:` (`- con|`): op names and block names;
- a key of a layer (`- conv2d: {k|`, or an indented line under it): the op's arguments
  with their types and defaults, and the keys every layer has (`name`, `from`, ...);
- `from:` and a merge's list (`- add: [|`): the layers defined earlier, in scope (the
  block's own inside a block);
- a value of an argument: the parameters in scope (the block's, then the spec's), and the
  argument's choices;
- `train:` and below: its keys, and the choices of each;
- a top-level key: the spec's keys.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from netspec.lsp.document import Analysis
from netspec.lsp.features import op_markdown, without_comment
from netspec.ops import OPS
from netspec.report import dims_text
from netspec.spec.document import Spec
from netspec.spec.schema import arguments, description, layer_keys


@dataclass(frozen=True, slots=True)
class Item:
    """One completion: `label` is inserted; `kind` is op, block, key, layer, param or value."""

    label: str
    kind: str
    detail: str = ""
    documentation: str = ""


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    indent: int
    text: str
    """Without indentation and comment."""

    @property
    def item(self) -> bool:
        return self.text.startswith("- ") or self.text == "-"

    @property
    def key(self) -> str | None:
        """The key this line opens (`- conv2d: ...` and `conv2d: ...` give `conv2d`)."""
        body = self.text[2:].lstrip() if self.item else self.text
        found = re.match(r"([A-Za-z_][\w.-]*)\s*:(\s|$)", body)
        return found.group(1) if found else None

    @property
    def key_column(self) -> int:
        """The column (0-based) where this line's key starts."""
        return self.indent + (len(self.text) - len(self.text[2:].lstrip()) if self.item else 0)


def _parse_line(number: int, raw: str) -> _Line:
    code = without_comment(raw).rstrip()
    return _Line(number, len(code) - len(code.lstrip()), code.strip())


def _parents(lines: list[str], number: int, column: int) -> list[_Line]:
    """The lines that open the block the cursor is in, nearest first: each with its key
    further left than the one before."""
    limit, out = column, []
    for n in range(number - 1, 0, -1):
        line = _parse_line(n, lines[n - 1])
        if not line.text:
            continue
        start = line.key_column if line.key else line.indent
        if start < limit or (line.item and line.indent < limit):
            if line.key is not None or line.item:
                out.append(line)
            limit = min(start, line.indent)
            if limit == 0:
                break
    return out


def complete(path: str, text: str, analyses: list[Analysis], line: int, column: int
             ) -> list[Item]:
    """The completions at `line`, `column` (1-based, in characters) of `path`."""
    lines = text.splitlines() or [""]
    current = lines[line - 1] if line <= len(lines) else ""
    prefix = current[:column - 1]
    analysis = next((a for a in analyses if a.good), None)
    parents = _parents(lines, line, len(prefix) - len(prefix.lstrip()))
    path_keys = [p.key or "-" for p in reversed(parents)]
    if path_keys and path_keys[0] == "train":
        return _train(path_keys[1:], prefix)
    flow = _flow(prefix)
    if flow is not None:
        owner, is_key, in_list = flow
        if owner == "from" or (owner in OPS and OPS[owner].short_inputs and in_list):
            return _layers(analysis, path, line)
        if owner in OPS and is_key:
            return _op_keys(owner, prefix)
        if owner in OPS:
            return _params(analysis, path, line) + _choices_for(owner, _value_key(prefix))
    key_here = re.match(r"^\s*(-\s+)?([A-Za-z_][\w-]*)?$", prefix)
    value_here = re.match(r"^\s*(-\s+)?([A-Za-z_][\w-]*)\s*:\s*(\S*)$", prefix)
    if value_here:
        key = value_here.group(2)
        if key == "from":
            return _layers(analysis, path, line)
        op = key if value_here.group(1) else next((p.key for p in parents if p.key in OPS), None)
        if key in OPS and value_here.group(1):
            return _params(analysis, path, line)
        if op in OPS:
            return _params(analysis, path, line) + _choices_for(op, key)
        return _params(analysis, path, line)
    if key_here is None:
        return _params(analysis, path, line) if _in_value(prefix) else []
    if not parents:
        return [Item(k, "key", "spec key", _field_doc(Spec, k)) for k in Spec.model_fields]
    if key_here.group(1) is not None:  # `- word`: an item of a list
        owner = next((p.key for p in parents if p.key), None)
        if owner in ("outputs", "auxiliary"):
            return _layers(analysis, path, line + 1)
        if owner == "layers":
            return _ops_and_blocks(analysis)
        return []
    parent = parents[0]
    if parent.item and parent.key in OPS and _entry_level(prefix, parent):
        return _meta_keys()
    if parent.key in OPS:
        return _op_keys(parent.key, "")
    if parent.item:
        return _meta_keys()
    return []


def _entry_level(prefix: str, parent: _Line) -> bool:
    """Whether a key typed at this indentation is a sibling of the item's op key."""
    return len(prefix) - len(prefix.lstrip()) == parent.key_column


def _flow(prefix: str) -> tuple[str | None, bool, bool] | None:
    """Inside `{...}` or `[...]` on this line: the key that owns the innermost open one,
    whether the cursor is at a key, and whether it is in a list; None outside."""
    depth: list[int] = []
    quote = None
    for i, ch in enumerate(prefix):
        if ch in "'\"" and quote in (None, ch):
            quote = None if quote else ch
        elif quote is None and ch in "{[":
            depth.append(i)
        elif quote is None and ch in "}]" and depth:
            depth.pop()
    if not depth:
        return None
    opened = depth[0]
    before = re.search(r"([A-Za-z_][\w-]*)\s*:\s*$", prefix[:opened])
    owner = before.group(1) if before else None
    inner = prefix[depth[-1] + 1:]
    is_key = prefix[depth[-1]] == "{" and re.search(r"(^|,)\s*[\w-]*$", inner) is not None
    if len(depth) > 1 and prefix[depth[-1]] == "[" and prefix[depth[0]] == "{":
        last = re.search(r"([A-Za-z_][\w-]*)\s*:\s*\[[^\]]*$", prefix)
        owner = last.group(1) if last and last.group(1) == "from" else owner
    return owner, is_key, prefix[depth[-1]] == "["


def _value_key(prefix: str) -> str | None:
    found = re.search(r"([A-Za-z_][\w-]*)\s*:\s*[^,{}\[\]]*$", prefix)
    return found.group(1) if found else None


def _in_value(prefix: str) -> bool:
    return ":" in prefix


def _ops_and_blocks(analysis: Analysis | None) -> list[Item]:
    items = [Item(op, "op", f"{description(cls)[:80]}", op_markdown(op)) for op, cls in OPS.items()]
    if analysis is not None and analysis.outline is not None:
        items += [Item(name, "block", f"block ({where.file.rsplit('/', 1)[-1]}:{where.line})")
                  for name, where in analysis.outline.blocks.items()]
    return items


def _op_keys(op: str, prefix: str) -> list[Item]:
    written = set(re.findall(r"([A-Za-z_][\w-]*)\s*:", prefix.split("{")[-1]))
    return [Item(a.name, "key", a.type + ("" if a.default is None else f" = {a.default}"),
                 "required" if a.default is None else f"default `{a.default}`")
            for a in arguments(OPS[op]) if a.name not in written]


def _meta_keys() -> list[Item]:
    return [Item(key, "key", "layer key", doc) for key, doc in layer_keys().items()]


def _choices_for(op: str, key: str | None) -> list[Item]:
    for argument in arguments(OPS[op]):
        if argument.name == key and argument.type.startswith("one of "):
            return [Item(v, "value", f"{op}.{key}") for v in argument.type[7:].split(", ")]
        if argument.name == key and argument.type == "bool":
            return [Item(v, "value", f"{op}.{key}") for v in ("true", "false")]
    return []


def _params(analysis: Analysis | None, path: str, line: int) -> list[Item]:
    """The parameters an expression at `line` can read: its block's, then the spec's."""
    if analysis is None or analysis.outline is None:
        return []
    index = analysis.outline
    block = index.block_at(path, line)
    items = [Item(p.name, "param", f"parameter of block `{block}`",
                  f"default `{p.default}`" if p.default is not None else "required")
             for (owner, _), p in index.params.items() if owner == block and block]
    if block is not None:
        items += [Item(w, "param", f"block `{block}`'s input shape", "")
                  for w in ("cin", "in_shape", "in_shapes")]
    shown = {i.label for i in items}
    items += [Item(p.name, "param", "parameter of the spec",
                   f"value `{p.values[0]!r}`" if p.values else "")
              for (owner, _), p in index.params.items() if owner is None and p.name not in shown]
    return items


def _layers(analysis: Analysis | None, path: str, line: int) -> list[Item]:
    """The layers a reference at `line` may name: those defined before it, in its scope."""
    if analysis is None or analysis.outline is None or analysis.graph is None:
        return []
    index, graph = analysis.outline, analysis.graph
    block = index.block_at(path, line)
    items: dict[str, Item] = {}
    if block is None:
        for name in graph.inputs:
            items[name] = Item(name, "layer", "input " + dims_text(graph.nodes[name].op.shape)
                               if graph.nodes[name].op is not None else "input")
    else:
        raw = analysis.spec._blocks[block].raw if analysis.spec else None
        for name in (raw.get("inputs") if isinstance(raw, dict) else None) or ["input"]:
            items[name] = Item(str(name), "layer", f"input of block `{block}`")
    for (file, number), entries in sorted(index.entries.items(), key=lambda kv: kv[0][1]):
        if file != path or number >= line or index.block_at(file, number) != block:
            continue
        for entry in entries:
            for local, shape in _local_names(analysis, entry, block is not None):
                items.setdefault(local, Item(local, "layer", f"{entry.kind} → {shape}"))
    return list(items.values())


def _local_names(analysis: Analysis, entry: Any, in_block: bool) -> Iterator[tuple[str, str]]:
    """The names a reference in the entry's scope uses for what it made, with their shapes."""
    graph = analysis.graph
    assert graph is not None
    made = entry.groups or entry.nodes
    for full in made:
        node = graph.nodes.get(full)
        prefix = ""
        if in_block:
            owner = node.groups[-1] if node is not None and node.groups else full.rsplit(".", 2)[0]
            prefix = owner + "."
            if not full.startswith(prefix):
                continue
        shape = dims_text(analysis.layers[full].shape) if full in analysis.layers else ""
        yield full[len(prefix):], shape
        if in_block:
            return


def _field_doc(model: type[BaseModel], key: str) -> str:
    info = model.model_fields[key]
    return info.description or ""


# -- train: ---------------------------------------------------------------------------


def _train(keys: list[str], prefix: str) -> list[Item]:
    from netspec.training.config import TrainConfig

    model: Any = TrainConfig
    for key in [k for k in keys if k != "-"]:
        model = _model_of(model, key)
        if model is None:
            return []
    value_here = re.match(r"^\s*([A-Za-z_][\w-]*)\s*:\s*(\S*)$", prefix)
    if value_here:
        return _train_values(_model_of(model, value_here.group(1), bare=True))
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    return [Item(name, "key", _type_name(info.annotation),
                 f"default `{info.default}`" if info.default is not None
                 and not callable(info.default_factory) else "")
            for name, info in model.model_fields.items()]


def _unwrap(annotation: Any) -> list[Any]:
    """The types an annotation allows (Optional, unions and Annotated opened)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(annotation) for t in _unwrap(a)]
    return [annotation]


def _model_of(model: Any, key: str, bare: bool = False) -> Any:
    """The model (or, with `bare`, the annotation) of `model`'s field `key`."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)) or key not in model.model_fields:
        return None
    kinds = [t for t in _unwrap(model.model_fields[key].annotation) if t is not type(None)]
    models = [t for t in kinds if isinstance(t, type) and issubclass(t, BaseModel)]
    if bare:
        return models[0] if models else kinds
    return models[0] if models else None


def _train_values(found: Any) -> list[Item]:
    if isinstance(found, type) and issubclass(found, BaseModel):  # a choice: `optimizer: adamw`
        return [Item(k, "value", found.__name__) for k in found.model_fields]
    items = []
    for kind in found or []:
        if typing.get_origin(kind) is typing.Literal:
            items += [Item(str(v), "value") for v in typing.get_args(kind)]
        elif kind is bool:
            items += [Item("true", "value"), Item("false", "value")]
    return items


def _type_name(annotation: Any) -> str:
    kinds = [t for t in _unwrap(annotation) if t is not type(None)]
    return " or ".join(getattr(t, "__name__", str(t)) for t in kinds)
