"""Blocks and the top-level form written as YAML text, one layer a line."""

from __future__ import annotations

from typing import Any

import yaml

from netspec.importer.blocks import Block, Item, Writer
from netspec.ops import OPS


def scalar(value: Any) -> str:
    """`value` in YAML flow style: `64`, `false`, `[3, 3]`, a quoted string where needed."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def names(refs: tuple[str, ...]) -> str:
    """Layer names in YAML: one or a list, a module's `0` as the integer `0` (the same name)."""
    written = [int(r) if r.isdigit() else r for r in refs]
    return scalar(written[0] if len(written) == 1 else written)


def listed(refs: tuple[str, ...]) -> str:
    """Layer names as a YAML list (`[fc]`, `[aux2, aux1]`)."""
    return names(refs) if len(refs) > 1 else f"[{names(refs)}]"


def line(item: Item, prev: Item | None, args: dict[str, Any], when: str | None,
         prev_when: str | None, first_reads: tuple[str, ...]) -> str:
    """One layer: `- {conv2d: {out: 64, kernel: 3}, name: conv1}` (with `from`, `if`,
    `repeat` where needed)."""
    parts = []
    cls = OPS.get(item.kind)
    reads_previous = item.refs == ((prev.name,) if prev else first_reads) and \
        (prev is None or prev_when is None or prev_when == when)
    if cls is not None and cls.short_inputs and not args and len(item.refs) > 1:
        parts.append(f"{item.kind}: {names(item.refs)}")
        reads_previous = True
    elif args:
        parts.append(f"{item.kind}: {{" + ", ".join(f"{k}: {v}" for k, v in args.items()) + "}")
    else:
        parts.append(item.kind)
    parts.append(f"name: {item.name}")
    if not reads_previous:
        parts.append(f"from: {names(item.refs)}")
    if item.repeat > 1:
        parts.append(f"repeat: {item.repeat}")
    if when:
        parts.append(f"if: {when}")
    text = "- {" + ", ".join(parts) + "}"
    return text + (f"    # not expressible: {item.note}" if item.note else "")


def op_args(item: Item, slots: dict[str, str]) -> dict[str, str]:
    """An item's arguments as written: a layer's those differing from the op's defaults (or
    given by a parameter), a call's all."""
    cls = OPS.get(item.kind)
    out = {}
    for key, value in item.args.items():
        if key in slots:
            out[key] = slots[key]
            continue
        if cls is not None:
            info = next((f for n, f in cls.model_fields.items() if (f.alias or n) == key), None)
            default = info.default if info is not None else None
            if info is None or value in (default, list(default) if isinstance(default, tuple) else None):
                continue
        out[key] = scalar(value)
    return out


def block_text(block: Block) -> list[str]:
    lines = [f"  {block.name}:"]
    if block.params:
        lines.append("    params: {" + ", ".join(f"{p}: null" for p in block.params) + "}")
    if block.inputs > 1:
        lines.append("    inputs: [" + ", ".join(f"x{k}" for k in range(block.inputs)) + "]")
    if block.output:
        lines.append(f"    output: {block.output}")
    lines.append("    layers:")
    first = ("input",) if block.inputs == 1 else ("x0",)
    for index, item in enumerate(block.items):
        slots = {arg: p for (k, arg), p in block.slots.items() if k == index}
        prev = block.items[index - 1] if index else None
        text = line(item, prev, op_args(item, slots), block.when.get(index),
                    block.when.get(index - 1), first)
        lines.append("      " + text)
    return lines


def spec_text(writer: Writer, name: str, shape: tuple[int, ...], source: str) -> str:
    """The whole spec: a header naming the source, input, blocks, layers."""
    root = writer.traced.root
    items = writer.form(root)
    lines = [f"# Imported by `netspec import {source}`: layer names are the module's,",
             "# so state_dict keys are the same.",
             f"name: {name}", f"input: {scalar(list(shape))}"]
    outputs = tuple(writer.ref(n, root) for n in (writer.traced.output, *writer.traced.more))
    if outputs != (items[-1].name,):
        lines.append(f"outputs: {listed(outputs)}")
    if writer.traced.auxiliary:
        lines.append(f"auxiliary: {listed(tuple(writer.ref(n, root) for n in writer.traced.auxiliary))}")
    if writer.blocks:
        lines.append("blocks:")
        for block in _used(writer, items):
            lines.extend(block_text(block))
    lines.append("layers:")
    for index, item in enumerate(items):
        prev = items[index - 1] if index else None
        lines.append("  " + line(item, prev, op_args(item, {}), None, None, ("input",)))
    return "\n".join(lines) + "\n"


def _used(writer: Writer, items: list[Item]) -> list[Block]:
    """The blocks the layers call, each after the blocks it calls."""
    order: list[Block] = []

    def visit(kind: str) -> None:
        block = writer.blocks.get(kind)
        if block is None or block in order:
            return
        for it in block.items:
            visit(it.kind)
        order.append(block)

    for it in items:
        visit(it.kind)
    return order
