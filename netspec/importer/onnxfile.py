"""`netspec import model.onnx`: an ONNX model read as trace's scopes, through `graphs.Scopes`.

Each node is read as the torch.nn module it computes, rebuilt from its attributes with the
initializers it reads (Conv, ConvTranspose, Gemm, MatMul of a constant with the Add of a
constant bias after it, BatchNormalization, LayerNormalization, MaxPool, AveragePool,
GlobalAveragePool, a ReduceMean over every spatial axis, Flatten, Softmax, Gelu, Relu and
other activations), or as a netspec op (Add, Mul, Concat, Transpose as a permute, Split
and a Slice of one axis, a Reshape keeping the batch); an initializer added or multiplied
in is a parameter layer; Identity and Dropout pass their input on. Shapes come from ONNX's
shape inference (at `--input`'s shape where given), run again after the sizes the model
computes from static shapes are folded to constants (`_static`).

Where layers sit: torch's dynamo exporter records each node's modules
(`pkg.torch.onnx.name_scopes`, `pkg.torch.onnx.class_hierarchy`) and names initializers by
their `state_dict` keys; the TorchScript exporter names nodes by their module path
(`/layer1/layer1.0/conv1/Conv`); a node of neither is a layer of the root named as the node,
sanitised. Both exporters fold an eval-mode BatchNorm into the Conv before it: the file
holds the folded conv, and so does the spec.
"""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path
from typing import Any

import numpy
import torch
import torch.fx

from netspec.importer.errors import ImportFailure
from netspec.importer.graphs import Frame, Made, Scopes, Steps, all_spatial, global_mean, loaded, merged, view
from netspec.importer.trace import Traced, scope_chain, validated_op
from netspec.ops import OPS

ACTIVATIONS = {"Relu": torch.nn.ReLU, "Sigmoid": torch.nn.Sigmoid, "Tanh": torch.nn.Tanh,
               "HardSwish": torch.nn.Hardswish}
"""ONNX activations of no attributes, and the torch.nn module computing each."""

BATCH = 2
"""The batch at which a model of a dynamic batch is read: the sizes it computes from its
batch (a Shape, a Gather of its first item, a Concat: `x.view(x.size(0), -1)`) fold to
constants as static ones do, and a layer mixing the batch into other dims is refused as in
a model of a static batch."""
STATE_KEY = r"[\w.-]+\.\w+"
"""An initializer named by a state_dict key (`layer1.0.conv1.weight`; RegNet's `block1-0`)."""
PASS = {"Identity", "Dropout"}

ELEMENTWISE = {"Add", "Mul"}
"""Nodes whose operands may be a model's own tensor, read as a value (a parameter layer:
ConvNeXt's `layer_scale * x`)."""


def read(path: Path, shape: tuple[int, ...] | None = None) -> tuple[Scopes, Traced, tuple[int, ...] | None]:
    """The ONNX model at `path`, as scopes, at per-sample input `shape` (default: the
    file's); the file's input shape less the batch (None where not static)."""
    try:
        import onnx
    except ImportError:
        raise ImportFailure(f"{path}: reading ONNX needs the onnx package: pip install "
                            "'netspec[export]'") from None
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # not an ONNX file: say so in one line
        said = str(exc).splitlines()[0] if str(exc) else ""
        raise ImportFailure(f"{path}: not an ONNX model onnx can load ({type(exc).__name__}: "
                            f"{said})") from None
    return _Reader(model, shape).read()


