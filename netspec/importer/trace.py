"""A torch model read as scopes of netspec ops, by torch.fx.

`read(model, shape)` traces the model symbolically (torch.nn layers and the functions of
`FOREIGN` stay calls; everything else is traced through), rewrites a mean over every
spatial dim as a global pool (`_global_pools`), infers every value's shape on the meta
device (nothing computed), and reads each call as a netspec op:

- a torch.nn module by the op whose `torch_class` it is, its arguments read back with
  `Op.from_torch`, accepted only if the op rebuilds the very module (same settings);
- a function an op compiles to, or the Tensor method of its name (`operator.add`,
  `torch.cat`, `x.permute(...)`: each op's own `to_torch`); `x.chunk(...)` as one layer
  whose pieces are read as `chunk.0`, `chunk.1`;
- a functional form of a module (`F.relu`, `F.adaptive_avg_pool2d`, `torch.flatten`,
  `x.relu()`) as that module;
- a function of another library that `FOREIGN` names (torchvision's `stochastic_depth`
  as `drop_path`);
- a module of another library's class that an op declares (`Op.torch_imports`:
  torchvision's ShiftedWindowAttention and MaxViT's RelativePositionalMultiHeadAttention;
  torch's nn.MultiheadAttention, whose call
  `rewrite.self_attention` makes one of its output) as that op, whole, not traced through;
- a module's own tensor its forward reads (`self.layer_scale * x`) as a `parameter` layer
  of that name, first in its scope; a module of no submodules passing its own tensors to
  a function (LayerNorm2d's `F.layer_norm(x, ..., self.weight, self.bias)`) as that
  function's module named as the module, its other calls in its parent's scope.

Calls are grouped by the module whose forward made them (fx's `nn_module_stack`) into
`Scope`s, one per module instance, so names and `state_dict` keys follow the module tree.
"""

from __future__ import annotations

import copy
import inspect
import operator
import re
import sys
from dataclasses import dataclass, field
from typing import Any, get_origin

import torch
import torch.fx
from pydantic import ValidationError
from torch.fx.passes.shape_prop import ShapeProp

from netspec.importer import rewrite
from netspec.importer.errors import ImportFailure, Unexpressed
from netspec.ops import LAYER_OPS, OPS, Op, TorchCall


@dataclass
class Entry:
    """One item of a scope: a layer (`kind` its op) or a child scope (`kind` empty)."""

    name: str
    kind: str
    args: dict[str, Any]
    reads: list[torch.fx.Node]
    scope: Scope | None = None
    missing: Unexpressed | None = None
    pieces: bool = False
    """Whether it has several outputs (`chunk`), read as `name.0`, `name.1`."""


@dataclass
class Scope:
    """The calls one module instance's forward made, in order; `path` is its qualified name."""

    path: str
    cls: str
    entries: list[Entry] = field(default_factory=list)
    made: dict[torch.fx.Node, str] = field(default_factory=dict)
    inside: set[torch.fx.Node] = field(default_factory=set)
    """Every value computed in it or in the scopes below it."""


@dataclass
class Traced:
    root: Scope
    input: torch.fx.Node
    output: torch.fx.Node
    unexpressed: list[Unexpressed]
    more: tuple[torch.fx.Node, ...] = ()
    """The outputs after the first, in order (a model returning a tuple)."""
    auxiliary: tuple[torch.fx.Node, ...] = ()
    """The outputs only the training forward returns, after the others (Inception v3's
    and GoogLeNet's auxiliary logits)."""


SAME_FUNCTION = {operator.iadd: operator.add, torch.add: operator.add, operator.imul: operator.mul,
                 torch.mul: operator.mul, torch.swapaxes: torch.transpose}
"""Functions that compute what another does (in place or not: a spec's value is new; an
alias: torch.swapaxes, MaxViT's SwapAxes)."""


