"""The FLOPs of a training step (netspec.train_step): forward, backward and optimizer.

torch is the oracle: its flop counter, completed for the CPU (`op_harness.training_counter`:
the CPU's flash attention kernel counted with torch's own fused-kernel formulas, a grouped
convolution's weight gradient counted once per group), counts what a real step runs.

* every op-table row (tests/test_op_tables.py) runs its compiled layer forward and backward,
  its input requiring grad and not: the counter must count the report's forward MACs plus
  its backward MACs, two FLOPs each;
* frozen layers compute no weight gradients, and no input gradient flows back past them;
* the zoo's small specs take a real training step (forward, loss, backward, optimizer
  step): every layer's module, and the whole, count what the report says;
* the optimizer's elementwise operations, which the counter does not count, are counted
  op by op from the aten calls of torch's own optimizer step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from op_harness import (
    BATCH,
    check_row_training,
    counted_step,
    random_inputs,
    spec_for,
    training_counter,
    with_input_grad,
)
from test_op_tables import TABLES
from tiers import zoo
from torch.nn import functional
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

import netspec
from netspec import train_step
from netspec.backends.torchfx import class_name
from netspec.report import Report
from netspec.training.config import TrainConfig
from netspec.training.optim import make_optimizer

pytestmark = [pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning"),
              pytest.mark.usefixtures("one_thread")]

SPECS = Path(__file__).resolve().parent.parent / "specs"



@pytest.mark.parametrize(("case", "input_grad"), with_input_grad(TABLES))
def test_op_row_training_step(case, input_grad):
    check_row_training(case, input_grad)


# -- what requires grad ----------------------------------------------------------------


def _per_layer(spec: Any, counter: FlopCounterMode, inputs: Any = None
               ) -> tuple[Report, dict[str, int]]:
    """The report, and what the counter counted in each layer's module (its submodules
    included), forward and backward."""
    report = netspec.check(spec, inputs)
    root = class_name(report.name)
    counts = counter.get_flop_counts()
    found = {row.name: sum(counts.get(f"{root}.{row.name}", {}).values())
             for row in report.layers if row.torch is not None}
    return report, found


def _expected(report: Report) -> dict[str, int]:
    """Each layer's module: the report's MACs of both passes, two FLOPs each."""
    return {row.name: 2 * BATCH * (row.macs + row.grad_input_macs + row.grad_weight_macs)
            for row in report.layers if row.torch is not None}


FROZEN_CHAIN = {"name": "chain", "input": [3, 12, 12], "layers": [
    {"conv2d": {"out": 8, "kernel": 3}, "frozen": True},
    "relu",
    {"conv2d": {"out": 8, "kernel": 3, "groups": 2}, "frozen": True},
    {"conv2d": {"out": 16, "kernel": 3}},
    "relu",
    {"conv2d": {"out": 16, "kernel": 3}, "frozen": True},
    "flatten",
    {"linear": 10},
]}


def test_no_gradient_flows_back_past_frozen_layers():
    """The two frozen convolutions at the start compute nothing backward; the first trained
    one no input gradient; the frozen one after it its input gradient only."""
    counter = counted_step(netspec.build(FROZEN_CHAIN, seed=0),
                           random_inputs([(3, 12, 12)], None))
    report, found = _per_layer(FROZEN_CHAIN, counter)
    assert found == _expected(report)
    conv1, _, conv2, conv3, _, conv4, _, fc = report.layers
    assert conv1.grad_input_macs == conv1.grad_weight_macs == 0
    assert conv2.grad_input_macs == conv2.grad_weight_macs == 0
    assert (conv3.grad_input_macs, conv3.grad_weight_macs) == (0, conv3.macs)
    assert (conv4.grad_input_macs, conv4.grad_weight_macs) == (conv4.macs, 0)
    assert (fc.grad_input_macs, fc.grad_weight_macs) == (fc.macs, fc.macs)
    assert counter.get_total_flops() == 2 * BATCH * report.train_macs


FROZEN = [
    ("conv2d", {"out": 6, "kernel": 3, "groups": 2}, [(4, 9, 9)]),
    ("conv_transpose2d", {"out": 4, "kernel": 3, "stride": 2}, [(6, 5, 5)]),
    ("linear", {"out": 7}, [(5, 9)]),
    ("multihead_attention", {"heads": 2}, [(6, 8)]),  # the CPU's flash kernel
    ("multihead_attention", {"heads": 2, "dropout": 0.5}, [(6, 8)]),  # the math path
    ("multihead_attention", {"heads": 2}, [(6, 8), (5, 4)]),
    ("window_attention", {"heads": 2, "window": 3, "shift": 1}, [(6, 6, 8)]),
]


@pytest.mark.parametrize("input_grad", [False, True], ids=["no_input_grad", "input_grad"])
@pytest.mark.parametrize(("op", "args", "inputs"), FROZEN, ids=str)
def test_a_frozen_layer_computes_no_weight_gradient(op, args, inputs, input_grad):
    """Frozen: no weight gradients; with an input requiring grad (a trained prelu before
    it), the input gradients and, in attention, the products that lead to them."""
    layer = {**spec_for(op, args, inputs)["layers"][0], "frozen": True}
    if input_grad:
        names = ["a", "b"][:len(inputs)]
        spec = {"name": "t", "inputs": dict(zip(names, map(list, inputs), strict=False)),
                "layers": [*({"prelu": {}, "name": f"{n}_grad", "from": n} for n in names),
                           {**layer, "from": [f"{n}_grad" for n in names]}]}
    else:
        spec = {**spec_for(op, args, inputs), "layers": [layer]}
    torch.manual_seed(0)
    counter = counted_step(netspec.build(spec, seed=0), random_inputs(inputs, None))
    report, found = _per_layer(spec, counter)
    row = report.layers[-1]
    assert row.grad_weight_macs == 0
    assert (row.grad_input_macs > 0) == input_grad
    assert found == _expected(report)
    assert counter.get_total_flops() == 2 * BATCH * report.train_macs


@pytest.mark.parametrize("which", [0, 1], ids=["queries", "context"])
@pytest.mark.parametrize("dropout", [0.0, 0.5], ids=["flash", "math"])
def test_frozen_cross_attention_with_one_input_requiring_grad(which, dropout):
    """The flash kernel's backward computes every gradient; the math path's only those of
    the tensors requiring grad."""
    inputs = [(6, 8), (5, 4)]
    grad = ["a", "b"][which]
    spec = {"name": "t", "inputs": {"a": [6, 8], "b": [5, 4]}, "layers": [
        {"prelu": {}, "name": "g", "from": grad},
        {"multihead_attention": {"heads": 2, "dropout": dropout}, "frozen": True,
         "from": ["g", "b"] if which == 0 else ["a", "g"]}]}
    torch.manual_seed(0)
    counter = counted_step(netspec.build(spec, seed=0), random_inputs(inputs, None))
    report, found = _per_layer(spec, counter)
    assert found == _expected(report)
    assert counter.get_total_flops() == 2 * BATCH * report.train_macs


def test_matmul_computes_the_gradient_of_each_input_that_requires_one():
    spec = {"name": "t", "inputs": {"a": [2, 1, 4, 3], "b": [1, 6, 3, 5]}, "layers": [
        {"prelu": {}, "name": "g", "from": "a"}, {"matmul": ["g", "b"]}]}
    counter = counted_step(netspec.build(spec, seed=0),
                           random_inputs([(2, 1, 4, 3), (1, 6, 3, 5)], None))
    report = netspec.check(spec)
    matmul = report.layer("matmul1")
    assert (matmul.grad_input_macs, matmul.grad_weight_macs) == (matmul.macs, 0)
    assert counter.get_total_flops() == 2 * BATCH * report.train_macs


def test_a_layer_read_only_for_its_shape_passes_no_gradient():
    """sinusoidal_positions reads its input's length: the trained layer before it runs no
    backward, and the network's output requires no grad."""
    spec = {"name": "t", "input": [5, 8], "layers": [{"linear": 8}, "sinusoidal_positions"]}
    report = netspec.check(spec)
    assert report.train_macs == report.macs


