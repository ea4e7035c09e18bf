"""What one training step costs: a pass over the analysed report (issue 19).

A training step runs the forward pass, the backward pass and the optimizer.

Which tensors require grad is a fact of the graph: the network's inputs do not, nor do
token ids; a layer's output does when the layer has trained parameters (not `frozen`) or
an input it reads the values of does (`Op.differentiable_inputs`: `parameter` reads its
input's batch size only). A layer runs a backward when its output requires grad and
leads to a network output (the loss reads every output); its op's `grad_cost` gives the
MACs of the gradients it computes, into activations and into its weights, per sample.
Frozen layers at the start of a network thus cost nothing backward, and the first
trained layer after them computes no input gradient.

The optimizer's work is elementwise, so torch's FlopCounterMode counts none of it;
`optimizer_ops` counts it per trained parameter from torch's own update code.

The memory of a step (`memory`) follows from the same facts. Autograd keeps, for each
layer that runs a backward, what its op's `saved` names; a tensor kept by several layers
(a convolution's output read by a batch norm and a shortcut) is one block of memory, found
by following views (`Op.aliases`) to the layer whose memory it is. Beside the weights, their
gradients and the optimizer's state, a step holds the input batch and labels, and what the
forward pass keeps until the backward frees it layer by layer while gradients arrive; the
peak is the largest sum over the step, walking the forward, the backward and the optimizer
as netspec's training loop runs them (the gradients of the step before are freed after the
forward, `zero_grad(set_to_none=True)`).

Nothing here imports torch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

from netspec.errors import Diagnostic
from netspec.report import ID_BYTES, TrainMemory

if TYPE_CHECKING:
    from netspec.ops.base import Scratch
    from netspec.report import LayerReport, Report
    from netspec.shapes import Shape

DEFAULT_OPTIMIZER = ("adamw", 0.01)
"""The optimizer (and weight decay) `netspec train` uses when a spec has no `train:`
section: TrainConfig's default, named here so checking such a spec imports no training
config (tests/test_train_flops.py holds the two equal)."""
DEFAULT_BATCH = 64
"""TrainConfig's default `batch_size` (tests/test_train_memory.py holds the two equal)."""
FLOAT = 4  # float32: activations, weights, gradients and optimizer state
HALF = 2  # bfloat16 / float16: the weights autocast casts
MASK_BYTES = {"cpu": FLOAT, "cuda": 1}
"""Bytes of an element of dropout's mask: CPU dropout multiplies by a float mask, CUDA's
native_dropout keeps a bool one."""
STATE_PER_PARAMETER = {"sgd": 0, "sgd_momentum": 1, "adam": 2, "adamw": 2}
"""Optimizer state, in tensors the size of the trained parameters: SGD's momentum buffer,
Adam's exp_avg and exp_avg_sq (and a one-element `step` per parameter tensor, not counted)."""
AUTOCAST_FAMILIES = frozenset({"conv", "linear", "attention"})
"""Layers whose weights autocast casts to 16 bits (convolutions, linear layers, attention's
projections): the cast copy is kept for the backward pass."""


def cost(report: Report, train: Any = None, batch: int | None = None, device: str = "cpu"
         ) -> Report:
    """Fill in `report`'s training-step costs: each layer's `grad_input_macs` and
    `grad_weight_macs`, the `optimizer_flops` of `train.optimizer` (a TrainConfig;
    None: the default optimizer) over the trained parameters, and the step's `memory` at
    `batch` samples (default: `train.batch_size`, 64 without `train:`) on `device`
    (`cpu` or `cuda`: see `memory`). Returns the report."""
    graph = report.graph
    requires = dict.fromkeys(graph.inputs, False)
    reached = _reaching_outputs(report)
    for row in report.layers:  # in topological order
        step, node = report.steps[row.name], row.node
        flows = [requires.get(i, False) and reads for i, reads in
                 zip(node.inputs, step.op.differentiable_inputs(len(node.inputs)), strict=True)]
        own = not node.frozen and row.params > 0  # a tied layer's own: its bias
        weights = not graph.nodes[node.tie].frozen if node.tie is not None else own
        requires[row.name] = step.vocab is None and (weights or own or any(flows))
        if requires[row.name] and row.name in reached:
            key = (tuple(flows), weights)
            if key not in step.backward:
                x = [t.shape for t in step.tensors]
                step.backward[key] = (step.op.grad_cost(x, step.shape, flows, weights),
                                      step.op.saved(x, step.shape, flows, weights))
            (row.grad_input_macs, row.grad_weight_macs), row.keeps = step.backward[key]
            row.input_grads = tuple(flows)
    for conflict in _inplace_conflicts(report):
        (report.errors if conflict.severity == "error" else report.warnings).append(conflict)
    for row in without_gradient(report, reached):
        report.warnings.append(Diagnostic(
            row.node.loc.at(), row.name,
            f"its {row.trainable:,} trained parameters get no gradient: no output depends on "
            "its values, so training leaves them as they start",
            hint="freeze it (`frozen: true`), or read its values in a later layer",
            severity="warning", code="no-gradient"))
    again = {name for layers in replayed(report).values() for name in layers}
    for row in report.layers:
        row.recomputed = row.name in again
    kind, ops = _optimizer(train)
    report.optimizer, report.optimizer_flops = kind, ops * _trained(report)
    memory(report, train, batch, device)
    return report


