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
  as `drop_path`).

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


SAME_FUNCTION = {operator.iadd: operator.add, torch.add: operator.add, operator.imul: operator.mul,
                 torch.mul: operator.mul}
"""Functions that compute what another does (in place or not: a spec's value is new)."""


def read(model: torch.nn.Module, shape: tuple[int, ...]) -> Traced:
    """Trace `model` (in eval mode) for one sample of per-sample `shape`."""
    model = model.eval()
    try:
        graph = _tracer().trace(model)
    except Exception as exc:  # fx refuses data-dependent control flow and more
        raise ImportFailure(f"torch.fx cannot trace the model: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    _shapes(model, graph, shape)
    if _global_pools(graph):
        _shapes(model, graph, shape)
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
        if node.target is operator.getitem and node.args[0] in pieces:  # x1, x2 = x.chunk(2, 1)
            path, name = pieces[node.args[0]]  # type: ignore[index]
            scopes[path].made[node] = f"{name}.{node.args[1]}"
            for at in _chain(path):
                scopes[at].inside.add(node)
            continue
        path = _where(node)
        scope = _scope(scopes, path, model)
        entry = _entry(node, model, scope)
        if entry.pieces:
            pieces[node] = (path, entry.name)
        if entry.missing is not None:
            missing.append(entry.missing)
        scope.entries.append(entry)
        scope.made[node] = entry.name
        for at in _chain(path):
            scopes[at].inside.add(node)
    if not isinstance(output, torch.fx.Node):
        raise ImportFailure("the model returns no single tensor (a tuple or a dict); netspec "
                            "import reads models of one output")
    return Traced(root, placeholders[0], output, missing + _unread(model, graph))


def _unread(model: torch.nn.Module, graph: torch.fx.Graph) -> list[Unexpressed]:
    """The modules whose tensors the traced forward never reads (GoogLeNet's auxiliary
    classifiers, run in training only): a spec of the forward would drop their keys."""
    called = {str(n.target) for n in graph.nodes if n.op == "call_module"}
    unread: dict[str, None] = {}
    for key in model.state_dict():
        owner = key.rpartition(".")[0]
        if owner not in called:
            unread.setdefault(next((p for p in _chain(owner)[1:] if not any(
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


def _where(node: torch.fx.Node) -> str:
    """The path of the module whose forward made `node` (fx's `@1` marks of a module's
    later calls dropped); for a module called through a container whose own forward is
    never run (`for block in self.blocks: x = block(x)` over an nn.ModuleList), that
    container, so the module keeps its name (`blocks.0`)."""
    stack = [key.partition("@")[0] for key in node.meta.get("nn_module_stack", {})]
    if node.op == "call_module":
        caller = stack[-2] if len(stack) > 1 else ""
        parent = str(node.target).rpartition(".")[0]
        return parent if parent.startswith(f"{caller}." if caller else "") else caller
    return stack[-1] if stack else ""


def _chain(path: str) -> list[str]:
    """"" and every scope from the root down to `path`: "", "layer1", "layer1.0"."""
    parts = path.split(".") if path else []
    return ["", *(".".join(parts[:k]) for k in range(1, len(parts) + 1))]


def _scope(scopes: dict[str, Scope], path: str, model: torch.nn.Module) -> Scope:
    """The scope at `path`, made with the scopes above it as they first appear."""
    if path not in scopes:
        parent = _scope(scopes, path.rpartition(".")[0], model)
        scope = Scope(path, type(model.get_submodule(path)).__qualname__)
        scopes[path] = scope
        parent.entries.append(Entry(path.rpartition(".")[2], "", {}, [], scope))
    return scopes[path]


def _entry(node: torch.fx.Node, model: torch.nn.Module, scope: Scope) -> Entry:
    if node.op == "call_module":
        module = model.get_submodule(str(node.target))
        calls = list(node.meta.get("nn_module_stack", {}))
        base, _, call = (calls[-1] if calls else "").rpartition("@")
        name = str(node.target).rpartition(".")[2]
        if base and call:  # a stateless module called again: a layer of its own, no tensors
            name = _fresh(f"{name}_{call}" if name.isidentifier() else f"call{name}_{call}", scope)
        if base and call and any(True for _ in module.parameters()):
            return _missing(node, name, scope, f"{type(module).__name__} called again (shared weights)")
        found = module_op(module, _in(node), _out(node))
    else:
        found = _function_op(node)
        name = _fresh(found.kind() if isinstance(found, Op) else str(found), scope)
    if isinstance(found, Op):
        args = found.model_dump(by_alias=True, exclude={"op"})
        return Entry(name, found.kind(), args, _reads(node), pieces=found.pieces() is not None)
    return _missing(node, name, scope, found)


def _missing(node: torch.fx.Node, name: str, scope: Scope, what: str) -> Entry:
    return Entry(name, "identity", {}, _reads(node)[:1], missing=Unexpressed(scope.path, what))


def _fresh(stem: str, scope: Scope) -> str:
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
    return list(dict.fromkeys(found))


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
    """The op computing `module` for inputs of shapes `x`, or what to say about it."""
    cls = torch_class(module)
    what = type(module).__name__
    if cls is None:
        return f"{what} (not a torch.nn layer, and its forward cannot be traced through)"
    for op_cls in (c for c in LAYER_OPS if c.torch_class == cls.__name__):
        op = _validated(op_cls, op_cls.from_torch(module))
        if op is None:
            continue
        rebuilt = op.to_torch(torch, x, y)
        if isinstance(rebuilt, torch.nn.Module) and _same(rebuilt, module):
            return op
        return f"{what}({module.extra_repr()}): {op.kind()} makes {rebuilt!r}"
    return f"{what}({module.extra_repr()}) (no netspec op)"


def _same(made: torch.nn.Module, module: torch.nn.Module) -> bool:
    """Whether two modules compute alike: the same settings (a size given once or per
    dimension alike) and tensors of the same names and shapes."""
    def settings(m: torch.nn.Module) -> dict[str, Any]:
        return {k: _one(v) for k, v in vars(m).items() if not k.startswith("_") and k != "training"}

    def tensors(m: torch.nn.Module) -> dict[str, tuple[int, ...]]:
        return {k: tuple(t.shape) for k, t in m.state_dict().items()}

    return settings(made) == settings(module) and tensors(made) == tensors(module)


def _one(value: Any) -> Any:
    """(3, 3) and [3, 3] as 3; other sequences as tuples."""
    if isinstance(value, tuple | list):
        return value[0] if value and len(set(value)) == 1 else tuple(value)
    return value


def _validated(cls: type[Op], args: dict[str, Any]) -> Op | None:
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
    return _validated(cls, args) or f"{cls.kind()}({args})"


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
    return _validated(OPS["drop_path"], {"p": args["p"]}) or f"stochastic_depth p={args['p']}"


def _channel_shuffle(args: dict[str, Any]) -> Op | str:
    """torchvision's ShuffleNetV2 `channel_shuffle(x, groups)`: nn.ChannelShuffle's."""
    return _validated(OPS["channel_shuffle"], {"groups": args["groups"]}) or \
        f"channel_shuffle groups={args['groups']}"


def _chunks(args: dict[str, Any]) -> Op | str:
    """`torch.chunk(x, chunks, dim)`, `x.chunk(...)`: every piece, each read as `name.k`."""
    args = {"dim": 0} | args
    return _validated(OPS["chunk"], args) or f"chunk {args}"


FOREIGN = {"torchvision.ops.stochastic_depth.stochastic_depth": _drop_path,
           "torchvision.models.shufflenetv2.channel_shuffle": _channel_shuffle}
"""Functions of other libraries that fx is to keep as calls (`_tracer`), by module and
name, and the op each computes."""


def _tracer() -> torch.fx.Tracer:
    """fx's tracer, keeping FOREIGN's functions of the modules already imported as calls
    (ShuffleNetV2's channel_shuffle reads x.size(), which fx would trace through)."""
    found = []
    for key in FOREIGN:
        module, _, name = key.rpartition(".")
        fn = getattr(sys.modules.get(module), name, None)
        if callable(fn):
            found.append(fn)
    return torch.fx.Tracer(autowrap_functions=tuple(found))


FUNCTION_DEFAULTS = {"flatten": {"start_dim": 0}}
"""Where a function's default differs from its module's (torch.flatten starts at dim 0,
nn.Flatten at 1)."""


def _module_form(name: str, fn: Any, node: torch.fx.Node) -> torch.nn.Module | str:
    """The torch.nn module computing what the call `name(x, ...)` does (`F.relu`,
    `torch.flatten`, `x.sigmoid()`), or what to say when there is none."""
    cls = _modules().get(name)
    if cls is None:
        return " (no netspec op)"
    if any(isinstance(a, torch.fx.Node) for a in [*node.args[1:], *node.kwargs.values()]):
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
    if set(given) - set(params):
        return f" (arguments {sorted(set(given) - set(params))} have no module form)"
    return cls(**given)


def _modules() -> dict[str, type[torch.nn.Module]]:
    """torch.nn classes the ops compile to, by their functions' names: `relu` (ReLU),
    `leaky_relu`, `adaptive_avg_pool2d`, `max_pool2d`, `flatten`."""
    table: dict[str, type[torch.nn.Module]] = {}
    for op_cls in LAYER_OPS:
        cls = getattr(torch.nn, op_cls.torch_class or "", None)
        if cls is not None:
            table[cls.__name__.lower()] = cls
            table[re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls.__name__).lower()] = cls
    return table
