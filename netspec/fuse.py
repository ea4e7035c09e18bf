"""Conv + BatchNorm folding for inference.

In eval mode a BatchNorm that directly follows a convolution is an affine map per output
channel, so it folds into the convolution's weights:

    s  = gamma / sqrt(running_var + eps)             # per output channel
    W' = W * s      (over W's output-channel axis)
    b' = (b - running_mean) * s + beta               # b = 0 for a conv without bias

The IR pass (`fold_graph`) is pure and torch-free, so `check` can report the folded
network's parameters and buffers; `fold_weights` does the arithmetic on a built module.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from netspec.ir import Graph, Node
from netspec.ops.conv import Conv1d, Conv2d
from netspec.ops.norm import BatchNorm1d, BatchNorm2d

_FOLDABLE = {Conv1d: BatchNorm1d, Conv2d: BatchNorm2d}


def foldable_pairs(graph: Graph) -> dict[str, str]:
    """{batchnorm name: conv name} for each BatchNorm that can fold into the conv before it:
    the conv feeds only that BatchNorm, which tracks running statistics."""
    readers: dict[str, int] = {}
    for node in graph.nodes.values():
        for name in node.inputs:
            readers[name] = readers.get(name, 0) + 1
    for name in (*graph.outputs, *graph.auxiliary):
        readers[name] = readers.get(name, 0) + 1
    pairs = {}
    for node in graph.nodes.values():
        if len(node.inputs) != 1 or node.op is None:
            continue
        conv = graph.nodes[node.inputs[0]]
        norm = _FOLDABLE.get(type(conv.op))  # type: ignore[arg-type]
        if (norm is not None and isinstance(node.op, norm) and node.op.track_running_stats
                and readers.get(conv.name) == 1):
            pairs[node.name] = conv.name
    return pairs


def fold_graph(graph: Graph) -> tuple[Graph, dict[str, str]]:
    """The graph with each foldable BatchNorm removed and its conv given a bias; readers of
    a BatchNorm read its conv instead. Returns the graph and {batchnorm: conv}."""
    pairs = foldable_pairs(graph)
    convs = set(pairs.values())
    nodes: dict[str, Node] = {}
    for name, node in graph.nodes.items():
        if name in pairs:
            continue
        if name in convs:
            node = replace(node, op=node.op.model_copy(update={"bias": True}))  # type: ignore[union-attr]
        if any(i in pairs for i in node.inputs):
            node = replace(node, inputs=tuple(pairs.get(i, i) for i in node.inputs))
        nodes[name] = node
    outputs = [pairs.get(o, o) for o in graph.outputs]
    auxiliary = [pairs.get(a, a) for a in graph.auxiliary]
    return replace(graph, nodes=nodes, outputs=outputs, auxiliary=auxiliary), pairs


def fold_weights(model: Any, folded: Any, pairs: dict[str, str]) -> Any:
    """Load `folded` (a module built from `fold_graph`'s graph) with `model`'s weights,
    folding each BatchNorm of `pairs` into its conv. Returns `folded` in eval mode."""
    import torch

    state = {k: v for k, v in model.state_dict().items()
             if k.rsplit(".", 1)[0] not in pairs}
    with torch.no_grad():
        for bn_name, conv_name in pairs.items():
            bn, conv = model.get_submodule(bn_name), model.get_submodule(conv_name)
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else \
                1 / torch.sqrt(bn.running_var + bn.eps)
            shift = bn.bias if bn.affine else torch.zeros_like(scale)
            bias = conv.bias if conv.bias is not None else torch.zeros_like(scale)
            shape = (-1,) + (1,) * (conv.weight.dim() - 1)
            state[f"{conv_name}.weight"] = conv.weight * scale.reshape(shape)
            state[f"{conv_name}.bias"] = (bias - bn.running_mean) * scale + shift
    folded.load_state_dict(state, strict=True)
    return folded.eval()