class _Reader:
    """Reads one ONNX model's nodes, in order, into `Scopes`."""

    def __init__(self, model: Any, shape: tuple[int, ...] | None):
        from onnx import numpy_helper

        graph = model.graph
        self.tensors: dict[str, torch.Tensor] = {
            t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in self.tensors]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise ImportFailure(f"the model takes {len(inputs)} inputs and gives {len(graph.output)} "
                                "outputs; netspec import reads models of one input and one output")
        dims = inputs[0].type.tensor_type.shape.dim
        own = tuple(d.dim_value for d in dims[1:])
        self.own = own if own and all(own) else None
        if shape is not None:  # shape inference at the size asked for
            del dims[1:]
            for size in shape:
                dims.add().dim_value = size
        if dims and not dims[0].dim_value:  # a dynamic batch: sizes computed from it fold
            dims[0].dim_value = BATCH
        self.graph = _static(model).graph
        self.full = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
                     for v in [*self.graph.input, *self.graph.value_info, *self.graph.output]}
        """Each value's shape, batch included (0 for a size the file leaves unknown)."""
        self.shapes = {name: shape[1:] for name, shape in self.full.items()}
        self.input = inputs[0].name
        self.values: dict[str, torch.fx.Node] = {}
        self.users: dict[str, list[Any]] = {}
        for node in self.graph.node:
            for name in node.input:
                self.users.setdefault(name, []).append(node)
        paths = [_path(n.name) for n in self.graph.node if "/" in n.name]
        self.modules = {p for path in paths for p in scope_chain(path)[:-1]}
        """Paths holding another module or computation: not a layer (TorchScript exporter)."""
        self.merged: set[str] = set()
        self.merged = merged([(self._where(n)[0], {i.rpartition(".")[0] for i in n.input
                                                   if i in self.tensors}) for n in self.graph.node
                              if n.op_type not in ELEMENTWISE])
        self.absorbed: dict[str, str] = {}
        """A node's output -> the output of the node read with it as one layer, whose value
        it is: the Add of a constant bias after a MatMul (a Linear), the Mul of x by its
        Sigmoid (a SiLU)."""
        root = next((_meta(n, "pkg.torch.onnx.class_hierarchy")[0] for n in self.graph.node
                     if _meta(n, "pkg.torch.onnx.class_hierarchy")), "")
        self.scopes = Scopes(root or self.graph.name or "Model")

    def read(self) -> tuple[Scopes, Traced, tuple[int, ...] | None]:
        self.values[self.input] = self.scopes.input
        for node in self.graph.node:
            self._node(node)
        out = self.graph.output[0].name
        if out not in self.values:
            raise ImportFailure(f"the model's output {out} is not computed from its input")
        return self.scopes, self.scopes.traced(self.values[out]), self.own

    def _node(self, node: Any) -> None:
        from onnx import numpy_helper

        if node.op_type == "Constant":
            self.tensors[node.output[0]] = torch.from_numpy(
                numpy_helper.to_array(node.attribute[0].t).copy())
            return
        values = [i for i in node.input if i in self.values]
        if node.op_type in PASS and node.input[0] in self.tensors:  # a deduplicated initializer
            self.tensors[node.output[0]] = self.tensors[node.input[0]]
        if not values:  # computes from constants only (a shape): not a layer
            return
        one_cat = node.op_type == "Concat" and len(node.input) == 1  # torch.cat([x]) (DenseNet): x
        if node.output[0] in self.absorbed or node.op_type in PASS or one_cat or \
                self._gathered_back(node):
            self.values[node.output[0]] = self.values[self.absorbed.get(node.output[0], values[0])]
            return
        if node.op_type in ELEMENTWISE:  # a tensor of the model as an operand: a parameter layer
            for name in node.input:
                if name in self.tensors and name not in self.values:
                    self.values[name] = self.scopes.parameter(
                        self._key(name, node), self.tensors[name], len(self.shapes.get(node.output[0], ())),
                        self._where(node)[0])
            values = [i for i in node.input if i in self.values]
        attrs = _attributes(node)
        steps = self._mean(node, attrs) or [(self._made(node, attrs), self.shapes.get(node.output[0], ()))]
        made = steps[0][0]
        # the module whose tensors the layer holds, where initializers are named by their
        # state_dict keys: its weight's (a folded conv's bias may be named as the norm's);
        # one whose tensors a layer holds already is an exporter's merging of equal tensors
        # (a fresh model's norms): the layer is then named by where the node is
        owner = next((i.rpartition(".")[0] for i in node.input if isinstance(made, torch.nn.Module)
                      and i in self.tensors and re.fullmatch(STATE_KEY, i)
                      and i.rpartition(".")[2] in made.state_dict()), None)
        owner = None if owner is not None and self.scopes.holds(owner) else owner
        stack, named = self._where(node)
        reads, shapes = [self.values[i] for i in values], [self.shapes.get(i, ()) for i in values]
        for made, shape in steps:
            value = self.scopes.add(stack, owner, made, reads, (shapes, shape), _stem(node.op_type),
                                    f"{node.op_type} (node {node.name or node.output[0]})", named)
            reads, shapes = [value], [shape]
        self.values[node.output[0]] = value
        if value in self.scopes.pieces:  # Split: each output a piece
            for k, out in enumerate(node.output):
                self.values[out] = self.scopes.piece(value, k)

    def _key(self, name: str, node: Any) -> str:
        """The `state_dict` key of the tensor `name` a node reads as a value: its own where it
        is named as one, else named as it, sanitised, in the node's module."""
        if re.fullmatch(STATE_KEY, name):
            return name
        stack = self._where(node)[0]
        path = next((f.path for f in reversed(stack) if not f.leaf), "")
        own = re.sub(r"\W", "_", name).strip("_") or "tensor"
        return f"{path}.{own}" if path else own

    def _where(self, node: Any) -> tuple[list[Frame], str | None]:
        """The modules that made `node`, and its layer's name where the file gives only
        that: the dynamo exporter's record (for a node its optimizer made, of no record:
        the modules all its readers' records share, but a layer), the TorchScript
        exporter's node name, or (neither) the root's layer named as the node, sanitised."""
        scopes = _meta(node, "pkg.torch.onnx.name_scopes")
        classes = _meta(node, "pkg.torch.onnx.class_hierarchy")
        if scopes and len(scopes) == len(classes):
            return [Frame.of(p, c) for p, c in zip(scopes[:-1], classes[:-1], strict=True)
                    if p not in self.merged], None
        if "/" in node.name:
            path = _path(node.name)
            return [Frame(p, "", p == path and p not in self.modules) for p in scope_chain(path)
                    if p not in self.merged], None
        recorded = [self._where(u)[0] for o in node.output for u in self.users.get(o, [])
                    if _meta(u, "pkg.torch.onnx.name_scopes")]
        if recorded:  # a node the dynamo exporter's optimizer made (a Split): where its readers are
            common = [f for f, *others in zip(*recorded, strict=False) if all(o == f for o in others)]
            while common and common[-1].leaf:
                common.pop()
            return common, None
        return [Frame("")], re.sub(r"\W", "_", node.name).strip("_") or None

    def _made(self, node: Any, attrs: dict[str, Any]) -> Made:
        """The module or op computing `node`, or what to say about it."""
        kind = node.op_type
        const = [self.tensors.get(i) if i else None for i in node.input]
        rank = len(self.shapes.get(node.output[0], ()))  # per sample: [C, *spatial]
        if kind in ("Conv", "ConvTranspose"):
            return _conv(attrs, const[1], const[2] if len(const) > 2 else None, kind == "ConvTranspose")
        if kind == "Gemm":
            if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 \
                    or const[1] is None:
                return "Gemm other than x @ W.T + b"
            weight = const[1] if attrs.get("transB", 0) else const[1].t()
            return _linear(weight, const[2] if len(const) > 2 else None)
        if kind == "MatMul" and const[1] is not None and const[1].dim() == 2:
            return _linear(const[1].t(), self._bias_after(node, const[1].shape[1]))
        if kind == "BatchNormalization":
            if any(t is None for t in const[1:5]):
                return "BatchNormalization of computed statistics"
            cls = getattr(torch.nn, f"BatchNorm{max(rank - 1, 1)}d")
            module = cls(const[1].shape[0], eps=attrs.get("epsilon", 1e-5),
                         momentum=round(1 - attrs.get("momentum", 0.9), 7))
            return loaded(module, dict(zip(("weight", "bias", "running_mean", "running_var"),
                                           const[1:5], strict=False)))
        if kind in ("MaxPool", "AveragePool"):
            return _pool(kind, attrs)
        if kind in ("GlobalAveragePool", "GlobalMaxPool"):
            return getattr(torch.nn, f"Adaptive{'Avg' if 'Average' in kind else 'Max'}Pool{rank - 1}d")(1)
        if kind == "ReduceMean":
            return f"ReduceMean over axes {self._axes(node, attrs)}"
        if kind == "Flatten":
            return torch.nn.Flatten() if attrs.get("axis", 1) == 1 else f"Flatten at axis {attrs['axis']}"
        if kind == "Reshape":
            return view(self.shapes.get(node.input[0], ()), self.shapes.get(node.output[0], ()))
        if kind in ("Add", "Mul") and all(i in self.values for i in node.input):
            return OPS[kind.lower()]()
        if kind == "Transpose":
            dims = [0, *range(rank, 0, -1)] if "perm" not in attrs else attrs["perm"]
            return validated_op(OPS["permute"], {"dims": dims}) or f"Transpose to {dims}"
        if kind in ("Split", "Slice"):
            return self._pieces(node, attrs, const)
        if kind == "LayerNormalization":
            return _layer_norm(attrs, self.full.get(node.input[0], ()), const[1],
                               const[2] if len(const) > 2 else None)
        if kind == "Softmax":
            return torch.nn.Softmax(dim=attrs.get("axis", -1))
        if kind == "Gelu":
            return torch.nn.GELU(approximate=attrs.get("approximate", "none"))
        if kind == "Concat":
            return validated_op(OPS["concat"], {"dim": attrs["axis"]}) or f"Concat at axis {attrs['axis']}"
        if kind == "LeakyRelu":
            return torch.nn.LeakyReLU(attrs.get("alpha", 0.01))
        if kind == "Clip":  # its bounds: inputs from opset 11, attributes before
            bounds = [t.item() if t is not None else None for t in const[1:3]] or \
                [attrs.get("min"), attrs.get("max")]
            return torch.nn.ReLU6() if bounds == [0, 6] else f"Clip to {bounds} (relu6 clips to [0, 6])"
        if kind == "HardSigmoid" and abs(attrs.get("alpha", 0.2) - 1 / 6) < 1e-6 and \
                attrs.get("beta", 0.5) == 0.5:  # torch's: relu6(x + 3) / 6
            return torch.nn.Hardsigmoid()
        if kind == "Sigmoid" and self._times_input(node):
            return torch.nn.SiLU()
        return ACTIVATIONS[kind]() if kind in ACTIVATIONS else "no netspec op"

    def _pieces(self, node: Any, attrs: dict[str, Any], const: list[torch.Tensor | None]) -> Made:
        """A Split (every piece, its outputs) or a Slice of one axis, of constant bounds (a
        computed shape's folded), as netspec's split and slice (their dims counting the batch)."""
        axis = attrs.get("axis", 0)
        if node.op_type == "Split":
            sizes = const[1].tolist() if len(const) > 1 and const[1] is not None else attrs.get("split")
            if sizes is None:  # num_outputs equal pieces, the last shorter (torch.chunk's rule)
                return validated_op(OPS["chunk"], {"chunks": len(node.output), "dim": axis}) or "Split"
            return validated_op(OPS["split"], {"sizes": sizes, "dim": axis}) or f"Split into {sizes}"
        bounds = [t.tolist() if t is not None else None for t in (const + [None] * 5)[1:5]]
        if None in bounds[:2] or (bounds[2] is not None and len(bounds[2]) != 1) or len(bounds[0]) != 1:
            return "Slice of computed or several axes"
        n = self.full.get(node.input[0], ())[(bounds[2] or [0])[0]] if bounds[2] else 0
        end = None if n and bounds[1][0] >= n else bounds[1][0]
        return validated_op(OPS["slice"], {"dim": (bounds[2] or [0])[0], "start": bounds[0][0], "end": end,
                                         "step": (bounds[3] or [1])[0]}) or f"Slice {bounds}"

    def _axes(self, node: Any, attrs: dict[str, Any]) -> list[int] | None:
        """A reduction's axes: its second input (opset 18 on) or its `axes` attribute."""
        given = self.tensors.get(node.input[1]) if len(node.input) > 1 else None
        return given.tolist() if given is not None else attrs.get("axes")

    def _mean(self, node: Any, attrs: dict[str, Any]) -> Steps:
        """A ReduceMean over every spatial axis as a global pool (and a flatten without
        keepdims), else nothing."""
        shape = self.shapes.get(node.input[0], ())
        if node.op_type != "ReduceMean" or not all_spatial(self._axes(node, attrs), len(shape) + 1):
            return []
        return global_mean(shape, bool(attrs.get("keepdims", 1)))

    def _bias_after(self, node: Any, size: int) -> torch.Tensor | None:
        """The constant [size] vector the one Add reading `node`'s output adds to it (then
        read with the MatMul as a Linear's bias), else None."""
        users = self.users.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "Add":
            return None
        other = next((i for i in users[0].input if i != node.output[0]), "")
        bias = self.tensors.get(other)
        if bias is None or tuple(bias.shape) != (size,):
            return None
        self.absorbed[users[0].output[0]] = node.output[0]
        return bias

    def _gathered_back(self, node: Any) -> bool:
        """Whether `node` is a Reshape to one dim whose one reader Gathers every element
        back in order to the shape it had (the dynamo exporter's `as_strided` of a
        contiguous tensor: ConvNeXt's pool, a mean kept to [N, C, 1, 1]): both are its
        input's value, the Gather absorbed."""
        users = self.users.get(node.output[0], [])
        shape = self.tensors.get(node.input[1]) if node.op_type == "Reshape" else None
        if shape is None or shape.tolist() != [-1] or len(users) != 1 or \
                users[0].op_type != "Gather" or _attributes(users[0]).get("axis", 0) != 0:
            return False
        full = self.full.get(node.input[0], ())
        indices = self.tensors.get(users[0].input[1])
        if indices is None or not full or not torch.equal(
                indices, torch.arange(math.prod(full)).reshape(full).to(indices.dtype)):
            return False
        self.absorbed[users[0].output[0]] = node.input[0]
        return True

    def _times_input(self, node: Any) -> bool:
        """Whether the one node reading `node`'s output is a Mul of it by `node`'s input
        (x * sigmoid(x): SiLU, as the TorchScript exporter writes it); it is then absorbed."""
        users = self.users.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "Mul" or set(users[0].input) != {
                node.input[0], node.output[0]}:
            return False
        self.absorbed[users[0].output[0]] = node.output[0]
        return True