MARGIN = 0.9
"""The share of a memory budget the largest batch's estimated peak may take: the rest is
for what the estimate leaves out (the allocator's rounding and caching, kernels'
workspaces, the framework's own)."""
BATCH_LIMIT = 2**24
"""The largest batch `largest_batch` considers."""


def largest_batch(report: Report, budget: int, train: Any = None, device: str = "cpu",
                  margin: float = MARGIN) -> int:
    """The largest batch whose training step's estimated peak fits in `margin` of `budget`
    bytes (0: not even one sample). The peak grows with the batch, so a binary search over
    `memory`; the report's memory is left at the batch found (or 1 when none fits)."""
    allowed = margin * budget
    low, high = 0, 1
    while high <= BATCH_LIMIT and memory(report, train, high, device).peak <= allowed:
        low, high = high, 2 * high
    high = min(high, BATCH_LIMIT + 1)
    while high - low > 1:
        middle = (low + high) // 2
        if memory(report, train, middle, device).peak <= allowed:
            low = middle
        else:
            high = middle
    memory(report, train, max(low, 1), device)
    return low


def memory(report: Report, train: Any = None, batch: int | None = None, device: str = "cpu"
           ) -> TrainMemory:
    """The memory of one training step of `batch` samples (default: the spec's
    `train.batch_size`, DEFAULT_BATCH for `auto`) with `train`'s optimizer and precision,
    on `device` (`cpu` or `cuda`: dropout's masks and autocast's choices differ; precision
    `auto` is bf16 autocast on CUDA, as `netspec train` runs it on a GPU with bf16, and
    float32 on the CPU), after `cost` found what runs backward; sets each layer's
    `saved_bytes` and `saved_fixed_bytes` and returns `report.memory`."""
    batch = batch or (train.batch_size if train is not None and train.batch_size != "auto"
                      else DEFAULT_BATCH)  # auto: chosen when training starts
    precision = train.precision if train is not None else "auto"
    low = precision in ("bf16", "fp16") or (precision == "auto" and device == "cuda")
    blocks = _Blocks(report, MASK_BYTES[device], autocast_dtypes(report, device) if low else None)
    weights = report.param_bytes
    trained = _trained(report)
    gradients = FLOAT * trained
    state = FLOAT * trained * _state_tensors(train)
    cast = {r.name: HALF * r.params for r in report.layers
            if low and r.keeps is not None and r.node.op.family in AUTOCAST_FAMILIES}
    casts = sum(cast.values())
    held = weights + state + batch * blocks.inputs  # through the whole step
    forward = held + gradients + casts + batch * blocks.forward_peak()
    backward = held + blocks.backward_peak(report, batch, cast)
    stepping = held + gradients + batch * blocks.outputs + FLOAT * 2 * max(
        (r.trainable for r in report.layers), default=0)
    peak, at = max((forward, "forward"), (backward, "backward"), (stepping, "optimizer"))
    report.memory = TrainMemory(
        batch=batch, precision=precision, weights=weights, gradients=gradients,
        optimizer_state=state, cast_weights=casts, inputs=batch * blocks.inputs,
        saved=batch * blocks.saved + blocks.fixed, saved_per_sample=blocks.saved,
        saved_fixed=blocks.fixed, peak=peak, peak_at=at)
    return report.memory


class Dtypes(NamedTuple):
    """The dtypes of a step's tensors under autocast (`autocast_dtypes`), in bytes."""

    item: dict[str, int]
    """Bytes per element of each value (each network input and layer output)."""
    casts: dict[str, dict[int, int]]
    """Per layer, the copies autocast makes of its inputs: input index -> bytes per element
    of the copy, which the layer reads (and keeps, where it keeps that input) instead."""


