"""The torch backend: a spec's IR becomes a `torch.fx.GraphModule`.

Each layer's module sits at its spec name (`layer1.0.conv1`, so `state_dict` keys read like
the spec), and the generated `forward` calls them in order with no interpretation of the
graph at run time: `print(model.code)` shows it.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from typing import Any

import torch
import torch.fx

from netspec import init as init_scheme
from netspec.backends import functional
from netspec.ir import Graph, Node
from netspec.ops import TorchCall
from netspec.report import Report
from netspec.shapes import Shape


def to_graph_module(graph: Graph, report: Report, seed: int | None = None) -> torch.fx.GraphModule:
    """Compile an analysed graph; `seed` makes the initial weights reproducible."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        return _compile(graph, report)


def _compile(graph: Graph, report: Report) -> torch.fx.GraphModule:
    shapes: dict[str, Shape] = {**report.inputs, **{r.name: r.shape for r in report.layers}}
    root = torch.nn.Module()
    fx = torch.fx.Graph()
    values: dict[str, torch.fx.Node] = {name: fx.placeholder(identifier(name))
                                        for name in graph.inputs}
    layers = graph.layers()
    last_read = {i: k for k, n in enumerate(layers) for i in n.inputs} | \
        dict.fromkeys([*graph.outputs, *graph.auxiliary], len(layers))
    later = graph.training_only()
    done = 0
    for region, nodes in graph.runs():
        if nodes[0].name in later:  # the last runs
            break
        done += len(nodes)
        if region is None:
            _emit(fx, root, "", nodes[0], values, shapes)
        else:
            out = [n.name for n in nodes if last_read.get(n.name, 0) >= done]
            _checkpoint(fx, root, region, nodes, out, values, shapes)
    for nodes in _training_only_groups(graph, later):
        done += len(nodes)
        _gated(fx, root, nodes, [n.name for n in nodes if last_read.get(n.name, 0) >= done],
               values, shapes)
    outputs = tuple(values[o] for o in graph.outputs)
    if graph.auxiliary:
        fx.output(fx.create_node("call_function", functional.with_auxiliary,
                                 (outputs, tuple(values[a] for a in graph.auxiliary)),
                                 name="returned"))
    else:
        fx.output(outputs[0] if len(outputs) == 1 else outputs)
    return torch.fx.GraphModule(root, fx, class_name=class_name(graph.name))


def _training_only_groups(graph: Graph, later: set[str]) -> list[list[Node]]:
    """The layers run in training only (the graph's last), in order and in groups: the
    layers of the outermost block instance holding only such layers together, every other
    layer alone."""
    inside: dict[str, list[str]] = {}
    for node in graph.layers():
        for group in node.groups:
            inside.setdefault(group, []).append(node.name)
    groups: list[tuple[str, list[Node]]] = []
    for node in graph.layers():
        if node.name not in later:
            continue
        key = next((g for g in node.groups if all(n in later for n in inside[g])), node.name)
        if groups and groups[-1][0] == key:
            groups[-1][1].append(node)
        else:
            groups.append((key, [node]))
    return [nodes for _, nodes in groups]


def _gated(fx: torch.fx.Graph, root: torch.nn.Module, nodes: Sequence[Node], out: Sequence[str],
           values: dict[str, torch.fx.Node], shapes: dict[str, Shape]) -> None:
    """Add layers run in training only, of which later layers or the auxiliary outputs
    read `out`, called through `functional.training_only`, which runs nothing in eval mode:
    a lone layer's module, or else a GraphModule of the layers at their block instance's
    name (or the lone layer's), names and `state_dict` keys unchanged. The gate is a call
    in the graph, so whatever runs it (its code, an fx Interpreter, torch.export) skips
    them in eval mode."""
    first = nodes[0]
    reads = _reads(nodes)
    if len(nodes) == 1 and first.op is not None and \
            first.op.torch_module(len(first.inputs)) is not None:
        at = first.name
        _emit(torch.fx.Graph(), root, "", first, dict(values), shapes)  # made and attached
    else:
        at = first.name if len(nodes) == 1 else \
            next(g for g in first.groups if all(g in n.groups for n in nodes))
        _block(root, at, nodes, reads, out, shapes)
    _call_block(fx, functional.training_only, at, f"{identifier(at)}_module", reads, out, values,
          {} if len(out) == 1 else {"outputs": len(out)})


