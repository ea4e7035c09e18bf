"""The memory of a training step (netspec.train_step.memory), against torch.

torch is the oracle:

* every op-table row (tests/test_op_tables.py), its input requiring grad and not: what
  autograd keeps for the backward pass of the compiled layer in training mode, seen by
  `torch.autograd.graph.saved_tensors_hooks` (each tensor's storage once, parameters and
  buffers apart), run at two batch sizes to tell the bytes per sample from the bytes kept
  whatever the batch, must be the layer's `Op.saved` rule, byte for byte;
* the optimizer's state is what torch's optimizer holds after a step;
* the zoo's small specs take real training steps (forward, loss, zero_grad, backward,
  optimizer step, as netspec's training loop orders them): the peak of the second step,
  measured by torch's MemTracker (every tensor's storage, on the CPU), must be the
  report's `peak` within 5%.
"""

from __future__ import annotations

import math
import subprocess
import sys
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, assume, given, seed, settings
from hypothesis import strategies as st
from op_harness import OpCase, spec_for, spec_requiring_grad, with_input_grad
from strategies import chain_specs, fork_specs
from test_op_tables import TABLES
from tiers import zoo
from torch.distributed._tools.mem_tracker import MemTracker
from torch.nn import functional
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import netspec
from netspec import train_step
from netspec.report import ID_BYTES, Report
from netspec.training.config import TrainConfig
from netspec.training.optim import make_optimizer

pytestmark = [pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning"),
              pytest.mark.usefixtures("one_thread")]

SPECS = Path(__file__).resolve().parent.parent / "specs"


# -- per op: what autograd keeps ---------------------------------------------------------


def _kept_by_torch(case: OpCase, input_grad: bool, batch: int) -> list[int]:
    """The bytes of each storage autograd keeps in a training-mode forward pass of the
    compiled layer, parameters and buffers apart (and, with `input_grad`, the network's
    inputs, which the prelu before the layer keeps), sorted."""
    spec = spec_requiring_grad(case.op, case.args, case.inputs) if input_grad else \
        spec_for(case.op, case.args, case.inputs, case.vocab)
    model = netspec.build(spec, seed=0).train()
    held = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    xs = [torch.randn(batch, *s) if case.vocab is None else
          torch.randint(0, case.vocab, (batch, *s)) for s in case.inputs]
    if input_grad:
        held |= {x.untyped_storage().data_ptr() for x in xs}
    kept: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in held:
            kept[storage.data_ptr()] = storage.nbytes()
        return t

    torch.manual_seed(0)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(*xs)
    return sorted(kept.values())


def _kept_by_netspec(report: Report) -> tuple[int, int]:
    """(bytes per sample, bytes whatever the batch) the report's last layer keeps: the
    memory of each input and of the output it keeps (one block when the output is a view
    of an input), and its own tensors."""
    row = report.layers[-1]
    if row.keeps is None:
        return 0, 0
    sizes = {**{n: math.prod(s) * (ID_BYTES if n in report.token_inputs else 4)
                for n, s in report.inputs.items()},
             **{r.name: math.prod(r.shape) * 4 for r in report.layers}}
    blocks = {row.node.inputs[i] for i in row.keeps.inputs}
    if row.keeps.output:
        shared = row.node.op.aliases(row.input_shapes, row.shape)
        blocks.add(row.name if shared is None else row.node.inputs[shared])
    own = row.saved_bytes - (sizes[row.name] if row.name in blocks else 0)
    return sum(sizes[b] for b in blocks) + own, row.saved_fixed_bytes


@pytest.mark.parametrize(("case", "input_grad"), with_input_grad(TABLES))
def test_op_row_keeps_what_autograd_keeps(case, input_grad):
    two, three = _kept_by_torch(case, input_grad, 2), _kept_by_torch(case, input_grad, 3)
    assert len(two) == len(three)
    per_sample = sum(three) - sum(two)
    fixed = sum(two) - 2 * per_sample
    spec = spec_requiring_grad(case.op, case.args, case.inputs) if input_grad else \
        spec_for(case.op, case.args, case.inputs, case.vocab)
    assert _kept_by_netspec(netspec.check(spec)) == (per_sample, fixed)


# -- every op row: a real step's peak --------------------------------------------------------

STEP_BATCH = 16


