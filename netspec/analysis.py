"""Static analysis over the IR: shapes, costs, receptive fields and warnings, in one pass.

Nodes arrive in topological order, so each is visited once with its inputs known: analysis
time is linear in the number of layers. Nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from netspec import limits
from netspec.errors import Diagnostic, Where
from netspec.ir import Graph, Node
from netspec.ops import RF, Cost, Input, Note, Op, ShapeError, Tensor
from netspec.ops.base import GradCost, Saved, ids_out
from netspec.report import LayerReport, Report
from netspec.shapes import Shape

BIG_LINEAR_SHARE = 0.5  # a linear layer holding more than this share of all parameters


@dataclass(frozen=True, slots=True)
class Step:
    """What the analysis found for one layer, with what it depended on: the op, its input
    tensors and their receptive fields, and its tie (see `analyse`'s `previous`)."""

    op: Op
    tensors: tuple[Tensor, ...]
    fields_in: tuple[RF | None, ...]
    tie: str | None
    largest: int
    shape: Shape
    vocab: int | None
    cost: Cost
    weight: Shape | None
    field: RF | None
    notes: tuple[Note, ...]
    rf: dict[str, list[int | float]] | None
    """`field` as the report's JSON gives it."""
    torch: str | None
    backward: dict[tuple[tuple[bool, ...], bool], tuple[GradCost, Saved]] = field(
        default_factory=dict, compare=False)
    """Its op's `grad_cost` and `saved` by which inputs and whether the weights take
    gradients, as `netspec.train_step` asked (kept with the step: reused as it is)."""

    def holds_for(self, op: Op, tensors: tuple[Tensor, ...], fields_in: tuple[RF | None, ...],
                  tie: str | None, largest: int) -> bool:
        """Whether a layer of this op, inputs and tie would find the same (an untied one:
        a tie reads another layer's weight)."""
        return (tie is None and self.tie is None and largest == self.largest
                and self.tensors == tensors and self.fields_in == fields_in
                and (self.op is op or self.op == op))


def analyse(graph: Graph, inputs: Mapping[str, Shape] | None = None,
            previous: Report | None = None) -> Report:
    """Infer every node's shape, cost and receptive field; collect errors and warnings.

    `inputs` overrides declared input shapes by name. Errors never stop the pass: a layer
    whose inputs failed is skipped silently, so each independent mistake is reported once.
    A layer whose output or weights pass the limit `tensor_elements` is an error too.

    `previous`, a report of an earlier graph of the same spec (before an edit), lends its
    findings to each layer of the same name whose op, inputs (shapes, sources, fields) and
    tie are the same: only what an edit changed is analysed again (the language server).
    """
    largest = limits.current().tensor_elements
    shapes: dict[str, Shape] = {}
    fields: dict[str, RF | None] = {}
    vocabs: dict[str, int | None] = {}
    weights: dict[str, Shape | None] = {}
    before = previous.steps if previous is not None else {}
    steps: dict[str, Step] = {}
    rows: list[LayerReport] = []
    errors: list[Diagnostic] = []
    said: set[tuple[Where, str]] = set()
    warnings: list[Diagnostic] = []
    later = graph.training_only()
    overrides = dict(inputs or {})
    for name in list(overrides):
        if name not in graph.inputs:
            node = graph.nodes[graph.inputs[0]]
            errors.append(Diagnostic(node.where, name, f"`--input {name}=...` names no input",
                                     f"inputs: {', '.join(graph.inputs)}", code="bad-input"))
    for node in graph.nodes.values():
        op = node.op
        if op is None or any(i not in shapes for i in node.inputs):
            continue
        if isinstance(op, Input):
            op = op.model_copy(update={"shape": tuple(overrides.get(node.name, op.shape))})
        tensors = tuple(Tensor(shapes[i], i, i in graph.inputs, fields[i] is not None, vocabs[i])
                        for i in node.inputs)
        fields_in = tuple(fields[i] for i in node.inputs)
        step = before.get(node.name)
        if step is None or not step.holds_for(op, tensors, fields_in, node.tie, largest):
            step = _step(graph, node, op, tensors, fields_in, weights, largest)
        if isinstance(step, Diagnostic):
            if (step.where, step.message) not in said:  # the pieces of one `chunk` entry
                said.add((step.where, step.message))
                errors.append(step)
            continue
        steps[node.name] = step
        shapes[node.name], vocabs[node.name], fields[node.name] = step.shape, step.vocab, step.field
        weights[node.name] = step.weight
        for note in step.notes:
            warnings.append(Diagnostic(node.loc.at(note.key), node.name, note.message,
                                       severity="warning", code=note.code))
        if node.name not in graph.inputs:
            rows.append(_row(node, step, node.name in later))
    report = Report(
        name=graph.name,
        inputs={n: shapes[n] for n in graph.inputs if n in shapes},
        outputs={n: shapes[n] for n in graph.outputs if n in shapes},
        auxiliary={n: shapes[n] for n in graph.auxiliary if n in shapes},
        layers=rows,
        graph=graph,
        errors=sorted(errors, key=_position),
        warnings=warnings,
        steps=steps,
    )
    report.warnings.extend(_big_linear(report, graph))
    report.warnings.sort(key=_position)
    return report


def _step(graph: Graph, node: Node, op: Op, tensors: tuple[Tensor, ...],
          fields_in: tuple[RF | None, ...], weights: dict[str, Shape | None], largest: int
          ) -> Step | Diagnostic:
    """One layer analysed: `settle`, then its receptive field and notes."""
    settled = settle(graph, node, op, list(tensors), weights, largest)
    if isinstance(settled, Diagnostic):
        return settled
    y, vocab, cost = settled
    field = op.receptive_field(list(fields_in), [t.shape for t in tensors], y)
    return Step(op, tensors, fields_in, node.tie, largest, y, vocab, cost, weights[node.name],
                field, tuple(op.notes(list(tensors), y)), _rf_json(field),
                op.torch_module(len(tensors)))


def settle(graph: Graph, node: Node, op: Op, tensors: list[Tensor],
           weights: dict[str, Shape | None], largest: int
           ) -> tuple[Shape, int | None, Cost] | Diagnostic:
    """One layer's output shape, vocabulary and cost for inputs `tensors`, or the error
    that stops it: its shape rule, a `tie:` to a weight of another shape, or the limit
    `tensor_elements` (`largest`). Records its weight's shape in `weights` for later ties.

    The step every pass over the IR takes per layer (the report's, the sizes')."""
    try:
        y, vocab = output_of(node, op, tensors)
    except ShapeError as exc:
        return Diagnostic(node.loc.at(exc.key), node.name, str(exc) + _via(graph, node),
                          exc.hint, code="shape")
    x = [t.shape for t in tensors]
    cost = op.cost(x, y)
    weights[node.name] = op.weight_shape(x, y)
    if node.tie is not None:
        shared = _shared(graph, node, weights)
        if isinstance(shared, Diagnostic):
            return shared
        cost = cost._replace(params=cost.params - shared)
    too_big = _too_big(y, cost, largest)
    if too_big:
        return Diagnostic(node.where, node.name, too_big, limits.raise_hint("tensor_elements"),
                          code="limit")
    return y, vocab, cost


def _shared(graph: Graph, node: Node, weights: Mapping[str, Shape | None]) -> int | Diagnostic:
    """The parameters `node` shares with the layer its `tie:` names (its weight, counted
    there), or the error when the two have no weights of one shape."""
    assert node.tie is not None and node.op is not None
    target = graph.nodes[node.tie]
    mine, theirs = weights[node.name], weights.get(node.tie)
    where = node.loc.meta("tie")
    if mine is None or (theirs is None and node.tie in weights):
        kind = node.kind if mine is None else target.kind
        return Diagnostic(where, node.name, f"`tie` shares a weight, and {kind} has none to "
                          "share", "tie a linear layer and an embedding (or two of either)",
                          code="bad-tie")
    if theirs is None:
        return 0  # the target failed: its error is reported
    if mine != theirs:
        return Diagnostic(where, node.name, f"`tie: {node.tie}` shares {node.tie}'s weight "
                          f"{list(theirs)}, but this {node.kind}'s weight is {list(mine)}",
                          "a linear layer shares an embedding's weight when its `out` is the "
                          "vocabulary and its input features the embedding's `dim`",
                          code="bad-tie")
    return math.prod(mine)


def _too_big(shape: Shape, cost: Cost, largest: int) -> str | None:
    """Why a layer passes the limit `tensor_elements`, if it does."""
    elements = math.prod(shape)
    if elements > largest:
        return (f"the output {list(shape)} has {elements:,} elements per sample, more than "
                f"{largest:,} (limit `tensor_elements`)")
    held = cost.params + cost.buffers
    if held > largest:
        held_as = "parameters and buffers" if cost.buffers else "parameters"
        return f"the layer holds {held:,} {held_as}, more than {largest:,} (limit `tensor_elements`)"
    return None


def _via(graph: Graph, node: Node) -> str:
    """For a layer inside a block: the spec line calling the outermost block (the error
    points into the block's definition, shared by every call)."""
    group = graph.groups.get(node.groups[0]) if node.groups else None
    if group is None or group.call is None:
        return ""
    where = group.call.at()
    return f" (in `{group.name}`, called at line {where.line})"


def output_of(node: Node, op: Op, tensors: list[Tensor]) -> tuple[Shape, int | None]:
    """The shape `op` (node's op, or its input with overridden shape) gives `tensors`, and
    its vocabulary when it holds token ids: its input count checked, every dimension at
    least 1, ids taken only by ops that take them. ShapeError when it does not work out.

    The one shape rule of the analysis, also used while blocks expand (their parameters
    may read their inputs' shapes)."""
    n = len(tensors)
    low, high = op.arity
    if n < low:
        hint = f"list them: `{node.kind}: [a, b]`" if op.short_inputs else None
        raise ShapeError(f"{node.kind} needs at least {low} inputs, found {n}", hint=hint)
    if high is not None and n > high:
        raise ShapeError(f"{node.kind} takes at most {high} input{'s' if high > 1 else ''}, "
                         f"found {n}", hint="merge them first with `add` or `concat`")
    vocab = op.vocab if isinstance(op, Input) else ids_out(op, tensors)
    y = op.infer(tensors)
    if not y or any(d < 1 for d in y):
        raise ShapeError(f"the output shape {list(y)} has a dimension below 1")
    return y, vocab


def _row(node: Node, step: Step, training_only: bool) -> LayerReport:
    cost = step.cost
    return LayerReport(
        name=node.name, op=step.op.kind(), torch=step.torch, inputs=list(node.inputs),
        shape=step.shape, params=cost.params, trainable=0 if node.frozen else cost.params,
        buffers=cost.buffers, macs=cost.macs, bias_adds=cost.bias_adds, rf=step.rf, node=node,
        attention_macs=cost.attention_macs, scores=cost.scores,
        input_shapes=tuple(t.shape for t in step.tensors), training_only=training_only,
    )


def _rf_json(rf: RF | None) -> dict[str, list[int | float]] | None:
    if rf is None:
        return None
    return {"size": [_number(v) for v in rf.size], "stride": [_number(v) for v in rf.stride]}


def _number(value: Fraction | int) -> int | float:
    if isinstance(value, int):
        return value
    return value.numerator if value.denominator == 1 else round(float(value), 6)


def _big_linear(report: Report, graph: Graph) -> list[Diagnostic]:
    out = []
    total = report.params  # a sum over the layers: once, not per layer
    for row in report.layers:
        if row.op == "linear" and total and row.params > BIG_LINEAR_SHARE * total:
            share = row.params / total
            out.append(Diagnostic(
                graph.nodes[row.name].where, row.name,
                f"this linear layer holds {share:.0%} of all parameters "
                f"({row.params:,} of {total:,})",
                "a global average pool or a smaller flatten before it shrinks it",
                severity="warning", code="big-linear"))
    return out


def _position(d: Diagnostic) -> tuple[str, int, int]:
    return (d.where.file, d.where.line, d.where.column)
