"""Parameters chosen without editing the spec: `--set NAME=VALUE` and `load(..., params=)`
over the spec's `params`, and named size variants, `scales:` with `--scale NAME` (or
`--scale all`, a row per scale). Expected numbers follow from the layers' arithmetic:
a linear layer of `in` features to C classes holds C * (in + 1) parameters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from tiers import ZOO, zoo

import netspec
from netspec.cli import main

SPECS = Path(__file__).resolve().parent.parent / "specs"
RESNET50 = SPECS / "resnet50.yaml"
LENET = SPECS / "lenet5.yaml"
WIDE = """\
name: wide
input: [3, 8, 8]
params: {width: 1.0, classes: 10, c: "make_divisible(16 * width, 8)", act: relu}
scales:
  small: {width: 0.5}
  big: {width: 2, classes: 20}
layers:
  - conv2d: [c, 3]                    # c x 6 x 6
  - flatten
  - linear: classes
"""
"""c = make_divisible(16 * width, 8) channels of 6x6, then `classes` outputs: params
c * (3 * 9 + 1) + classes * (36 c + 1)."""


def wide_params(width: float, classes: int) -> int:
    c = max(8, int(16 * width + 4) // 8 * 8)  # make_divisible(16 * width, 8)
    return c * (3 * 9 + 1) + classes * (36 * c + 1)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def position(path: Path, pattern: str) -> tuple[int, int]:
    """The line and column (1-based) where `pattern` first matches in the file."""
    text = path.read_text()
    at = re.search(pattern, text, re.M).start()
    return text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)


# -- --set and params= -------------------------------------------------------------------


def test_resnet50_with_ten_classes_needs_no_edit():
    """torchvision's fc: 2048 features to 1000 classes; to 10 it holds 2048 * 990 + 990
    fewer parameters, and nothing else changes."""
    result = run("check", RESNET50, "--set", "classes=10", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["outputs"] == {"fc": [10]}
    default = netspec.check(RESNET50)
    assert default.params == 25_557_032
    assert report["params"] == default.params - (2048 * 1000 + 1000) + (2048 * 10 + 10)
    assert report["macs"] == default.macs - 2048 * 990


def classified(report: netspec.Report) -> tuple[int, ...]:
    (shape,) = report.outputs.values()
    return shape


CLASSIFIERS = sorted(ZOO - {"gpt2", "gpt_tiny"})
"""Every zoo spec but the GPTs, whose class count is their vocabulary (`vocab`), tied to
the embedding of the token ids they read."""


@pytest.mark.parametrize("name", zoo(CLASSIFIERS))
def test_every_zoo_classifier_takes_its_class_count_as_a_param(name: str):
    """The layer that scores the classes changes alone: C * (in + 1) parameters for C
    classes (a linear layer, or the 1x1 conv of SqueezeNet, FCN, DeepLabV3 and U-Net)."""
    spec = netspec.load(SPECS / f"{name}.yaml")
    classes = spec.params["classes"]
    other = 10 if classes != 10 else 12
    default, changed = netspec.check(spec), netspec.check(spec, params={"classes": other})
    out = classified(default)
    assert classes in (out[0], out[-1])
    assert classified(changed) == tuple(other if d == classes else d for d in out)
    before = {layer.name: layer for layer in default.layers}
    (layer,) = [layer for layer in changed.layers if layer.params != before[layer.name].params]
    features = layer.input_shapes[0][0 if layer.op.startswith("conv") else -1]
    assert before[layer.name].params - layer.params == (classes - other) * (features + 1)


def test_values_are_read_as_defaults_are():
    """A number, an expression (here the default's value), a word; a parameter computed
    from others follows them."""
    assert netspec.check(WIDE).params == wide_params(1.0, 10)
    assert netspec.check(WIDE, params={"width": "0.5 * 2"}).params == wide_params(1.0, 10)
    assert netspec.check(WIDE, params={"width": 1.5, "classes": 3}).params == wide_params(1.5, 3)
    assert netspec.check(WIDE, params={"width": 2}).params == wide_params(2, 10)  # int for float
    assert netspec.check(WIDE, params={"classes": "2 * 4"}).params == wide_params(1.0, 8)
    assert netspec.check(WIDE, params={"c": 24}).params == 24 * 28 + 10 * (36 * 24 + 1)


def test_a_list_param_and_the_params_computed_from_it():
    """EfficientNet's blocks per stage are ceil(n * depth_mult) of table 1's n, and
    `total_blocks` their sum; set depth_mult, or the list itself (`--set n="[...]"`)."""
    spec = netspec.load(SPECS / "efficientnet_b0.yaml")

    def blocks(report: netspec.Report) -> int:  # an MBConv block has one depthwise conv
        return sum(r.name.endswith(".depthwise.conv") for r in report.layers)

    base = [1, 2, 2, 3, 3, 4, 1]
    assert blocks(netspec.check(spec)) == sum(base) == 16
    assert blocks(netspec.check(spec, params={"depth_mult": 2.0})) == sum(2 * n for n in base)
    ones = netspec.load(spec, params={"n": [1] * 7})
    assert blocks(netspec.check(ones)) == 7
    tenth = netspec.check(SPECS / "efficientnet_b0.yaml", params={"depth_mult": 0.1})
    assert netspec.check(ones).to_dict() == tenth.to_dict()  # ceil(n / 10) is 1 for each
    result = run("check", SPECS / "efficientnet_b0.yaml", "--set", "n=[1, 1, 1, 1, 1, 1, 1]",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["params"] == netspec.check(ones).params


def test_an_unknown_param_is_positioned_with_a_hint():
    line, column = position(RESNET50, r"^params:")
    result = run("check", RESNET50, "--set", "clases=10")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"{RESNET50}:{line}:{column}: error: no parameter `clases` to set; did you mean "
        "`classes`?")
    assert "Traceback" not in result.output
    with pytest.raises(netspec.SpecError, match=r"the spec's parameters: (`[a-z]+`(, )?){4}$"):
        netspec.check(WIDE, params={"size": 2})
    with pytest.raises(netspec.SpecError, match="the spec declares no `params:`"):
        netspec.check("input: [3]\nlayers: [relu]\n", params={"depth": 2})


@pytest.mark.parametrize(("setting", "found", "wanted"), [
    ("classes=ten", "'ten', a word", "an integer"),
    ("classes=2.5", "2.5, a number", "an integer"),
    ("classes=[10]", "[10], a list", "an integer"),
    ("classes=true", "True, true or false", "an integer"),
])
def test_a_value_of_another_type_is_positioned_at_the_default(setting, found, wanted):
    line, column = position(RESNET50, r"(?<=classes: )1000")
    result = run("check", RESNET50, "--set", setting)
    assert result.exit_code == 1
    assert result.stderr == (
        f"{RESNET50}:{line}:{column}: error: parameter `classes` is set to {found}, but its "
        f"default is {wanted}; give it {wanted}\n1 error\n")  # its readers see the default


def test_a_bad_expression_is_positioned_at_the_default():
    line, column = position(RESNET50, r"(?<=classes: )1000")
    result = run("check", RESNET50, "--set", "classes=10 // zero", "--format", "json")
    assert result.exit_code == 1
    (error,) = json.loads(result.stdout)["errors"]
    assert (error["line"], error["column"]) == (line, column)
    assert error["message"] == "`10 // zero`: unknown parameter `zero`"


@pytest.mark.parametrize("setting", ["classes", "=10", "classes=[1,"])
def test_a_setting_that_is_not_name_equals_yaml_is_a_usage_error(setting):
    result = run("check", RESNET50, "--set", setting)
    assert result.exit_code == 2
    assert "Invalid value for --set" in result.stderr


def test_the_api_refuses_params_and_scales_of_the_wrong_type():
    with pytest.raises(TypeError, match="params maps parameter names to values; found list"):
        netspec.load(WIDE, params=[("width", 2)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="scale is a scale's name or None; found int"):
        netspec.check(WIDE, scale=1)  # type: ignore[arg-type]


def test_a_loaded_spec_takes_other_values_without_reading_its_file_again(tmp_path):
    path = tmp_path / "wide.yaml"
    path.write_text(WIDE)
    spec = netspec.load(path)
    path.unlink()
    assert netspec.check(spec, params={"classes": 4}).params == wide_params(1.0, 4)
    small = netspec.load(spec, scale="small")
    assert small.choice == netspec.spec.document.Choice("small", {})
    both = netspec.load(small, params={"classes": 4})  # values add to the spec's choice
    assert both.choice.scale == "small" and netspec.check(both).params == wide_params(0.5, 4)
    assert netspec.check(spec).params == wide_params(1.0, 10)  # the original is untouched


def test_build_draw_export_and_fuse_take_the_same_values(tmp_path):
    torch = pytest.importorskip("torch")
    model = netspec.build(LENET, params={"classes": 3}, seed=0)
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 3)
    assert netspec.fuse(LENET, model, params={"classes": 3}).fc3.out_features == 3
    assert "linear 3" in netspec.draw(LENET, params={"classes": 3}).source
    out = tmp_path / "net.py"
    assert run("export", LENET, "--format", "python", "-o", out, "--set", "classes=3").exit_code == 0
    assert "nn.Linear(in_features=84, out_features=3)" in out.read_text()
    dot = tmp_path / "net.dot"
    assert run("draw", LENET, "-o", dot, "--set", "classes=3").exit_code == 0
    assert "linear 3" in dot.read_text()


# -- scales ------------------------------------------------------------------------------


def test_a_scale_sets_its_values_and_set_applies_after_it():
    assert netspec.check(WIDE, scale="small").params == wide_params(0.5, 10)
    assert netspec.check(WIDE, scale="big").params == wide_params(2, 20)
    assert netspec.check(WIDE, scale="big", params={"classes": 5}).params == wide_params(2, 5)
    mobilenet = SPECS / "mobilenet_v2.yaml"
    result = run("check", mobilenet, "--scale", "x1_4", "--set", "width=0.5", "--format", "json")
    assert json.loads(result.stdout)["params"] == netspec.check(mobilenet, scale="x0_5").params


def test_check_scale_all_prints_a_row_per_scale(tmp_path):
    path = tmp_path / "wide.yaml"
    path.write_text(WIDE)
    result = run("check", path, "--scale", "all")
    assert result.exit_code == 0, result.output
    head, titles, *rows = result.stdout.splitlines()
    assert head == "wide: 2 scales at input 3x8x8"
    assert titles.split() == ["scale", "params", "MACs", "sizes", "that", "work"]
    macs = {"small": 8 * 27 * 36 + 10 * 8 * 36, "big": 32 * 27 * 36 + 20 * 32 * 36}

    def largest(c: int, classes: int) -> int:
        """The largest side the 3x3 conv and the linear layer take: the linear layer's
        classes * (6 c (H - 2) + 1) parameters stay within the limit tensor_elements."""
        return (netspec.Limits().tensor_elements // classes - 1) // (6 * c) + 2

    assert [row.split() for row in rows] == [
        ["small", f"{wide_params(0.5, 10):,}", f"{macs['small']:,}",
         *f"H, W: every size from 3, up to {largest(8, 10):,}".split()],
        ["big", f"{wide_params(2, 20):,}", f"{macs['big']:,}",
         *f"H, W: every size from 3, up to {largest(32, 20):,}".split()]]
    result = run("check", path, "--scale", "all", "--set", "classes=3", "--format", "json")
    reports = json.loads(result.stdout)
    assert list(reports) == ["small", "big"]
    assert reports["big"] == json.loads(run("check", path, "--scale", "big", "--set",
                                            "classes=3", "--format", "json").stdout)
    assert reports["big"]["params"] == wide_params(2, 3)


def test_check_scales_is_the_api_of_scale_all():
    reports = netspec.check_scales(WIDE, params={"classes": 7})
    assert [(name, report.params) for name, report in reports] == [
        ("small", wide_params(0.5, 7)), ("big", wide_params(2, 7))]


def test_a_scale_that_fails_is_named_and_scale_all_exits_1(tmp_path):
    path = tmp_path / "wide.yaml"
    path.write_text(WIDE.replace("big: {width: 2, classes: 20}", "big: {width: 2, classes: x}"))
    line, column = position(path, r"(?<=classes: )x")
    result = run("check", path, "--scale", "all")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"{path}:{line}:{column}: error: scale `big` sets `classes` to 'x', a word, but its "
        "default is an integer (scale `big`); give it an integer")
    with pytest.raises(netspec.SpecError, match="declares no `scales:`"):
        netspec.check_scales(LENET)


def test_an_unknown_scale_is_positioned_with_a_hint(tmp_path):
    path = tmp_path / "wide.yaml"
    path.write_text(WIDE)
    line, column = position(path, r"^scales:")
    result = run("check", path, "--scale", "smal")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"{path}:{line}:{column}: error: no scale named `smal`; did you mean `small`?")
    with pytest.raises(netspec.SpecError, match="the spec declares no `scales:`"):
        netspec.load(LENET, scale="small")


@pytest.mark.parametrize("command", ["draw", "export", "train"])
def test_scale_all_is_for_check_alone(command, tmp_path):
    extra = ["--format", "python"] if command == "export" else []
    result = run(command, LENET, "--scale", "all", *extra)
    assert result.exit_code == 2
    assert "`all` is for `netspec check`; name one scale" in result.stderr


def test_a_scale_naming_an_unknown_param_is_positioned_with_a_hint(tmp_path):
    path = tmp_path / "wide.yaml"
    path.write_text(WIDE.replace("small: {width: 0.5}", "small: {widht: 0.5}"))
    line, column = position(path, r"widht")
    result = run("check", path)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"{path}:{line}:{column}: error: a scale sets `widht`, which is not one of the spec's "
        "`params`; did you mean `width`?")


def test_all_is_not_a_scale_name(tmp_path):
    path = tmp_path / "wide.yaml"
    path.write_text(WIDE.replace("  small:", "  all:"))
    line, column = position(path, r"^  all:")
    result = run("check", path, "--format", "json")
    (error,) = json.loads(result.stdout)["errors"]
    assert (error["line"], error["column"]) == (line, column + 2)
    assert error["message"] == "`all` means every scale (`--scale all`); name the scale otherwise"


@pytest.mark.slow
def test_train_records_the_values_in_its_checkpoints(tmp_path):
    pytest.importorskip("sklearn")
    from netspec.training import checkpoints

    result = netspec.train(LENET, params={"classes": 12}, epochs=1, out=tmp_path / "run",
                           verbose=False)
    assert result.model.fc3.out_features == 12
    spec = checkpoints.load(tmp_path / "run" / "last.pt")["spec"]
    assert (spec["scale"], spec["params"]) == (None, {"classes": 12})


LM = """\
name: lm
input: {tokens: [16], vocab: 256}
params: {hidden: 64}
scales: {small: {hidden: 16}}
layers:
  - embedding: [256, 8]
  - linear: hidden
  - relu
  - linear: 256
train: {epochs: 1, batch_size: 32, device: cpu, data: {text: corpus.txt}}
"""


@pytest.mark.slow
def test_sample_builds_the_model_a_run_trained_with_its_scale_and_values(tmp_path):
    """A byte model trained at `--scale small --set hidden=24` samples: its checkpoint's
    architecture (24 hidden features, not the file's 64 nor the scale's 16) is rebuilt."""
    pytest.importorskip("sklearn")
    (tmp_path / "lm.yaml").write_text(LM)
    (tmp_path / "corpus.txt").write_text("".join(f"x{i} = y{i % 7}\n" for i in range(300)))
    result = run("train", tmp_path / "lm.yaml", "--scale", "small", "--set", "hidden=24",
                 "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.output
    assert netspec.check(tmp_path / "lm.yaml", scale="small",
                         params={"hidden": 24}).layer("fc1").shape == (16, 24)
    result = run("sample", tmp_path / "run", "--prompt", "x1", "--length", "8")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("x1")