def read(model: torch.nn.Module, shape: tuple[int, ...]) -> Traced:
    """Trace `model` (in eval mode) for one sample of per-sample `shape`; in training mode
    where only that forward reads every tensor (auxiliary classifiers: their outputs follow
    the first). Shapes are always run in eval mode."""
    graph = _trace(model.eval())
    returned = len(_returned(graph.output_node().args[0]))  # by the eval forward
    if _unread(model, graph):
        try:
            trained = _trace(model.train())
        except ImportFailure:  # the eval forward's unread tensors are reported instead
            trained = graph
        model.eval()
        if not _unread(model, trained):
            graph = trained
    if rewrite.inline(graph, lambda fn: _qualified(fn) in FOREIGN):
        graph.lint()
    _shapes(model, graph, shape)
    if rewrite.fold(graph) + rewrite.index(graph) + _global_pools(graph):
        _shapes(model, graph, shape)
    rewrite.self_attention(graph, model)  # last: its calls no longer run as torch's modules
    merged = _merged(model, graph)
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ImportFailure(f"the model's forward takes {len(placeholders)} inputs; netspec "
                            "import reads models of one input")
    root = Scope("", type(model).__qualname__)
    scopes = {"": root}
    missing: list[Unexpressed] = []
    pieces: dict[torch.fx.Node, tuple[str, str]] = {}
    output = None
    for node in graph.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            output = node.args[0]
            continue
        if _returned_tuple(node):
            continue
        if node.target is operator.getitem and node.args[0] in pieces:  # x1, x2 = x.chunk(2, 1)
            path, name = pieces[node.args[0]]  # type: ignore[index]
            scopes[path].made[node] = f"{name}.{node.args[1]}"
            for at in scope_chain(path):
                scopes[at].inside.add(node)
            continue
        if node.meta.get("absorbed"):
            continue  # a module's own weight, passed to its functional form (F.layer_norm)
        path = _where(node, model, merged)
        scope = _scope(scopes, path, model)
        entry = _entry(node, model, scope, merged)
        if entry.pieces:
            pieces[node] = (path, entry.name)
        if entry.missing is not None:
            missing.append(entry.missing)
        scope.entries.append(entry)
        scope.made[node] = entry.name
        for at in scope_chain(path):
            scopes[at].inside.add(node)
    for scope in scopes.values():
        own_tensors_first(scope, placeholders[0])
    outputs = _returned(output)
    if not outputs or not all(isinstance(o, torch.fx.Node) for o in outputs):
        raise ImportFailure("the model returns no tensor or tuple of tensors (a dict, say); "
                            "netspec import reads models of tensor outputs")
    return Traced(root, placeholders[0], outputs[0], missing + _unread(model, graph),
                  outputs[1:returned], outputs[returned:])


def _returned(output: Any) -> tuple[Any, ...]:
    """The values a graph's output node returns: a tuple's, a named tuple's, or one."""
    if isinstance(output, torch.fx.Node) and _returned_tuple(output):
        output = output.args
    return tuple(output) if isinstance(output, tuple) else (output,)


def _returned_tuple(node: torch.fx.Node) -> bool:
    """Whether `node` makes the named tuple the model returns (GoogLeNetOutputs(x, aux2,
    aux1) in training): its values are the outputs."""
    target = node.target
    return node.op == "call_function" and isinstance(target, type) and issubclass(target, tuple) \
        and not node.kwargs and all(user.op == "output" for user in node.users)
def _trace(model: torch.nn.Module) -> torch.fx.Graph:
    """`model`'s forward as fx traces it, in the mode it is in."""
    try:
        return _tracer().trace(model)
    except Exception as exc:  # fx refuses data-dependent control flow and more
        raise ImportFailure(f"torch.fx cannot trace the model: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}") from None


