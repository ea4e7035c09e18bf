"""Auxiliary outputs (`auxiliary:`): what a network returns after its outputs in training
only, as GoogLeNet's and Inception's auxiliary classifiers. The layers only they read run
in training only: `check` counts their MACs apart, the built module and the Python export
skip them in eval mode, the training step trains them, drawings dash them."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as functional
from click.testing import CliRunner
from test_export import import_file
from torch.utils.flop_counter import FlopCounterMode

import netspec
import netspec.train_step
from netspec.backends.source import python_source
from netspec.cli import main
from netspec.export import export

SPEC = """\
name: side
input: [3, 12, 12]
auxiliary: [side_fc]
layers:
  - conv2d: {out: 8, kernel: 3}
  - relu
  - {conv2d: {out: 4, kernel: 1}, name: side}
  - {adaptive_avgpool2d: 1, name: side_pool}
  - {flatten: {}, name: side_flat}
  - {linear: 5, name: side_fc}
  - {maxpool2d: 2, from: relu1}
  - flatten
  - {linear: 5, name: fc}
"""
TRAINING_ONLY = ["side", "side_pool", "side_flat", "side_fc"]


def _conv_macs(out: int, size: int, inputs: int, kernel: int) -> int:
    return out * size * size * inputs * kernel * kernel


def test_check_counts_the_layers_run_in_training_only_apart() -> None:
    report = netspec.check(SPEC)
    assert report.outputs == {"fc": (5,)} and report.auxiliary == {"side_fc": (5,)}
    assert report.macs == _conv_macs(8, 10, 3, 3) + 8 * 5 * 5 * 5
    assert report.training_only_macs == _conv_macs(4, 10, 8, 1) + 4 * 5
    assert [r.name for r in report.layers if r.training_only] == TRAINING_ONLY
    assert [r.name for r in report.layers][-4:] == TRAINING_ONLY  # they run last
    model = netspec.build(SPEC, seed=0)
    assert report.params == sum(p.numel() for p in model.parameters())
    x = torch.randn(1, 3, 12, 12)
    for mode, macs in ((False, report.macs), (True, report.macs + report.training_only_macs)):
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model.train(mode)(x)
        assert counter.get_total_flops() == 2 * macs
    data = report.to_dict()
    assert data["auxiliary"] == {"side_fc": [5]}
    assert data["training_only_macs"] == report.training_only_macs
    assert [r["name"] for r in data["layers"] if r["training_only"]] == TRAINING_ONLY


def test_a_training_step_counts_them_as_torch_s_flop_counter_does() -> None:
    """The training forward runs them, the backward reaches them from their losses."""
    report = netspec.check(SPEC)
    netspec.train_step.cost(report)
    model = netspec.build(SPEC, seed=0).train()
    x, labels = torch.randn(4, 3, 12, 12), torch.randint(0, 5, (4,))
    with FlopCounterMode(display=False) as forward:
        out, side = model(x)
        loss = functional.cross_entropy(out, labels) + 0.3 * functional.cross_entropy(side, labels)
    with FlopCounterMode(display=False) as backward:
        loss.backward()
    assert forward.get_total_flops() == 2 * 4 * (report.macs + report.training_only_macs)
    assert backward.get_total_flops() == \
        2 * 4 * (report.train_macs - report.macs - report.training_only_macs)
    assert all(report.layer(name).grad_weight_macs for name in ("side", "side_fc"))


def test_the_table_shows_them_under_their_own_heading() -> None:
    table = str(netspec.check(SPEC))
    lines = table.splitlines()
    assert lines[0] == "side: input 3x12x12 → fc 5; in training also side_fc 5"
    heading = lines.index("in training only, for the auxiliary outputs:")
    assert [line.split()[0] for line in lines[heading + 1:heading + 5]] == TRAINING_ONLY
    training = next(line for line in lines if line.startswith("training "))
    assert f"{_conv_macs(4, 10, 8, 1) + 4 * 5:,}" in training


def test_the_built_module_runs_them_in_training_only() -> None:
    model = netspec.build(SPEC, seed=0)
    called: list[str] = []
    for name in TRAINING_ONLY:
        model.get_submodule(name).register_forward_hook(lambda *_, n=name: called.append(n))
    x = torch.randn(2, 3, 12, 12)
    scores = model.eval()(x)
    assert isinstance(scores, torch.Tensor) and scores.shape == (2, 5) and called == []
    out, side = model.train()(x)
    assert called == TRAINING_ONLY
    torch.testing.assert_close(out, scores)
    features = model.relu1(model.conv1(x))
    want = model.side_fc(torch.flatten(model.side_pool(model.side(features)), 1))
    torch.testing.assert_close(side, want)
    called.clear()
    interpreted = torch.fx.Interpreter(model.eval()).run(x)  # as torch.export runs a graph
    torch.testing.assert_close(interpreted, scores)
    assert called == []
    program = torch.export.export(model.eval(), (x,))
    assert len(program.graph_signature.output_specs) == 1
    torch.testing.assert_close(program.module()(x), scores)
    copied = copy.deepcopy(model)  # the code survives a copy (EMA, SWA)
    assert isinstance(copied.eval()(x), torch.Tensor) and len(copied.train()(x)) == 2


def test_the_python_export_runs_them_in_training_only(tmp_path) -> None:
    path = tmp_path / "side_net.py"
    path.write_text(python_source(netspec.load(SPEC)))
    written = import_file(path).Side()
    built = netspec.build(SPEC, seed=0)
    written.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(2, 3, 12, 12)
    torch.testing.assert_close(written.eval()(x), built.eval()(x))
    for ours, theirs in zip(written.train()(x), built.train()(x), strict=True):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize(("text", "line", "message"), [
    (SPEC.replace("auxiliary: [side_fc]", "auxiliary: [side_fx]"), 3, "unknown layer `side_fx`"),
    (SPEC.replace("auxiliary: [side_fc]", "auxiliary: [side_fc]\noutputs: [fc, side_fc]"), 3,
     "`side_fc` is listed twice in `outputs` and `auxiliary`"),
    (SPEC.replace("auxiliary: [side_fc]", "auxiliary: [fc]"), 3,
     "`fc` is the last layer, the output when `outputs` names none, and an auxiliary output"),
    (SPEC.replace("auxiliary: [side_fc]", "auxiliary: [relu1]"), 3,
     "`relu1` runs always (the outputs read it), so it cannot be an auxiliary output"),
])
def test_a_bad_auxiliary_list_is_an_error_at_its_line(text: str, line: int, message: str) -> None:
    with pytest.raises(netspec.SpecError) as caught:
        netspec.check(text)
    (error,) = caught.value.errors
    assert error.where.line == line and message in error.message


def test_a_checkpointed_block_cannot_hold_them() -> None:
    text = """\
