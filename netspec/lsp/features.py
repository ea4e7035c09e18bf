"""What the editor shows, from analyses (`netspec.lsp.document`): inlay hints, hover,
definitions, references and renames. Positions are 1-based lines and columns counted in
characters, as `Where` has them; the server converts to the client's units. No pygls here.

A file is served from the analyses that cover it: a spec's own (its last good one while
the text does not parse: its lines are mapped onto the text now), or, for a block file,
those of the open specs that use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from netspec.errors import Where
from netspec.lsp.document import Analysis
from netspec.ops import OPS
from netspec.outline import Entry, Param, Reference
from netspec.report import LayerReport, dims_text
from netspec.spec.document import LAYER_NAME, LAYER_NAME_RULE
from netspec.spec.schema import arguments, description

_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.]*")
"""A name at the cursor: an identifier, `block.layer`, or a number (`name: 0`)."""
INSTANCES_SHOWN = 8
"""Rows of a hover's table of the layers one line made (the rest are counted)."""


@dataclass(frozen=True, slots=True)
class Hint:
    """An inlay hint: `label` after the end of line `line` (1-based)."""

    line: int
    label: str
    tooltip: str


@dataclass(frozen=True, slots=True)
class Hover:
    markdown: str
    where: Where


def _covers(where: Where, line: int, column: int) -> bool:
    if where.line != line or column < where.column:
        return False
    return where.end_line != line or column <= where.end_column


# -- what is where --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Found:
    """The thing at a position: a layer entry, a reference, a block or a parameter."""

    kind: str
    """`layer` (on its op or name), `line` (elsewhere on its line), `reference`, `block`
    (a block's definition or call), `param`."""
    where: Where
    analysis: Analysis
    entry: Entry | None = None
    reference: Reference | None = None
    name: str = ""
    param: Param | None = None


def find(path: str, text: str, analyses: list[Analysis], line: int, column: int) -> Found | None:
    """What is at `line`, `column` of the file `path` (its text now `text`)."""
    for analysis in analyses:
        found = _find(analysis, path, text, line, column)
        if found is not None:
            return found
    return None


def _find(analysis: Analysis, path: str, text: str, line: int, column: int) -> Found | None:
    index = analysis.outline
    old = analysis.line_before(text, line) if analysis.path == path else line
    if index is None or old is None:
        return None
    for ref in index.references:
        if ref.where.file == path and _covers(ref.where, old, column):
            return Found("reference", ref.where, analysis, reference=ref, name=ref.name)
    for entry in index.entries_at(path, old):
        if _covers(entry.where, old, column) and entry.kind in index.blocks and not entry.nodes:
            return Found("block", entry.where, analysis, entry, name=entry.kind)
        if _covers(entry.where, old, column) or _covers(entry.definition, old, column):
            return Found("layer", entry.where, analysis, entry)
    for name, where in index.blocks.items():
        if where.file == path and _covers(where, old, column):
            return Found("block", where, analysis, name=name)
    word = _word_at(path, text, line, column)
    if word is not None:
        param = _param(analysis, path, old, word[0])
        if param is not None:
            return Found("param", word[1], analysis, param=param, name=param.name)
    for entry in index.entries_at(path, old):
        return Found("line", entry.where, analysis, entry)
    return None


def _word_at(path: str, text: str, line: int, column: int) -> tuple[str, Where] | None:
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return None
    for match in _WORD.finditer(lines[line - 1]):
        if match.start() + 1 <= column <= match.end() + 1:
            word = match.group().split(".")[0]
            return word, Where(path, line, match.start() + 1, line, match.start() + 1 + len(word))
    return None


def _param(analysis: Analysis, path: str, line: int, word: str) -> Param | None:
    """The parameter `word` names at `line`: its block's, inside a block, else the spec's."""
    index = analysis.outline
    assert index is not None
    block = index.block_at(path, line)
    if block is not None and (block, word) in index.params:
        return index.params[(block, word)]
    if path == analysis.path or block is not None:
        return index.params.get((None, word))
    return None


# -- inlay hints ----------------------------------------------------------------------


