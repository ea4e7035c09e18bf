"""The zoo's specs read as their papers' tables: the rows each network's structure implies
(where shortcuts project, how dense blocks grow, which inverted residuals add, what the
inception modules concatenate), short spec files, a width multiplier set in the text, the
warnings that are real and the smallest input accepted. By analysis only, no torch run."""

from __future__ import annotations

from pathlib import Path

import pytest

import netspec

SPECS = Path(__file__).resolve().parent.parent / "specs"
RESNETS = ("resnet18", "resnet34", "resnet50", "resnet152")


def spec_path(name: str) -> Path:
    return SPECS / f"{name}.yaml"


def spec_lines(name: str) -> list[str]:
    """The spec's non-blank, non-comment lines."""
    return [line for line in spec_path(name).read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize(("name", "most"), [("resnet50", 60), ("densenet121", 60),
                                            ("mobilenet_v2", 60), ("googlenet", 80)])
def test_specs_stay_short(name: str, most: int) -> None:
    assert len(spec_lines(name)) <= most


# -- ResNet ------------------------------------------------------------------------------


def test_the_resnets_share_one_block_file():
    for name in RESNETS:
        text = spec_path(name).read_text()
        assert "use: [blocks/resnet.yaml]" in text and "blocks:" not in text


def test_projection_shortcuts_only_where_shape_changes():
    names = {r.name for r in netspec.check(spec_path("resnet18")).layers}
    assert "layer1.0.downsample" not in names and "layer2.0.downsample" in names
    assert "layer2.1.downsample" not in names
    names = {r.name for r in netspec.check(spec_path("resnet50")).layers}
    assert "layer1.0.downsample" in names and "layer1.1.downsample" not in names


# -- DenseNet and MobileNetV2 ------------------------------------------------------------


def test_densenet_channels_grow_by_32_per_layer_and_halve_at_transitions():
    report = netspec.check(spec_path("densenet121"))
    cats = [r for r in report.layers if r.op == "concat"]
    assert len(cats) == 6 + 12 + 24 + 16
    assert report.layer("denseblock1.denselayer.0.cat").shape == (64 + 32, 56, 56)
    assert report.layer("denseblock1.denselayer.5.cat").shape == (64 + 6 * 32, 56, 56)
    assert [report.layer(f"transition{k}.pool").shape for k in (1, 2, 3)] == \
        [(256 // 2, 28, 28), ((128 + 12 * 32) // 2, 14, 14), ((256 + 24 * 32) // 2, 7, 7)]
    assert report.layer("denseblock4.denselayer.15.cat").shape == (512 + 16 * 32, 7, 7)


def test_mobilenet_residual_adds_only_at_stride_1_with_equal_channels():
    layers = netspec.check(spec_path("mobilenet_v2")).layers
    adds = [r.name for r in layers if r.op == "add"]
    # stage1 (32 -> 16) and each stage's first block change shape; stage7 has one block.
    assert len(adds) == 0 + 1 + 2 + 3 + 2 + 2 + 0
    assert not any(a.startswith(("stage1.", "stage7.")) or ".block.0." in a for a in adds)
    expands = [r.name for r in layers if r.name.endswith("expand.conv")]
    assert len(expands) == 16 and not any(e.startswith("stage1.") for e in expands)


@pytest.mark.parametrize(("scale", "width", "params"), [("x1_4", 1.4, 6_108_776),
                                                     ("x0_5", 0.5, 1_968_680)])
def test_mobilenet_width_is_a_param_and_its_scales_set_it(scale, width, params):
    """torchvision's mobilenet_v2(width_mult=1.4) and (width_mult=0.5) parameter counts
    (tests/test_zoo_layers.py compares every layer at these widths with torchvision's, and
    tests/test_zoo_scales.py the function of every scale)."""
    assert netspec.check(spec_path("mobilenet_v2"), params={"width": width}).params == params
    assert netspec.check(spec_path("mobilenet_v2"), scale=scale).params == params


# -- GoogLeNet and SqueezeNet ------------------------------------------------------------


def test_inception_widths_add_up_as_in_the_paper():
    """Each module concatenates its 1x1, 3x3, "5x5" and pool-projection branches (the
    paper's table 1)."""
    report = netspec.check(spec_path("googlenet"))
    branches = {"3a": (64, 128, 32, 32), "3b": (128, 192, 96, 64), "4a": (192, 208, 48, 64),
                "4b": (160, 224, 64, 64), "4c": (128, 256, 64, 64), "4d": (112, 288, 64, 64),
                "4e": (256, 320, 128, 128), "5a": (256, 320, 128, 128),
                "5b": (384, 384, 128, 128)}
    sizes = {"3": 28, "4": 14, "5": 7}
    for stage, widths in branches.items():
        size = sizes[stage[0]]
        assert report.layer(f"inception{stage}.cat1").shape == (sum(widths), size, size), stage


def test_googlenet_spec_is_a_table():
    text = spec_path("googlenet").read_text()
    assert text.count("- {inception: [") == 9 and "  inception:" in text


def test_warnings_are_only_the_real_ones():
    """GoogLeNet reads every input pixel at 224; SqueezeNet's unpadded 7x7/2 conv1 really
    never reads the last row and column of a 224x224 image (torchvision's too)."""
    assert netspec.check(spec_path("googlenet")).warnings == []
    warnings = netspec.check(spec_path("squeezenet1_0")).warnings
    assert [(w.path, w.code) for w in warnings] == [("conv1", "floor-drops-input")]
    assert "last 1 row and the last 1 column" in warnings[0].message
    assert netspec.check(spec_path("squeezenet1_0"), inputs=(3, 227, 229)).warnings == []


SMALLEST = {"googlenet": (3, 15, 15), "squeezenet1_0": (3, 21, 21)}
"""torchvision's `min_size` for these weights (tests/test_zoo_layers.py compares every layer
with torchvision's model there)."""


@pytest.mark.parametrize("name", SMALLEST)
def test_the_smallest_input_torchvision_accepts_is_the_smallest_netspec_accepts(name):
    c, h, w = SMALLEST[name]
    netspec.check(spec_path(name), inputs=(c, h, w))
    with pytest.raises(netspec.SpecError, match="maxpool3: needs at least 3x3 input"):
        netspec.check(spec_path(name), inputs=(c, h - 1, w - 1))


# -- Vision Transformer ------------------------------------------------------------------


VITS = {  # torchvision's parameter counts and published GFLOPS at 224 (ViT_*_Weights meta)
    "b_32": (88_224_232, 4.409),
    "l_16": (304_326_632, 61.555),
    "l_32": (306_535_400, 15.378),
    "h_14": (632_045_800, 167.295),
}


@pytest.mark.parametrize("name", VITS)
def test_torchvision_s_other_vits_are_scales(name):
    """The spec's scales give torchvision's other ViTs (tests/test_zoo_torchvision.py runs
    vit_b_16 itself)."""
    params, gflops = VITS[name]
    report = netspec.check(spec_path("vit_b_16"), scale=name)
    assert (report.params, round(report.macs / 1e9, 3)) == (params, gflops)


def test_vit_position_embedding_follows_the_input_size():
    """One learned row per token: at 384x384, torchvision's vit_b_16(image_size=384), the
    model of its IMAGENET1K_SWAG_E2E_V1 weights (86,859,496 parameters, 55.484 GFLOPS)."""
    report = netspec.check(spec_path("vit_b_16"), inputs=(3, 384, 384))
    assert report.layer("embed.pos_embedding").shape == ((384 // 16) ** 2 + 1, 768)
    assert (report.params, round(report.macs / 1e9, 3)) == (86_859_496, 55.484)