name: mixed
input: [4]
auxiliary: [both.side]
blocks:
  both:
    layers:
      - {linear: 4, name: main}
      - {linear: 2, from: input, name: side}
      - {relu: {}, from: main}
layers:
  - {both: {}, checkpoint: true, name: both}
"""
    with pytest.raises(netspec.SpecError) as caught:
        netspec.check(text)
    (error,) = caught.value.errors
    assert error.where.line == 11 and "`both` holds `both.side`" in error.message


def test_the_drawing_dashes_what_runs_in_training_only() -> None:
    source = netspec.draw(SPEC).source
    dashed = [line for line in source.splitlines() if "dashed" in line and "->" not in line]
    assert len(dashed) == len(TRAINING_ONLY)
    assert "auxiliary output 5, in training" in source


def _train(tmp_path, name: str, text: str) -> list[dict]:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(text)
    result = CliRunner().invoke(main, ["train", str(spec), "--out", str(tmp_path / name)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]


TRAIN = "train: {data: {digits: {}}, epochs: 2, batch_size: 64, device: cpu}\n"
DIGITS = SPEC.replace("[3, 12, 12]", "[1, 8, 8]").replace("linear: 5", "linear: 10")


@pytest.mark.slow
def test_training_adds_the_weighted_auxiliary_losses(tmp_path) -> None:
    """With `auxiliary_weight: 0` the run is the run without the auxiliary head (its layers
    are made after the others, so every other weight starts alike); with a weight, the
    training loss grows by it."""
    plain = DIGITS.replace("auxiliary: [side_fc]\n", "").replace(
        "  - {conv2d: {out: 4, kernel: 1}, name: side}\n"
        "  - {adaptive_avgpool2d: 1, name: side_pool}\n"
        "  - {flatten: {}, name: side_flat}\n"
        "  - {linear: 10, name: side_fc}\n", "")
    without = _train(tmp_path, "plain", plain + TRAIN)
    zero = _train(tmp_path, "zero", DIGITS + TRAIN.replace("device", "auxiliary_weight: 0, device"))
    keys = ("train_loss", "train_acc", "val_loss", "val_acc")
    assert [[e[k] for k in keys] for e in zero] == [[e[k] for k in keys] for e in without]
    weighted = _train(tmp_path, "weighted", DIGITS + TRAIN)
    assert weighted[0]["train_loss"] > zero[0]["train_loss"] + 0.3 * math.log(10) / 2


def test_training_needs_auxiliary_outputs_of_the_output_s_shape(tmp_path) -> None:
    spec = tmp_path / "wide.yaml"
    spec.write_text(DIGITS.replace("{linear: 10, name: side_fc}", "{linear: 7, name: side_fc}")
                    + TRAIN)
    result = CliRunner().invoke(main, ["train", str(spec), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "the auxiliary output `side_fc` is 7 and the output `fc` 10" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_an_export_computes_the_eval_forward_alone(tmp_path, fmt: str) -> None:
    """Exports are for inference: the output alone, without the auxiliary heads."""
    model = netspec.build(SPEC, seed=0).eval()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    out = export(netspec.load(SPEC), fmt, tmp_path / f"side.{fmt}", weights=tmp_path / "weights.pt")
    x = torch.randn(2, 3, 12, 12)
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out))
        assert [o.name for o in session.get_outputs()] == ["fc"]
        (got,) = session.run(None, {"input": x.numpy()})
        got = torch.from_numpy(got)
    else:
        got = torch.export.load(out).module()(x)
    torch.testing.assert_close(got, model(x), rtol=1e-5, atol=1e-5)


def test_batch_norm_folds_in_the_auxiliary_heads_too() -> None:
    text = SPEC.replace("{conv2d: {out: 4, kernel: 1}, name: side}",
                        "{conv2d: {out: 4, kernel: 1}, name: side}\n  - {batchnorm2d: {}, name: side_bn}")
    model = netspec.build(text, seed=0)
    model.train()(torch.randn(8, 3, 12, 12))  # running statistics of their own
    folded = netspec.fuse(text, model)
    assert not any(k.startswith("side_bn.") for k in folded.state_dict())
    x = torch.randn(2, 3, 12, 12)
    torch.testing.assert_close(folded.eval()(x), model.eval()(x))
    assert [t.shape for t in folded.train()(x)] == [(2, 5), (2, 5)]


def test_the_formulas_in_named_sizes_leave_them_out_too() -> None:
    text = SPEC.replace("[3, 12, 12]", "[3, H, W]")
    plain = text.replace("auxiliary: [side_fc]\n", "").replace(
        "".join(f"  - {line}\n" for line in (
            "{conv2d: {out: 4, kernel: 1}, name: side}", "{adaptive_avgpool2d: 1, name: side_pool}",
            "{flatten: {}, name: side_flat}", "{linear: 5, name: side_fc}")), "")
    ours, theirs = netspec.check(text).formulas, netspec.check(plain).formulas
    assert ours is not None and theirs is not None
    assert str(ours.macs) == str(theirs.macs) and ours.params != theirs.params
