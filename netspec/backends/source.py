"""The python backend: a spec as one standalone PyTorch source file.

`python_source(spec)` writes a plain `nn.Module` subclass that needs only torch. Its
`__init__` creates every layer's module at the dotted name `netspec.build` gives it, so the
two have the same `state_dict` keys in the same order and a checkpoint of one loads into the
other; its `forward` computes one layer per line, the output shape at the line's end:

    x = self.layer1[0].conv1(x)  # (N, 64, 56, 56)

Chains flow through `x`; a value read later, or by more than the next layer, gets its own
variable named after its layer (`layer1_0_add1`). Functional ops are written inline
(`a + b`, `torch.cat((a, b), dim=1)`), and the helpers they need (`center_crop`) are copied
into the file from `netspec.backends.functional`, so both compute the very same thing.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import itertools
import json
import keyword
import math
import operator
import pprint
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from netspec.api import SpecSource, check, load
from netspec.backends import functional, modules
from netspec.backends.torchfx import class_name, identifier
from netspec.ir import Graph, Node
from netspec.ops import OPS, Op, TorchCall
from netspec.shapes import Shape
from netspec.spec.document import Spec

WIDTH = 110
"""Longest line written (the project's ruff line length)."""

_INDENT = "    "
_INFIX = {operator.add: "+", operator.mul: "*", operator.sub: "-", operator.truediv: "/"}
_SPATIAL_ARGS = frozenset({"kernel_size", "stride", "padding", "dilation", "output_padding",
                           "output_size", "scale_factor"})
"""Arguments torch takes as one value for every spatial dim: `(3, 3)` is written `3`."""
_RESERVED = frozenset({"self", "torch", "nn", "x", "_"})
_RETURN = "<return>"


def python_source(spec: SpecSource, inputs: Mapping[str, Shape] | Shape | None = None,
                  fuse_bn: bool = False, metadata: Mapping[str, str] | None = None) -> str:
    """Standalone PyTorch source computing `spec` (raises SpecError for an invalid spec);
    with `fuse_bn`, the inference network whose BatchNorms are folded into their convs.

    Shapes in the comments are those of the spec's inputs (or of `inputs`, as in `check`),
    `N` standing for the batch. The module is `class <Name>(nn.Module)`, named like
    `netspec.build`'s; `<Name>()` takes no arguments. `metadata`, the preparation an export
    records (`netspec.export.preparation`: JSON strings by name), becomes the constants
    INPUT_SIZE, MEAN, STD and CLASSES before the class (None where it holds no value).
    """
    spec = spec if isinstance(spec, Spec) else load(spec)
    report = check(spec, inputs, fuse_bn=fuse_bn)
    graph: Graph = report.graph
    shapes: dict[str, Shape] = {**report.inputs, **{r.name: r.shape for r in report.layers}}
    tree = _module_tree(graph)
    writer = _Forward(graph, shapes, tree)
    forward = writer.lines()
    init = _init_lines(tree, shapes)
    name = class_name(graph.name)
    doc = f"The spec `{graph.name}` as plain PyTorch: {report.params:,} parameters."
    parts = [_module_doc(graph.name, name) + "\nimport torch\nfrom torch import nn\n"
             + "".join(f"import {m}\n" for m in _plugin_modules(graph, shapes))]
    if metadata is not None:  # one blank line after the imports, as isort wants before code
        parts[0] += "\n" + _constants(metadata)
    parts += [_helper_source(fn) for fn in _with_dependencies(writer.helpers)]
    parts += [_helper_source(cls) for cls in _own_classes(graph)]
    parts.append("\n".join([
        _fit(f"class {name}(nn.Module):"),
        *_docstring(doc, _INDENT),
        "",
        f"{_INDENT}def __init__(self) -> None:",
        f"{_INDENT * 2}super().__init__()",
        *init,
        "",
        *forward,
    ]) + "\n")
    return "\n\n".join(parts)


_CONSTANTS = {
    "input_size": "The input's size, batch excluded (C, H, W for images; by name when there are several).",
    "mean": "Per-channel mean of the training data in [0, 1] (None: exported without a training "
            "checkpoint): an 8-bit image x goes in as (x / 255 - MEAN) / STD.",
    "std": "Per-channel standard deviation of the training data in [0, 1] (None: as MEAN).",
    "classes": "The outputs' class names, in order (None: as MEAN).",
}
"""The python export's constants (upper-cased), with their docstrings."""


def _constants(metadata: Mapping[str, str]) -> str:
    """`metadata`'s values as module constants, each with its docstring; None where absent."""
    lines: list[str] = []
    for key, doc in _CONSTANTS.items():
        head = f"{key.upper()} = "
        value = json.loads(metadata[key]) if key in metadata else None
        text = pprint.pformat(value, width=WIDTH - len(head), compact=True)
        lines += [head + text.replace("\n", "\n" + " " * len(head)), *_docstring(doc, "")]
    return "\n".join(lines) + "\n"


def _module_doc(name: str, class_name: str) -> str:
    text = (f"{class_name}: the network of the netspec spec `{name}`, as standalone PyTorch.\n\n"
            f"Written by `netspec export --format python`. `{class_name}()` has the same module "
            "names, and so the same `state_dict` keys, as `netspec.build`: checkpoints load into "
            "either.")
    return "\n".join(_docstring(text, "", always_split=True)) + "\n"


# --- __init__: the module tree ---------------------------------------------------------------


@dataclass
class _Container:
    """A module holding others (`layer1`, `layer1.0`), its children in creation order; read
    only once the tree is complete."""

    children: dict[str, _Container | Node] = field(default_factory=dict)

    @functools.cached_property
    def numbered(self) -> bool:
        """Children named 0, 1, ... in order: an `nn.ModuleList`, indexed `[0]`."""
        return bool(self.children) and all(k == str(i) for i, k in enumerate(self.children))

    @functools.cached_property
    def plain_list(self) -> bool:
        """A list of `nn.Module()` containers only (`layer1.0`, `layer1.1`)."""
        return self.numbered and all(
            isinstance(c, _Container) and not c.numbered for c in self.children.values())


def _module_tree(graph: Graph) -> _Container:
    """The containers `netspec.build` creates on the way to each module layer, in its order
    (the order `state_dict` lists keys in)."""
    root = _Container()
    for node in graph.layers():
        if _op(node).torch_module(len(node.inputs)) is None:
            continue
        parent = root
        *path, leaf = node.name.split(".")
        for part in path:
            child = parent.children.setdefault(part, _Container())
            if not isinstance(child, _Container):
                raise NotImplementedError(f"layer {node.name} sits inside the module of layer "
                                          f"{'.'.join(path)}; the python export cannot write that")
            parent = child
        if leaf in parent.children:
            raise NotImplementedError(f"layer {node.name} replaces the container of layers "
                                      f"under it; the python export cannot write that")
        parent.children[leaf] = node
    return root


def _init_lines(tree: _Container, shapes: Mapping[str, Shape]) -> list[str]:
    """`__init__`'s body after `super().__init__()`: containers and layers, depth first."""
    lines: list[str] = []
    _init_children(tree, "self", shapes, lines, {})
    return lines


def _init_children(container: _Container, expr: str, shapes: Mapping[str, Shape],
                   lines: list[str], made: dict[str, str]) -> None:
    """Lines creating `container`'s children; `made` maps each layer made so far to the
    expression reaching it (a tied weight reads an earlier layer's)."""
    as_list = container.numbered and expr != "self"
    for name, child in container.children.items():
        target = _child(expr, name, as_list)
        if isinstance(child, _Container):
            if expr == "self" and lines:
                lines.append("")
            if not (as_list and container.plain_list):  # else the list made it
                lines += _add(expr, name, as_list, _Atom(_container_class(child)))
            _init_children(child, target, shapes, lines, made)
            continue
        lines += _add(expr, name, as_list, _constructor(child, shapes))
        if child.frozen:
            lines.append(f"{_INDENT * 2}{target}.requires_grad_(False)")
        if child.tie is not None:
            lines.append(f"{_INDENT * 2}{target}.weight = {made[child.tie]}.weight")
        made[child.name] = target


def _container_class(container: _Container) -> str:
    """`nn.Module()`, or `nn.ModuleList(...)` when the children are numbered."""
    if not container.numbered:
        return "nn.Module()"
    if container.plain_list:
        return f"nn.ModuleList([nn.Module() for _ in range({len(container.children)})])"
    return "nn.ModuleList()"


def _add(expr: str, name: str, as_list: bool, value: _Expr) -> list[str]:
    """The statement putting `value` into the container `expr` under `name`."""
    if as_list:
        return _statement(f"{expr}.append(", value, ")", None)
    if _plain(name):
        return _statement(f"{expr}.{name} = ", value, "", None)
    return _statement(f"{expr}.add_module({_literal(name)}, ", value, ")", None)


def _child(expr: str, name: str, in_list: bool) -> str:
    """How code reaches the child `name` of the module `expr`."""
    if in_list:
        return f"{expr}[{name}]"
    return f"{expr}.{name}" if _plain(name) else f"getattr({expr}, {_literal(name)})"


def _plain(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def _op(node: Node) -> Op:
    assert node.op is not None, "only checked specs are exported"
    return node.op


def _constructor(node: Node, shapes: Mapping[str, Shape]) -> _Expr:
    """`nn.Conv2d(in_channels=1, out_channels=6, kernel_size=5)`: the op's torch arguments,
    less those equal to torch's defaults, one value for equal spatial dims."""
    op = _op(node)
    cls = op.torch_module(len(node.inputs))
    assert cls is not None
    x, y = [shapes[i] for i in node.inputs], shapes[node.name]
    args = op.torch_args(x, y)
    module = _plugin_code(op, x, y) if _is_plugin(op) else _module_class(cls)
    defaults = _defaults(module)
    items: list[_Expr] = []
    for key, value in args.items():
        written = _collapse(value) if key in _SPATIAL_ARGS else value
        if key in defaults and _same(written, defaults[key]):
            continue
        items.append(_Atom(f"{key}={_literal(written)}"))
    if _is_plugin_code(module):
        return _Call(_qualified(module), items)
    return _Call(f"nn.{cls}" if hasattr(torch.nn, cls) else cls, items)


def _module_class(name: str) -> type:
    """torch.nn's class `name`, or netspec's own (netspec.backends.modules)."""
    return getattr(torch.nn, name, None) or getattr(modules, name)


def _own_classes(graph: Graph) -> list[type]:
    """netspec's own module classes the graph's layers compile to, in first use order: the
    file defines them, as it copies helpers."""
    names = [_op(n).torch_module(len(n.inputs)) for n in graph.layers() if not _is_plugin(_op(n))]
    return [getattr(modules, name) for name in dict.fromkeys(names)
            if name is not None and not hasattr(torch.nn, name)]


def _is_plugin(op: Op) -> bool:
    """Whether a plugin defines the op (netspec.ops.plugins): its torch code is the plugin's."""
    return op.kind() not in OPS.builtin


def _plugin_code(op: Op, x: Sequence[Shape], y: Shape) -> Any:
    """The class of a plugin op's module, or the function its `TorchCall` calls."""
    made = op.to_torch(torch, x, y)
    return made.fn if isinstance(made, TorchCall) else type(made)


def _is_plugin_code(code: Any) -> bool:
    return getattr(code, "__module__", "torch").partition(".")[0] not in ("torch", "netspec")


def _plugin_modules(graph: Graph, shapes: Mapping[str, Shape]) -> list[str]:
    """The modules holding the plugin ops' torch code, which the file imports: the plugins
    must be installed where it runs (their code is theirs to ship, not copied)."""
    codes = (_plugin_code(op, [shapes[i] for i in n.inputs], shapes[n.name])
             for n in graph.layers() if _is_plugin(op := _op(n)))
    return sorted({_qualified(code).rpartition(".")[0] for code in codes if _is_plugin_code(code)})


def _qualified(code: Any) -> str:
    """`netspec_gates.modules.SwishGate`: a plugin's class or function by its import path;
    ValueError when it has none (defined in a script, inside a function or a class)."""
    module, name = code.__module__, code.__qualname__
    if module == "__main__" or getattr(sys.modules.get(module), name, None) is not code:
        raise ValueError(f"the python export imports a plugin op's torch code, but "
                         f"{module}.{name} cannot be imported by that name: define it at the "
                         "top level of the plugin's package")
    return f"{module}.{name}"


@functools.cache
def _defaults(cls: type) -> dict[str, Any]:
    params = inspect.signature(cls).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def _collapse(value: Any) -> Any:
    """`(3, 3)` -> `3`: torch expands a single value to every spatial dim."""
    if isinstance(value, tuple | list) and value and all(
            type(v) is type(value[0]) and v == value[0] for v in value):
        return value[0]
    return value


def _same(value: Any, default: Any) -> bool:
    return type(value) is type(default) and value == default


def _literal(value: Any) -> str:
    """Python source for an argument value."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, str):
        return f'"{value}"' if value.isprintable() and not set(value) & {'"', "\\"} else repr(value)
    if isinstance(value, bool | int | float) or value is None:
        return repr(value)
    if isinstance(value, tuple | list):
        items = [_literal(v) for v in value]
        text = ", ".join(items) + ("," if len(items) == 1 and isinstance(value, tuple) else "")
        return f"({text})" if isinstance(value, tuple) else f"[{text}]"
    raise NotImplementedError(f"the python export cannot write the argument value {value!r}")


# --- forward: one line per layer -------------------------------------------------------------


class _Forward:
    """Writes `forward`: variable names, one statement per layer, the return."""

    def __init__(self, graph: Graph, shapes: Mapping[str, Shape], tree: _Container):
        self.graph = graph
        self.shapes = shapes
        self.tree = tree
        self.helpers: list[Callable[..., Any]] = []
        self.uses = _uses(graph)
        order = [*graph.inputs, *(n.name for n in graph.layers()), _RETURN]
        self.after = dict(itertools.pairwise(order))
        self.names = _Names({*_RESERVED, *_helper_names()})
        self.var: dict[str, str] = {}

    def lines(self) -> list[str]:
        params = [self._input_var(name) for name in self.graph.inputs]
        body = [*_docstring(_signature_doc(self.graph, self.shapes), _INDENT * 2)]
        later, guarded = self.graph.training_only(), False
        for region, nodes in self.graph.runs():
            if not guarded and nodes[0].name in later:  # the last layers run in training only
                guarded = True
                body += [f"{_INDENT * 2}if not self.training:",
                         f"{_INDENT * 3}return {', '.join(self.var[o] for o in self.graph.outputs)}"]
            body += self._layer(nodes[0], depth=2) if region is None else \
                self._checkpoint(region, nodes)
        outputs = [self.var[o] for o in [*self.graph.outputs, *self.graph.auxiliary]]
        body.append(f"{_INDENT * 2}return {', '.join(outputs)}")
        tensor = "torch.Tensor"
        returns = tensor if len(outputs) == 1 else f"tuple[{', '.join([tensor] * len(outputs))}]"
        if guarded:
            returns = f"{tensor} | {returns}" if len(self.graph.outputs) == 1 else \
                f"tuple[{', '.join([tensor] * len(self.graph.outputs))}] | {returns}"
        head = _Call("def forward", [_Atom("self"), *(_Atom(f"{p}: {tensor}") for p in params)])
        return [*_statement("", head, f" -> {returns}:", None, depth=1), *body]

    def _layer(self, node: Node, depth: int) -> list[str]:
        self.var[node.name] = self._result_var(node.name)
        comment = fmt_batch_shape(self.shapes[node.name])
        return _statement(f"{self.var[node.name]} = ", self._value(node), "", comment, depth)

    def _checkpoint(self, region: str, nodes: Sequence[Node]) -> list[str]:
        """A checkpointed block instance: a function of its layers, called through
        `checkpointed` (as `netspec.build` calls it)."""
        made = {n.name for n in nodes}
        reads = list(dict.fromkeys(self.var[i] for n in nodes for i in n.inputs if i not in made))
        body = [line for node in nodes for line in self._layer(node, depth=3)]
        out = [self.var[n.name] for n in nodes if n.name in self.graph.outputs
               or n.name in self.graph.auxiliary or any(r not in made for r in self.uses.get(n.name, ()))]
        function = self.names.take(identifier(region))
        head = _Call(f"def {function}", [_Atom(r) for r in reads])
        call = _Call(self._function(functional.checkpointed),
                     [_Atom(function), *map(_Atom, reads),
                      _Atom(f"state={_module_path(self.tree, region.split('.'))}")])
        return [*_statement("", head, ":", None, depth=2), *body,
                f"{_INDENT * 3}return {', '.join(out)}",
                *_statement(f"{', '.join(out)} = ", call, "", None, depth=2)]

    def _input_var(self, name: str) -> str:
        chained = len(self.graph.inputs) == 1 and self._chained(name)
        self.var[name] = "x" if chained else self.names.take(identifier(name))
        return self.var[name]

    def _result_var(self, name: str) -> str:
        if self._chained(name):
            return "x"
        if not self.uses.get(name) and name not in (*self.graph.outputs, *self.graph.auxiliary):
            return "_"  # a layer nothing reads: computed (as build does) and dropped
        return self.names.take(identifier(name))

    def _chained(self, name: str) -> bool:
        """Read once, by the very next layer (or the lone output by `return`): it flows
        through `x`."""
        readers = self.uses.get(name, [])
        returned = [*self.graph.outputs, *self.graph.auxiliary]
        several = len(returned) > 1 and name in returned
        return not several and readers == [self.after[name]]

    def _value(self, node: Node) -> _Expr:
        args = [_Atom(self.var[i]) for i in node.inputs]
        op = _op(node)
        if op.torch_module(len(node.inputs)) is not None:
            path = _module_path(self.tree, node.name.split("."))
            return _Call(path, args, trailing_comma=False)
        made = op.to_torch(torch, [self.shapes[i] for i in node.inputs], self.shapes[node.name])
        assert isinstance(made, TorchCall)
        return self._call(made, args)

    def _call(self, call: TorchCall, args: list[_Expr]) -> _Expr:
        kwargs = [_Atom(f"{k}={_literal(v)}") for k, v in call.kwargs.items()]
        if call.pairwise and call.fn in _INFIX and not kwargs:
            return _Infix(_INFIX[call.fn], args)
        fn = self._function(call.fn)
        if call.packed:
            return _Call(fn, [_Call("", args), *kwargs])
        if call.pairwise:
            value = args[0]
            for arg in args[1:]:
                value = _Call(fn, [value, arg, *kwargs])
            return value
        return _Call(fn, [*args, *kwargs])

    def _function(self, fn: Callable[..., Any]) -> str:
        """How the file names a function: `torch.cat`, or a helper it copies in."""
        name = getattr(fn, "__name__", "")
        if getattr(functional, name, None) is fn:
            if fn not in self.helpers:
                self.helpers.append(fn)
            return name
        for prefix, namespace in (("torch", torch), ("torch.nn.functional", torch.nn.functional)):
            if getattr(namespace, name, None) is fn:
                return f"{prefix}.{name}"
        if _is_plugin_code(fn):
            return _qualified(fn)
        raise NotImplementedError(f"the python export cannot write a call of {fn!r}")


def _uses(graph: Graph) -> dict[str, list[str]]:
    """The layers reading each value, in order (a layer reading it twice counts twice); a
    lone output is read by the `return` after the last layer, several are returned by name."""
    readers: dict[str, list[str]] = {}
    for node in graph.layers():
        for name in node.inputs:
            readers.setdefault(name, []).append(node.name)
    if len(graph.outputs) == 1 and not graph.auxiliary:
        readers.setdefault(graph.outputs[0], []).append(_RETURN)
    return readers


def _module_path(tree: _Container, path: Sequence[str]) -> str:
    """`self.layer1[0].conv1` for the layer `layer1.0.conv1` (as `__init__` placed it)."""
    expr = "self"
    container = tree
    for part in path:
        as_list = container.numbered and expr != "self"
        expr = _child(expr, part, as_list)
        child = container.children.get(part)
        container = child if isinstance(child, _Container) else _Container()
    return expr


class _Names:
    """Unique Python variable names: `layer1_0_add1`, a `_` appended on a clash."""

    def __init__(self, taken: set[str]):
        self.taken = taken

    def take(self, name: str) -> str:
        while name in self.taken or keyword.iskeyword(name) or hasattr(builtins, name):
            name += "_"
        self.taken.add(name)
        return name


def fmt_batch_shape(shape: Shape) -> str:
    """`(N, 64, 56, 56)`: a per-sample shape with the batch in front."""
    return "(" + ", ".join(["N", *map(str, shape)]) + ")"


def _signature_doc(graph: Graph, shapes: Mapping[str, Shape]) -> str:
    """`(N, 1, 32, 32) -> (N, 10).`, naming the tensors when there are several."""
    def side(names: Sequence[str]) -> str:
        return ", ".join(f"{n} {fmt_batch_shape(shapes[n])}" for n in names)

    more = "" if not graph.auxiliary else \
        f"\n\nIn training it also returns {side(graph.auxiliary)}, computed in training only."
    if len(graph.inputs) == 1 and len(graph.outputs) == 1:
        return f"{fmt_batch_shape(shapes[graph.inputs[0]])} -> " \
            f"{fmt_batch_shape(shapes[graph.outputs[0]])}.{more}"
    return f"Inputs {side(graph.inputs)}.\n\nReturns {side(graph.outputs)}.{more}"


def _docstring(text: str, indent: str, always_split: bool = False) -> list[str]:
    """A docstring, wrapped to the line length."""
    one = f'{indent}"""{text}"""'
    if len(one) <= WIDTH and "\n" not in text and not always_split:
        return [one]
    lines: list[str] = []
    for paragraph in text.split("\n\n"):
        body = textwrap.wrap(paragraph, WIDTH - len(indent) - 3, break_long_words=False,
                             break_on_hyphens=False)
        lines += ["", *body] if lines else body
    return [f'{indent}"""{lines[0]}', *(f"{indent}{line}" if line else "" for line in lines[1:]),
            f'{indent}"""']


# --- helpers copied from netspec.backends.functional -----------------------------------------


def _helper_names() -> set[str]:
    return {name for name, value in vars(functional).items()
            if inspect.isfunction(value) and value.__module__ == functional.__name__}


def _with_dependencies(helpers: Sequence[Callable[..., Any]]) -> list[Callable[..., Any]]:
    """The helpers and the helpers they call, callees first."""
    ordered: list[Callable[..., Any]] = []

    def visit(fn: Callable[..., Any]) -> None:
        for name in fn.__code__.co_names:  # names it reads, attributes (`x.reshape`) among them
            callee = getattr(functional, name, None)
            if inspect.isfunction(callee) and callee.__module__ == functional.__name__ \
                    and callee is not fn and callee not in ordered:
                visit(callee)
        if fn not in ordered:
            ordered.append(fn)

    for fn in helpers:
        visit(fn)
    return ordered


def _helper_source(fn: Callable[..., Any] | type) -> str:
    return textwrap.dedent(inspect.getsource(fn))


# --- a small pretty printer: one line when it fits, else one item per line -------------------


@dataclass(frozen=True, slots=True)
class _Atom:
    text: str

    def flat(self) -> str:
        return self.text

    def lines(self, indent: str) -> list[str]:
        return [self.text]


@dataclass(frozen=True, slots=True)
class _Call:
    """`head(item, item)`; an empty head writes a tuple."""

    head: str
    items: Sequence[_Expr]
    trailing_comma: bool = True

    def flat(self) -> str:
        inner = ", ".join(i.flat() for i in self.items)
        if not self.head and len(self.items) == 1:
            inner += ","
        return f"{self.head}({inner})"

    def lines(self, indent: str) -> list[str]:
        inner = indent + _INDENT
        out = [f"{self.head}("]
        for n, item in enumerate(self.items):
            comma = "," if self.trailing_comma or n < len(self.items) - 1 else ""
            out += _indented(item, inner, comma)
        return [*out, f"{indent})"]


@dataclass(frozen=True, slots=True)
class _Infix:
    """`a + b + c`."""

    op: str
    items: Sequence[_Expr]

    def flat(self) -> str:
        return f" {self.op} ".join(i.flat() for i in self.items)

    def lines(self, indent: str) -> list[str]:
        inner = indent + _INDENT
        out = ["("]
        for n, item in enumerate(self.items):
            out += _indented(item, inner, "", f"{self.op} " if n else "")
        return [*out, f"{indent})"]


_Expr = _Atom | _Call | _Infix


def _indented(item: _Expr, indent: str, suffix: str, prefix: str = "") -> list[str]:
    text = f"{indent}{prefix}{item.flat()}{suffix}"
    if len(text) <= WIDTH or isinstance(item, _Atom):
        return [text]
    first, *rest = item.lines(indent)
    return [f"{indent}{prefix}{first}", *rest[:-1], rest[-1] + suffix]


def _statement(lead: str, value: _Expr, tail: str, comment: str | None, depth: int = 2) -> list[str]:
    """`lead value tail  # comment` on one line when it fits; else the comment goes above
    and the value is split over lines (an assigned value first put in parentheses if that is
    what it takes). A line that still cannot fit (very long names) is marked `noqa: E501`."""
    indent = _INDENT * depth
    line = f"{indent}{lead}{value.flat()}{tail}"
    if comment is not None and len(line) + len(comment) + 4 <= WIDTH:
        return [f"{line}  # {comment}"]
    above = [f"{indent}# {comment}"] if comment is not None else []
    if len(line) <= WIDTH:
        return [*above, line]
    split = _split(lead, value, tail, indent)
    if any(len(text) > WIDTH for text in split) and lead.endswith(" = ") and not tail:
        split = [f"{indent}{lead}(", *_indented(value, indent + _INDENT, ""), f"{indent})"]
    return [*above, *map(_fit, split)]


def _split(lead: str, value: _Expr, tail: str, indent: str) -> list[str]:
    if isinstance(value, _Atom):
        return [f"{indent}{lead}{value.flat()}{tail}"]
    first, *rest = value.lines(indent)
    return [f"{indent}{lead}{first}", *rest[:-1], rest[-1] + tail]


def _fit(line: str) -> str:
    """A line too long only because of the names in it: ruff is told so."""
    return line if len(line) <= WIDTH else f"{line}  # noqa: E501"
