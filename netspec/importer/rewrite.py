"""Rewrites of a traced fx graph into calls that netspec ops read (see `trace`):

- `inline`: a function fx keeps whole (`torch.fx.wrap`: torchvision's
  `_patch_merging_pad`) and no op reads is traced itself and put in its call's place;
- `fold`: sizes read off shapes (`H, W, _ = x.shape[-3:]`, `x.size(1)`, `x.dim()`) and
  arithmetic on them become the numbers they are for every batch, checks of them
  (`torch._assert`) that hold are dropped, and a pad by nothing (`F.pad(x, (0, 0, 0, W % 2))`
  at an even W) is its input; the batch size stays a call (no op reads it) but where a
  reshape or an expand starts with it (`x.reshape(n, 768, -1)`);
- `index`: `x[..., 0::2, 1::2, :]` is one `slice_dim` per sliced dim, `x[:, 0]` a select;
- `self_attention`: `x, _ = attn(x, x, x, need_weights=False)` of torch's
  nn.MultiheadAttention is the call `attn(x)` of its output alone.

Each returns how many nodes it changed; the shapes are then inferred again (but after
`self_attention`, which runs last: its calls stand for their first output, which torch's
module does not return alone)."""

from __future__ import annotations

import inspect
import operator
import types
from collections.abc import Callable
from typing import Any

import torch
import torch.fx

from netspec.backends.functional import reshape_samples, slice_dim

ARITHMETIC = frozenset({operator.add, operator.sub, operator.mul, operator.floordiv,
                        operator.mod, operator.eq, operator.ne, operator.lt, operator.le,
                        operator.gt, operator.ge, operator.neg})
"""Operations on sizes that `fold` computes."""


class _Batch:
    """The batch size: unknown to a spec, so nothing computed from it is folded."""


BATCH = _Batch()


def inline(graph: torch.fx.Graph, keep: Callable[[Any], bool]) -> int:
    """Trace each called Python function outside torch that `keep` does not keep (fx's
    wrapped functions) and splice its graph in place of the call, its nodes in the call's
    module; a function fx cannot trace stays a call."""
    count = 0
    for node in list(graph.nodes):
        fn = node.target
        if node.op != "call_function" or not isinstance(fn, types.FunctionType) or \
                fn.__module__.partition(".")[0] == "torch" or keep(fn) or node.kwargs:
            continue
        try:
            inner = torch.fx.symbolic_trace(fn).graph
        except Exception:  # data-dependent control flow and more: stays a call
            continue
        inputs = [n for n in inner.nodes if n.op == "placeholder"]
        if len(inputs) != len(node.args):
            continue
        with graph.inserting_before(node):
            made: dict[torch.fx.Node, Any] = dict(zip(inputs, node.args, strict=True))
            value = graph.graph_copy(inner, made)  # type: ignore[arg-type]
        for new in made.values():
            if isinstance(new, torch.fx.Node) and new not in node.args:
                new.meta["nn_module_stack"] = dict(node.meta.get("nn_module_stack", {}))
        node.replace_all_uses_with(value)  # type: ignore[arg-type]
        graph.erase_node(node)
        count += 1
    return count


def fold(graph: torch.fx.Graph) -> int:
    """Replace sizes and arithmetic on them by their values (module docstring)."""
    known: dict[torch.fx.Node, Any] = {}
    count = 0
    for node in list(graph.nodes):
        value = _size(node, known)
        if value is None:
            count += _simplify(graph, node, known)
            continue
        known[node] = value
        if not _holds_batch(value):
            _substitute(node, value)
    for node in reversed(known):  # every size, read by nothing now (or a batch's unread)
        if not node.users:
            graph.erase_node(node)
            count += 1
    return count


def _substitute(node: torch.fx.Node, value: Any) -> None:
    """Write `value` wherever `node` is read."""
    def put(n: torch.fx.Node) -> Any:
        return value if n is node else n

    for user in list(node.users):
        user.args = torch.fx.node.map_arg(user.args, put)
        user.kwargs = torch.fx.node.map_arg(user.kwargs, put)


def _size(node: torch.fx.Node, known: dict[torch.fx.Node, Any]) -> Any:
    """What a size node computes (a shape's tuple with BATCH first, an int), or None."""
    def val(a: Any) -> Any:
        return known.get(a, _UNKNOWN) if isinstance(a, torch.fx.Node) else a

    if node.kwargs:
        return None
    if node.op == "call_function" and node.target is getattr and node.args[1] == "shape":
        return _shape(node.args[0])
    if node.op == "call_method" and node.target in ("size", "dim"):
        shape, at = _shape(node.args[0]), [val(a) for a in node.args[1:]]
        if shape is None or _UNKNOWN in at:
            return None
        return len(shape) if node.target == "dim" else shape[at[0]] if at else shape
    args = [val(a) for a in node.args]
    if node.op != "call_function" or _UNKNOWN in args:
        return None
    if node.target is operator.getitem and isinstance(args[0], tuple):
        return args[0][args[1]]
    if node.target in ARITHMETIC and all(isinstance(a, int) for a in args):
        return node.target(*args)  # type: ignore[operator]
    return None


class _Unknown:
    """A value `fold` does not know."""


_UNKNOWN = _Unknown()


def _shape(node: Any) -> tuple[Any, ...] | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, torch.fx.Node) else None
    return (BATCH, *meta.shape[1:]) if meta is not None and hasattr(meta, "shape") else None


def _holds_batch(value: Any) -> bool:
    return value is BATCH or (isinstance(value, tuple) and any(v is BATCH for v in value))


