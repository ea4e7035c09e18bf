"""Activation checkpointing: `checkpoint: true` on a block call.

A checkpointed block instance keeps only its inputs for the backward pass and recomputes
its layers there (`torch.utils.checkpoint`). torch is the oracle for everything netspec
says of it:

* the compiled module (and the Python export) computes what the same spec without
  checkpointing computes: outputs, every gradient, and the buffers after the step (batch
  norm's running statistics move once, though the block runs twice);
* the backward's FLOPs, recomputation included, are what torch's flop counter counts;
* the peak memory of a real step is what MemTracker measures, and smaller than without.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from op_harness import training_counter
from test_train_memory import TOLERANCE, step_peak

import netspec
from netspec import throughput, train_step
from netspec.backends.source import python_source
from netspec.errors import SpecError

SPECS = Path(__file__).resolve().parent.parent / "specs"
pytestmark = pytest.mark.usefixtures("one_thread")



def residual_net(checkpoint: Any = True, dropout: float = 0.2) -> dict[str, Any]:
    """A small residual network: a stage of two blocks (each copy its own checkpoint), a
    down-sampling block with a projection and dropout, a head outside any block."""
    block = {"params": {"width": None, "stride": 1}, "layers": [
        {"conv2d": {"out": "width", "kernel": 3, "stride": "stride", "padding": 1,
                    "bias": False}},
        "batchnorm2d", "relu",
        {"dropout": dropout},
        {"conv2d": {"out": "width", "kernel": 3, "padding": 1, "bias": False}},
        {"batchnorm2d": {}, "name": "residual"},
        {"conv2d": {"out": "width", "kernel": 1, "stride": "stride"}, "from": "input",
         "name": "project", "if": "stride != 1"},
        {"identity": {}, "from": "input", "name": "project", "if": "stride == 1"},
        {"add": ["residual", "project"]},
        "relu",
    ]}
    return {"name": "residual_net", "input": [3, 16, 16], "blocks": {"basic": block},
            "params": {"checkpoint": checkpoint},
            "layers": [
                {"conv2d": {"out": 8, "kernel": 3, "padding": 1}},
                {"basic": {"width": 8}, "repeat": 2, "name": "stage", "checkpoint": "checkpoint"},
                {"basic": {"width": 16, "stride": 2}, "name": "down", "checkpoint": "checkpoint"},
                {"adaptive_avgpool2d": 1}, "flatten", {"linear": 10, "name": "fc"},
            ]}


# -- the language --------------------------------------------------------------------


def test_each_instance_is_its_own_checkpoint_and_nested_ones_are_part_of_it():
    spec = residual_net()
    spec["blocks"]["outer"] = {"layers": [{"basic": {"width": 8}, "checkpoint": True}, "relu"]}
    spec["layers"].insert(2, {"outer": {}, "name": "wrap", "checkpoint": True})
    graph = netspec.check(spec).graph
    regions = {node.name: graph.checkpoint_of(node) for node in graph.layers()}
    assert regions["conv1"] is None and regions["fc"] is None
    assert regions["stage.0.conv1"] == "stage.0" and regions["stage.1.relu2"] == "stage.1"
    assert regions["down.project"] == "down"
    assert regions["wrap.basic1.conv1"] == regions["wrap.relu1"] == "wrap"
    assert not graph.groups["stage"].checkpoint  # the stage: a name over the copies
    assert graph.groups["wrap.basic1"].checkpoint  # recomputed as part of `wrap`


def test_a_parameter_switches_it_and_it_changes_no_count():
    on, off = (netspec.check(netspec.load(residual_net(), params={"checkpoint": flag}))
               for flag in (True, False))
    assert {g for g, group in on.graph.groups.items() if group.checkpoint} == \
        {"stage.0", "stage.1", "down"}
    assert not any(group.checkpoint for group in off.graph.groups.values())
    assert (on.params, on.buffers, on.macs) == (off.params, off.buffers, off.macs)
    assert on.recompute_macs > 0 and off.recompute_macs == 0


@pytest.mark.parametrize(("value", "message"), [
    ("yes please", "`yes please` is not a valid expression"),
    (3, "`checkpoint` must be true or false, found 3"),
    ("width + 1", "`checkpoint` must be true or false, found 5"),
])
def test_a_value_that_is_not_a_truth_value_is_refused_at_its_line(value, message):
    text = ("name: bad\ninput: [4]\nparams: {width: 4}\nblocks:\n  b:\n    layers: [{linear: 4}]\n"
            f"layers:\n  - b: {{}}\n    checkpoint: {value}\n")
    with pytest.raises(SpecError) as caught:
        netspec.load(text)
    (error,) = caught.value.errors
    assert message in error.message
    assert (error.where.line, error.where.column) == (9, 17)


def test_on_an_op_s_layer_it_says_that_a_block_call_takes_it():
    text = "name: bad\ninput: [4]\nlayers:\n  - linear: 4\n    checkpoint: true\n"
    with pytest.raises(SpecError) as caught:
        netspec.load(text)
    (error,) = caught.value.errors
    assert "`linear` is an op, not a block" in error.message
    assert "with `checkpoint: true`" in error.hint
    assert error.where.line == 5


def test_an_unknown_op_gets_one_error_not_two():
    text = "name: bad\ninput: [4]\nlayers:\n  - linearr: 4\n    checkpoint: true\n"
    with pytest.raises(SpecError) as caught:
        netspec.load(text)
    assert [e.code for e in caught.value.errors] == ["unknown-op"]


# -- the same function ---------------------------------------------------------------


def _step(model: torch.nn.Module, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    model.train()
    torch.manual_seed(seed)  # dropout's masks: the same draws in both models
    y = model(x)
    y.square().mean().backward()
    return y


def _assert_same_step(a: torch.nn.Module, b: torch.nn.Module) -> None:
    b.load_state_dict(a.state_dict())
    x = torch.randn(4, 3, 16, 16)
    ya, yb = _step(a, x), _step(b, x)
    torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-6)
    grads_a = {k: p.grad for k, p in a.named_parameters()}
    grads_b = {k: p.grad for k, p in b.named_parameters()}
    assert grads_a.keys() == grads_b.keys()
    for key, grad in grads_a.items():
        torch.testing.assert_close(grad, grads_b[key], rtol=1e-5, atol=1e-6, msg=key)
    for key, value in a.state_dict().items():  # running statistics moved once
        torch.testing.assert_close(value, b.state_dict()[key], rtol=0, atol=0, msg=key)


def test_the_module_computes_what_it_computes_without_checkpointing():
    checkpointed = netspec.build(residual_net(True), seed=0)
    plain = netspec.build(residual_net(False), seed=0)
    assert list(checkpointed.state_dict()) == list(plain.state_dict())
    assert "checkpointed" in checkpointed.code and "checkpointed" not in plain.code
    _assert_same_step(plain, checkpointed)


def test_the_python_export_checkpoints_alike(tmp_path):
    path = tmp_path / "residual_net_export.py"
    path.write_text(python_source(residual_net(True)))
    assert "checkpointed(stage_0, " in path.read_text()
    loader = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(loader)
    sys.modules[path.stem] = module
    loader.loader.exec_module(module)
    _assert_same_step(netspec.build(residual_net(False), seed=0), module.ResidualNet())


def test_inference_is_a_plain_call():
    model = netspec.build(residual_net(True), seed=0).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        y = model(x)
    torch.testing.assert_close(y, netspec.build(residual_net(False), seed=0).eval()(x))


# -- what it costs -------------------------------------------------------------------


def test_the_backward_counts_the_recomputation_torch_runs():
    """The backward runs each instance's layers again, up to the last keeping a tensor:
    torch's counter counts those forward MACs in the backward, besides the gradients."""
    spec, batch = residual_net(True, dropout=0.0), 4
    report = netspec.check(spec)
    model = netspec.build(spec, seed=0).train()
    x = torch.randn(batch, 3, 16, 16)
    with training_counter() as forward:
        loss = model(x).square().mean()
    with training_counter() as backward:
        loss.backward()
    assert forward.get_total_flops() == 2 * batch * report.macs
    assert backward.get_total_flops() == 2 * batch * (report.train_macs - report.macs)
    replayed = {r.name for r in report.layers if r.recompute_macs}
    assert "stage.0.conv1" in replayed and "fc" not in replayed
    plain = netspec.check(residual_net(False, dropout=0.0))
    assert report.train_macs - plain.train_macs == report.recompute_macs


