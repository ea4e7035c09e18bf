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

Nothing here imports torch. The training memory of issue 19 belongs here too: what a step
keeps per layer follows from the same facts (what requires grad, what runs backward).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netspec.ir import Graph

if TYPE_CHECKING:
    from netspec.report import Report

DEFAULT_OPTIMIZER = ("adamw", 0.01)
"""The optimizer (and weight decay) `netspec train` uses when a spec has no `train:`
section: TrainConfig's default, named here so checking such a spec imports no training
config (tests/test_train_flops.py holds the two equal)."""


def cost(report: Report, train: Any = None) -> Report:
    """Fill in `report`'s training-step costs: each layer's `grad_input_macs` and
    `grad_weight_macs`, and the `optimizer_flops` of `train.optimizer` (a TrainConfig;
    None: the default optimizer) over the trained parameters. Returns the report."""
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
            if key not in step.grads:
                step.grads[key] = step.op.grad_cost([t.shape for t in step.tensors], step.shape,
                                                    flows, weights)
            row.grad_input_macs, row.grad_weight_macs = step.grads[key]
    kind, ops = _optimizer(train)
    report.optimizer, report.optimizer_flops = kind, ops * report.trainable_params
    return report


def _reaching_outputs(report: Report) -> set[str]:
    """The layers a gradient from the outputs reaches (through inputs read for values)."""
    graph: Graph = report.graph
    reached = set(graph.outputs)
    for row in reversed(report.layers):
        if row.name in reached:
            reads = report.steps[row.name].op.differentiable_inputs(len(row.node.inputs))
            reached.update(i for i, r in zip(row.node.inputs, reads, strict=True) if r)
    return reached


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
