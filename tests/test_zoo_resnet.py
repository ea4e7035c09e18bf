"""The ResNet family: one block file shared by four specs, each equal to torchvision's
network (the hand-written reference) in totals, output shape and every conv, linear and
batch-norm layer, at 224x224 and at odd, non-square sizes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import zoo_harness
from reference_resnet import REFERENCES
from tiers import zoo

import netspec

SPECS = Path(__file__).resolve().parent.parent / "specs"
# The figures: torchvision's parameter counts, and MACs counting the fc bias adds
# (the convs have no bias), i.e. `macs_with_bias`; `macs` is that minus the 1,000 adds.
PUBLISHED = {"resnet18": (11_689_512, 1_814_074_344), "resnet34": (21_797_672, 3_663_762_408),
             "resnet50": (25_557_032, 4_089_185_256), "resnet152": (60_192_808, 11_513_627_624)}
SIZES = [(3, 224, 224), (3, 227, 229), (3, 193, 257)]


@pytest.mark.parametrize("name", PUBLISHED)
def test_totals_are_torchvisions(name):
    report = netspec.check(SPECS / f"{name}.yaml")
    params, macs_with_bias = PUBLISHED[name]
    assert (report.params, report.macs_with_bias, report.macs) == (params, macs_with_bias,
                                                                    macs_with_bias - 1000)
    assert report.outputs == {"fc": (1000,)}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", zoo(["resnet18", "resnet50"]))
def test_every_layer_matches_the_reference(name, size):
    zoo_harness.compare(SPECS / f"{name}.yaml", REFERENCES[name], size)


@pytest.mark.parametrize("name", zoo(["resnet34", "resnet152"]))
def test_deeper_variants_match_at_an_odd_size(name):
    zoo_harness.compare(SPECS / f"{name}.yaml", REFERENCES[name], (3, 97, 131))


def test_the_family_shares_one_block_file_and_stays_short():
    for name in PUBLISHED:
        text = (SPECS / f"{name}.yaml").read_text()
        assert "use: [blocks/resnet.yaml]" in text and "blocks:" not in text
    lines = [line for line in (SPECS / "resnet50.yaml").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert len(lines) <= 60


def test_projection_shortcuts_only_where_shape_changes():
    names = {r.name for r in netspec.check(SPECS / "resnet18.yaml").layers}
    assert "layer1.0.downsample" not in names and "layer2.0.downsample" in names
    assert "layer2.1.downsample" not in names
    names = {r.name for r in netspec.check(SPECS / "resnet50.yaml").layers}
    assert "layer1.0.downsample" in names and "layer1.1.downsample" not in names


def test_resnet18_builds_and_runs_at_an_odd_size():
    spec = netspec.load(SPECS / "resnet18.yaml")
    model = netspec.build(spec, seed=0, inputs=(3, 97, 131)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 97, 131)).shape == (1, 1000)
