"""`netspec import model.pt2`: a torch.export program (`torch.export.save`) read as trace's
scopes, through `graphs.Scopes`.

Each aten call of the program's graph, in the export IR (`aten.conv2d`, `aten.linear`,
`aten.batch_norm`, `aten.layer_norm`) or decomposed (`aten.convolution`, `aten.addmm` of a
permuted weight, `aten._native_batch_norm_legit_no_training`,
`aten.max_pool2d_with_indices`), is read as the torch.nn module it is the functional form
of, rebuilt from its arguments with the tensors it reads (the lifted parameters and
buffers: `ExportedProgram.state_dict` keys by the graph signature), or as a netspec op
(`aten.add`, `aten.cat`, `aten.permute`, `aten.transpose`, `aten.select`, `aten.slice`, a
view to one dim as a flatten; `aten.chunk` and `aten.split` as one layer whose getitems are
its pieces). A tensor of the
model added or multiplied in is a parameter layer (`Scopes.parameter`). Nodes'
`nn_module_stack` give the module tree, less the modules `graphs.merged` folds into their
parent (LayerNorm2d); the user input's shape less the batch is the input shape.
"""

from __future__ import annotations

import inspect
import logging
import operator
from pathlib import Path
from typing import Any

import torch
import torch.fx

from netspec.importer.errors import ImportFailure
from netspec.importer.graphs import Frame, Made, Scopes, Steps, all_spatial, global_mean, loaded, merged, view
from netspec.importer.trace import Traced, functional_modules, validated_op
from netspec.ops import OPS

PASS = {"clone", "contiguous", "alias", "detach", "dropout", "lift_fresh_copy"}
"""Calls that return their input's values in eval mode."""

TENSOR_VIEWS = {"t": lambda t, *_: t.t(), "permute": lambda t, dims: t.permute(dims),
                "transpose": lambda t, a, b: t.transpose(a, b)}
"""Calls on a parameter that make another view of it (a decomposed linear's `permute`)."""

ELEMENTWISE = {"add", "mul", "cat"}
"""Calls whose operands may be a model's own tensor, read as a value (a parameter layer:
ConvNeXt's `layer_scale * x`, ViT's class token concatenated before the patches)."""


def read(path: Path) -> tuple[Scopes, Traced, tuple[int, ...] | None]:
    """The program saved at `path`, as scopes; its input's per-sample shape (None where
    it is not static)."""
    quiet = logging.getLogger("torch.export")  # it logs a traceback before it raises
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        program = torch.export.load(str(path))
    except Exception as exc:  # a file torch cannot read: say so in one line
        said = str(exc).splitlines()[0] if str(exc) else ""
        raise ImportFailure(f"{path}: not a torch.export program torch can load "
                            f"({type(exc).__name__}: {said})") from None
    finally:
        quiet.setLevel(level)
    return _Reader(program).read()