def _conv(attrs: dict[str, Any], weight: torch.Tensor | None, bias: torch.Tensor | None,
          transposed: bool = False) -> Made:
    """ONNX Conv (weight [out, in/group, *k]) or ConvTranspose (weight [in, out/group, *k])
    as the torch.nn conv holding its tensors."""
    if weight is None:
        return "Conv by a computed weight"
    dims = weight.dim() - 2
    pads = attrs.get("pads", [0] * 2 * dims)
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or pads[:dims] != pads[dims:]:
        return f"Conv with padding {attrs.get('auto_pad', 'NOTSET')} {pads} (not the same at both ends)"
    groups = attrs.get("group", 1)
    outs, ins = (weight.shape[1] * groups, weight.shape[0]) if transposed else \
        (weight.shape[0], weight.shape[1] * groups)
    if transposed and attrs.get("output_shape"):
        return "ConvTranspose of a given output_shape"
    extra = {"output_padding": tuple(attrs.get("output_padding", [0] * dims))} if transposed else {}
    module = getattr(torch.nn, f"ConvTranspose{dims}d" if transposed else f"Conv{dims}d")(
        ins, outs, tuple(weight.shape[2:]),
        stride=tuple(attrs.get("strides", [1] * dims)), padding=tuple(pads[:dims]),
        dilation=tuple(attrs.get("dilations", [1] * dims)), groups=groups, bias=bias is not None, **extra)
    return loaded(module, {"weight": weight, "bias": bias})