def inlay_hints(path: str, text: str, analyses: list[Analysis], first: int, last: int
                ) -> list[Hint]:
    """The output shape at the end of each layer's line, `first`..`last` (1-based), and a
    block call's in -> out shapes and params."""
    hints: dict[int, Hint] = {}
    for analysis in analyses:
        index = analysis.outline
        if index is None:
            continue
        moved = analysis.line_map(text) if analysis.path == path else None
        for (file, line), entries in index.entries.items():
            now = moved.get(line) if moved is not None else line
            if file != path or now is None or not first <= now <= last or now in hints:
                continue
            label, tooltip = _hint(analysis, entries)
            if label:
                hints[now] = Hint(now, label, tooltip)
    return sorted(hints.values(), key=lambda h: h.line)


def _hint(analysis: Analysis, entries: list[Entry]) -> tuple[str, str]:
    parts, tips = [], []
    for entry in entries:
        if entry.groups:
            calls = [_call(analysis, g) for g in entry.groups]
            calls = [c for c in calls if c is not None]
            if calls:
                params = sum(c[2] for c in calls)
                times = f" ×{len(calls)}" if len(calls) > 1 else ""
                parts.append(f"{calls[0][0]} -> {calls[-1][1]}{times}, {params:,} params")
                tips.append(f"{entry.kind}: {len(calls)} instance(s)")
            continue
        shapes = list(dict.fromkeys(dims_text(analysis.layers[n].shape) for n in entry.nodes
                                    if n in analysis.layers))
        if shapes:
            parts.append(" | ".join(shapes) if len(shapes) <= 4
                         else f"{shapes[0]} … {shapes[-1]} ({len(shapes)} shapes)")
            tips.append(f"{entry.kind}: {len(entry.nodes)} layer(s)")
    return ("# " + "; ".join(parts) if parts else "", "\n".join(tips))


def _call(analysis: Analysis, group: str) -> tuple[str, str, int, int, int] | None:
    """A block instance's input shape, output shape, params, MACs and layer count."""
    graph = analysis.graph
    if graph is None:
        return None
    members = [graph.nodes[n] for n in analysis.members.get(group, ())]
    inside = set(analysis.members.get(group, ()))
    layers = [analysis.layers[n.name] for n in members if n.name in analysis.layers]
    if not layers or len(layers) < len(members):
        return None
    feeds = [i for n in members for i in n.inputs if i not in inside]
    first = graph.nodes[feeds[0]] if feeds else None
    shape_in = (dims_text(analysis.layers[first.name].shape) if first and first.name in analysis.layers
                else dims_text(first.op.shape) if first is not None and first.name in graph.inputs
                and first.op is not None else "?")
    return (shape_in, dims_text(layers[-1].shape), sum(x.params for x in layers),
            sum(x.macs for x in layers), len(layers))


# -- hover ----------------------------------------------------------------------------


def hover(path: str, text: str, analyses: list[Analysis], line: int, column: int
          ) -> Hover | None:
    """What the cursor is on: a layer, a reference (the layer it reads), a block call or
    definition, a parameter; on an op's name, its arguments too."""
    found = find(path, text, analyses, line, column)
    if found is None:
        return None
    analysis = found.analysis
    if found.kind == "reference":
        assert found.reference is not None
        entry = _entry_defined_at(analysis, found.reference.target)
        body = _layers_markdown(analysis, entry) if entry else f"`{found.name}`"
        return Hover(body, found.where)
    if found.kind == "block":
        return Hover(_block_markdown(analysis, found.name, found.entry), found.where)
    if found.kind == "param":
        assert found.param is not None
        return Hover(_param_markdown(found.param), found.where)
    assert found.entry is not None
    body = _layers_markdown(analysis, found.entry)
    old = analysis.line_before(text, line) if analysis.path == path else line
    if found.kind == "layer" and found.entry.kind in OPS and old is not None and _covers(
            found.entry.where, old, column):
        body += "\n\n---\n\n" + op_markdown(found.entry.kind)
    return Hover(body, found.where)


def _entry_defined_at(analysis: Analysis, where: Where) -> Entry | None:
    assert analysis.outline is not None
    return next((e for e in analysis.outline.all_entries() if e.definition == where), None)