class _Reader:
    """Reads one program's graph, in order, into `Scopes`."""

    def __init__(self, program: Any):
        signature = program.graph_signature
        self.graph: torch.fx.Graph = program.graph
        held = {**program.state_dict, **program.constants}
        named = {**signature.inputs_to_parameters, **signature.inputs_to_buffers,
                 **signature.inputs_to_lifted_tensor_constants}
        self.keys: dict[torch.fx.Node, str] = {}
        self.tensors: dict[torch.fx.Node, torch.Tensor] = {}
        self.user: list[torch.fx.Node] = []
        for node in self.graph.nodes:
            if node.op != "placeholder":
                continue
            if node.name in named:
                self.keys[node] = named[node.name]
                self.tensors[node] = held[named[node.name]]
            elif node.name in signature.user_inputs:
                self.user.append(node)
        self.held = held
        self.values: dict[torch.fx.Node, torch.fx.Node] = {}
        self.merged = _merged(self.graph, self.keys)
        self.whole = _whole(self.graph, self.keys)
        root = next((next(iter(n.meta["nn_module_stack"].values()))[1] for n in self.graph.nodes
                     if n.meta.get("nn_module_stack")), "")
        self.scopes = Scopes(_class(root))

    def read(self) -> tuple[Scopes, Traced, tuple[int, ...] | None]:
        if len(self.user) != 1:
            raise ImportFailure(f"the program takes {len(self.user)} inputs; netspec import "
                                "reads models of one input")
        self.values[self.user[0]] = self.scopes.input
        output = None
        for node in self.graph.nodes:
            if node.op == "call_function":
                self._call(node)
            elif node.op == "output":
                output = node.args[0]
        outs = list(output) if isinstance(output, list | tuple) else [output]
        if len(outs) != 1 or outs[0] not in self.values:
            raise ImportFailure("the program returns no single tensor; netspec import reads "
                                "models of one output")
        traced = self.scopes.traced(self.values[outs[0]])
        given = self.user[0].meta["val"].shape[1:]
        return self.scopes, traced, tuple(given) if all(isinstance(d, int) for d in given) else None

    def _call(self, node: torch.fx.Node) -> None:
        target = node.target
        if node in self.whole:  # a call of nn.MultiheadAttention: one layer, made at its output
            path, calls, given = self.whole[node]
            if node is calls[-1] and given in self.values:
                self.values[node] = self.scopes.add(
                    self._stack(node), path, self._attention(path, calls), [self.values[given]],
                    ([_shape(given)], _shape(node)), "attention", f"{path}'s calls (node {node.name})")
            return
        if target is operator.getitem:  # (out, mean, invstd)[0] of a batch norm, a pool's values
            whole = node.args[0]
            if self.values.get(whole) in self.scopes.pieces:  # x1, x2 = x.chunk(2, 1)
                self.values[node] = self.scopes.piece(self.values[whole], node.args[1])  # type: ignore[index, arg-type]
            elif whole in self.values and node.args[1] == 0:
                self.values[node] = self.values[whole]  # type: ignore[index]
            elif whole in self.values and node.users:  # a later piece read (x.chunk(2, 1))
                self.values[node] = self.scopes.add(
                    self._stack(node), None, "no netspec op", [self.values[whole]],  # type: ignore[index]
                    ([], _shape(node)), "item", f"item {node.args[1]} of {whole} (node {node.name})")
            return
        name = getattr(getattr(target, "overloadpacket", None), "__name__", str(target))
        first = _flat(node.args[:1])[0] if _flat(node.args[:1]) else None
        if name == "expand" and first in self.tensors and _over_batch(self.tensors[first], node):
            self.tensors[node], self.keys[node] = self.tensors[first], self.keys[first]  # type: ignore[index]
            return
        if name in TENSOR_VIEWS and first in self.tensors:
            self.tensors[node] = TENSOR_VIEWS[name](self.tensors[first], *node.args[1:])  # type: ignore[index]
            self.keys[node] = self.keys[first]  # type: ignore[index]
            return
        if name.startswith("_assert") or not node.users:
            return
        args = _bound(node)
        in_place = name.endswith("_") and not name.startswith("_")  # relu_, add_: the same value
        name = name.removesuffix("_") if in_place else name
        one_cat = name == "cat" and len(_flat(node.args)) == 1  # torch.cat([x]): x
        if first in self.values and ((name in PASS and not args.get("train")) or one_cat):
            self.values[node] = self.values[first]  # type: ignore[index]
            return
        if name in ELEMENTWISE:  # a tensor of the model as an operand: a parameter layer
            for n in _flat(node.args):
                if n in self.tensors and n not in self.values:
                    self.values[n] = self.scopes.parameter(self.keys[n], self.tensors[n], len(_shape(node)),
                                                           self._stack(node))
        keys = {self.keys[n].rpartition(".")[0] for n in node.all_input_nodes
                if n in self.tensors and n not in self.values}
        owner = keys.pop() if len(keys) == 1 else None
        reads = [self.values[n] for n in _flat(node.args) if n in self.values]
        if not reads:  # computed from tensors of the program alone: no layer (its users say so)
            return
        stack = self._stack(node)
        shapes = [_shape(n) for n in _flat(node.args) if n in self.values]
        for made, shape in self._made(name, args, node):
            if owner is not None and isinstance(made, torch.nn.Module):  # its tensors no call reads too
                loaded(made, {k: self.held.get(f"{owner}.{k}") for k in made.state_dict()})
            value = self.scopes.add(stack, owner, made, reads, (shapes, shape), name,
                                    f"{target} (node {node.name})")
            reads, shapes = [value], [shape]
        self.values[node] = value
        if in_place and first in self.values:  # later reads of the input read what it now holds
            self.values[first] = self.values[node]  # type: ignore[index]

    def _stack(self, node: torch.fx.Node) -> list[Frame]:
        """The modules whose forwards made `node`, outermost first, less those merged into
        their parent (`_merged`)."""
        return [f for f in _stack(node) if f.path not in self.merged]

    def _attention(self, path: str, calls: list[torch.fx.Node]) -> Made:
        """torch's nn.MultiheadAttention at `path`, from its calls: self-attention over
        [N, T, E] (its first call `x.transpose(1, 0)`: batch_first) of E / head_dim heads,
        head_dim the last size of the first 3-d view, `q.view(T, N * heads, head_dim)`."""
        weight = self.held.get(f"{path}.in_proj_weight")
        views = [_full(n) for n in calls if "view" in str(n.target) and len(_full(n)) == 3]
        first = calls[0]
        if weight is None or not views or \
                not ("transpose" in str(first.target) and set(first.args[1:]) == {0, 1}):
            return "nn.MultiheadAttention other than batch-first self-attention of one in_proj_weight"
        module = torch.nn.MultiheadAttention(weight.shape[1], weight.shape[1] // views[0][-1],
                                             bias=f"{path}.in_proj_bias" in self.held, batch_first=True)
        return loaded(module, {k: self.held.get(f"{path}.{k}") for k in module.state_dict()})

    def _made(self, name: str, args: dict[str, Any], node: torch.fx.Node) -> Steps:
        """The layers computing the call `name(**args)` (one, but a mean over space without
        keepdim: a pool and a flatten), each with its output's shape."""
        if name == "mean" and all_spatial(args.get("dim"), len(_shape(args["self"])) + 1):
            return global_mean(_shape(args["self"]), bool(args.get("keepdim")))
        return [(self._one(name, args, node), _shape(node))]

    def _one(self, name: str, args: dict[str, Any], node: torch.fx.Node) -> Made:
        """The module or op computing the call `name(**args)`, or what to say about it."""
        tensor = self.tensors.get
        if name in ("conv1d", "conv2d", "conv3d", "convolution"):
            return _conv(args, tensor(args["weight"]), tensor(args["bias"]), bool(args.get("transposed")))
        if name in ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
            return _conv(args, tensor(args["weight"]), tensor(args["bias"]), True)
        if name == "linear":
            return _linear(tensor(args["weight"]), tensor(args["bias"]))
        if name in ("addmm", "mm") and args.get("mat2") in self.tensors and args.get("alpha", 1) == 1 \
                and args.get("beta", 1) == 1:
            return _linear(tensor(args["mat2"]).t(), tensor(args.get("self")))  # type: ignore[union-attr]
        if name in ("batch_norm", "_native_batch_norm_legit_no_training") and not args.get("training"):
            return _batch_norm(args, {k: tensor(args[k]) for k in
                                      ("weight", "bias", "running_mean", "running_var")})
        if name in ("add", "mul") and args.get("alpha", 1) == 1 and all(
                isinstance(args[k], torch.fx.Node) and args[k] in self.values for k in ("self", "other")):
            return OPS[name]()
        if name == "cat":
            return validated_op(OPS["concat"], {"dim": args["dim"]}) or f"cat over dim {args['dim']}"
        if name in ("view", "reshape", "_unsafe_view"):
            return view(_shape(args["self"]), _shape(node))
        if name in ("permute", "transpose", "chunk", "split", "split_with_sizes", "select", "slice"):
            return _reshaped(name, args)
        if name == "layer_norm":
            return _layer_norm(args, tensor(args["weight"]), tensor(args["bias"]))
        if name in ("softmax", "_softmax"):
            return torch.nn.Softmax(dim=args["dim"])
        if name == "hardtanh" and (args["min_val"], args["max_val"]) == (0, 6):
            return torch.nn.ReLU6()
        return _module_form(name.removesuffix("_with_indices"), args)


