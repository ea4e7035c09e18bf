"""GoogLeNet and SqueezeNet 1.0: each spec equals torchvision's network (the hand-written
reference in `reference_modern`) in totals, output shape and every conv, linear and
batch-norm layer, at 224x224 and at odd, non-square sizes; and the compiled module
computes what the reference computes, weight for weight."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import zoo_harness
from reference_modern import REFERENCES
from tiers import zoo

import netspec

SPECS = Path(__file__).resolve().parent.parent / "specs"
# The figures: torchvision's parameter counts, and MACs counting one add per output
# of every biased layer, i.e. `macs_with_bias`. DESIGN.md's `macs` (what FlopCounterMode
# counts, torchvision's 1.498 and 0.819 GFLOPS) leaves out GoogLeNet's 1,000 fc bias adds
# (its convs have no bias) and SqueezeNet's 4,346,248 conv bias adds.
PUBLISHED = {  # params, buffers, macs, macs_with_bias (the issue's)
    "googlenet": (6_624_904, 14_617, 1_498_376_192, 1_498_377_192),
    "squeezenet1_0": (1_248_424, 0, 818_924_576, 823_270_824),
}
OUTPUTS = {"googlenet": {"fc": (1000,)}, "squeezenet1_0": {"flatten1": (1000,)}}
SIZES = [(3, 224, 224), (3, 227, 229), (3, 193, 257)]
SMALLEST = {"googlenet": (3, 15, 15), "squeezenet1_0": (3, 21, 21)}  # torchvision's min_size


def spec_path(name: str) -> Path:
    return SPECS / f"{name}.yaml"


@pytest.mark.parametrize("name", PUBLISHED)
def test_totals_are_torchvisions(name):
    report = netspec.check(spec_path(name))
    assert (report.params, report.buffers, report.macs, report.macs_with_bias) == PUBLISHED[name]
    assert report.trainable_params == report.params and report.flops == 2 * report.macs
    assert report.outputs == OUTPUTS[name]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", zoo(PUBLISHED))
def test_every_layer_matches_the_reference(name, size):
    zoo_harness.compare(spec_path(name), REFERENCES[name], size)


@pytest.mark.parametrize("name", PUBLISHED)
def test_smallest_input_torchvision_accepts(name):
    zoo_harness.compare(spec_path(name), REFERENCES[name], SMALLEST[name])
    c, h, w = SMALLEST[name]
    with pytest.raises(netspec.SpecError, match="maxpool3: needs at least 3x3 input"):
        netspec.check(spec_path(name), inputs=(c, h - 1, w - 1))


def test_inception_widths_add_up_as_in_the_paper():
    report = netspec.check(spec_path("googlenet"))
    widths = {"3a": 256, "3b": 480, "4a": 512, "4b": 512, "4c": 512, "4d": 528, "4e": 832,
              "5a": 832, "5b": 1024}
    sizes = {"3": 28, "4": 14, "5": 7}
    for stage, width in widths.items():
        size = sizes[stage[0]]
        assert report.layer(f"inception{stage}.cat1").shape == (width, size, size), stage


def test_googlenet_spec_is_a_short_table():
    text = spec_path("googlenet").read_text()
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(lines) <= 80
    assert text.count("- {inception: [") == 9 and "  inception:" in text


def test_warnings_are_only_the_real_ones():
    """GoogLeNet reads every input pixel at 224; SqueezeNet's unpadded 7x7/2 conv1 really
    never reads the last row and column of a 224x224 image (torchvision's too)."""
    assert netspec.check(spec_path("googlenet")).warnings == []
    warnings = netspec.check(spec_path("squeezenet1_0")).warnings
    assert [(w.path, w.code) for w in warnings] == [("conv1", "floor-drops-input")]
    assert "last 1 row and the last 1 column" in warnings[0].message
    assert netspec.check(spec_path("squeezenet1_0"), inputs=(3, 227, 229)).warnings == []


BUILDS = [("googlenet", (3, 224, 224)), ("googlenet", (3, 227, 229)),
          ("squeezenet1_0", (3, 224, 224)), ("squeezenet1_0", (3, 193, 257))]


@pytest.mark.parametrize(("name", "size"), zoo(BUILDS),
                         ids=[f"{n}-{'x'.join(map(str, s))}" for n, s in BUILDS])
def test_builds_and_runs_with_the_reports_output_shape(name, size):
    spec = netspec.load(spec_path(name))
    (shape,) = netspec.check(spec, inputs=size).outputs.values()
    model = netspec.build(spec, seed=0, inputs=size).eval()
    with torch.no_grad():
        assert tuple(model(torch.randn(1, *size)).shape) == (1, *shape)


@pytest.mark.parametrize("name", zoo(PUBLISHED))
def test_compiled_module_computes_what_the_reference_computes(name):
    """The reference's weights load by order and shape, and the outputs are equal."""
    size = (3, 131, 97)
    torch.manual_seed(0)
    reference = REFERENCES[name]().eval()
    for module in reference.modules():  # batch norms that are not the identity in eval mode
        if isinstance(module, torch.nn.BatchNorm2d):
            for tensor in (module.running_mean, module.running_var, module.weight, module.bias):
                tensor.data.uniform_(0.5, 1.5)
    model = netspec.build(spec_path(name), seed=1, inputs=size).eval()
    netspec.load_weights(model, reference.state_dict())
    x = torch.randn(2, *size)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-6)