def autocast_dtypes(report: Report, device: str) -> Dtypes:
    """Under autocast on `device` (bf16/fp16 mixed precision), the dtype of every tensor
    from each layer's `Op.autocast`: a 16-bit layer casts the float32 inputs whose values
    it reads to 16 bits, a float32 one its 16-bit inputs up; a layer of its inputs' dtype
    takes the widest of them (torch promotes a mixed sum or product, autocast a concat).
    A layer autocast is not described for counts as float32 with a float32 copy of each
    input it reads (an approximation). Token ids count as float32; the network's inputs are
    float32 (the batch as loaded)."""
    item = dict.fromkeys(report.inputs, FLOAT)
    ids = set(report.token_inputs) | {name for name, step in report.steps.items()
                                      if step.vocab is not None}
    casts: dict[str, dict[int, int]] = {}
    for row in report.layers:
        op, inputs = row.node.op, row.node.inputs
        kind = op.autocast(device, row.input_shapes)
        target = HALF if kind == "low" else FLOAT if kind != "same" else None
        if target is not None:
            reads = op.differentiable_inputs(len(inputs))
            copies = {k: target for k, (value, read) in enumerate(zip(inputs, reads, strict=True))
                      if read and value not in ids and (kind is None or item[value] != target)}
            if copies:
                casts[row.name] = copies
        item[row.name] = target if target is not None else max(item[i] for i in inputs)
    return Dtypes(item, casts)


def _state_tensors(train: Any) -> int:
    """The optimizer's state in copies of the trained parameters."""
    if train is None:
        return STATE_PER_PARAMETER[DEFAULT_OPTIMIZER[0]]
    config = train.optimizer
    if config.kind == "sgd":
        return STATE_PER_PARAMETER["sgd_momentum" if config.options.momentum else "sgd"]
    return STATE_PER_PARAMETER[config.kind]


Key = str | tuple[str, str]
"""A block of memory: a layer's (or an input's) output, by name; or `(block, instance)`,
the copy a checkpointed block instance's recomputation makes of a block made inside it."""