def _conv(args: dict[str, Any], weight: torch.Tensor | None, bias: torch.Tensor | None,
          transposed: bool) -> Made:
    """aten's convolution (`conv2d(x, w, b, stride, padding, dilation, groups)`,
    `conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation)` or
    `convolution(..., transposed, output_padding, groups)`) as the torch.nn conv holding
    `weight` [out, in/groups, *k] ([in, out/groups, *k] transposed) and `bias`."""
    if weight is None:
        return "convolution by a computed weight"
    dims, groups = weight.dim() - 2, args.get("groups", 1)
    cls = getattr(torch.nn, f"ConvTranspose{dims}d" if transposed else f"Conv{dims}d")
    outs, ins = (weight.shape[1] * groups, weight.shape[0]) if transposed else \
        (weight.shape[0], weight.shape[1] * groups)
    extra = {"output_padding": args.get("output_padding", 0)} if transposed else {}
    module = cls(ins, outs, tuple(weight.shape[2:]), stride=args.get("stride", 1),
                 padding=args.get("padding", 0), dilation=args.get("dilation", 1), groups=groups,
                 bias=bias is not None, **extra)
    return loaded(module, {"weight": weight, "bias": bias})


def _linear(weight: torch.Tensor | None, bias: torch.Tensor | None) -> Made:
    """`linear(x, w, b)`, `addmm(b, x, w.t())`: the nn.Linear holding `weight` [out, in]."""
    if weight is None or weight.dim() != 2:
        return "matrix product by a computed weight"
    module = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    return loaded(module, {"weight": weight, "bias": bias})