def own_tensors_first(scope: Scope, input: torch.fx.Node) -> None:
    """Put a scope's layers that read no value first (parameter layers: its module's own
    tensors, in torch's order of `state_dict` keys, a module's own before its children's;
    or --partial's placeholders of a buffer), each reading the scope's first input (the
    model's for the root, or for a scope that reads none: a constant fx made of a tensor a
    leaf module's call is given, `attn_mask`) for its batch size."""
    own = [e for e in scope.entries if e.scope is None and not e.reads]
    if not own:
        return
    first = input if not scope.path else next(
        (r for e in _walk(scope) for r in e.reads if r not in scope.inside), input)
    for entry in own:
        entry.reads = [first]
    scope.entries = own + [e for e in scope.entries if e not in own]


def _walk(scope: Scope) -> list[Entry]:
    """A scope's entries and its child scopes', in order."""
    return [x for e in scope.entries for x in ([e] if e.scope is None else [e, *_walk(e.scope)])]


def _unread(model: torch.nn.Module, graph: torch.fx.Graph) -> list[Unexpressed]:
    """The modules whose tensors the traced forward never reads, neither by calling them
    (or a module holding them) nor by fetching them (GoogLeNet's auxiliary classifiers,
    run in training only): a spec of the forward would drop their keys."""
    called = {str(n.target) for n in graph.nodes if n.op == "call_module"}
    fetched = {str(n.target) for n in graph.nodes if n.op == "get_attr"}
    unread: dict[str, None] = {}
    for key in model.state_dict():
        owner = key.rpartition(".")[0]
        if key not in fetched and not called.intersection(scope_chain(owner)[1:]):
            unread.setdefault(next((p for p in scope_chain(owner)[1:] if not any(
                c == p or c.startswith(p + ".") for c in called)), owner))
    return [Unexpressed(path, "holds tensors the traced forward never reads") for path in unread]