def _layers_markdown(analysis: Analysis, entry: Entry) -> str:
    layers = [analysis.layers[n] for n in entry.nodes if n in analysis.layers]
    if entry.groups:
        return _block_markdown(analysis, entry.kind, entry)
    if not layers:
        return f"`{entry.kind}`: not analysed (see its error)"
    if len(layers) == 1:
        return _layer_markdown(layers[0]) + _formulas(analysis, layers[0].name)
    rows = [f"| `{x.name}` | {_inputs(x)} → {dims_text(x.shape)} | {x.params:,} | {x.macs:,} |"
            for x in layers[:INSTANCES_SHOWN]]
    more = len(layers) - INSTANCES_SHOWN
    head = (f"**{len(layers)} layers** from this line · `{entry.kind}`"
            f"{_torch(layers[0])}\n\n"
            f"params {sum(x.params for x in layers):,} · MACs {sum(x.macs for x in layers):,}"
            "\n\n| layer | shape | params | MACs |\n|---|---|---:|---:|\n")
    return head + "\n".join(rows) + (f"\n\n… and {more} more" if more > 0 else "")


def _torch(layer: LayerReport) -> str:
    return f" → `torch.nn.{layer.torch}`" if layer.torch else ""


def _inputs(layer: LayerReport) -> str:
    return ", ".join(dims_text(s) for s in layer.input_shapes) or "—"


def _layer_markdown(layer: LayerReport) -> str:
    lines = [f"**{layer.name}** · `{layer.op}`{_torch(layer)}", "",
             f"`{layer.label}`", "",
             f"{_inputs(layer)} → **{dims_text(layer.shape)}**", "",
             f"params {layer.params:,}"
             + (f" ({layer.trainable:,} trainable)" if layer.trainable != layer.params else "")
             + (f" · buffers {layer.buffers:,}" if layer.buffers else "")
             + f" · MACs {layer.macs:,}"]
    if layer.rf:
        size, stride = layer.rf["size"], layer.rf["stride"]
        lines += ["", f"receptive field {dims_text(size)}, stride {dims_text(stride)}"]
    return "\n".join(lines)


def _formulas(analysis: Analysis, layer: str) -> str:
    """For a spec that names its input sizes: the layer's shape, params and MACs in them."""
    formulas = analysis.report.formulas if analysis.report is not None else None
    if formulas is None or layer not in formulas.layers:
        return ""
    shape, params, macs = formulas.layers[layer]
    at = ", ".join(f"{n} = {v}" for n, v in formulas.examples.items())
    return (f"\n\nin the sizes named: **{dims_text(shape)}**, params `{params}`, MACs `{macs}` "
            f"(the figures above at {at})")


def _block_markdown(analysis: Analysis, name: str, entry: Entry | None) -> str:
    index = analysis.outline
    assert index is not None
    where = index.blocks.get(name)
    head = f"**block `{name}`**" + (f" · defined at {_short(where)}" if where else "")
    groups = entry.groups if entry is not None else [
        g for e in index.all_entries() if e.kind == name for g in e.groups]
    calls = [(g, _call(analysis, g)) for g in groups]
    known = [(g, c) for g, c in calls if c is not None]
    if not known:
        return head
    rows = [f"| `{g}` | {c[0]} → {c[1]} | {c[2]:,} | {c[3]:,} |"
            for g, c in known[:INSTANCES_SHOWN]]
    more = len(known) - INSTANCES_SHOWN
    total = (f"{len(known)} instance(s), {sum(c[4] for _, c in known):,} layers · params "
             f"{sum(c[2] for _, c in known):,} · MACs {sum(c[3] for _, c in known):,}")
    return (f"{head}\n\n{total}\n\n| instance | in → out | params | MACs |\n|---|---|---:|---:|\n"
            + "\n".join(rows) + (f"\n\n… and {more} more" if more > 0 else ""))


def _param_markdown(param: Param) -> str:
    owner = f"block `{param.block}`" if param.block else "the spec"
    lines = [f"**{param.name}** · parameter of {owner}, set at {_short(param.where)}"]
    if param.default is not None:
        lines.append(f"default: `{param.default}`")
    elif param.block:
        lines.append("required: every call sets it")
    values = list(dict.fromkeys(repr(v) for v in param.values))
    if param.block and values:
        lines.append(f"its calls give: {', '.join(f'`{v}`' for v in values[:12])}"
                     + (" …" if len(values) > 12 else ""))
    elif values and values != [repr(param.default)]:
        lines.append(f"value: `{values[0]}`")
    return "\n\n".join(lines)


