"""The analysis result: per-layer rows and totals, as JSON (the contract) or as a table,
in full or seen from a block depth (`netspec.collapse`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netspec.allocation import gc_paused
from netspec.collapse import Collapsed, Unit
from netspec.errors import Diagnostic, Where
from netspec.ir import Graph, Node
from netspec.shapes import Shape

if TYPE_CHECKING:
    from netspec.analysis import Step
    from netspec.ops import Saved
    from netspec.sizes import DimSizes, Formulas

BYTES_PER_ELEMENT = 4  # float32
ID_BYTES = 8  # int64 token ids


@dataclass(slots=True)
class LayerReport:
    """One layer's analysis: shapes are per sample, batch excluded."""

    name: str
    op: str
    torch: str | None
    inputs: list[str]
    shape: Shape
    params: int
    trainable: int
    buffers: int
    macs: int
    bias_adds: int
    rf: dict[str, list[int | float]] | None
    node: Node
    attention_macs: int = 0
    """The share of `macs` in attention's products (scores, weights times values)."""
    scores: int = 0
    """Elements of the attention scores per sample (heads x T x S)."""
    input_shapes: tuple[Shape, ...] = ()
    """The shapes of its inputs, for a label that tells what they imply."""
    training_only: bool = False
    """Whether it runs in training only: only the spec's `auxiliary` outputs read it. Its
    MACs are not the network's (`Report.macs`), but a training step's."""
    grad_input_macs: int = 0
    """MACs of its backward pass giving gradients of activations (its inputs' that require
    grad, attention's inner tensors'), per sample (netspec.train_step)."""
    grad_weight_macs: int = 0
    """MACs of its backward pass giving its weights' gradients, when trained, per sample."""
    recomputed: bool = False
    """Whether the backward pass runs its forward again: a layer of a checkpointed block
    instance (`checkpoint: true`) that torch recomputes (netspec.train_step)."""
    saved_bytes: int = 0
    """Bytes per sample that autograd keeps for the backward pass of what this layer made:
    its output when a layer keeps it (a view's memory is its input's layer's), and the
    tensors it keeps of its own (masks, indices, statistics) (netspec.train_step)."""
    saved_fixed_bytes: int = 0
    """Bytes it keeps for the backward pass whatever the batch (batch norm's statistics)."""
    keeps: Saved | None = None
    """What its op keeps for the backward pass (`Op.saved`); None when it runs none."""
    input_grads: tuple[bool, ...] = ()
    """Per input, whether a gradient flows into it (when it runs a backward)."""
    """The IR node: its op gives the label, its locator the YAML line, when asked for."""

    @property
    def label(self) -> str:
        """The op and its key arguments, as tables and drawings show it."""
        op = self.node.op
        label = op.label_at(self.input_shapes, self.shape) if op is not None else self.node.kind
        return label if self.node.tie is None else f"{label}, tied to {self.node.tie}"

    @property
    def where(self) -> Where:
        return self.node.where

    @property
    def recompute_macs(self) -> int:
        """Its forward MACs run again in the backward pass, per sample."""
        return self.macs if self.recomputed else 0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "torch": self.torch, "inputs": self.inputs,
                "shape": list(self.shape), "params": self.params, "buffers": self.buffers,
                "macs": self.macs, "attention_macs": self.attention_macs,
                "scores": self.scores, "rf": self.rf, "label": self.label,
                "line": self.where.line, "grad_input_macs": self.grad_input_macs,
                "grad_weight_macs": self.grad_weight_macs, "saved_bytes": self.saved_bytes,
                "saved_fixed_bytes": self.saved_fixed_bytes, "recomputed": self.recomputed,
                "recompute_macs": self.recompute_macs, "training_only": self.training_only}