class _Blocks:
    """The activations of one sample's step as blocks of memory: each layer's output (a
    view's is its input's block), what autograd keeps, and when each is freed.

    A checkpointed block instance (`checkpoint: true`) keeps nothing of its layers through
    the forward pass: `torch.utils.checkpoint` holds the instance's inputs instead, until
    its backward is done. Just before the backward of its last layer keeping a tensor, its
    layers run again up to that one (torch stops there) and keep what they keep, as new
    copies of what is made inside it; its inputs are not copied.

    Under autocast (`dtypes`) each tensor counts in its dtype: a layer's own tensors and
    its gradients in its output's; the copies autocast makes of a layer's inputs are its
    own, kept where it keeps that input, else freed once it has run."""

    def __init__(self, report: Report, mask_bytes: int, dtypes: Dtypes | None = None) -> None:
        self.item = dtypes.item if dtypes is not None else {}
        self.casts = casts = dtypes.casts if dtypes is not None else {}
        self.order = [r.name for r in report.layers]
        self.rows = {r.name: r for r in report.layers}
        self.region = _regions(report)  # layer -> its checkpointed instance, if in one
        ids = report.token_inputs
        self.size: dict[str, int] = {n: math.prod(s) * (ID_BYTES if n in ids else FLOAT)
                                     for n, s in report.inputs.items()}
        views = _views(report)
        self.block, reordered, strided = views.block, views.reordered, views.strided
        self.copied_slices = {  # in-place layers writing into a view a gradient reaches
            row.name for row in report.layers if _overwrites(row) and any(row.input_grads[:1])
            and row.node.inputs[0] in views.torch_views}
        for row in report.layers:
            if self.block[row.name] == row.name:
                op = row.node.op
                self.size[row.name] = (op.storage(row.input_shapes, row.shape) if op is not None
                                       else math.prod(row.shape)) * self.bytes(row.name)
        self.members = replayed(report, self.region)
        first: dict[str, str] = {}  # instance -> its first layer keeping a tensor
        reads: dict[str, set[str]] = {}  # instance -> the blocks of its inputs
        for region, layers in self.members.items():
            first[region] = next(name for name in layers if _keeps_tensor(self.rows[name]))
            reads[region] = {b for name in layers for b in map(self.block.__getitem__,
                             self.rows[name].node.inputs) if self.region.get(b) != region}
        self.kept: dict[Key, list[str]] = {}  # block -> the layers keeping it
        self.own: dict[str, int] = {}  # layer -> bytes of its own tensors kept
        self.scratch: dict[str, int] = {}  # layer -> bytes its forward makes and frees
        self.partials: dict[str, list[tuple[int, bool]]] = {}  # layer -> its pairs' results
        for row in report.layers:
            keeps = row.keeps is not None
            grads = row.input_grads if keeps else (False,) * len(row.node.inputs)
            item = self.bytes(row.name)
            cast = casts.get(row.name, {})
            kept_casts = set(cast).intersection(row.keeps.inputs) if keeps else set()
            self.scratch[row.name] = item * row.node.op.forward_scratch(
                row.input_shapes, row.shape, grads, keeps and row.trainable > 0,
                row.node.inputs[0] in strided)
            transient = sum(width * math.prod(row.input_shapes[k])
                            for k, width in cast.items() if k not in kept_casts)
            if transient:  # made before the output, freed after it
                made = self.size[row.name] if self.block[row.name] == row.name else 0
                self.scratch[row.name] = max(self.scratch[row.name], made) + transient
            partials = row.node.op.partial_results(row.input_shapes, grads)
            if partials is not None:
                self.partials[row.name] = partials
            if not keeps:
                continue
            names = [row.node.inputs[i] for i in row.keeps.inputs if i not in kept_casts]
            op = row.node.op
            copied = [n for n in names if (op.folds and n in reordered)
                      or (op.contiguous and n in strided)]
            names = [n for n in names if n not in copied] + ([row.name] if row.keeps.output else [])
            for block in {self.block[n] for n in names}:
                self.kept.setdefault(self._key(block, self.region.get(row.name)),
                                     []).append(row.name)
            self.own[row.name] = (item * row.keeps.floats + FLOAT * row.keeps.stats
                                  + ID_BYTES * row.keeps.indices
                                  + min(mask_bytes, item) * row.keeps.masks
                                  + sum(self.bytes(n) * math.prod(self.rows[n].shape)
                                        for n in copied)
                                  + sum(cast[k] * math.prod(row.input_shapes[k])
                                        for k in kept_casts))
        for region, layer in first.items():
            for block in reads[region]:
                keepers = self.kept.setdefault(block, [])
                keepers += [] if layer in keepers else [layer]
        self.copies: dict[str, int] = {}  # instance -> bytes of the copies its layers keep
        for key in self.kept:
            if not isinstance(key, str):
                self.copies[key[1]] = self.copies.get(key[1], 0) + self.size[key[0]]
        for row in report.layers:
            forward = row.name not in self.region
            row.saved_bytes = (self.own.get(row.name, 0) if forward else 0) + \
                (self.size[row.name] if row.name in self.kept else 0)
            row.saved_fixed_bytes = FLOAT * row.keeps.fixed \
                if row.keeps is not None and forward else 0
        self.inputs = sum(self.size[n] for n in report.inputs) + _label_bytes(report)
        self.fixed = sum(r.saved_fixed_bytes for r in report.layers)
        outputs = {self.block[o] for o in trained_outputs(report) if o in self.block}
        self.outputs = sum(self.size[b] for b in outputs if b not in report.inputs)
        self.loss = sum(math.prod(shape) * FLOAT for shape in trained_outputs(report).values())
        """The losses' log-probabilities (cross-entropy keeps them for its backward), and the
        gradients its backward makes: float32, as autocast runs cross-entropy."""
        self.loss_cast = sum(math.prod(shape) * FLOAT for o, shape in
                             trained_outputs(report).items() if self.bytes(o) != FLOAT)
        """The float32 copies autocast makes of 16-bit outputs for the loss."""
        self.saved = sum(r.saved_bytes for r in report.layers) + self.loss
        self.output_blocks = outputs

    def bytes(self, value: str) -> int:
        """Bytes per element of a value's tensor: float32, or its dtype under autocast."""
        return self.item.get(value, FLOAT)

    def _key(self, block: str, region: str | None) -> Key:
        """The block a layer in `region` keeps: a copy when the instance made it."""
        return (block, region) if region is not None and self.region.get(block) == region \
            else block

    def _bytes(self, key: Key) -> int:
        return self.size[key if isinstance(key, str) else key[0]]

    def _walk(self, order: list[str], region: str | None = None) -> tuple[int, int]:
        """Run `order`'s layers forward (in `region`: a checkpointed instance's
        recomputation): each block made is freed at its last reader there unless kept (as
        `region`'s copy); returns the most held at the end of a layer or in its midst
        (`Op.forward_scratch`: a layer keeping nothing may still make, and then free, what
        it would keep, as a norm its statistics), the layers' own kept tensors included, and
        what is held at the end. Linear in the layers: running
        totals."""
        last: dict[str, int] = {}
        for step, name in enumerate(order):
            for i in self.rows[name].node.inputs:
                last[self.block[i]] = step
        freed: dict[int, list[str]] = {}
        for block, step in last.items():
            freed.setdefault(step, []).append(block)
        live: dict[str, int] = {}
        live_bytes = own_bytes = peak = 0
        for step, name in enumerate(order):
            block, held = self.block[name], live_bytes
            if block == name:
                live_bytes += self.size[block] - live.get(block, 0)
                live[block] = self.size[block]
            own_bytes += self.own.get(name, 0) if self.region.get(name) == region else 0
            made = live_bytes + own_bytes if name not in self.partials else \
                self._fold(name, held, own_bytes, freed.get(step, ()), region)
            peak = max(peak, made, held + own_bytes + self.scratch.get(name, 0))
            for gone in freed.get(step, ()):
                if self._key(gone, region) not in self.kept and gone not in self.output_blocks:
                    live_bytes -= live.pop(gone, 0)
        return peak, live_bytes + own_bytes

    def _copied_slices(self, row: LayerReport, scratch: Scratch) -> Scratch:
        """The backward of an in-place layer writing into a view (autograd's CopySlices,
        after the view's own backward, `as_strided`'s): the gradient of the whole tensor
        viewed, made from the view's; its copy, from which the layer's backward reads a
        clone of the view's part, its own input gradient written back into the copy; the
        view's gradient freed by then."""
        viewed = self.size[self.block[row.name]] // self.bytes(self.block[row.name])
        return scratch._replace(floats=scratch.floats + 2 * viewed + math.prod(row.shape))

    def _fold(self, name: str, held: int, own: int, last_read: list[str],
              region: str | None) -> int:
        """The most a layer folding its inputs pairwise holds (`Op.partial_results`): each
        pair's result beside the one before it (freed after it, unless kept); an input of a
        block it reads last freed once its last pair is made (the compiled module's
        forward drops each value after its last use). `held`: the bytes held before it,
        `own` with what it keeps; `last_read`: the blocks it reads last."""
        row = self.rows[name]
        own -= self.own.get(name, 0) if self.region.get(name) == region else 0
        freed_at: dict[str, int] = {}  # block -> the pair after which it is freed
        for k, value in enumerate(row.node.inputs):
            block = self.block[value]
            if block in last_read and self._key(block, region) not in self.kept \
                    and block not in self.output_blocks:
                freed_at[block] = max(1, k)
        results = [(self.bytes(name) * size, keeps) for size, keeps in self.partials[name]]
        most = previous = 0
        for pair, (size, keeps) in enumerate([*results, (self.size[name], False)], start=1):
            most = max(most, held + own + previous + size)
            held -= sum(self.size[b] for b, at in freed_at.items() if at == pair)
            own, previous = (own + size, 0) if keeps else (own, size)
        return most

    def forward_peak(self) -> int:
        """The most the forward pass holds (inputs apart), at the end of a layer: what
        layers kept so far, the blocks later layers or the outputs still read, and the loss's."""
        peak, end = self._walk(self.order)
        return max(peak, end + self.loss + self.loss_cast)

    def recompute(self, region: str) -> tuple[int, int]:
        """What a checkpointed instance's recomputation holds (its inputs apart): at its
        most, and at its end (the copies its layers keep, and their own tensors)."""
        layers = self.members[region]
        peak, _ = self._walk(layers, region)
        return peak, self.copies.get(region, 0) + sum(self.own.get(name, 0) for name in layers)

    def backward_peak(self, report: Report, batch: int, casts: dict[str, int] | None = None
                      ) -> int:
        """The most the backward pass holds (inputs apart): the blocks still kept (a block
        is freed by the backward of the first layer keeping it), each layer's own tensors
        until its backward, the gradients of the weights so far, and the activations'
        gradients in flight: a layer's output's until its backward, its inputs' from it;
        a checkpointed instance's recomputation; for `batch` samples; and `casts`, the bytes
        of each layer's weights autocast cast to 16 bits, kept until its backward. Linear in
        the layers: running totals."""
        kept = {b: len(ls) for b, ls in self.kept.items()}
        keeping: dict[str, list[Key]] = {}  # layer -> the blocks it keeps
        for block, layers in self.kept.items():
            for layer in layers:
                keeping.setdefault(layer, []).append(block)
        live = sum(self.size[b] for b in kept if isinstance(b, str) and b not in report.inputs)
        live += sum(v for name, v in self.own.items() if name not in self.region)
        live += self.outputs - sum(self.size[b] for b in self.output_blocks if b in kept)
        grads = _Gradients()
        for o, shape in trained_outputs(report).items():
            grads.make(o, math.prod(shape) * self.bytes(o))
        # the loss's backward: the log-probabilities beside the gradients of the negative
        # log-likelihood and of the log-softmax, float32 (the latter is the outputs' own
        # gradient but under autocast, which then casts it to their dtype)
        casts = casts or {}
        weights = sum(casts.values())  # and the weights' gradients so far
        peak = batch * (live + 3 * self.loss) + weights
        for name in reversed(self.order):
            row = self.rows[name]
            if row.keeps is None:
                continue
            region = self.region.get(name)
            if region is not None and self.members[region][-1:] == [name]:
                top, end = self.recompute(region)
                peak = max(peak, batch * (live + grads.bytes + top) + weights)
                live += end
            incoming = grads.take(name)  # held until this backward ends
            item = self.bytes(name)  # its gradients' dtype
            copies = {row.node.inputs[k]: width for k, width in self.casts.get(name, {}).items()}
            passes = row.node.op.passes_gradient(row.input_shapes, row.shape)
            reads = row.node.inputs.count  # a value read twice: its gradients summed anew
            made = list({i: (i, through and reads(i) == 1 and self.bytes(i) == item)
                         for i, flows, through in
                         zip(row.node.inputs, row.input_grads, passes, strict=True)
                         if flows and i not in grads.of}.values())
            summed = sum(math.prod(self.rows[i].shape) * self.bytes(i) for i in {  # into one
                i for i, flows in zip(row.node.inputs, row.input_grads, strict=True)
                if flows and i in grads.of})
            new = sum(math.prod(self.rows[i].shape) * copies.get(i, self.bytes(i))
                      for i, through in made if not (through and incoming is not None))
            scratch = row.node.op.backward_scratch(row.input_shapes, row.shape, row.input_grads,
                                                   row.trainable > 0)
            if name in self.copied_slices:
                scratch = self._copied_slices(row, scratch)
            freed = grads.size[incoming] if scratch.frees_output_grad and incoming is not None \
                and grads.users[incoming] == 1 else 0
            held = grads.of.get(row.node.inputs[0])  # freed when the early part is added
            freed += item * scratch.early_input_grad \
                if held is not None and grads.users[held] == 1 else 0
            peak = max(peak, batch * (live + grads.bytes - freed + item * scratch.floats)
                       + weights + FLOAT * scratch.weights)
            weights += FLOAT * row.trainable
            # its input gradients made, those to be added to a gradient already held too
            peak = max(peak, batch * (live + grads.bytes + new + summed
                                      - item * scratch.released) + weights)
            for i, through in made:
                if through and incoming is not None:
                    grads.share(i, incoming)
                else:
                    grads.make(i, math.prod(self.rows[i].shape) * copies.get(i, self.bytes(i)))
            grads.release(incoming)
            live -= self.own.get(name, 0)
            weights -= casts.get(name, 0)
            for block in keeping.get(name, ()):
                kept[block] -= 1
                if kept[block] == 0 and block not in report.inputs \
                        and block not in self.output_blocks:
                    live -= self._bytes(block)
            # the gradients of autocast's copies, cast to their inputs' dtypes: both at once
            recast = {i: math.prod(self.rows[i].shape) * self.bytes(i) for i, _ in made
                      if i in copies}
            peak = max(peak, batch * (live + grads.bytes + sum(recast.values())) + weights)
            for i, size in recast.items():
                grads.release(grads.take(i))
                grads.make(i, size)
            # what it hands a value that already has a gradient is added to it anew, once
            # the layer's backward is done: the two and their sum at once
            peak = max(peak, batch * (live + grads.bytes + 2 * summed) + weights)
        return peak