def _batch_norm(args: dict[str, Any], tensors: dict[str, torch.Tensor | None]) -> Made:
    """An eval-mode batch norm over [C, *spatial] as the nn.BatchNorm{1,2,3}d holding the
    running statistics (and the affine weight and bias where given)."""
    if tensors["running_mean"] is None or tensors["running_var"] is None:
        return "batch norm without running statistics"
    rank = len(_shape(args["input"]))  # [C], [C, L] -> 1d; [C, H, W] -> 2d
    cls = getattr(torch.nn, f"BatchNorm{max(rank - 1, 1)}d")
    module = cls(tensors["running_mean"].shape[0], eps=args["eps"], momentum=args["momentum"],
                 affine=tensors["weight"] is not None)
    return loaded(module, tensors)


def _over_batch(tensor: torch.Tensor, node: torch.fx.Node) -> bool:
    """Whether `node` expands `tensor`, of a leading 1, over the batch alone (ViT's
    `class_token.expand(n, -1, -1)`): a parameter layer's value, as it is."""
    sizes = list(node.args[1])  # type: ignore[arg-type]
    return tensor.dim() == len(sizes) and tensor.shape[0] == 1 and all(
        s in (-1, d) for s, d in zip(sizes[1:], tensor.shape[1:], strict=True))


def _reshaped(name: str, args: dict[str, Any]) -> Made:
    """A permute, transpose, chunk, split, select or slice (its dims counting the batch,
    as the ops'; a slice to the end has an end past any size); a chunk's and a split's
    pieces are read by the getitems after it."""
    dim = args.get("dim", 0)
    if name == "split":  # pieces of `split_size`, the last shorter
        length = _shape(args["self"])[dim - 1 if dim > 0 else dim]
        step = args["split_size"]
        args = {"dim": dim, "split_sizes": [min(step, length - k) for k in range(0, length, step)]}
    kind = name.removesuffix("_with_sizes")
    given = {"permute": {"dims": list(args.get("dims", []))},
             "transpose": {"dim0": args.get("dim0"), "dim1": args.get("dim1")},
             "chunk": {"chunks": args.get("chunks"), "dim": dim},
             "split": {"sizes": args.get("split_sizes"), "dim": dim},
             "select": {"dim": dim, "index": args.get("index")},
             "slice": {"dim": dim, "start": args.get("start"), "step": args.get("step", 1),
                       "end": None if (args.get("end") or 0) >= 2**62 else args.get("end")}}[kind]
    return validated_op(OPS[kind], given) or f"{kind} {given}"


def _layer_norm(args: dict[str, Any], weight: torch.Tensor | None, bias: torch.Tensor | None) -> Made:
    """`layer_norm(x, normalized_shape, w, b, eps)` as the nn.LayerNorm holding `weight`
    and `bias` (ConvNeXt's, and its LayerNorm2d's between two permutes)."""
    if (args["weight"] is None) != (weight is None) or (args["bias"] is None) != (bias is None):
        return "layer norm by a computed weight"
    module = torch.nn.LayerNorm(list(args["normalized_shape"]), eps=args["eps"],
                                elementwise_affine=weight is not None, bias=bias is not None)
    return loaded(module, {"weight": weight, "bias": bias})