@dataclass(frozen=True, slots=True)
class TrainMemory:
    """The memory of one training step, in bytes (netspec.train_step.memory): float32
    weights (with buffers), their gradients and the optimizer's state (torch's automatic
    mixed precision keeps all three in float32, and keeps a 16-bit copy of each weight it
    casts, `cast_weights`), the input batch with its labels, what autograd keeps for the
    backward pass (`saved`: `saved_per_sample` times the batch, plus `saved_fixed`), and the
    `peak` the step reaches, in its `peak_at` phase: forward, backward or optimizer."""

    batch: int
    precision: str
    weights: int
    gradients: int
    optimizer_state: int
    cast_weights: int
    inputs: int
    saved: int
    saved_per_sample: int
    saved_fixed: int
    peak: int
    peak_at: str

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class LargestBatch:
    """The largest batch whose training step's estimated peak takes at most `margin` of a
    memory `budget` in bytes (0: not even one sample)."""

    batch: int
    budget: int
    margin: float
    device: str

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class StepTime:
    """The estimated time of one training step of `batch` samples on `device`, in seconds
    (netspec.throughput.estimate): its `forward` and `backward` passes and its `optimizer`,
    at the device's `precision` rate (fp32, tf32, bf16 or fp16) and bandwidth, whose
    `source` is a datasheet or a measurement; `compute_bound`, the share of the step spent
    in kernels bound by arithmetic (the rest by memory). An epoch of `samples` training
    samples (`samples_from` says where that figure comes from, or why there is none) takes
    `epoch` seconds. Data loading and the loss are left out."""

    device: str
    source: str
    precision: str
    batch: int
    forward: float
    backward: float
    optimizer: float
    compute_bound: float
    samples: int | None
    samples_from: str
    epoch: float | None

    @property
    def step(self) -> float:
        """Seconds per training step."""
        return self.forward + self.backward + self.optimizer

    @property
    def steps_per_epoch(self) -> int | None:
        """Steps of an epoch (the last may be short)."""
        return None if self.samples is None else -(-self.samples // self.batch)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "steps_per_epoch": self.steps_per_epoch,
                **{name: getattr(self, name) for name in self.__slots__}}


@dataclass(slots=True)
class Row:
    """One row of the table seen from a depth: a layer, or a block instance collapsed (with
    the identical instances chained after it, `count` in all)."""

    name: str
    """The layer's name, or the instances' (`layer3.1–5`)."""
    label: str
    """The layer's op and key arguments, or the block (`bottleneck ×5`)."""
    torch: str | None
    block: str | None
    """The block of collapsed instances; None for a layer."""
    count: int
    """The instances rolled into the row (1 for a layer)."""
    instances: list[str]
    """Their names (none for a layer)."""
    layers: list[str]
    """The layers whose params and MACs the row sums."""
    inputs: list[str]
    """The rows it reads, by name (a collapsed one once)."""
    outputs: list[str]
    """Its layers read by later rows or leaving the network: `layers` for a layer."""
    shapes: list[Shape]
    """The shapes of `outputs`."""
    params: int
    macs: int
    rf: dict[str, list[int | float]] | None
    """The receptive field of the last output."""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "block": self.block, "count": self.count,
                "instances": self.instances, "layers": self.layers, "inputs": self.inputs,
                "outputs": self.outputs, "shape": list(self.shapes[-1]), "params": self.params,
                "macs": self.macs, "rf": self.rf}