class _Gradients:
    """The activations' gradients in flight in a backward pass, per sample: one tensor
    may be the gradient of several values (add hands its output's to its inputs)."""

    def __init__(self) -> None:
        self.of: dict[str, int] = {}  # value -> its gradient tensor
        self.size: dict[int, int] = {}  # tensor -> bytes
        self.users: dict[int, int] = {}  # tensor -> the values and backwards holding it
        self.bytes = 0  # in flight: the tensors held

    def make(self, value: str, size: int) -> None:
        tensor = len(self.size)
        self.size[tensor], self.users[tensor] = size, 0
        self.share(value, tensor)

    def share(self, value: str, tensor: int) -> None:
        self.of[value] = tensor
        self.users[tensor] += 1
        self.bytes += self.size[tensor] if self.users[tensor] == 1 else 0

    def take(self, value: str) -> int | None:
        """The gradient a layer's backward reads, held by the backward (until `release`)."""
        return self.of.pop(value, None)

    def release(self, tensor: int | None) -> None:
        if tensor is not None:
            self.users[tensor] -= 1
            self.bytes -= self.size[tensor] if self.users[tensor] == 0 else 0


def _keeps_tensor(row: Any) -> bool:
    """Whether a layer's backward unpacks a saved tensor (an activation, or its weight)."""
    return row.keeps is not None and (any(row.keeps) or row.params > 0)


