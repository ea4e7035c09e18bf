"""The torch backend: a spec's IR becomes a `torch.fx.GraphModule`.

Each layer's module sits at its spec name (`layer1.0.conv1`, so `state_dict` keys read like
the spec), and the generated `forward` calls them in order with no interpretation of the
graph at run time: `print(model.code)` shows it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
import torch.fx

from netspec import init as init_scheme
from netspec.ir import Graph
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
    for node in graph.layers():
        assert node.op is not None, "build() compiles checked specs only"
        x = [shapes[i] for i in node.inputs]
        made = node.op.to_torch(torch, x, shapes[node.name])
        args = [values[i] for i in node.inputs]
        if isinstance(made, TorchCall):
            values[node.name] = _call(fx, made, args, node.name)
            continue
        if node.init is not None:
            init_scheme.apply(torch, made, node.init)
        if node.frozen:
            made.requires_grad_(False)
        if node.tie is not None:  # one tensor: initialised, trained and counted once
            made.weight = root.get_submodule(node.tie).weight
        _attach(root, node.name, made)
        values[node.name] = fx.create_node("call_module", node.name, tuple(args), {},
                                           name=identifier(node.name))
    outputs = [values[o] for o in graph.outputs]
    fx.output(outputs[0] if len(outputs) == 1 else tuple(outputs))
    return torch.fx.GraphModule(root, fx, class_name=class_name(graph.name))


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