def _layer_norm(attrs: dict[str, Any], shape: tuple[int, ...], weight: torch.Tensor | None,
                bias: torch.Tensor | None) -> Made:
    """LayerNormalization over the axes from `axis` on of a value of `shape` (batch
    included) as the nn.LayerNorm holding its scale and bias."""
    axis = attrs.get("axis", -1)
    normalized = list(shape[axis:])
    if weight is None or not all(normalized) or list(weight.shape) != normalized:
        return "LayerNormalization by a computed or broadcast scale"
    eps = float(f"{attrs.get('epsilon', 1e-5):.7g}")  # a float32 attribute: 1e-05, not 9.9999997e-06
    module = torch.nn.LayerNorm(normalized, eps=eps, bias=bias is not None)
    return loaded(module, {"weight": weight, "bias": bias})


def _static(model: Any) -> Any:
    """`model` with its shapes inferred and every shape it computes that is static folded
    to a Constant (a Shape of a value of known size, and the Gather, Div, Concat... of
    constants after it, run by onnx's reference evaluator), so that the sizes of what it
    feeds (a Reshape, a Slice: ShuffleNet's channel split) are inferred too."""
    import onnx
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    while True:
        try:
            model = onnx.shape_inference.infer_shapes(model)
        except Exception as exc:  # onnx raises several kinds: say it in one line
            raise ImportFailure(f"ONNX shape inference fails on the model: {exc}") from None
        graph = model.graph
        sizes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
                 for v in [*graph.input, *graph.value_info]}
        known = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
        folded = 0
        for k, node in enumerate(graph.node):
            attrs = _attributes(node)
            dims = sizes.get(node.input[0], [])[attrs.get("start", 0):attrs.get("end")] \
                if node.op_type == "Shape" else []
            if dims and all(dims):  # the sizes a Shape takes are known
                value = numpy.array(dims, numpy.int64)
            elif node.op_type != "Constant" and len(node.output) == 1 and node.input and \
                    all(i in known for i in node.input if i):
                run = helper.make_model(helper.make_graph(
                    [*{i: known[i] for i in node.input if i}.values(), node], "fold", [],
                    [helper.make_empty_tensor_value_info(node.output[0])]))
                (value,) = ReferenceEvaluator(run).run(None, {})
            else:
                continue
            graph.node[k].CopyFrom(helper.make_node("Constant", [], list(node.output), node.name,
                                                    value=numpy_helper.from_array(value)))
            known[node.output[0]] = graph.node[k]
            folded += 1
        if not folded:
            return model