def _shapes(model: torch.nn.Module, graph: torch.fx.Graph, shape: tuple[int, ...]) -> None:
    """Annotate `graph`'s nodes with their shapes (`meta["tensor_meta"]`), run on a copy of
    `model` on the meta device: no memory for activations, nothing computed."""
    meta = copy.deepcopy(model).to("meta")
    try:
        ShapeProp(torch.fx.GraphModule(meta, graph)).propagate(torch.empty(1, *shape, device="meta"))
    except Exception as exc:
        raise ImportFailure(f"the model does not run on a {list(shape)} input: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None


def _global_pools(graph: torch.fx.Graph) -> int:
    """Rewrite each mean over all spatial dims (`x.mean([2, 3])`, `torch.mean(x, (-2, -1),
    keepdim=True)`: MNASNet's head) as the layers netspec says it with, an adaptive average
    pool to size 1, then (without keepdim) a flatten from dim 1; return how many."""
    count = 0
    for node in list(graph.nodes):
        pooled = _pool_of_mean(node)
        if pooled is None:
            continue
        fn, keep = pooled
        with graph.inserting_before(node):
            value = graph.call_function(fn, (node.args[0], 1))
            if not keep:
                value.meta = dict(node.meta)
                value = graph.call_function(torch.flatten, (value, 1))
        value.meta = dict(node.meta)
        node.replace_all_uses_with(value)
        graph.erase_node(node)
        count += 1
    return count


def _pool_of_mean(node: torch.fx.Node) -> tuple[Any, bool] | None:
    """(the adaptive average pool, keepdim) when `node` means its input over every spatial
    dim of a batch of [C, *spatial] maps (1 to 3 spatial dims), else None."""
    if (node.op, node.target) not in (("call_method", "mean"), ("call_function", torch.mean)):
        return None
    if not isinstance(node.args[0], torch.fx.Node):
        return None
    given = dict(zip(("dim", "keepdim"), node.args[1:], strict=False)) | dict(node.kwargs)
    rank = len(_out(node.args[0])) + 1
    dims = given.get("dim")
    dims = [dims] if isinstance(dims, int) else dims
    if set(given) - {"dim", "keepdim"} or not isinstance(dims, list | tuple) or not 3 <= rank <= 5:
        return None
    if sorted(d % rank for d in dims) != list(range(2, rank)) or len(dims) != rank - 2:
        return None
    fn = getattr(torch.nn.functional, f"adaptive_avg_pool{rank - 2}d")
    return fn, bool(given.get("keepdim", False))


def _where(node: torch.fx.Node, model: torch.nn.Module, merged: set[str]) -> str:
    """The path of the module whose forward made `node` (fx's `@1` marks of a module's
    later calls dropped but a `_stateless` one's: `stochastic_depth@1`, a scope of its
    own), its parent's where the module is `merged` into it; for a module
    called through a container whose own forward is never run (`for block in self.blocks:
    x = block(x)` over an nn.ModuleList), that container, so the module keeps its name
    (`blocks.0`)."""
    stack = [key.partition("@")[0] for key in node.meta.get("nn_module_stack", {})]
    if node.op == "call_module":
        caller = stack[-2] if len(stack) > 1 else ""
        parent = str(node.target).rpartition(".")[0]
        return parent if parent.startswith(f"{caller}." if caller else "") else caller
    own = _own(node)
    if own in merged:
        return own.rpartition(".")[0]
    call = stack and list(node.meta["nn_module_stack"])[-1]
    return call if call and "@" in call and _stateless(model.get_submodule(own)) else own


def _stateless(module: torch.nn.Module) -> bool:
    """Whether a module holds no tensors and no modules: each call of it (torchvision's
    StochasticDepth, called after attention and after the MLP) is a scope of its own."""
    return not any(True for _ in module.children()) and not module.state_dict()


def _own(node: torch.fx.Node) -> str:
    """The path of the module whose forward made `node`."""
    stack = list(node.meta.get("nn_module_stack", {}))
    return stack[-1].partition("@")[0] if stack else ""


def _merged(model: torch.nn.Module, graph: torch.fx.Graph) -> set[str]:
    """The modules of no submodules whose forward passes their own tensors to a function
    (torchvision's LayerNorm2d: `F.layer_norm(x, ..., self.weight, self.bias, ...)` between
    two permutes): their calls are read in their parent's scope, the function as a layer
    named as the module, which then holds the module's tensors under their own keys. The
    tensors so passed are marked `absorbed` in their nodes' meta."""
    found: set[str] = set()
    for node in graph.nodes:
        owner = str(node.target).rpartition(".")[0]
        if node.op != "get_attr" or not owner or any(True for _ in model.get_submodule(owner).children()):
            continue
        if node.users and all(u.op == "call_function" and _own(u) == owner and node in u.args + tuple(
                u.kwargs.values()) for u in node.users):
            node.meta["absorbed"] = True
            found.add(owner)
    return found


def scope_chain(path: str) -> list[str]:
    """"" and every scope from the root down to `path`: "", "layer1", "layer1.0"."""
    parts = path.split(".") if path else []
    return ["", *(".".join(parts[:k]) for k in range(1, len(parts) + 1))]


def _scope(scopes: dict[str, Scope], path: str, model: torch.nn.Module) -> Scope:
    """The scope at `path`, made with the scopes above it as they first appear."""
    if path not in scopes:
        parent = _scope(scopes, path.rpartition(".")[0], model)
        module, _, call = path.partition("@")  # a stateless module's later call: name_1
        scope = Scope(path, type(model.get_submodule(module)).__qualname__)
        scopes[path] = scope
        name = path.rpartition(".")[2]
        parent.entries.append(Entry(fresh_name(name.replace("@", "_"), parent) if call else name,
                                    "", {}, [], scope))
    return scopes[path]


def _entry(node: torch.fx.Node, model: torch.nn.Module, scope: Scope, merged: set[str]) -> Entry:
    reads = _reads(node)
    if node.op == "call_module":
        module = model.get_submodule(str(node.target))
        calls = list(node.meta.get("nn_module_stack", {}))
        base, _, call = (calls[-1] if calls else "").rpartition("@")
        name = str(node.target).rpartition(".")[2]
        if base and call:  # a stateless module called again: a layer of its own, no tensors
            name = fresh_name(f"{name}_{call}" if name.isidentifier() else f"call{name}_{call}", scope)
        if base and call and any(True for _ in module.parameters()):
            return _missing(reads, name, scope, f"{type(module).__name__} called again (shared weights)")
        if not hasattr(node.meta.get("tensor_meta"), "shape"):  # a tuple of values
            return _missing(reads, name, scope, f"{type(module).__name__} called for several "
                            "values (nn.MultiheadAttention is read as unmasked self-attention, "
                            "`x, _ = attn(x, x, x)`, its weights unread)")
        found = module_op(module, _in(node), _out(node))
    elif node.op == "get_attr":
        found = _parameter(node, model)
        name = fresh_name(str(node.target).rpartition(".")[2], scope)
    else:
        found = _function_op(node)
        own = _own(node)
        if own in merged and any(n.meta.get("absorbed") for n in node.all_input_nodes):
            name = own.rpartition(".")[2]  # the module's own tensors: its name, its keys
        else:
            name = fresh_name(found.kind() if isinstance(found, Op) else str(found), scope)
    if isinstance(found, Op):
        args = found.model_dump(by_alias=True, exclude={"op"})
        return Entry(name, found.kind(), args, reads, pieces=found.pieces() is not None)
    return _missing(reads, name, scope, found)


def _missing(reads: list[torch.fx.Node], name: str, scope: Scope, what: str) -> Entry:
    return Entry(name, "identity", {}, reads[:1], missing=Unexpressed(scope.path, what))


def _parameter(node: torch.fx.Node, model: torch.nn.Module) -> Op | str:
    """A module's own tensor read in its forward (ConvNeXt's layer_scale) as a parameter
    layer of its shape, less a leading 1 where that stands for the batch (the tensor has
    the rank of its first use's value). It reads no value yet (`own_tensors_first`)."""
    try:
        tensor = model.get_parameter(str(node.target))
    except AttributeError:
        return f"buffer {node.target} read by the forward (no netspec op)"
    users = list(node.users)
    return learned(list(tensor.shape), len(_out(users[0])) if users else -1, str(node.target))


def learned(shape: list[int], rank: int, what: str) -> Op | str:
    """The parameter layer holding a tensor of `shape` whose first use's value has
    per-sample `rank`: its shape less a leading 1 that stands for the batch (one more dim
    than that value), or what to say about tensor `what`."""
    if shape[:1] == [1] and len(shape) == rank + 1:
        shape = shape[1:]
    return validated_op(OPS["parameter"], {"shape": shape}) or f"tensor {what} {shape}"


def fresh_name(stem: str, scope: Scope) -> str:
    """`add`, then `add_1`, `add_2` in one scope."""
    stem = re.sub(r"\W", "_", stem) or "value"
    taken = {e.name for e in scope.entries}
    name, k = stem, 0
    while name in taken:
        k += 1
        name = f"{stem}_{k}"
    return name


def _reads(node: torch.fx.Node) -> list[torch.fx.Node]:
    """The values `node` reads, in order (inside lists: torch.cat's)."""
    found: list[torch.fx.Node] = []
    torch.fx.node.map_arg((node.args, node.kwargs), found.append)
    return [n for n in dict.fromkeys(found) if not n.meta.get("absorbed")]


def _in(node: torch.fx.Node) -> list[tuple[int, ...]]:
    return [_out(n) for n in _reads(node)]


def _out(node: torch.fx.Node) -> tuple[int, ...]:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape[1:]) if meta is not None and hasattr(meta, "shape") else ()