def op_markdown(op: str) -> str:
    """An op's description and its arguments with their types and defaults."""
    cls = OPS[op]
    rows = [f"| `{a.name}` | {a.type} | {'required' if a.default is None else f'`{a.default}`'} |"
            for a in arguments(cls)]
    table = "\n\n| argument | type | default |\n|---|---|---|\n" + "\n".join(rows) if rows else ""
    short = f"\n\nshort form: `- {op}: " + (
        "[a, b]` (the layers it reads)" if cls.short_inputs else
        f"{cls.positional[0]}`" if len(cls.positional) == 1 else
        f"[{', '.join(cls.positional)}]`" if cls.positional else "`") if (
        cls.positional or cls.short_inputs) else ""
    return f"**`{op}`** · {description(cls)}{short}{table}"


def _short(where: Where) -> str:
    return f"{where.file.rsplit('/', 1)[-1]}:{where.line}"


# -- definitions, references, renames -------------------------------------------------


def definition(path: str, text: str, analyses: list[Analysis], line: int, column: int
               ) -> list[Where]:
    """Where the thing at the cursor is defined: a reference's layer, a block call's block,
    a parameter's key."""
    found = find(path, text, analyses, line, column)
    if found is None:
        return []
    index = found.analysis.outline
    assert index is not None
    if found.kind == "reference" and found.reference is not None:
        return [found.reference.target]
    if found.kind == "block" or (found.entry is not None and found.entry.kind in index.blocks
                                 and found.kind in ("layer", "line")):
        name = found.name or (found.entry.kind if found.entry else "")
        return [index.blocks[name]] if name in index.blocks else []
    if found.kind == "param" and found.param is not None:
        return [found.param.where]
    if found.entry is not None:
        return [found.entry.definition]
    return []


def references(path: str, text: str, analyses: list[Analysis], line: int, column: int,
               declaration: bool = True) -> list[Where]:
    """Every place that refers to the layer, block or parameter at the cursor."""
    found = find(path, text, analyses, line, column)
    if found is None:
        return []
    index = found.analysis.outline
    assert index is not None
    if found.kind in ("block",) or (found.entry is not None and found.entry.groups
                                    and found.kind == "layer"):
        name = found.name or (found.entry.kind if found.entry else "")
        calls = [e.where for e in index.all_entries() if e.kind == name and e.groups]
        return ([index.blocks[name]] if declaration and name in index.blocks else []) + calls
    if found.kind == "param" and found.param is not None:
        return _param_uses(found.analysis, found.param, declaration)
    target = _target(found)
    if target is None:
        return []
    uses = [r.where for r in index.references if r.target == target]
    return ([target] if declaration else []) + uses


def _target(found: Found) -> Where | None:
    if found.reference is not None:
        return found.reference.target
    return found.entry.definition if found.entry is not None else None


def _param_uses(analysis: Analysis, param: Param, declaration: bool) -> list[Where]:
    """The words naming `param` in the values of its scope: its block's body, or the spec."""
    index = analysis.outline
    assert index is not None
    file = param.where.file
    span = index.block_spans.get(param.block) if param.block else None
    lines = _lines_of(analysis, file)
    uses = []
    for number, text in enumerate(lines, start=1):
        if span is not None and not span[0].line <= number <= span[1]:
            continue
        if span is None and index.block_at(file, number) is not None:
            continue
        for match in re.finditer(rf"(?<![\w.]){re.escape(param.name)}(?!\w)", without_comment(text)):
            where = Where(file, number, match.start() + 1, number, match.end() + 1)
            is_key = text[match.end():].lstrip().startswith(":")
            if where != param.where and not is_key:
                uses.append(where)
    return ([param.where] if declaration else []) + uses