MEMORY = [  # spec, input shape (None: its own), batch
    ("residual_net", None, 32),
    ("resnet18", (3, 32, 32), 16),
    ("vit_tiny", None, 16),
    ("gpt_tiny", None, 8),
]


def _checkpointed(name: str, folder: Path) -> netspec.Spec:
    """The spec with its blocks checkpointed: resnet18's stage calls marked (a copy in
    `folder`), the transformers' `checkpoint` parameter set."""
    if name == "residual_net":
        return netspec.load(residual_net(True))
    if name != "resnet18":
        return netspec.load(SPECS / f"{name}.yaml", params={"checkpoint": True})
    shutil.copytree(SPECS / "blocks", folder / "blocks")
    text = (SPECS / "resnet18.yaml").read_text()
    path = folder / "resnet18.yaml"
    path.write_text(text.replace("    name: layer", "    checkpoint: true\n    name: layer"))
    return netspec.load(path)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "shape", "batch"), MEMORY, ids=[m[0] for m in MEMORY])
def test_the_peak_is_what_torch_allocates_and_less_is_kept(name, shape, batch, tmp_path):
    spec = _checkpointed(name, tmp_path)
    report = netspec.check(spec, shape)
    assert report.recompute_macs > 0
    memory = train_step.memory(report, spec.training, batch=batch)
    truth = step_peak(spec, shape, batch)
    assert abs(memory.peak - truth) <= TOLERANCE * truth, \
        f"netspec {memory.peak:,} bytes ({memory.peak_at}), torch {truth:,}"
    plain = netspec.load(SPECS / f"{name}.yaml") if name != "residual_net" else \
        netspec.load(residual_net(False))
    assert memory.saved < train_step.memory(netspec.check(plain, shape), plain.training,
                                            batch=batch).saved


def test_the_time_estimate_runs_the_recomputed_forward_again():
    """A checkpointed block's layers take their forward time once more in the backward:
    the forward is unchanged, the backward longer by at most the whole forward."""
    figures = throughput.profile("h100-sxm")
    on, off = (netspec.check(residual_net(flag), batch=32) for flag in (True, False))
    time_on, time_off = (throughput.estimate(r, None, figures) for r in (on, off))
    assert time_on.forward == time_off.forward
    assert time_off.backward < time_on.backward <= time_off.backward + time_on.forward
    recomputed = {r.name for r in on.layers if r.recomputed}
    assert recomputed and all(r.recompute_macs == r.macs for r in on.layers
                              if r.name in recomputed)