def torch_class(module: torch.nn.Module) -> type | None:
    """The torch.nn class `module` computes as: its own, or the one a subclass that keeps
    its forward extends (torchvision's Conv3DSimple is a Conv3d)."""
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn.modules"):
            return cls if cls.forward is type(module).forward else None
    return None


def module_op(module: torch.nn.Module, x: list[tuple[int, ...]], y: tuple[int, ...]) -> Op | str:
    """The op computing `module` for inputs of shapes `x`, or what to say about it: a
    torch.nn layer's op where it rebuilds the same module, a class another library's
    (`Op.torch_imports`) by the op whose module holds the same tensors."""
    what = type(module).__name__
    foreign = _foreign().get(_qualified(type(module)))
    cls = torch_class(module)
    if cls is None and foreign is None:
        return f"{what} (not a torch.nn layer, and its forward cannot be traced through)"
    refused = " (no netspec op)"
    for op_cls in [foreign] if foreign else [c for c in LAYER_OPS if c.torch_class == cls.__name__]:
        args = op_cls.from_torch(module)
        op = validated_op(op_cls, args)
        if op is None:
            refused = f": {op_cls.kind()} does not take {args}"
            continue
        rebuilt = op.to_torch(torch, x, y)
        if isinstance(rebuilt, torch.nn.Module) and (_tensors_of(rebuilt) == _tensors_of(module)
                                                     if foreign else _same(rebuilt, module)):
            return op
        return f"{what}({module.extra_repr()}): {op.kind()} makes {rebuilt!r}"
    return f"{what}({module.extra_repr()}){refused}"