def _loss(y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy as netspec's memory model takes it: over the last dim of `[T, V]`
    logits, over the channels of `[C, *S]` (and of `[C]`)."""
    if y.dim() == 3:
        return functional.cross_entropy(y.reshape(-1, y.shape[-1]), labels.reshape(-1))
    return functional.cross_entropy(y, labels)


def step_peak(spec: netspec.Spec | dict, shape: Any = None, batch: int = STEP_BATCH,
              layout: torch.memory_format | None = None, tracker: str = "memtracker",
              device: str = "cpu", precision: str = "fp32") -> int:
    """The peak over the second of two training steps of `spec` at `shape`, every
    tensor counted (weights, gradients, optimizer state, the batch and labels,
    activations), as netspec's loop runs them: the spec's optimizer (AdamW without
    `train:`), the outputs held to the end (for the accuracy), the loss `_loss`. With
    `layout`, the model and the batch in that memory format; with `precision` bf16 or
    fp16, the forward and the loss under autocast. On the CPU measured by
    torch's MemTracker, or with `tracker="storages"` by `StoragePeak` (MemTracker hooks
    every module's output, and cannot when one requires no grad: a frozen first layer);
    on CUDA by `torch.cuda.max_memory_allocated` (the caching allocator's blocks, kernels'
    workspaces among them)."""
    spec = spec if isinstance(spec, netspec.Spec) else netspec.load(spec)
    report = netspec.check(spec, shape)
    model = netspec.build(spec, seed=0, inputs=shape).train().to(device)
    if layout is not None:
        model = model.to(memory_format=layout)
    optimizer = make_optimizer(spec.training.optimizer,
                               [p for p in model.parameters() if p.requires_grad])
    torch.manual_seed(0)
    ids = report.token_inputs
    xs = [torch.randint(0, ids[n], (batch, *s), device=device) if n in ids
          else torch.randn(batch, *s, device=device) for n, s in report.inputs.items()]
    xs = xs if layout is None else [x.contiguous(memory_format=layout) for x in xs]
    (out,) = report.outputs.values()  # the auxiliary outputs have its shape
    classes, positions = (out[-1], out[:-1]) if len(out) == 2 else (out[0], out[1:])
    labels = torch.randint(0, classes, (batch, *positions), device=device)
    weight = spec.training.auxiliary_weight

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def step() -> None:
        with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
            y = model(*xs)
            main, *auxiliary = y if report.auxiliary else (y,)
            loss = _loss(main, labels)
            for scores in auxiliary:
                loss = loss + weight * _loss(scores, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        assert main.shape[0] == batch

    step()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    held = [model, optimizer, *xs, labels]
    if tracker == "storages":
        with StoragePeak(held) as storages:
            step()
        return storages.peak
    memtracker = MemTracker()
    memtracker.track_external(*held)
    with memtracker:
        step()
    return memtracker.get_tracker_snapshot("peak")[torch.device("cpu")]["Total"]


class StoragePeak(TorchDispatchMode):
    """The most bytes of tensor storage alive at once while it is active: the storages of
    `held` (a module's parameters, buffers and gradients, an optimizer's state, tensors)
    and of every op's outputs, each counted once however many views share it, until it is
    freed."""

    def __init__(self, held: Sequence[Any]) -> None:
        super().__init__()
        self.alive: dict[int, int] = {}  # storage -> bytes
        self.live = self.peak = 0
        for thing in held:
            if isinstance(thing, torch.nn.Module):
                tensors = [*thing.parameters(), *thing.buffers(),
                           *(p.grad for p in thing.parameters() if p.grad is not None)]
            elif isinstance(thing, torch.optim.Optimizer):
                tensors = [v for state in thing.state.values() for v in state.values()]
            else:
                tensors = [thing]
            for tensor in tensors:
                self._count(tensor)

    def _count(self, tensor: Any) -> None:
        if not isinstance(tensor, torch.Tensor):
            return
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self.alive:
            return
        self.alive[key] = storage.nbytes()
        self.live += storage.nbytes()
        self.peak = max(self.peak, self.live)
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.live -= self.alive.pop(key, 0)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            self._count(tensor)
        return out


def _steps(case: OpCase) -> bool:
    """Whether a loss over the row's network has a backward: one output (of floats),
    which a gradient reaches (not `sinusoidal_positions`', which reads no input value)."""
    if case.vocab is not None:
        return False
    report = netspec.check(spec_requiring_grad(case.op, case.args, case.inputs))
    return len(report.outputs) == 1 and report.layers[-1].keeps is not None


def _row_specs() -> list[Any]:
    """Each op row whose network has a backward, after a prelu; and as a network's first
    layer where it has weights to train."""
    rows = [c.values[0] for c in TABLES if _steps(c.values[0])]
    after = [pytest.param(spec_requiring_grad(c.op, c.args, c.inputs), id=f"{c.op}-after-prelu")
             for c in rows]
    first = [spec_for(c.op, c.args, c.inputs) for c in rows]
    return after + [pytest.param(s, id=f"{c.op}-first") for c, s in zip(rows, first, strict=True)
                    if netspec.check(s).trainable_params]


@pytest.mark.slow
@pytest.mark.parametrize("spec", _row_specs())
def test_op_row_step_peaks_as_torch_allocates(spec):
    """Each op row, after a prelu (so a gradient flows into it) and as a network's first
    layer (its weights' gradients alone), a whole AdamW step: what its forward and its
    backward hold in their midst (`Op.forward_scratch`, `Op.backward_scratch`) as well as
    what it keeps."""
    report = netspec.check(spec)
    estimate = train_step.memory(report, None, batch=STEP_BATCH).peak
    truth = step_peak(spec)
    assert abs(estimate - truth) <= TOLERANCE * truth, f"netspec {estimate:,}, torch {truth:,}"


BF16 = TrainConfig(precision="bf16")


def _autocast_described(spec: netspec.Spec | dict) -> bool:
    """Whether CPU autocast is described for the layer a row's network ends with."""
    row = netspec.check(spec).layers[-1]
    return row.node.op.autocast("cpu", row.input_shapes) is not None


@pytest.mark.slow
@pytest.mark.parametrize("spec", [p for p in _row_specs() if _autocast_described(p.values[0])])
def test_op_row_step_peaks_under_autocast_as_torch_allocates(spec):
    """Each op row autocast is described for, under CPU bf16 autocast: the copies autocast
    makes of its inputs, its tensors in its dtype, the float32 loss over 16-bit outputs."""
    report = netspec.check(spec)
    estimate = train_step.memory(report, BF16, batch=STEP_BATCH).peak
    truth = step_peak(spec, precision="bf16", tracker="storages")
    assert abs(estimate - truth) <= TOLERANCE * truth, f"netspec {estimate:,}, torch {truth:,}"


def _rows_and_prelu() -> list[Any]:
    """Each op row of floats, as a network's first layer and after a prelu (16-bit)."""
    rows = [c.values[0] for c in TABLES if c.values[0].vocab is None]
    return [pytest.param(make(c.op, c.args, c.inputs), id=f"{c.op}-{where}")
            for c in rows for make, where in ((spec_for, "first"),
                                              (spec_requiring_grad, "after-prelu"))]


@pytest.mark.slow  # 488 networks built
@pytest.mark.parametrize("spec", _rows_and_prelu())
def test_autocast_gives_each_layer_the_dtype_torch_does(spec):
    """Under CPU autocast each layer whose autocast is described gives its output in the
    dtype torch's gives it: bfloat16, or float32 (a 3-d pool, a sum with a float32 input)."""
    report = netspec.check(spec)
    model = netspec.build(spec, seed=0).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(*(torch.randn(2, *s) for s in report.inputs.values()))
    outputs = dict(zip(report.outputs, y if isinstance(y, tuple) else (y,), strict=True))
    item = train_step.autocast_dtypes(report, "cpu").item
    last = report.layers[-1]
    for name, tensor in outputs.items():
        if last.node.op.autocast("cpu", last.input_shapes) is not None:
            assert tensor.element_size() == item[name], name


MIXING = {  # a layer over a transposed input (MLP-Mixer's token mixing): it keeps a copy
    "linear": {"name": "mixing", "input": [16, 24], "layers": [
        {"transpose": {"dim0": 1, "dim1": 2}}, {"linear": 32}, "gelu",
        {"transpose": {"dim0": 1, "dim1": 2}}, {"linear": 10}]},
    "attention": {"name": "mixing", "input": [16, 24], "layers": [
        {"transpose": {"dim0": 1, "dim1": 2}}, {"multihead_attention": {"heads": 4}},
        {"linear": 10}]},
    "a size-1 dim moved": {"name": "moved", "input": [3, 1, 18], "layers": [  # no copy
        {"transpose": {"dim0": -1, "dim1": -2}}, {"linear": 2}]},
    "group norm": {"name": "grouped", "input": [8, 12, 18], "layers": [
        {"prelu": {}}, {"permute": [0, 2, 3, 1]}, {"groupnorm": 2}, "flatten", {"linear": 4}]},
    "group norm over a crop": {"name": "grouped", "input": [8, 12, 18], "layers": [
        {"prelu": {}}, {"center_crop": [12, 9]}, {"groupnorm": 2}, "flatten", {"linear": 4}]},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", MIXING)
def test_a_transposed_input_is_kept_as_a_copy(name):
    """torch folds the input of a linear layer (or of attention's projections) to a matrix,
    and a transposed one is copied to be folded: the copy is what autograd keeps. Moving a
    dim of one element reorders nothing: no copy. Group norm makes any strided view
    contiguous first, a crop too, and keeps the copy."""
    spec = MIXING[name]
    estimate = train_step.memory(netspec.check(spec), None, batch=STEP_BATCH).peak
    truth = step_peak(spec)
    assert abs(estimate - truth) <= 0.01 * truth, f"netspec {estimate:,}, torch {truth:,}"


@pytest.mark.parametrize("case", TABLES)
def test_an_op_s_output_is_a_view_where_torch_s_is(case):
    """`Op.returns_view` against torch: the output of the module netspec compiles, on
    inputs a gradient reaches (a 1-d max pool then keeps its indices: a 2-d pool's,
    squeezed), has a `_base`, and is not the input itself."""
    spec = spec_for(case.op, case.args, case.inputs, case.vocab)
    report = netspec.check(spec)
    if report.errors:
        pytest.skip("a row netspec refuses (tests/test_op_errors.py)")
    row = report.layers[-1]
    xs = [torch.randn(2, *s, requires_grad=True) * 1 if case.vocab is None
          else torch.randint(0, case.vocab, (2, *s)) for s in case.inputs]
    y = netspec.build(spec, seed=0).train()(*xs)
    assert row.node.op.returns_view(row.input_shapes, row.shape) == \
        (y._base is not None and y is not xs[0])


IN_PLACE_ON_A_VIEW = {  # the whole viewed tensor's gradient, copied, in the backward
    "relu after instance norm": {"name": "t", "input": [8, 16, 16], "layers": [
        {"conv2d": {"out": 16, "kernel": 3, "padding": 1}}, {"instancenorm2d": {}},
        {"relu": {"inplace": True}}, {"conv2d": {"out": 8, "kernel": 3, "padding": 1}},
        {"adaptive_avgpool2d": 1}, "flatten", {"linear": 10}]},
    "hardswish after a flatten": {"name": "t", "input": [8, 16, 16], "layers": [
        {"conv2d": {"out": 16, "kernel": 3, "padding": 1}}, "flatten",
        {"hardswish": {"inplace": True}}, {"linear": 10}]},
    "relu after a 1-d pool": {"name": "t", "input": [8, 64], "layers": [
        {"conv1d": {"out": 16, "kernel": 3}}, {"maxpool1d": 2}, {"relu": {"inplace": True}},
        {"conv1d": {"out": 4, "kernel": 3}}, "flatten", {"linear": 10}]},
    "relu after a linear over tokens": {"name": "t", "input": [32, 16], "layers": [
        {"linear": 64}, {"relu": {"inplace": True}}, {"linear": 16}, {"select": [1, 0]},
        {"linear": 10}]},
    "relu after a reshape that copies (no view)": {"name": "t", "input": [8, 16, 16], "layers": [
        {"conv2d": {"out": 16, "kernel": 3, "padding": 1}}, {"permute": [0, 2, 3, 1]},
        {"reshape": [-1]}, {"relu": {"inplace": True}}, {"linear": 10}]},
    "two in place after a slice": {"name": "t", "input": [8, 32], "layers": [
        {"conv1d": {"out": 16, "kernel": 3}}, {"slice": {"dim": 2, "start": 2}},
        {"dropout": {"p": 0.5, "inplace": True}}, {"relu": {"inplace": True}}, "flatten",
        {"linear": 10}]},
}


@pytest.mark.parametrize("name", IN_PLACE_ON_A_VIEW)
def test_an_in_place_layer_writing_into_a_view_copies_the_viewed_gradient(name):
    """Writing in place into a view (of a tensor a gradient reaches) makes autograd's
    backward build the whole viewed tensor's gradient and a copy of it (CopySlices):
    CycleGAN's `InstanceNorm2d` then `ReLU(inplace=True)` doubles that layer's backward."""
    spec = IN_PLACE_ON_A_VIEW[name]
    estimate = train_step.memory(netspec.check(spec), None, batch=STEP_BATCH).peak
    truth = step_peak(spec)
    assert abs(estimate - truth) <= 0.01 * truth, f"netspec {estimate:,}, torch {truth:,}"


FOLDS = {  # a sum or product of three: pairwise from the left, inputs freed as they are used
    "a product of crops beside a convolution": {"name": "t", "input": [7, 20], "layers": [
        {"dropout1d": {"p": 0.5}, "name": "t0"},
        {"upsample": {"size": 19, "mode": "linear"}, "name": "up"},
        {"conv1d": {"out": 7, "kernel": 4, "padding": 3, "stride": 3, "dilation": 3,
                    "groups": 7}, "name": "conv"},
        {"center_crop": [6], "name": "a", "from": "t0"},
        {"center_crop": [6], "name": "b", "from": "t0"},
        {"mul": None, "from": ["a", "b", "conv"]}, "relu", "flatten", {"linear": 4}]},
    "a sum of three branches": {"name": "t", "input": [4, 16, 16], "layers": [
        {"conv2d": {"out": 8, "kernel": 3, "padding": 1}, "name": "stem"},
        {"conv2d": {"out": 8, "kernel": 1}, "name": "a", "from": "stem"},
        {"conv2d": {"out": 8, "kernel": 3, "padding": 1}, "name": "b", "from": "stem"},
        {"add": None, "from": ["a", "b", "stem"]}, {"adaptive_avgpool2d": 1}, "flatten",
        {"linear": 4}]},
    "a product with a broadcast gate": {"name": "t", "input": [4, 16, 16], "layers": [
        {"conv2d": {"out": 8, "kernel": 3, "padding": 1}, "name": "stem"},
        {"adaptive_avgpool2d": 1, "name": "gate"}, {"sigmoid": None, "name": "g"},
        {"conv2d": {"out": 8, "kernel": 1}, "name": "a", "from": "stem"},
        {"mul": None, "from": ["g", "a", "stem"]}, "flatten", {"linear": 4}]},
}


@pytest.mark.parametrize("name", FOLDS)
def test_a_sum_or_product_of_three_holds_each_pair_as_torch_folds_it(name):
    """`a * b * c` is `(a * b) * c`: the first pair's result beside the last, and the
    compiled module drops an input after its last pair (`Op.partial_results`)."""
    spec = FOLDS[name]
    estimate = train_step.memory(netspec.check(spec), None, batch=STEP_BATCH).peak
    truth = step_peak(spec)
    assert abs(estimate - truth) <= 0.01 * truth, f"netspec {estimate:,}, torch {truth:,}"


@pytest.mark.parametrize("activation", ["sigmoid", "silu", "gelu"])
def test_a_gated_unit_s_backward_holds_both_halves_gradients(activation):
    """glu's product's backward makes both halves' gradients while its output's is held:
    the peak where its input already has a gradient (from the pool beside it) to add to."""
    spec = {"name": "t", "input": [2, 64], "layers": [
        {"conv1d": {"out": 2, "kernel": 3, "padding": 1}, "name": "c"},
        {"glu": {"dim": 2, "activation": activation}, "name": "g"},
        {"adaptive_avgpool1d": 32, "name": "p", "from": "c"},
        {"add": None, "from": ["p", "g"]}, "flatten", {"linear": 4}]}
    estimate = train_step.memory(netspec.check(spec), None, batch=STEP_BATCH).peak
    truth = step_peak(spec)
    assert abs(estimate - truth) <= 0.01 * truth, f"netspec {estimate:,}, torch {truth:,}"


BACKWARDS = {
    # a chunk of one piece is a slice of the whole: its backward makes its input's gradient
    # anew while the select's is held
    "a chunk of one piece": {"name": "t", "input": [1, 1, 4], "layers": [
        {"conv_transpose2d": {"out": 5, "kernel": 1}}, {"chunk": {"chunks": 1, "dim": 2,
                                                                  "index": 0}},
        {"select": {"dim": 1, "index": 0}}]},
    # the pool's input gradient is made while the crop's is held, before the two are added
    "a gradient made to be added": {"name": "t", "input": [4, 36], "layers": [
        {"prelu": {}, "name": "t0"}, {"maxpool1d": 2, "name": "b0"},
        {"center_crop": [18], "name": "b1", "from": "t0"}, {"add": None, "from": ["b0", "b1"]},
        "flatten", {"linear": 4}]},
    # each input's gradient is a slice of the output's, which is held until both are used
    "a concat's gradient": {"name": "t", "input": [4, 36], "layers": [
        {"prelu": {}, "name": "t0"}, {"maxpool1d": 3, "name": "b0"},
        {"center_crop": [12], "name": "b1", "from": "t0"}, {"concat": None, "from": ["b1", "b0"]},
        "flatten", {"linear": 4}]},
    # a crop narrows the dims it cuts, each narrow's backward a tensor (none for the rows)
    "a crop of one dim of two": {"name": "t", "input": [5, 18, 3], "layers": [
        {"prelu": {}}, {"center_crop": [18, 1]}, "flatten", {"linear": 4}]},
    "a crop of two dims": {"name": "t", "input": [4, 20, 24], "layers": [
        {"prelu": {}}, {"center_crop": [12, 10]}, "flatten", {"linear": 4}]},
    # a crop's gradient is a slice of the concat's, freed whole once the crop's first narrow
    # has read it (the other input takes no gradient)
    "a crop of a concat's gradient": {"name": "t", "inputs": {"x": [3, 60, 61], "z": [24, 16, 6]},
        "layers": [{"conv2d": {"out": 3, "kernel": 1}, "from": "x"}, {"center_crop": [16, 6]},
                   {"concat": {"dim": 1}, "from": ["crop1", "z"]}, {"avgpool2d": 2},
                   "flatten", {"linear": 4}]},
    # a frozen scale: its product's backward makes the normalised gradient, keeps nothing
    "a frozen rms norm": {"name": "t", "input": [6, 64], "layers": [
        {"prelu": {}}, {"rmsnorm": {}, "frozen": True}, {"linear": 3}]},
    # instance norm reads a transposed input as a contiguous copy, kept for its weights'
    # gradient or, keeping nothing, freed as the kernel returns
    "an instance norm of a transposed input": {"name": "t", "input": [4, 4, 6], "layers": [
        {"transpose": {"dim0": 1, "dim1": 2}}, {"instancenorm2d": {"affine": True}},
        "flatten", {"linear": 3}]},
    "an instance norm of a transposed input, keeping nothing": {"name": "t",
        "input": [4, 4, 6], "layers": [{"transpose": {"dim0": 1, "dim1": 2}},
                                       {"instancenorm2d": {}}, "flatten", {"linear": 3}]},
    # one query per sequence (the math path, over 5): Q scaled is its product's operand
    "attention of one query per sequence": {"name": "t", "input": [5, 1, 7], "layers": [
        {"multihead_attention": {"heads": 3, "head_dim": 3, "out": 1}}]},
    # a one-row part of a strided view is folded as it lies: attention's projection keeps
    # the view, which holds the silu's whole output
    "attention over one row of a strided view": {"name": "t", "input": [7, 11], "layers": [
        "silu", {"slice": {"dim": 1, "step": 3}},
        {"split": {"sizes": [1, 1, 1], "dim": 1, "index": 1}},
        {"multihead_attention": {"heads": 2, "head_dim": 4, "causal": True}}]},
    # ... but one query rotated is copied for it
    "rotary attention of one query per sequence": {"name": "t", "input": [8, 1, 7], "layers": [
        {"multihead_attention": {"heads": 4, "head_dim": 4, "rotary": True}}]},
    # keeping nothing, a glu still makes its gate's activation beside the product
    "a glu before every trained weight": {"name": "t", "input": [5, 4, 9], "layers": [
        {"glu": {"dim": -2}}, {"conv2d": {"out": 2, "kernel": [3, 2], "padding": [1, 0],
                                          "stride": 2, "bias": False}}]},
    # rms norm hands on the part of its input's gradient through 1/rms first: added at once
    # into the gradient its input already has (the add's, summed for its two reads)
    "an rms norm beside an add reading its input twice": {"name": "t", "input": [6, 2, 5],
        "layers": [{"prelu": {"per_channel": False}, "name": "t0"},
                   {"rmsnorm": {"dims": 3}, "name": "norm"},
                   {"add": None, "from": ["t0", "t0", "norm"]}]},
    # keeping nothing, the square and a row's two tensors, then the output beside 1/rms
    "an rms norm before every trained weight": {"name": "t", "input": [3, 5, 8], "layers": [
        {"rmsnorm": {"dims": 2, "elementwise_affine": False}}, "flatten", {"linear": 3}]},
    # frozen attention: the windows as the map lies, the projection held to the bias add
    "a frozen window attention": {"name": "t", "input": [4, 3, 9], "layers": [
        {"prelu": {}}, {"window_attention": {"heads": 3, "window": [2, 4]}, "frozen": True},
        "flatten", {"linear": 3}]},
    # one token per partition: Q and K scaled are their product's operands, not copied
    "a frozen relative attention of one-token partitions": {"name": "t", "input": [3, 1, 2],
        "layers": [{"prelu": {}}, {"relative_attention": {"heads": 2, "bias": False},
                                   "frozen": True}, "flatten", {"linear": 3}]},
}


@pytest.mark.parametrize("name", BACKWARDS)
def test_a_backward_holds_what_torch_s_does(name):
    """Gradients in flight in a backward pass, as torch's autograd engine holds them
    (counted by storages: MemTracker cannot hook a frozen weight)."""
    spec = BACKWARDS[name]
    estimate = train_step.memory(netspec.check(spec), None, batch=STEP_BATCH).peak
    truth = step_peak(spec, tracker="storages")
    assert abs(estimate - truth) <= 0.01 * truth, f"netspec {estimate:,}, torch {truth:,}"


AUXILIARY = {"name": "t", "input": [3, 16, 16], "outputs": ["fc"], "auxiliary": ["aux1", "aux2"],
             "layers": [
    {"conv2d": {"out": 8, "kernel": 3, "padding": 1}}, {"batchnorm2d": {}}, "relu",
    {"conv2d": {"out": 16, "kernel": 3, "stride": 2}, "name": "deep"}, "relu",
    {"adaptive_avgpool2d": 1}, "flatten", {"dropout": 0.2}, {"linear": 6, "name": "fc"},
    {"adaptive_avgpool2d": 4, "from": "relu1"}, {"conv2d": {"out": 4, "kernel": 1}}, "relu",
    "flatten", {"dropout": 0.7}, {"linear": 6, "name": "aux1"},
    {"adaptive_avgpool2d": 1, "from": "deep"}, "flatten", {"linear": 6, "name": "aux2"}]}


@pytest.mark.parametrize("batch", [4, 32])
def test_auxiliary_outputs_are_part_of_the_step(batch):
    """The training forward runs the auxiliary heads after the rest, the loss adds theirs."""
    report = netspec.check(AUXILIARY)
    assert report.training_only_macs > 0
    estimate = train_step.memory(report, None, batch=batch).peak
    truth = step_peak(AUXILIARY, batch=batch)
    assert abs(estimate - truth) <= 0.01 * truth, f"netspec {estimate:,}, torch {truth:,}"


@pytest.mark.parametrize("pool", [{"maxpool2d": 1}, {"maxpool3d": 1},
                                  {"adaptive_maxpool1d": 96}, {"adaptive_maxpool2d": [12, 8]}],
                         ids=lambda pool: next(iter(pool)))
def test_a_max_pool_keeping_nothing_still_makes_its_indices(pool):
    """Before every trained weight (no backward through it), torch's max pool kernels
    still return their int64 indices beside the output."""
    shape = {"maxpool3d": [4, 4, 12, 8]}.get(next(iter(pool)), [4, 12, 8])
    reshape = [{"flatten": {"start_dim": 2}}] if next(iter(pool)).endswith("1d") else []
    spec = {"name": "t", "input": shape, "layers": [
        *reshape, pool, "flatten", {"linear": 4}]}
    estimate = train_step.memory(netspec.check(spec), None, batch=STEP_BATCH).peak
    truth = step_peak(spec, tracker="storages")
    assert abs(estimate - truth) <= 0.01 * truth, f"netspec {estimate:,}, torch {truth:,}"


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_circular_padding_s_backward_holds_three_padded_copies(dims):
    """Circular padding copies slices of the padded tensor into it (ATen's `_pad_circular`);
    each copy's backward clones the gradient and adds to it the read slice's, scattered
    to the padded size."""
    size = {1: [40], 2: [12, 12], 3: [6, 6, 6]}[dims]
    spec = {"name": "t", "input": [4, *size], "layers": [
        {"prelu": {}}, {f"conv{dims}d": {"out": 4, "kernel": 3, "padding": 2,
                                           "padding_mode": "circular"}},
        "flatten", {"linear": 10}]}
    estimate = train_step.memory(netspec.check(spec), None, batch=STEP_BATCH).peak
    truth = step_peak(spec)
    assert abs(estimate - truth) <= 0.01 * truth, f"netspec {estimate:,}, torch {truth:,}"


def steps_as_measured(report: Report) -> bool:
    """Whether `netspec train` would step the network as `step_peak` does (one output, of
    classes a cross-entropy reads, reaching trained weights) and check finds no mistake in
    it: no in-place layer overwriting what a backward needs, no trained weights that no
    gradient reaches (whose autograd graph torch builds and drops unused)."""
    mistakes = ("inplace-conflict", "no-gradient")
    return not report.errors and len(report.outputs) == 1 and not report.token_inputs \
        and not any(w.code in mistakes for w in report.warnings) \
        and report.trainable_params > 0 and report.layers[-1].keeps is not None


@pytest.mark.slow
@seed(0)
@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(case=st.one_of(chain_specs(), fork_specs()))
def test_a_random_network_s_peak_is_what_torch_allocates(case):
    """Chains and forks of every op (the fuzz tests' strategies), a real AdamW step at 64
    samples (benchmarks/bench_memory_random.py draws more)."""
    report = netspec.check(case.spec)
    assume(steps_as_measured(report))
    estimate = train_step.memory(report, None, batch=64).peak
    truth = step_peak(case.spec, batch=64, tracker="storages")
    assert abs(estimate - truth) <= TOLERANCE * truth, f"netspec {estimate:,}, torch {truth:,}"


@pytest.mark.slow
@seed(0)
@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(case=st.one_of(chain_specs(), fork_specs()))
def test_a_random_network_s_peak_under_autocast_is_what_torch_allocates(case):
    """The same networks under CPU bf16 autocast, those autocast is described for in every
    layer (benchmarks/bench_memory_random.py --precision bf16 draws more)."""
    report = netspec.check(case.spec)
    assume(steps_as_measured(report) and all(
        row.node.op.autocast("cpu", row.input_shapes) is not None for row in report.layers))
    estimate = train_step.memory(report, BF16, batch=64).peak
    truth = step_peak(case.spec, batch=64, tracker="storages", precision="bf16")
    assert abs(estimate - truth) <= TOLERANCE * truth, f"netspec {estimate:,}, torch {truth:,}"


@pytest.mark.slow
def test_the_device_benchmark_sets_estimate_beside_truth():
    """benchmarks/bench_memory_device.py, which a session with a GPU runs for the README,
    works here on the CPU: one row per spec, precision and batch, the estimate and torch's
    peak in MiB, and their difference within the tolerance."""
    script = SPECS.parent / "benchmarks" / "bench_memory_device.py"
    result = subprocess.run([sys.executable, str(script), "--specs", "resnet18", "vit_tiny",
                             "--shape", "3,32,32", "--batches", "2", "8", "--device", "cpu"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines()
            if line.startswith("| ") and "MiB" in line]
    assert [(name.strip(), precision.strip(), int(batch)) for name, precision, batch, *_ in rows] \
        == [(name, precision, batch) for name in ("resnet18", "vit_tiny")
            for precision in ("fp32", "bf16") for batch in (2, 8)]
    for *_, estimate, truth, difference in rows:
        estimate, truth = (float(v.strip().removesuffix(" MiB").replace(",", ""))
                           for v in (estimate, truth))
        assert abs(estimate - truth) <= TOLERANCE * truth
        assert abs(float(difference.strip().rstrip("%"))) <= 100 * TOLERANCE


# -- the optimizer's state -----------------------------------------------------------------

OPTIMIZERS = [{"sgd": {"momentum": 0.0}}, {"sgd": {"momentum": 0.9}}, {"adam": {}}, {"adamw": {}}]


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=str)
def test_optimizer_state_is_what_torch_s_optimizer_holds(optimizer):
    """After a step, the state's tensors the size of a parameter (not Adam's one-element
    `step` counters) add up to the report's `optimizer_state`."""
    spec = netspec.load({"name": "small", "input": [1, 12, 12], "layers": [
        {"conv2d": {"out": 6, "kernel": 5}}, "relu", "flatten", {"linear": 10, "frozen": True}],
        "train": {"optimizer": optimizer}})
    model = netspec.build(spec, seed=0)
    step = make_optimizer(spec.training.optimizer,
                          [p for p in model.parameters() if p.requires_grad])
    model(torch.randn(2, 1, 12, 12)).sum().backward()
    step.step()
    held = sum(t.untyped_storage().nbytes() for state in step.state.values()
               for t in state.values() if isinstance(t, torch.Tensor) and t.numel() > 1)
    memory = train_step.memory(netspec.check(spec), spec.training, batch=2)
    assert memory.optimizer_state == held
    assert memory.gradients == 4 * sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_a_spec_without_train_takes_the_default_batch_and_optimizer():
    assert TrainConfig().batch_size == train_step.DEFAULT_BATCH
    report = netspec.check(SPECS / "lenet5.yaml")
    assert report.memory.batch == train_step.DEFAULT_BATCH
    assert report.memory.optimizer_state == 2 * 4 * report.trainable_params  # AdamW
    assert report.to_dict()["train_memory"]["peak"] == report.memory.peak


# -- the zoo: a real step's peak -----------------------------------------------------------

STEPS = {  # spec: input shape (None: its own), batch; most where activations weigh most
    "lenet5": (None, 64),
    "resnet18": ((3, 32, 32), 16),
    "vit_tiny": (None, 8),
    "gpt_tiny": (None, 8),
    "mobilenet_v2": ((3, 96, 96), 16),
    "mobilenet_v3_small": ((3, 32, 32), 4),
    "efficientnet_b0": ((3, 96, 96), 16),
    "densenet121": ((3, 64, 64), 16),
    "convnext_tiny": ((3, 64, 64), 16),
    "inception_v3": ((3, 75, 75), 8),
    "regnet_y_400mf": ((3, 32, 32), 4),
    "shufflenet_v2_x1_0": ((3, 32, 32), 4),
    "squeezenet1_1": ((3, 64, 64), 4),
    "vgg11_bn": ((3, 32, 32), 4),
    "swin_t": ((3, 64, 64), 16),
    "unet": ((1, 188, 188), 2),
}
TOLERANCE = 0.05


@pytest.mark.parametrize(("name", "shape", "batch"),
                         zoo((name, *STEPS[name]) for name in STEPS), ids=str)
def test_the_zoo_s_peak_is_what_torch_allocates(name, shape, batch):
    spec = netspec.load(SPECS / f"{name}.yaml")
    memory = train_step.memory(netspec.check(spec, shape), spec.training, batch=batch)
    truth = step_peak(spec, shape, batch)
    assert abs(memory.peak - truth) <= TOLERANCE * truth, \
        f"netspec {memory.peak:,} bytes ({memory.peak_at}), torch {truth:,}"


def test_precision_auto_is_bf16_autocast_on_cuda_and_float32_on_the_cpu():
    """As `netspec train` resolves it: the estimate of `auto` is bf16's on CUDA, fp32's on
    the CPU (a conv net's 16-bit activations make the two differ)."""
    spec = netspec.load(SPECS / "lenet5.yaml")
    report = netspec.check(spec)

    def peak(precision: str, device: str) -> int:
        train = spec.training.model_copy(update={"precision": precision})
        return train_step.memory(report, train, 64, device).peak

    assert peak("auto", "cuda") == peak("bf16", "cuda") < peak("fp32", "cuda")
    assert peak("auto", "cpu") == peak("fp32", "cpu") > peak("bf16", "cpu")


AUTOCAST_STEPS = ("lenet5", "resnet18", "vit_tiny", "gpt_tiny", "mobilenet_v2",
                  "efficientnet_b0", "convnext_tiny", "inception_v3", "unet")


@pytest.mark.parametrize("name", zoo(AUTOCAST_STEPS), ids=str)
def test_the_zoo_s_peak_under_autocast_is_what_torch_allocates(name):
    """The same steps under CPU bf16 autocast: 16-bit activations and copies, float32
    statistics and loss, 16-bit copies of the weights each kept until its backward."""
    shape, batch = STEPS[name]
    spec = netspec.load(SPECS / f"{name}.yaml")
    train = (spec.training or TrainConfig()).model_copy(update={"precision": "bf16"})
    memory = train_step.memory(netspec.check(spec, shape), train, batch=batch)
    truth = step_peak(spec, shape, batch, precision="bf16", tracker="storages")
    assert abs(memory.peak - truth) <= TOLERANCE * truth, \
        f"netspec {memory.peak:,} bytes ({memory.peak_at}), torch {truth:,}"


@pytest.mark.parametrize("spec", [
    {"name": "t", "input": [3, 8, 8], "layers": [{"conv2d": {"out": 4, "kernel": 3}},
                                                 {"batchnorm2d": {}}, "relu", "flatten",
                                                 {"linear": 5}]},
    {"name": "t", "input": [6, 8], "layers": [{"multihead_attention": {"heads": 2}}]},
], ids=["conv", "attention"])
def test_storage_peak_counts_as_memtracker_does(spec):
    """The two measurers of a real step agree to the byte."""
    assert step_peak(spec, tracker="storages") == step_peak(spec)


def test_weights_no_gradient_reaches_hold_no_gradient_or_optimizer_state():
    """torch's optimizers skip a parameter whose gradient is None: the early linear layer
    (read by `sinusoidal_positions` for its shape only) counts in the weights alone, and
    in a real step's peak as netspec estimates it."""
    spec = {"name": "t", "input": [8], "layers": [
        {"linear": 8, "name": "early"}, {"reshape": [2, 4]}, {"sinusoidal_positions": {"dim": 4}},
        "flatten", {"linear": 3, "name": "head"}]}
    report = netspec.check(spec)
    memory = train_step.memory(report, None, batch=STEP_BATCH)
    head, early = 8 * 3 + 3, 8 * 8 + 8
    assert memory.weights == 4 * (head + early)
    assert (memory.gradients, memory.optimizer_state) == (4 * head, 2 * 4 * head)
    assert abs(memory.peak - step_peak(spec)) <= TOLERANCE * memory.peak