def _emit(fx: torch.fx.Graph, root: torch.nn.Module, prefix: str, node: Node,
          values: dict[str, torch.fx.Node], shapes: dict[str, Shape]) -> None:
    """Add `node`'s layer to `fx`: its module at its name in `root`, called from `fx` by
    its name under `prefix` (where `fx`'s module sits), or its function."""
    assert node.op is not None, "build() compiles checked specs only"
    made = node.op.to_torch(torch, [shapes[i] for i in node.inputs], shapes[node.name])
    args = [values[i] for i in node.inputs]
    if isinstance(made, TorchCall):
        values[node.name] = _call(fx, made, args, node.name)
        return
    if node.init is not None:
        init_scheme.apply(torch, made, node.init)
    if node.frozen:
        made.requires_grad_(False)
    if node.tie is not None:  # one tensor: initialised, trained and counted once
        made.weight = root.get_submodule(node.tie).weight
    _attach(root, node.name, made)
    values[node.name] = fx.create_node("call_module", node.name[len(prefix):], tuple(args), {},
                                       name=identifier(node.name))


def _checkpoint(fx: torch.fx.Graph, root: torch.nn.Module, region: str, nodes: Sequence[Node],
                out: Sequence[str], values: dict[str, torch.fx.Node],
                shapes: dict[str, Shape]) -> None:
    """Add a checkpointed block instance, its layers `nodes` of which later layers read
    `out`: a GraphModule at `region` (the layers' names and so the `state_dict` keys
    unchanged), which `fx` calls through `functional.checkpointed`."""
    reads = _reads(nodes)
    _block(root, region, nodes, reads, out, shapes)
    _call_block(fx, functional.checkpointed, region, identifier(region), reads, out, values, {})


def _reads(nodes: Sequence[Node]) -> list[str]:
    """The values `nodes` read that none of them makes, in order."""
    made = {n.name for n in nodes}
    return list(dict.fromkeys(i for n in nodes for i in n.inputs if i not in made))


def _block(root: torch.nn.Module, at: str, nodes: Sequence[Node], reads: Sequence[str],
           out: Sequence[str], shapes: dict[str, Shape]) -> None:
    """Attach at `at` a GraphModule of the layers `nodes` (named under `at`), a function
    of `reads` returning `out`."""
    inner = torch.fx.Graph()
    local = {name: inner.placeholder(identifier(name)) for name in reads}
    _attach(root, at, torch.nn.Module())
    for node in nodes:
        _emit(inner, root, f"{at}.", node, local, shapes)
    inner.output(local[out[0]] if len(out) == 1 else tuple(local[o] for o in out))
    module = torch.fx.GraphModule(root.get_submodule(at), inner, class_name=class_name(at))
    parent, _, leaf = at.rpartition(".")
    root.get_submodule(parent).add_module(leaf, module)


def _call_block(fx: torch.fx.Graph, fn: Any, at: str, name: str, reads: Sequence[str],
          out: Sequence[str], values: dict[str, torch.fx.Node], kwargs: dict[str, Any]) -> None:
    """Call `fn(module at `at`, *reads, **kwargs)` from `fx` (the module fetched as `name`),
    its result the values `out`."""
    block = fx.create_node("get_attr", at, name=name)
    called = fx.create_node("call_function", fn, (block, *(values[i] for i in reads)), kwargs,
                            name=identifier(out[0]) if len(out) == 1 else None)
    for index, value in enumerate(out):
        values[value] = called if len(out) == 1 else fx.create_node(
            "call_function", operator.getitem, (called, index), name=identifier(value))


def _call(fx: torch.fx.Graph, call: TorchCall, args: Sequence[torch.fx.Node],
          name: str) -> torch.fx.Node:
    if call.packed:
        return fx.create_node("call_function", call.fn, (tuple(args),), call.kwargs,
                              name=identifier(name))
    if call.pairwise:
        value = args[0]
        for i, arg in enumerate(args[1:], start=1):
            last = i == len(args) - 1
            value = fx.create_node("call_function", call.fn, (value, arg), call.kwargs,
                                   name=identifier(name) if last else None)
        return value
    return fx.create_node("call_function", call.fn, tuple(args), call.kwargs,
                          name=identifier(name))


def _attach(root: torch.nn.Module, qualified: str, module: torch.nn.Module) -> None:
    """Put `module` at a dotted path, creating the containers on the way (`layer1.0`)."""
    parent = root
    *path, leaf = qualified.split(".")
    for part in path:
        if not hasattr(parent, part):
            parent.add_module(part, torch.nn.Module())
        parent = getattr(parent, part)
    parent.add_module(leaf, module)


def identifier(name: str) -> str:
    """A Python variable name for a layer: `layer1.0.conv1` -> `layer1_0_conv1`."""
    ident = re.sub(r"\W", "_", name)
    return ident if not ident[:1].isdigit() else f"_{ident}"


def class_name(name: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", name)
    ident = "".join(w[:1].upper() + w[1:] for w in words if w) or "Net"
    return ident if not ident[:1].isdigit() else f"Net{ident}"