def _qualified(obj: Any) -> str:
    """A class's or function's `module.name`."""
    return f"{obj.__module__}.{obj.__qualname__}"


def _foreign() -> dict[str, type[Op]]:
    """The classes of other libraries that ops compute (`Op.torch_imports`), by name."""
    return {name: cls for cls in LAYER_OPS for name in cls.torch_imports}


def _tensors_of(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(t.shape) for k, t in module.state_dict().items()}


def _same(made: torch.nn.Module, module: torch.nn.Module) -> bool:
    """Whether two modules compute alike: the same settings (a size given once or per
    dimension alike) and tensors of the same names and shapes. Only the settings its class
    makes count: one set on the instance besides (Inception's `fc.stddev`, read by its
    weight init) is not read by the class's forward."""
    def settings(m: torch.nn.Module) -> dict[str, Any]:
        return {k: _one(v) for k, v in vars(m).items() if not k.startswith("_") and k != "training"}

    theirs = settings(module)
    return all(k in theirs and theirs[k] == v for k, v in settings(made).items()) \
        and _tensors_of(made) == _tensors_of(module)


def _one(value: Any) -> Any:
    """(3, 3) and [3, 3] as 3; other sequences as tuples."""
    if isinstance(value, tuple | list):
        return value[0] if value and len(set(value)) == 1 else tuple(value)
    return value


def validated_op(cls: type[Op], args: dict[str, Any]) -> Op | None:
    """The op of `args`, with a list of equal sizes written as one (`kernel: 3`) where the
    op takes that, else as they are; None if the op refuses them."""
    short = {k: v[0] if isinstance(v, list) and v and len(set(v)) == 1 else v
             for k, v in args.items()}
    for tried in (short, args):
        try:
            return cls.model_validate(tried)
        except ValidationError:
            continue
    return None


def _function_op(node: torch.fx.Node) -> Op | str:
    """The op a function or method call computes, or what to say about it."""
    if node.op == "call_function":
        fn = SAME_FUNCTION.get(node.target, node.target)  # type: ignore[arg-type]
        op_cls = _calls().get(fn)
        if op_cls is not None:
            return _call_op(op_cls, node)
        name = getattr(fn, "__name__", str(fn))
        shown = f"{getattr(fn, '__module__', '') or 'torch'}.{name}"
        if fn is torch.chunk:
            return _chunks(dict(zip(("chunks", "dim"), node.args[1:], strict=False)) | node.kwargs)
        foreign = FOREIGN.get(shown)
        if foreign is not None:
            return foreign(inspect.signature(fn).bind(*node.args, **node.kwargs).arguments)
    elif node.op == "call_method":
        name, fn = str(node.target), None
        shown = f"Tensor.{name}"
        if name == "chunk":
            return _chunks(dict(zip(("chunks", "dim"), node.args[1:], strict=False)) | node.kwargs)
        op_cls = next((c for f, c in _calls().items() if getattr(f, "__name__", "") == name), None)
        if op_cls is not None:  # x.permute(0, 2, 3, 1): the method of the op's function
            return _call_op(op_cls, node)
    else:
        return f"{node.op} {node.target}"
    module = _module_form(name, fn, node)
    if isinstance(module, torch.nn.Module):
        return module_op(module, _in(node), _out(node))
    return f"{shown}{module}"