@dataclass(slots=True, repr=False)
class Report:
    """Everything `netspec check` knows about a network; `to_dict()` is DESIGN.md's JSON and
    `print(report)` prints the table `netspec check` prints."""

    name: str
    inputs: dict[str, Shape]
    outputs: dict[str, Shape]
    layers: list[LayerReport]
    graph: Graph
    """The analysed IR: its block instances are what `table(depth=N)` collapses."""
    errors: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    formulas: Formulas | None = None
    """For a spec that names its input sizes (`input: [3, H, W]`): every layer's shape,
    params and MACs as formulas in them (netspec.sizes); the table shows them, its JSON
    is `formulas`."""
    sizes: list[DimSizes] | None = None
    """When asked for (`check(..., sizes=True)`): per input dimension, the sizes that work
    and those that read every row (netspec.sizes); its JSON is `sizes`."""
    steps: dict[str, Step] = field(default_factory=dict, repr=False)
    """Each analysed layer's findings with what they depended on, for the next analysis
    of the spec after an edit (`analyse(..., previous=report)`)."""
    optimizer: str | None = None
    """The optimizer `optimizer_flops` counts for (netspec.train_step)."""
    optimizer_flops: int = 0
    """Arithmetic operations of one optimizer step over the trained parameters (per step,
    not per sample; elementwise: torch's flop counter counts none)."""
    memory: TrainMemory | None = None
    """The memory of one training step (netspec.train_step.memory); its JSON `train_memory`."""
    largest_batch: LargestBatch | None = None
    """When asked for with a memory budget (`check --memory 24GiB`): the largest batch whose
    training step fits (netspec.train_step.largest_batch); its JSON `largest_batch`."""
    step_time: StepTime | None = None
    """When asked for with a device's throughput (`check --batch`): the estimated time of a
    step and an epoch (netspec.throughput.estimate); its JSON `step_time`."""
    step_time_hint: str | None = None
    """When a time was asked for but cannot be estimated: why, and what to do (`netspec
    bench`); its JSON `step_time_hint`."""
    auxiliary: dict[str, Shape] = field(default_factory=dict)
    """The shapes of the outputs the network returns after `outputs` in training only."""

    @property
    def token_inputs(self) -> dict[str, int]:
        """The inputs of token ids, each with its vocabulary size."""
        ops = {n: self.graph.nodes[n].op for n in self.inputs}
        return {n: op.vocab for n, op in ops.items() if getattr(op, "vocab", None)}

    @property
    def params(self) -> int:
        return sum(r.params for r in self.layers)

    @property
    def trainable_params(self) -> int:
        return sum(r.trainable for r in self.layers)

    @property
    def buffers(self) -> int:
        return sum(r.buffers for r in self.layers)

    @property
    def macs(self) -> int:
        """MACs of the forward pass in eval mode (without the layers run in training only)."""
        return sum(r.macs for r in self.layers if not r.training_only)

    @property
    def training_only_macs(self) -> int:
        """MACs of the layers only the `auxiliary` outputs read: a training forward's
        besides `macs`."""
        return sum(r.macs for r in self.layers if r.training_only)

    @property
    def attention_macs(self) -> int:
        """The MACs of attention's products (Q K^T, weights times V), part of `macs`."""
        return sum(r.attention_macs for r in self.layers if not r.training_only)

    @property
    def score_bytes(self) -> int:
        """Memory of every attention layer's scores for one sample, in float32: what
        training keeps for the backward pass besides the activations (a fused kernel,
        flash attention, keeps none)."""
        return BYTES_PER_ELEMENT * sum(r.scores for r in self.layers)

    @property
    def macs_with_bias(self) -> int:
        """MACs counting each bias addition as one more (the ptflops convention)."""
        return self.macs + sum(r.bias_adds for r in self.layers if not r.training_only)

    @property
    def flops(self) -> int:
        """Two FLOPs (a multiply and an add) per MAC."""
        return 2 * self.macs

    @property
    def grad_input_macs(self) -> int:
        """The backward's MACs giving gradients of activations, per sample."""
        return sum(r.grad_input_macs for r in self.layers)

    @property
    def grad_weight_macs(self) -> int:
        """The backward's MACs giving the trained weights' gradients, per sample."""
        return sum(r.grad_weight_macs for r in self.layers)

    @property
    def recompute_macs(self) -> int:
        """The forward MACs checkpointed block instances run again in the backward."""
        return sum(r.recompute_macs for r in self.layers)

    @property
    def train_macs(self) -> int:
        """MACs of a training step's forward and backward passes (recomputation and the
        layers run in training only included), per sample."""
        return self.macs + self.training_only_macs + self.grad_input_macs + \
            self.grad_weight_macs + self.recompute_macs

    @property
    def train_flops(self) -> int:
        """Two FLOPs per MAC of `train_macs` (the optimizer's are `optimizer_flops`)."""
        return 2 * self.train_macs

    def step_flops(self, batch: int) -> int:
        """FLOPs of one training step of `batch` samples: both passes and the optimizer."""
        return batch * self.train_flops + self.optimizer_flops

    @property
    def param_bytes(self) -> int:
        """Memory of parameters and buffers in float32."""
        return BYTES_PER_ELEMENT * (self.params + self.buffers)

    @property
    def activation_bytes(self) -> int:
        """Memory of every tensor of one sample's forward pass (inputs and outputs of all
        layers) in float32, token ids in int64: an upper bound on what inference keeps alive."""
        ids = self.token_inputs
        elements = sum(math.prod(s) * (ID_BYTES // BYTES_PER_ELEMENT if n in ids else 1)
                       for n, s in self.inputs.items())
        return BYTES_PER_ELEMENT * (elements + sum(math.prod(r.shape) for r in self.layers
                                                   if not r.training_only))

    def layer(self, name: str) -> LayerReport:
        """The row of the layer `name`."""
        for row in self.layers:
            if row.name == name:
                return row
        raise KeyError(name)

    def rows(self, depth: int | None = None) -> list[Row]:
        """The table's rows below its inputs: one per layer, or with `depth` N one per block
        instance nested deeper than N (top-level instances are at 0), its params and MACs
        summed, identical chained instances rolled into one row, as `draw --depth N`
        collapses them. Only analysed layers count."""
        view = Collapsed(self.graph, depth, {r.name: r.params for r in self.layers},
                         {e.path for e in self.errors})
        by_name = {r.name: r for r in self.layers}
        return [row for unit in view.units if (row := _row(view, unit, by_name)) is not None]

    def to_dict(self, depth: int | None = None) -> dict[str, Any]:
        """DESIGN.md's JSON; with `depth` N it also holds `collapsed`: `{"depth": N, "rows":
        [...]}`, the rows of `rows(N)` (`layers` stays complete)."""
        extra = {} if depth is None else {
            "collapsed": {"depth": depth, "rows": [r.to_dict() for r in self.rows(depth)]}}
        return {
            "name": self.name,
            "inputs": {k: list(v) for k, v in self.inputs.items()},
            "outputs": {k: list(v) for k, v in self.outputs.items()},
            "auxiliary": {k: list(v) for k, v in self.auxiliary.items()},
            "token_inputs": self.token_inputs,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "buffers": self.buffers,
            "macs": self.macs,
            "flops": self.flops,
            "macs_with_bias": self.macs_with_bias,
            "training_only_macs": self.training_only_macs,
            "attention_macs": self.attention_macs,
            "score_bytes": self.score_bytes,
            "param_bytes": self.param_bytes,
            "activation_bytes": self.activation_bytes,
            "grad_input_macs": self.grad_input_macs,
            "grad_weight_macs": self.grad_weight_macs,
            "recompute_macs": self.recompute_macs,
            "train_macs": self.train_macs,
            "train_flops": self.train_flops,
            "optimizer": self.optimizer,
            "optimizer_flops": self.optimizer_flops,
            **({} if self.memory is None else {"train_memory": self.memory.to_dict()}),
            **({} if self.largest_batch is None
               else {"largest_batch": self.largest_batch.to_dict()}),
            **({} if self.step_time is None else {"step_time": self.step_time.to_dict()}),
            **({} if self.step_time_hint is None else {"step_time_hint": self.step_time_hint}),
            "layers": [r.to_dict() for r in self.layers],
            "warnings": [w.to_dict() for w in self.warnings],
            **extra,
            **({} if self.sizes is None else {"sizes": [d.to_json() for d in self.sizes]}),
            **({} if self.formulas is None else {"formulas": self.formulas.to_json()}),
        }

    def table(self, depth: int | None = None, training: bool = False) -> str:
        """An aligned, human table: its inputs, one row per layer, then the totals; with
        `depth` N the rows of `rows(N)`, the totals unchanged. `print(report)` prints
        `table()` (`netspec check`), `print(report.table(depth=1))` what
        `netspec check --depth 1` prints. With `training`, a training step too (`check
        --batch`): each row's kept activations and backward MACs, the step's totals."""
        with gc_paused():
            return render_table(self, depth, training)

    def __str__(self) -> str:
        """The table `netspec check` prints, as `print(report)` shows it."""
        return self.table()

    def __repr__(self) -> str:
        errors = f", {len(self.errors)} errors" if self.errors else ""
        return (f"<Report {_title(self)}; {len(self.layers)} layers, {self.params:,} params, "
                f"{human(self.macs)} MACs{errors}>")

    def summary(self) -> str:
        """The table's first line (inputs -> outputs) and its totals, without the layers."""
        return "\n".join([_title(self), *_totals(self)])


def human(n: float, unit: str = "") -> str:
    """61.71 K, 138.36 M, 15.48 G: a count at a glance."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n:g} {unit}".rstrip()


def human_bytes(n: int) -> str:
    for scale, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return f"{n / scale:.2f} {suffix}"
    return f"{n} B"


def dims_text(shape: Sequence[object]) -> str:
    """`64x56x56`, as tables, hints and messages print a per-sample shape; a dimension
    given by a formula in parentheses: `64x(H-2)x(W-2)`."""
    return "x".join(str(d) if isinstance(d, int) or str(d).isidentifier() else f"({d})"
                    for d in shape)


def _rf(rf: dict[str, list[int | float]] | None) -> str:
    if rf is None:
        return "-"
    return f"{'x'.join(f'{v:g}' for v in rf['size'])} /{'x'.join(f'{v:g}' for v in rf['stride'])}"


def _relative(name: str, reader: str) -> str:
    """`name` as seen from the block of `reader`: inception3a.branch1.relu read by
    inception3a.cat1 shows as branch1.relu."""
    scope = reader.rpartition(".")[0]
    return name[len(scope) + 1:] if scope and name.startswith(scope + ".") else name


def _row(view: Collapsed, unit: Unit, layers: dict[str, LayerReport]) -> Row | None:
    """The row of `unit`, if any of its layers was analysed (inputs have none)."""
    members = [layers[n.name] for n in unit.members if n.name in layers]
    if not members:
        return None
    if unit.group is None:
        r = members[0]
        return Row(r.name, r.label, r.torch, None, 1, [], [r.name], _titles(view, r.inputs),
                   [r.name], [r.shape], r.params, r.macs, r.rf)
    exits = [layers[e] for e in view.exits(unit) if e in layers] or members[-1:]
    return Row(unit.title(), unit.block or "", None, unit.group.block, unit.count,
               unit.instances, [r.name for r in members], _titles(view, view.entries(unit)),
               [r.name for r in exits], [r.shape for r in exits],
               sum(r.params for r in members), sum(r.macs for r in members), exits[-1].rf)


def _titles(view: Collapsed, sources: list[str]) -> list[str]:
    """The rows holding `sources`, by name: a layer as often as it is read (`add: [x, x]`),
    a collapsed instance once."""
    names: list[str] = []
    for source in sources:
        unit = view.unit_of[source]
        if unit.group is None or unit.title() not in names:
            names.append(unit.title())
    return names


def render_table(report: Report, depth: int | None = None, training: bool = False) -> str:
    """The inputs, the rows of `report.rows(depth)`, the totals; with `training` (and a
    report that has a training step), each row's kept activations and backward MACs too."""
    training = training and report.memory is not None
    header = ("layer", "op", "torch", "from", "shape", "params", "MACs", "RF (size /stride)",
              *(("kept for backward", "backward MACs") if training else ()))
    layers = {r.name: r for r in report.layers} if training else {}
    batch = report.memory.batch if report.memory is not None else 0
    formulas = report.formulas if depth is None else None  # in the sizes a spec names
    inputs = report.inputs if formulas is None else formulas.inputs
    rows: list[tuple[str, ...]] = [
        (name, "tokens" if name in report.token_inputs else "input", "", "", dims_text(shape), "",
         "", _rf(None), *(("", "") if training else ())) for name, shape in inputs.items()]
    previous = next(iter(report.inputs), None)
    later = {r.name for r in report.layers if r.training_only}
    training_only_from = None  # the first row run in training only: they are the last
    for r in report.rows(depth):
        if training_only_from is None and set(r.layers) <= later:
            training_only_from = len(rows)
        source = "" if r.inputs == [previous] else ", ".join(_relative(i, r.name) for i in r.inputs)
        shape, params, macs = (r.shapes[-1], r.params, r.macs) if formulas is None else \
            formulas.layers[r.name]
        kept = [] if not training else [layers[n] for n in r.layers]
        rows.append((r.name, r.label, r.torch or "", source,
                     ", ".join(map(dims_text, [*r.shapes[:-1], shape])), _number(params),
                     _number(macs), _rf(r.rf),
                     *((human_bytes(sum(x.saved_bytes * batch + x.saved_fixed_bytes
                                        for x in kept)),
                        _number(sum(x.grad_input_macs + x.grad_weight_macs for x in kept)))
                       if training else ())))
        previous = r.name
    right = {5, 6, 8, 9}
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(cells).rstrip()

    rule = "─" * len(line(header))
    from netspec.sizes import lines as sizes_lines  # it analyses: report is below it

    found = [] if report.sizes is None else ["", *sizes_lines(report.sizes)]
    lines = [line(row) for row in rows]
    if training_only_from is not None:
        lines.insert(training_only_from, "in training only, for the auxiliary outputs:")
    return "\n".join([_title(report), "", line(header), rule, *lines, rule,
                      *_totals(report), *_formula_totals(formulas), *found,
                      *(_training_totals(report) if training else [])])


def _training_totals(report: Report) -> list[str]:
    """One training step: its FLOPs, its memory and where it peaks, the largest batch."""
    memory = report.memory
    assert memory is not None
    batch = memory.batch
    forward = report.macs + report.training_only_macs
    lines = ["", f"training step: batch {batch:,}, {report.optimizer}, {memory.precision}",
             f"  FLOPs   {human(report.step_flops(batch))}: forward "
             f"{human(2 * batch * forward)}, backward "
             f"{human(2 * batch * (report.train_macs - forward))}"
             + (f" ({human(2 * batch * report.recompute_macs)} recomputing checkpointed blocks)"
                if report.recompute_macs else "") + ", "
             f"optimizer {human(report.optimizer_flops)}",
             f"  memory  peak {human_bytes(memory.peak)} (in the {memory.peak_at}): weights "
             f"{human_bytes(memory.weights)}, gradients {human_bytes(memory.gradients)}, "
             f"optimizer state {human_bytes(memory.optimizer_state)}, kept activations "
             f"{human_bytes(memory.saved)}, the batch {human_bytes(memory.inputs)}"
             + (f", 16-bit weights {human_bytes(memory.cast_weights)}"
                if memory.cast_weights else "")]
    found = report.largest_batch
    if found is not None:
        share = f"{found.margin:.0%} of {human_bytes(found.budget)}"
        lines.append(f"  largest batch {found.batch:,} on {found.device}: its peak within {share}"
                     if found.batch else f"  no batch fits in {share} on {found.device}")
    return lines + _time_lines(report.step_time, report.step_time_hint)


def _time_lines(time: StepTime | None, hint: str | None) -> list[str]:
    """The estimated time of a step and an epoch, or why there is none."""
    if time is None:
        return [] if hint is None else [f"  time    unknown: {hint}"]
    lines = [f"  time    {seconds(time.step)} per step: forward {seconds(time.forward)}, "
             f"backward {seconds(time.backward)}, optimizer {seconds(time.optimizer)} "
             f"({time.compute_bound:.0%} of it bound by arithmetic, the rest by memory)",
             f"          on {time.device}, {time.precision}: {time.source}"]
    if time.epoch is None:
        return [*lines, f"  epoch   unknown: {time.samples_from}"]
    return [*lines, f"  epoch   {seconds(time.epoch)}: {time.steps_per_epoch:,} steps of "
                    f"{time.samples:,} samples ({time.samples_from})"]


def scale_steps(reports: Sequence[Report]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """The training steps of a spec's scales, as `check --scale all --batch N` shows them:
    columns, each a title and a cell per report (a column no report fills is left out), and
    the lines under the table saying what the steps share: the optimizer and precision, the
    memory budget, the device's figures and the samples of an epoch."""
    def step(r: Report) -> tuple[str, ...]:
        memory, found, time = r.memory, r.largest_batch, r.step_time
        assert memory is not None
        return (f"{memory.batch:,}", human(r.step_flops(memory.batch)),
                human_bytes(memory.peak), memory.peak_at,
                "" if found is None else f"{found.batch:,}",
                "" if time is None else seconds(time.step),
                "" if time is None or time.epoch is None else seconds(time.epoch))

    titles = ("batch", "step FLOPs", "peak memory", "peaks in", "largest batch", "step time",
              "epoch")
    cells = zip(*map(step, reports), strict=True)
    columns = [(title, list(column)) for title, column in zip(titles, cells, strict=True)
               if any(column)]
    first = reports[0]
    found, time = first.largest_batch, first.step_time
    assert first.memory is not None
    notes = [f"training step: {first.optimizer}, {first.memory.precision}"]
    if found is not None:
        notes.append(f"largest batch: its peak within {found.margin:.0%} of "
                     f"{human_bytes(found.budget)} on {found.device}")
    if time is not None:
        notes.append(f"time on {time.device}, {time.precision}: {time.source}")
        notes.append(f"epoch: unknown: {time.samples_from}" if time.samples is None else
                     f"epoch: {time.samples:,} samples ({time.samples_from})")
    elif first.step_time_hint is not None:
        notes.append(f"time unknown: {first.step_time_hint}")
    return columns, ["", *notes]


def seconds(value: float) -> str:
    """85.2 µs, 0.84 ms, 12.3 s, 4.2 min, 3.1 h: a duration at a glance."""
    for least, scale, unit in ((7200, 3600, "h"), (120, 60, "min"), (1, 1, "s"),
                               (1e-3, 1e-3, "ms")):
        if value >= least:
            return f"{value / scale:.3g} {unit}"
    return f"{value * 1e6:.3g} µs"


def _formula_totals(formulas: Formulas | None) -> list[str]:
    """The totals in the sizes a spec names (the lines above are at their examples)."""
    if formulas is None:
        return []
    at = ", ".join(f"{n} = {v:,}" for n, v in formulas.examples.items())
    return [f"in {', '.join(formulas.examples)} (the numbers above are at {at}):",
            f"  params  {_number(formulas.params)}", f"  MACs    {_number(formulas.macs)}"]


def _number(value: Any) -> str:
    """An int with thousands separators; a formula as it is."""
    return f"{value:,}" if isinstance(value, int) else str(value)


def _title(report: Report) -> str:
    ins = ", ".join(f"{n} {dims_text(s)}" for n, s in report.inputs.items())
    outs = ", ".join(f"{n} {dims_text(s)}" for n, s in report.outputs.items())
    more = ", ".join(f"{n} {dims_text(s)}" for n, s in report.auxiliary.items())
    return f"{report.name}: {ins} → {outs}" + (f"; in training also {more}" if more else "")


def _totals(report: Report) -> list[str]:
    totals = [
        ("params", f"{report.params:,}", human(report.params),
         f"trainable {report.trainable_params:,}"),
        ("buffers", f"{report.buffers:,}", human(report.buffers), ""),
        ("MACs", f"{report.macs:,}", human(report.macs),
         f"FLOPs {human(report.flops)}; with bias adds {report.macs_with_bias:,}"),
        ("memory", human_bytes(report.param_bytes), "params + buffers",
         f"activations {human_bytes(report.activation_bytes)} per sample"),
    ]
    if report.training_only_macs or report.auxiliary:
        totals.insert(3, ("training", f"{report.training_only_macs:,}",
                          human(report.training_only_macs), "more MACs in training only, "
                          "for the auxiliary outputs"))
    if report.attention_macs:
        share = report.attention_macs / report.macs
        totals.insert(3, ("attention", f"{report.attention_macs:,}",
                          human(report.attention_macs), f"{share:.1%} of MACs; scores "
                          f"{human_bytes(report.score_bytes)} per sample"))
    tw = [max(len(t[i]) for t in totals) for i in range(4)]
    return [f"{a.ljust(tw[0])}  {b.rjust(tw[1])}  {c.ljust(tw[2])}  {d}".rstrip()
            for a, b, c, d in totals]