def without_comment(line: str) -> str:
    """A line without its comment (a `#` after a space, outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if ch in "'\"" and quote in (None, ch):
            quote = None if quote else ch
        elif ch == "#" and quote is None and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _lines_of(analysis: Analysis, file: str) -> list[str]:
    if file == analysis.path:
        return analysis.lines
    for block in (analysis.spec._blocks.values() if analysis.spec else ()):
        if block.source.file == file and block.source.text is not None:
            return block.source.text.splitlines()
    return []


def renamable(path: str, text: str, analyses: list[Analysis], line: int, column: int
              ) -> tuple[Analysis, Entry, Where] | str:
    """The layer a rename at the cursor renames (the cursor on its `name:` or on a
    reference to it), with the span of the name under the cursor; or why there is none."""
    found = find(path, text, analyses, line, column)
    if found is None or found.kind not in ("layer", "reference"):
        return "only a layer's name or a reference to it can be renamed"
    target = _target(found)
    entry = _entry_defined_at(found.analysis, target) if target else None
    if entry is None or entry.definition == entry.where:
        return "the layer has an automatic name: give it `name:` first"
    if found.reference is not None:
        return found.analysis, entry, found.reference.where
    old = found.analysis.line_before(text, line) if found.analysis.path == path else line
    if old is None or not _covers(entry.definition, old, column):
        return "put the cursor on the layer's name to rename it"
    return found.analysis, entry, entry.definition


def rename(path: str, text: str, analyses: list[Analysis], line: int, column: int,
           new: str) -> dict[str, list[Where]] | str:
    """The places to write `new` in, by file, to rename the layer at the cursor (its `name:`
    and every reference to it); or why it cannot be renamed."""
    target = renamable(path, text, analyses, line, column)
    if isinstance(target, str):
        return target
    if not re.fullmatch(LAYER_NAME, new):
        return f"`{new}` is not a layer name: a layer name {LAYER_NAME_RULE}"
    analysis, entry, _ = target
    assert analysis.outline is not None
    old = _text_at(analysis, entry.definition)
    edits: dict[str, list[Where]] = {}
    for where in [entry.definition, *(r.where for r in analysis.outline.references
                                      if r.target == entry.definition and r.name == old)]:
        edits.setdefault(where.file, []).append(where)
    return edits


def _text_at(analysis: Analysis, where: Where) -> str:
    lines = _lines_of(analysis, where.file)
    if not 1 <= where.line <= len(lines):
        return ""
    return lines[where.line - 1][where.column - 1:where.end_column - 1]



# -- quick fixes ----------------------------------------------------------------------

_SUGGESTION = re.compile(r"did you mean (?:the block )?`([^`]+)`")


def quick_fix(message: str, written: str) -> str | None:
    """The word to write instead of `written` (the text a diagnostic underlines) when its
    hint suggests one: only where the message quotes that very text, so that a hint about
    another word than the one underlined is never applied to it."""
    found = _SUGGESTION.search(message)
    if found is None or not written or f"`{written}`" not in message or found.group(1) == written:
        return None
    return found.group(1)


# -- the outline of a file ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Symbol:
    """A layer, block call or block of a file's outline (an editor's outline view)."""

    name: str
    detail: str
    where: Where
    kind: str
    """`layer`, `call` or `block`."""
    children: tuple[Symbol, ...] = ()


def symbols(path: str, analyses: list[Analysis]) -> list[Symbol]:
    """The file's layers in order, each with its output shape (a block call with its
    instances' in -> out), and its blocks with their layers."""
    analysis = next((a for a in analyses if a.outline is not None), None)
    if analysis is None:
        return []
    index = analysis.outline
    assert index is not None
    inside: dict[str | None, list[Symbol]] = {}
    for (file, line), entries in sorted(index.entries.items(), key=lambda kv: kv[0][1]):
        if file != path:
            continue
        block = index.block_at(file, line)
        for entry in entries:
            inside.setdefault(block, []).append(_symbol(analysis, entry, block))
    top = list(inside.get(None, []))
    for name, where in index.blocks.items():
        if where.file == path:
            top.append(Symbol(name, "block", where, "block", tuple(inside.get(name, []))))
    return sorted(top, key=lambda s: s.where.line)


def _symbol(analysis: Analysis, entry: Entry, block: str | None) -> Symbol:
    label, _ = _hint(analysis, [entry])
    first = (entry.groups or entry.nodes or [entry.kind])[0]
    if block is not None:  # named as the block's layers name it
        node = analysis.graph.nodes.get(first) if analysis.graph is not None else None
        owner = node.groups[-1] if node is not None and node.groups else ""
        first = first[len(owner) + 1:] if owner and first.startswith(owner + ".") else first
    made = entry.groups or entry.nodes
    name = first if len(made) <= 1 or block is not None else f"{first} … {made[-1]}"
    return Symbol(name, f"{entry.kind} {label[2:]}".strip(), entry.where,
                  "call" if entry.groups else "layer")