def _calls() -> dict[Any, type[Op]]:
    """The functions ops compile to, from each op's own `to_torch`."""
    table: dict[Any, type[Op]] = {}
    for cls in LAYER_OPS:
        call = _call_of(cls)
        if call is not None:
            table.setdefault(call.fn, cls)
    return table


def _call_of(cls: type[Op]) -> TorchCall | None:
    """The call `cls` compiles to, read off its `to_torch` at its defaults and its required
    arguments zero or empty (only the function and the keywords it passes are read); None
    for an op compiling to a module or needing shapes to say."""
    if cls.torch_class is not None:
        return None
    blank = {name: [] if get_origin(info.annotation) is list else 0
             for name, info in cls.model_fields.items() if info.is_required()}
    try:
        made = cls.model_construct(**blank).to_torch(torch, [], ())
    except Exception:  # needs arguments or shapes to say: not one of the plain calls
        return None
    return made if isinstance(made, TorchCall) else None


def _call_op(cls: type[Op], node: torch.fx.Node) -> Op | str:
    """The op of a call of its function (or of the Tensor method of its name): its tensor
    arguments are inputs, the keyword arguments its `TorchCall` passes are read from the
    call (`torch.cat(xs, 1)`: dim 1; `x.permute(0, 2, 3, 1)`: dims as torch packs them)."""
    call = _call_of(cls)
    assert call is not None
    if call.packed and len(_reads(node)) == 1:  # torch.cat([x], 1), DenseNet's first layer: x
        return OPS["identity"]()
    extra = [a for a in node.args if not _holds_values(a)]
    if len(call.kwargs) == 1 and len(extra) > 1 and all(isinstance(a, int) for a in extra):
        extra = [extra]
    args = dict(zip(call.kwargs, extra, strict=False)) | {k: v for k, v in node.kwargs.items()
                                                          if k in call.kwargs}
    if set(node.kwargs) - set(call.kwargs) or len(extra) > len(call.kwargs):
        return f"{getattr(node.target, '__name__', node.target)} with arguments {cls.kind()} has not"
    return validated_op(cls, args) or f"{cls.kind()}({args})"


def _holds_values(arg: Any) -> bool:
    """Whether a call's argument is a tensor of the graph or a list holding some."""
    if isinstance(arg, list | tuple):
        return any(isinstance(a, torch.fx.Node) for a in arg)
    return isinstance(arg, torch.fx.Node)


def _drop_path(args: dict[str, Any]) -> Op | str:
    """torchvision's `stochastic_depth(x, p, mode)`: drop_path where it drops whole samples
    (mode "row"; "batch" drops the whole batch, which no op does)."""
    if args.get("mode") != "row":
        return f"stochastic_depth with mode {args.get('mode')!r} (drop_path is mode 'row')"
    return validated_op(OPS["drop_path"], {"p": args["p"]}) or f"stochastic_depth p={args['p']}"


def _channel_shuffle(args: dict[str, Any]) -> Op | str:
    """torchvision's ShuffleNetV2 `channel_shuffle(x, groups)`: nn.ChannelShuffle's."""
    return validated_op(OPS["channel_shuffle"], {"groups": args["groups"]}) or \
        f"channel_shuffle groups={args['groups']}"


def _chunks(args: dict[str, Any]) -> Op | str:
    """`torch.chunk(x, chunks, dim)`, `x.chunk(...)`: every piece, each read as `name.k`."""
    args = {"dim": 0} | args
    return validated_op(OPS["chunk"], args) or f"chunk {args}"