# -- the zoo ---------------------------------------------------------------------------

STEPS = {  # spec: input shape (None: its own), batch
    "lenet5": (None, 2),
    "resnet18": ((3, 32, 32), 2),
    "vit_tiny": (None, 2),
    "gpt_tiny": (None, 2),
    "unet": ((1, 188, 188), 1),
}


def _loss(y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against random classes along the last dim (logits, tokens' logits,
    a segmentation's channels moved last)."""
    logits = y.movedim(1, -1) if y.dim() == 4 else y
    logits = logits.reshape(-1, logits.shape[-1])
    return functional.cross_entropy(logits, torch.randint(0, logits.shape[-1], logits.shape[:1]))


@pytest.mark.parametrize(("name", "shape", "batch"),
                         zoo((name, *STEPS[name]) for name in STEPS), ids=str)
def test_the_zoo_s_training_step_counts_what_torch_counts(name, shape, batch):
    """Forward and loss, backward, optimizer step (the spec's, as `netspec train` makes it),
    each under its own counter: every layer's module counts the report's forward MACs; the
    backward counts the report's backward MACs, the convolutions' (one aten op) and the
    rest's; the optimizer step counts nothing. (The module tracker cannot tell layers apart
    in the backward: a residual's identity or merge gets the branch's gradients too.)"""
    spec = netspec.load(SPECS / f"{name}.yaml")
    model = netspec.build(spec, seed=0, inputs=shape)
    report = netspec.check(spec, shape)
    optimizer = make_optimizer(spec.training.optimizer,
                               [p for p in model.parameters() if p.requires_grad])
    torch.manual_seed(0)
    x = random_inputs(list(report.inputs.values()), report.token_inputs.get("input"))
    x = [t[:batch] for t in x]
    with training_counter() as forward:
        loss = _loss(model(*x))
    with training_counter() as backward:
        loss.backward()
    with training_counter() as stepping:
        optimizer.step()
    _, found = _per_layer(spec, forward, shape)
    assert found == {r.name: 2 * batch * r.macs for r in report.layers if r.torch is not None}
    assert forward.get_total_flops() == 2 * batch * report.macs
    convolutions = sum(r.grad_input_macs + r.grad_weight_macs for r in report.layers
                       if r.op.startswith("conv"))
    counted = backward.get_flop_counts()["Global"]
    assert counted.get(torch.ops.aten.convolution_backward, 0) == 2 * batch * convolutions
    assert backward.get_total_flops() == 2 * batch * (report.train_macs - report.macs)
    assert stepping.get_total_flops() == 0


# -- the optimizer ---------------------------------------------------------------------

OPTIMIZERS = [
    {"sgd": {"momentum": 0.0}},
    {"sgd": {"momentum": 0.9}},
    {"sgd": {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}},
    {"adam": {}},
    {"adam": {"weight_decay": 1e-4}},
    {"adamw": {}},
    {"adamw": {"weight_decay": 0.0}},
]


class ElementwiseOps(TorchDispatchMode):
    """Counts the arithmetic of elementwise aten calls on tensors of more than one element
    (a parameter's, not a per-tensor scalar's): one per multiply, add, division or square
    root and element; a scalar factor (`alpha`, `value`, a lerp's weight) is a multiply."""

    BASE: ClassVar[dict[str, int]] = {"add": 1, "sub": 1, "mul": 1, "div": 1, "sqrt": 1, "neg": 1,
                                       "lerp": 3, "addcmul": 2, "addcdiv": 2}

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func._overloadpacket.__name__.rstrip("_")
        if name in self.BASE and isinstance(out, torch.Tensor) and out.numel() > 1:
            scaled = kwargs.get("alpha", kwargs.get("value", 1)) != 1
            self.ops += (self.BASE[name] + scaled) * out.numel()
        return out


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=str)
def test_optimizer_flops_are_torch_s_update_op_by_op(optimizer):
    """The second step (the first makes the state) of torch's optimizer on a small net runs
    `optimizer_ops` operations per trained parameter; the spec's `train.optimizer` gives
    the report's `optimizer_flops`."""
    spec = netspec.load({"name": "small", "input": [1, 12, 12], "layers": [
        {"conv2d": {"out": 6, "kernel": 5}}, "relu", {"maxpool2d": 2}, "flatten",
        {"linear": 10}], "train": {"optimizer": optimizer}})
    report = netspec.check(spec)
    model = netspec.build(spec, seed=0)
    step = make_optimizer(spec.training.optimizer, model.parameters())
    for counting in (False, True):
        model(torch.randn(2, 1, 12, 12)).sum().backward()
        if counting:
            with ElementwiseOps() as ops:
                step.step()
        else:
            step.step()
    config = spec.training.optimizer
    per_parameter = train_step.optimizer_ops(config.kind, getattr(config.options, "momentum", 0),
                                             getattr(config.options, "nesterov", False),
                                             config.options.weight_decay)
    # older torch (2.6) writes AdamW apart from Adam (`_single_tensor_adamw`), and there
    # scales the weights by 1 - lr * weight_decay even when the decay is 0: one more
    separate_adamw = not issubclass(torch.optim.AdamW, torch.optim.Adam)
    extra = int(config.kind == "adamw" and not config.options.weight_decay and separate_adamw)
    assert ops.ops == (per_parameter + extra) * report.trainable_params
    assert report.optimizer_flops == per_parameter * report.trainable_params
    assert report.optimizer == config.kind


def test_a_spec_without_train_counts_the_default_optimizer():
    default = TrainConfig().optimizer
    assert (default.kind, default.options.weight_decay) == train_step.DEFAULT_OPTIMIZER
    report = netspec.check(SPECS / "resnet18.yaml")
    assert report.optimizer == default.kind
    assert report.optimizer_flops == train_step.optimizer_ops(
        default.kind, weight_decay=default.options.weight_decay) * report.trainable_params


def test_torch_s_counter_counts_a_grouped_weight_gradient_once_per_group():
    """Why `op_harness.TRAINING_COUNTS` divides conv_backward_flop's weight term by `groups`:
    as torch ships it, the counter counts a grouped convolution's weight gradient `groups`
    times (here 4), netspec once. When torch divides it out (pytorch/pytorch#183405), this
    fails: drop the entry then."""
    spec = spec_for("conv2d", {"out": 8, "kernel": 3, "groups": 4, "bias": False}, [(8, 6, 6)])
    row = netspec.check(spec).layers[-1]
    with FlopCounterMode(display=False) as counter:
        netspec.build(spec, seed=0)(torch.randn(BATCH, 8, 6, 6)).sum().backward()
    counted = counter.get_flop_counts()["Global"][torch.ops.aten.convolution_backward]
    assert (row.grad_input_macs, row.grad_weight_macs) == (0, row.macs)
    assert counted == 2 * BATCH * 4 * row.grad_weight_macs