def _regions(report: Report) -> dict[str, str]:
    """Each layer in a checkpointed block instance: the outermost such instance."""
    graph = report.graph
    if not any(group.checkpoint for group in graph.groups.values()):
        return {}
    return {node.name: region for region, nodes in graph.runs() if region is not None
            for node in nodes}


def replayed(report: Report, regions: dict[str, str] | None = None) -> dict[str, list[str]]:
    """The layers each checkpointed block instance runs again in the backward pass: its
    layers up to the last one keeping a tensor (torch's recomputation stops there), none
    if none keeps one (the instance keeps nothing). `regions`: `_regions(report)`."""
    regions = _regions(report) if regions is None else regions
    inside: dict[str, list[str]] = {}
    last: dict[str, int] = {}
    for row in report.layers:
        region = regions.get(row.name)
        if region is not None:
            inside.setdefault(region, []).append(row.name)
            if _keeps_tensor(row):
                last[region] = len(inside[region])
    return {region: layers[:last[region]] for region, layers in inside.items() if region in last}


def _label_bytes(report: Report) -> int:
    """The labels of one sample for a cross-entropy over the outputs' classes (int64): one
    per position of a sequence's `[T, V]` logits, per pixel of `[C, H, W]`, one for `[C]`."""
    total = 0
    for shape in report.outputs.values():
        classes = shape[-1] if len(shape) == 2 else shape[0]
        total += ID_BYTES * (math.prod(shape) // classes)
    return total


class Views(NamedTuple):
    """Which values share a block of memory, and how (`_views`)."""

    block: dict[str, str]
    """Each value's block: a view's is its input's, an in-place layer's its input's."""
    reordered: set[str]
    """The views a fold or a reshape copies (dims reordered, part of a dim before the last)."""
    strided: set[str]
    """The views laid out otherwise than a tensor of their shape (those, and any part of a
    dim)."""
    torch_views: set[str]
    """The values torch holds as views (`Op.returns_view`; an in-place layer's output is
    its input)."""


def _views(report: Report) -> Views:
    """Which values share a block of memory (a reshape of a reordered view copies)."""
    views = Views({n: n for n in report.inputs}, set(), set(), set())
    block, reordered, strided = views.block, views.reordered, views.strided
    for row in report.layers:
        op, x = row.node.op, row.input_shapes
        shared = op.aliases(x, row.shape) if op is not None else None
        source = block.get(row.node.inputs[shared]) if shared is not None else None
        if source is None or (op.reshapes and row.node.inputs[0] in reordered):
            block[row.name] = row.name  # a result of its own (a view of it, maybe), or a copy
            if shared is None and op is not None \
                    and op.returns_view(x, row.shape, row.node.inputs[0] in strided):
                views.torch_views.add(row.name)
            continue
        block[row.name] = source
        if op.returns_view(x, row.shape) if not _overwrites(row) \
                else row.node.inputs[0] in views.torch_views:
            views.torch_views.add(row.name)
        if (op.reorders_data(x, row.shape) or row.node.inputs[0] in reordered) \
                and math.prod(row.shape[:-1]) > 1:  # else folded and reshaped as it lies
            reordered.add(row.name)
        if row.name in reordered or row.node.inputs[shared] in strided \
                or math.prod(row.shape) < math.prod(x[shared]):
            strided.add(row.name)
    return views


def _trained(report: Report) -> int:
    """The trained parameters a gradient reaches: those the optimizer updates and keeps
    state for (torch skips a parameter whose gradient is None)."""
    return sum(row.trainable for row in report.layers if row.keeps is not None)


def _inplace_conflicts(report: Report) -> list[Diagnostic]:
    """An in-place layer overwrites its input's memory: an error where a later layer reads
    the old value (it would read the new, in inference too); else a warning where an
    earlier layer keeps that memory for its backward pass (torch stops the backward:
    "modified by an inplace operation"), which `netspec train` refuses. One walk over the
    layers: per block of memory, the value made so far that is read latest, and the first
    layer keeping one."""
    if not any(_overwrites(row) for row in report.layers):
        return []
    block = _views(report).block
    position = dict.fromkeys(report.inputs, -1)
    last_reader: dict[str, LayerReport] = {}  # value -> the last layer reading it
    for at, row in enumerate(report.layers):
        position[row.name] = at
        last_reader.update(dict.fromkeys(row.node.inputs, row))
    latest: dict[str, tuple[str, LayerReport]] = {}  # block -> a value made, its last reader
    kept: dict[str, tuple[str, LayerReport]] = {}  # block -> a value, the first layer keeping it

    def made(value: str) -> None:
        reader = last_reader.get(value)
        held = latest.get(block[value])
        if reader is not None and (held is None or position[reader.name] > position[held[1].name]):
            latest[block[value]] = (value, reader)

    for name in report.inputs:
        made(name)
    errors = []
    for at, row in enumerate(report.layers):
        memory = block[row.name]
        read, keeping = latest.get(memory), kept.get(memory)
        if _overwrites(row) and read is not None and position[read[1].name] > at:
            clash, other = read
            why, severity = "reads after it (the new values, not the old)", "error"
        elif _overwrites(row) and keeping is not None:
            clash, other = keeping
            why, severity = "keeps for its backward pass: training would stop", "warning"
        else:
            clash = None
        if clash is not None:
            errors.append(Diagnostic(
                row.node.loc.at("inplace"), row.name,
                f"`inplace: true` overwrites `{clash}`, which `{other.name}` {why}",
                hint="drop `inplace`", severity=severity, code="inplace-conflict"))
        made(row.name)
        if row.keeps is not None:
            for value in [row.node.inputs[i] for i in row.keeps.inputs] + \
                    ([row.name] if row.keeps.output else []):
                kept.setdefault(block[value], (value, row))
    return errors


def _overwrites(row: LayerReport) -> bool:
    """Whether the layer writes its result into its input (`inplace: true`)."""
    return getattr(row.node.op, "inplace", False) and \
        row.node.op.aliases(row.input_shapes, row.shape) == 0


def without_gradient(report: Report, reached: set[str] | None = None) -> list[LayerReport]:
    """The layers with trained parameters that no gradient reaches, in order: no output
    depends on their values (a later layer reads only their shape, as
    `sinusoidal_positions` does, or nothing reads them). `reached`: the layers a gradient
    reaches, if known."""
    reached = _reaching_outputs(report) if reached is None else reached
    return [row for row in report.layers if row.trainable and row.name not in reached]


def _reaching_outputs(report: Report) -> set[str]:
    """The layers a gradient from the outputs (auxiliary ones too) reaches (through inputs
    read for values)."""
    reached = set(trained_outputs(report))
    for row in reversed(report.layers):
        if row.name in reached:
            reads = report.steps[row.name].op.differentiable_inputs(len(row.node.inputs))
            reached.update(i for i, r in zip(row.node.inputs, reads, strict=True) if r)
    return reached


def trained_outputs(report: Report) -> dict[str, Shape]:
    """The outputs a training step's loss reads, by name: the network's, then its
    auxiliary outputs (each trained against the same targets)."""
    return {**report.outputs, **report.auxiliary}


def _optimizer(train: Any) -> tuple[str, int]:
    """The optimizer's name and its operations per trained parameter."""
    if train is None:
        kind, decay = DEFAULT_OPTIMIZER
        return kind, optimizer_ops(kind, weight_decay=decay)
    config = train.optimizer
    options = config.options
    return config.kind, optimizer_ops(config.kind, getattr(options, "momentum", 0.0),
                                      getattr(options, "nesterov", False), options.weight_decay)


def optimizer_ops(kind: str, momentum: float = 0.0, nesterov: bool = False,
                  weight_decay: float = 0.0) -> int:
    """Arithmetic operations per trained parameter element in one step of torch's
    optimizer, after the first, as torch/optim/sgd.py (`_single_tensor_sgd`) and adam.py
    (`_single_tensor_adam`, the CPU's path) write the update. A multiply, an add, a
    division or a square root counts 1, so `add(x, alpha=a)` counts 2:

        sgd    p = p - lr * g                             2
               momentum  b = m * b + g                   +2  (the first step copies g)
               nesterov  g = g + m * b                   +2
               weight decay  g = g + wd * p              +2
        adam   m = m + (1 - b1) * (g - m)   (lerp_)       3
               v = b2 * v + (1 - b2) * g * g              4
               d = sqrt(v) / sqrt(1 - b2^t) + eps         3
               p = p - step * m / d         (addcdiv_)    3
               weight decay  adam: g = g + wd * p        +2;  adamw: p = p * (1 - lr * wd)  +1

    The per-tensor scalars (bias corrections, step size) are not per element: not counted.
    """
    if kind == "sgd":
        ops = 2 + (2 if momentum else 0) + (2 if nesterov else 0)
        return ops + (2 if weight_decay else 0)
    decay = (1 if kind == "adamw" else 2) if weight_decay else 0
    return 3 + 4 + 3 + 3 + decay