FOREIGN = {"torchvision.ops.stochastic_depth.stochastic_depth": _drop_path,
           "torchvision.models.shufflenetv2.channel_shuffle": _channel_shuffle}
"""Functions of other libraries that fx is to keep as calls (`_tracer`), by module and
name, and the op each computes."""


class _Tracer(torch.fx.Tracer):
    """fx's tracer, keeping as one call each module of a class an op computes
    (`Op.torch_imports`: torchvision's ShiftedWindowAttention, MaxViT's attention), not
    traced through."""

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        return _qualified(type(m)) in _foreign() or super().is_leaf_module(m, module_qualified_name)


def _tracer() -> torch.fx.Tracer:
    """The tracer, keeping FOREIGN's functions of the modules already imported as calls
    (ShuffleNetV2's channel_shuffle reads x.size(), which fx would trace through)."""
    found = []
    for key in FOREIGN:
        module, _, name = key.rpartition(".")
        fn = getattr(sys.modules.get(module), name, None)
        if callable(fn):
            found.append(fn)
    return _Tracer(autowrap_functions=tuple(found))


FUNCTION_DEFAULTS = {"flatten": {"start_dim": 0}}
"""Where a function's default differs from its module's (torch.flatten starts at dim 0,
nn.Flatten at 1)."""


def _module_form(name: str, fn: Any, node: torch.fx.Node) -> torch.nn.Module | str:
    """The torch.nn module computing what the call `name(x, ...)` does (`F.relu`,
    `torch.flatten`, `x.sigmoid()`), or what to say when there is none."""
    cls = functional_modules().get(name)
    if cls is None:
        return " (no netspec op)"
    if any(isinstance(a, torch.fx.Node) and not a.meta.get("absorbed")
           for a in [*node.args[1:], *node.kwargs.values()]):
        return " (computed arguments)"
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    try:
        signature = inspect.signature(fn) if fn else None
    except (TypeError, ValueError):  # a builtin without a signature: the module's order
        signature = None
    if signature is not None and any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                                     for p in signature.parameters.values()):
        signature = None  # F.max_pool2d's dispatcher, fn(*args, **kwargs): the module's order
    try:
        given = signature.bind(*node.args, **node.kwargs).arguments if signature else None
    except TypeError:
        given = None
    if given is None:
        given = dict(zip(params, node.args[1:], strict=False)) | dict(node.kwargs)
    else:
        given = dict(list(given.items())[1:])
    given = FUNCTION_DEFAULTS.get(name, {}) | {k: v for k, v in given.items() if k != "training"}
    held = {k: v for k, v in given.items() if isinstance(v, torch.fx.Node)}
    given = {k: v for k, v in given.items() if k not in held} | \
        ({"bias": True} if "bias" in held and "bias" in params else {})
    if set(given) - set(params):
        return f" (arguments {sorted(set(given) - set(params))} have no module form)"
    module = cls(**given)
    if _tensors(held) != _tensors_of(module):
        return f" (its module's tensors {sorted(held)} are not {cls.__name__}'s)"
    return module


def _tensors(held: dict[str, torch.fx.Node]) -> dict[str, tuple[int, ...]]:
    """The shapes of a module's own tensors passed to a function by their arguments' names
    (`weight`, `bias`): those of a module of the same names only."""
    return {k: tuple(n.meta["tensor_meta"].shape) for k, n in held.items()
            if str(n.target).rpartition(".")[2] == k and "tensor_meta" in n.meta}


def functional_modules() -> dict[str, type[torch.nn.Module]]:
    """torch.nn classes the ops compile to, by their functions' names: `relu` (ReLU),
    `leaky_relu`, `adaptive_avg_pool2d`, `max_pool2d`, `flatten`."""
    table: dict[str, type[torch.nn.Module]] = {}
    for op_cls in LAYER_OPS:
        cls = getattr(torch.nn, op_cls.torch_class or "", None)
        if cls is not None:
            table[cls.__name__.lower()] = cls
            table[re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls.__name__).lower()] = cls
    return table