def _linear(weight: torch.Tensor, bias: torch.Tensor | None) -> Made:
    module = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    return loaded(module, {"weight": weight, "bias": bias})


def _pool(kind: str, attrs: dict[str, Any]) -> Made:
    """MaxPool / AveragePool as nn.MaxPool{n}d / nn.AvgPool{n}d."""
    kernel = attrs["kernel_shape"]
    dims = len(kernel)
    pads = attrs.get("pads", [0] * 2 * dims)
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or pads[:dims] != pads[dims:]:
        return f"{kind} with padding {attrs.get('auto_pad', 'NOTSET')} {pads}"
    common = {"kernel_size": tuple(kernel), "stride": tuple(attrs.get("strides", [1] * dims)),
              "padding": tuple(pads[:dims]), "ceil_mode": bool(attrs.get("ceil_mode", 0))}
    if kind == "MaxPool":
        return getattr(torch.nn, f"MaxPool{dims}d")(dilation=tuple(attrs.get("dilations", [1] * dims)),
                                                    **common)
    return getattr(torch.nn, f"AvgPool{dims}d")(count_include_pad=bool(attrs.get("count_include_pad", 0)),
                                                **common)


def _attributes(node: Any) -> dict[str, Any]:
    """A node's attributes as Python values (strings decoded)."""
    from onnx import helper

    found = {}
    for attr in node.attribute:
        value = helper.get_attribute_value(attr)
        found[attr.name] = value.decode() if isinstance(value, bytes) else \
            list(value) if not isinstance(value, int | float | str) and hasattr(value, "__len__") else value
    return found


def _meta(node: Any, key: str) -> list[str]:
    """A list the dynamo exporter records in a node's metadata (`['', 'layer1', ...]`)."""
    for prop in node.metadata_props:
        if prop.key == key:
            value = ast.literal_eval(prop.value)
            return [str(v) for v in value] if isinstance(value, list) else []
    return []


def _path(name: str) -> str:
    """A module path from a TorchScript exporter's node name: `/layer1/layer1.0/conv1/Conv`
    -> `layer1.0.conv1` (a part extending the one before, `layer1.0` after `layer1`, names
    a child of it: `/layer2/layer2.0/downsample/downsample.0/Conv` -> `layer2.0.downsample.0`)."""
    path, prev = "", ""
    for part in name.split("/")[1:-1]:
        path = path + part[len(prev):] if prev and part.startswith(f"{prev}.") else \
            f"{path}.{part}" if path else part
        prev = part
    return path


def _stem(op_type: str) -> str:
    """A layer's name from an ONNX op: `GlobalAveragePool` -> `global_average_pool`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", op_type).lower()