def _merged(graph: torch.fx.Graph, keys: dict[torch.fx.Node, str]) -> set[str]:
    """The modules merged into their parent (`graphs.merged`), from each call's modules and
    the modules whose tensors it reads, but an operand's (a parameter layer's)."""
    calls = []
    for node in graph.nodes:
        name = getattr(getattr(node.target, "overloadpacket", None), "__name__", "")
        owners = set() if name in ELEMENTWISE else \
            {keys[n].rpartition(".")[0] for n in node.all_input_nodes if n in keys}
        calls.append((_stack(node), owners))
    return merged(calls)


def _whole(graph: torch.fx.Graph, keys: dict[torch.fx.Node, str]
           ) -> dict[torch.fx.Node, tuple[str, list[torch.fx.Node], torch.fx.Node]]:
    """The calls of each torch.nn.MultiheadAttention the program runs as self-attention
    (its calls read one value of the program, the query, key and value at once, and one
    of them is read after: the output; the attention weights nobody reads), each mapped
    to (its path, its calls in order, the value they read)."""
    groups: dict[str, list[torch.fx.Node]] = {}
    for node in graph.nodes:
        frames = _stack(node)
        if node.op == "call_function" and frames and \
                frames[-1].cls == "torch.nn.modules.activation.MultiheadAttention":
            groups.setdefault(frames[-1].path, []).append(node)
    found = {}
    for path, calls in groups.items():
        inside = set(calls)
        given = {n for c in calls for n in c.all_input_nodes if n not in inside and n not in keys}
        out = [c for c in calls if any(u not in inside for u in c.users)]
        if len(given) == 1 and len(out) == 1:
            ordered = [c for c in calls if c is not out[0]] + out
            found.update({c: (path, ordered, next(iter(given))) for c in calls})
    return found


def _full(node: Any) -> tuple[int, ...]:
    """A value's shape, batch included."""
    value = node.meta.get("val") if isinstance(node, torch.fx.Node) else None
    return tuple(int(d) for d in value.shape) if isinstance(value, torch.Tensor) else ()


def _module_form(name: str, args: dict[str, Any]) -> Made:
    """The torch.nn module of the functional call `name(x, **args)` (`relu`, `max_pool2d`,
    `adaptive_avg_pool2d`, `flatten`, `_softmax`), its arguments bound by name to the
    module's; what to say where there is none, or an argument has no place in it."""
    cls = functional_modules().get(name.lstrip("_"))
    if cls is None:
        return "no netspec op"
    params = set(inspect.signature(cls.__init__).parameters) - {"self"}
    given = {k: v for k, v in list(args.items())[1:] if v != []}  # `stride=[]`: the kernel's
    if any(isinstance(v, torch.fx.Node) for v in given.values()):
        return "computed arguments"
    if set(given) - params:
        return f"arguments {sorted(set(given) - params)} have no place in {cls.__name__}"
    return cls(**given)


def _bound(node: torch.fx.Node) -> dict[str, Any]:
    """A call's arguments by their names in the aten schema, defaults filled in."""
    schema = node.target._schema  # type: ignore[union-attr]
    bound = {}
    for k, arg in enumerate(schema.arguments):
        if k < len(node.args):
            bound[arg.name] = node.args[k]
        elif arg.name in node.kwargs:
            bound[arg.name] = node.kwargs[arg.name]
        elif arg.has_default_value():
            bound[arg.name] = arg.default_value
    return bound


def _flat(args: Any) -> list[torch.fx.Node]:
    found: list[torch.fx.Node] = []
    torch.fx.node.map_arg(args, found.append)
    return found


def _shape(node: Any) -> tuple[int, ...]:
    """A value's per-sample shape (its batch dim dropped)."""
    value = node.meta.get("val") if isinstance(node, torch.fx.Node) else None
    return tuple(int(d) for d in value.shape[1:]) if isinstance(value, torch.Tensor) else ()


def _stack(node: torch.fx.Node) -> list[Frame]:
    """The modules whose forwards made `node`, outermost first."""
    return [Frame.of(path, _class(cls)) for path, cls in node.meta.get("nn_module_stack", {}).values()]


def _class(cls: Any) -> str:
    """A class as nn_module_stack names it (a string, or the class itself)."""
    return cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"