def _simplify(graph: torch.fx.Graph, node: torch.fx.Node, known: dict[torch.fx.Node, Any]) -> int:
    """Drop `torch._assert(True, ...)`; a pad by nothing is its input; `x.reshape(n, ...)`
    and `x.view(n, ...)` of the batch size `n` are netspec's reshape of each sample, and
    `x.expand(n, -1, ...)` (ViT's class token, a layer of the batch already) is `x`."""
    if node.op == "call_function" and node.target is torch._assert and node.args[0] is True \
            and not node.users:
        graph.erase_node(node)
        return 1
    pads = node.args[1] if len(node.args) > 1 else node.kwargs.get("pad")
    if node.op == "call_function" and node.target is torch.nn.functional.pad and \
            isinstance(pads, list | tuple) and all(p == 0 for p in pads):
        return _replace(graph, node, node.args[0])
    sizes = _batch_sizes(node, known)
    if sizes is None:
        return 0
    if node.target == "expand":
        return _replace(graph, node, node.args[0]) if all(s == -1 for s in sizes) else 0
    with graph.inserting_before(node):
        value = graph.call_function(reshape_samples, (node.args[0],), {"shape": list(sizes)})
    value.meta = dict(node.meta)
    return _replace(graph, node, value)


def _batch_sizes(node: torch.fx.Node, known: dict[torch.fx.Node, Any]) -> list[Any] | None:
    """The sizes after the batch's of `x.reshape(n, ...)`, `x.view(n, ...)` or
    `x.expand(n, ...)` (sizes in a tuple or not) with `n` the batch size, or None."""
    if node.op != "call_method" or node.target not in ("reshape", "view", "expand") or \
            node.kwargs or len(node.args) < 2:
        return None
    sizes = node.args[1] if isinstance(node.args[1], list | tuple) else node.args[1:]
    first = known.get(sizes[0]) if isinstance(sizes[0], torch.fx.Node) else None
    rest = list(sizes[1:])
    return rest if first is BATCH and all(isinstance(s, int) for s in rest) else None


def _replace(graph: torch.fx.Graph, node: torch.fx.Node, value: Any) -> int:
    if not isinstance(value, torch.fx.Node):
        return 0
    node.replace_all_uses_with(value)
    graph.erase_node(node)
    return 1


def index(graph: torch.fx.Graph) -> int:
    """Rewrite `x[...]` of slices, ints and an Ellipsis as one call per indexed dim: a
    `slice_dim` per slice, `torch.select` per int (from the last dim back, so that each
    dim keeps its number); the batch dim and other indices stay as they are."""
    count = 0
    for node in list(graph.nodes):
        steps = _index_steps(node)
        if steps is None:
            continue
        value = node.args[0]
        with graph.inserting_before(node):
            for dim, item in reversed(steps):
                if isinstance(item, int):
                    value = graph.call_function(torch.select, (value, dim, item))
                else:
                    value = graph.call_function(slice_dim, (value,), {
                        "dim": dim, "start": item.start, "end": item.stop, "step": item.step or 1})
                value.meta["nn_module_stack"] = dict(node.meta.get("nn_module_stack", {}))
        node.replace_all_uses_with(value)  # type: ignore[arg-type]
        graph.erase_node(node)
        count += 1
    return count


def _index_steps(node: torch.fx.Node) -> list[tuple[int, slice | int]] | None:
    """The (dim, slice or int) of an indexing of a tensor, each dim after the batch, or None."""
    if node.op != "call_function" or node.target is not operator.getitem:
        return None
    shape = _shape(node.args[0])
    items = node.args[1] if isinstance(node.args[1], tuple) else (node.args[1],)
    plain = all(isinstance(v, int | None) for i in items if isinstance(i, slice)
                for v in (i.start, i.stop, i.step))
    if shape is None or not plain or \
            not all(isinstance(i, slice | int) or i is Ellipsis for i in items) or \
            sum(i is Ellipsis for i in items) > 1 or isinstance(node.args[1], bool):
        return None
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items = items[:at] + (slice(None),) * (len(shape) - len(items) + 1) + items[at + 1:]
    steps = [(d, i) for d, i in enumerate(items) if i != slice(None)]
    if any(d == 0 for d, _ in steps) or len(items) > len(shape) or not steps:
        return None
    return steps


def self_attention(graph: torch.fx.Graph, model: torch.nn.Module) -> int:
    """Rewrite each call of torch's nn.MultiheadAttention as self-attention (`query`, `key`
    and `value` one value), unmasked (no `key_padding_mask`, `attn_mask` or `is_causal`),
    whose attention weights nothing reads (torchvision's ViT: `x, _ = attn(x, x, x,
    need_weights=False)`) as the call `attn(x)` of its output: the readers of its item 0
    read the call, which takes that item's shape. Other calls stay as they are (a module
    called for two values, which the importer refuses)."""
    forward = inspect.signature(torch.nn.MultiheadAttention.forward)
    count = 0
    for node in list(graph.nodes):
        if node.op != "call_module" or \
                not isinstance(model.get_submodule(str(node.target)), torch.nn.MultiheadAttention):
            continue
        given = forward.bind(None, *node.args, **node.kwargs).arguments
        items = {u.args[1]: u for u in node.users
                 if u.op == "call_function" and u.target is operator.getitem}
        if not (given["query"] is given["key"] is given["value"]) or len(items) != len(node.users) \
                or any(given.get(k) is not None for k in ("key_padding_mask", "attn_mask")) \
                or given.get("is_causal") or 0 not in items or set(items) - {0, 1} \
                or (1 in items and items[1].users):
            continue
        node.meta["tensor_meta"] = items[0].meta["tensor_meta"]
        node.args, node.kwargs = (given["query"],), {}
        items[0].replace_all_uses_with(node)
        for item in items.values():
            graph.erase_node(item)
        count += 1
    return count
