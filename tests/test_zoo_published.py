"""The zoo's totals at each network's standard input size are the published figures, and
`netspec check`'s output for the classic networks is the golden files'.

These figures are the contract: they need neither torchvision nor a forward pass. (Where
torchvision builds the network, tests/test_zoo_torchvision.py and tests/test_zoo_layers.py
also hold the specs to its model run by torch; tests/test_zoo_unet.py has U-Net's.)

Parameters and buffers are torchvision's (its weights' `num_params`, its models' buffers).
MACs follow DESIGN.md's convention, conv and linear multiply-accumulates only: torchvision's
"GFLOPS" column (alexnet 0.714, vgg16 15.47, resnet50 4.09, googlenet 1.498, ...) and what
FlopCounterMode counts on torchvision's models. `macs_with_bias` are the issue's figures,
which also count one add per output element of every biased conv and linear layer.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from golden.regen import FORMATS, render
from golden.regen import SPECS as GOLDEN_SPECS

import netspec

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
CLASSES = (1000,)


@dataclass(frozen=True)
class Published:
    """A network's published totals at its standard input size (None: no figure given)."""

    params: int
    buffers: int | None
    macs: int
    macs_with_bias: int | None
    outputs: dict[str, tuple[int, ...]]


def biased_classifier_only(params: int, macs_with_bias: int, output: str,
                           buffers: int | None = None) -> Published:
    """A network whose only biased layer is its 1000-class linear classifier (no conv has a
    bias): the issue's MACs count that layer's 1,000 bias adds, DESIGN.md's do not."""
    return Published(params, buffers, macs_with_bias - CLASSES[0], macs_with_bias,
                     {output: CLASSES})


PUBLISHED = {
    "lenet5": Published(61_706, 0, 416_520, None, {"fc3": (10,)}),
    "alexnet": Published(61_100_840, 0, 714_188_480, 714_682_664, {"fc3": CLASSES}),
    "vgg16": Published(138_357_544, 0, 15_470_264_320, 15_483_821_032, {"fc3": CLASSES}),
    "vgg11_bn": Published(132_868_840, 5_512, 7_609_090_048, 7_616_525_288, {"fc3": CLASSES}),
    "resnet18": biased_classifier_only(11_689_512, 1_814_074_344, "fc"),
    "resnet34": biased_classifier_only(21_797_672, 3_663_762_408, "fc"),
    "resnet50": biased_classifier_only(25_557_032, 4_089_185_256, "fc"),
    "resnet152": biased_classifier_only(60_192_808, 11_513_627_624, "fc"),
    "densenet121": biased_classifier_only(7_978_856, 2_834_162_664, "classifier", 83_769),
    "mobilenet_v2": biased_classifier_only(3_504_872, 300_775_272, "classifier", 34_164),
    "googlenet": Published(6_624_904, 14_617, 1_498_376_192, 1_498_377_192, {"fc": CLASSES}),
    # every conv has a bias: the figure has 4,346,248 adds more
    "squeezenet1_0": Published(1_248_424, 0, 818_924_576, 823_270_824, {"flatten1": CLASSES}),
}


@pytest.mark.parametrize("name", PUBLISHED)
def test_totals_are_the_published_figures(name: str) -> None:
    report, want = netspec.check(ROOT / "specs" / f"{name}.yaml"), PUBLISHED[name]
    assert (report.params, report.trainable_params, report.macs, report.flops) == \
        (want.params, want.params, want.macs, 2 * want.macs)
    if want.buffers is not None:
        assert report.buffers == want.buffers
    if want.macs_with_bias is not None:
        assert report.macs_with_bias == want.macs_with_bias
    assert report.outputs == want.outputs


# -- golden files ----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("name", GOLDEN_SPECS)
def test_check_output_matches_golden(name: str, suffix: str) -> None:
    path = GOLDEN / f"{name}.{suffix}"
    golden, current = path.read_text(encoding="utf-8"), render(name, FORMATS[suffix])
    diff = "".join(difflib.unified_diff(golden.splitlines(True), current.splitlines(True),
                                        f"{path.name} (golden)", f"{path.name} (now)"))
    assert current == golden, f"`netspec check` output changed:\n{diff}\n" \
        "if the change is intended: python3 tests/golden/regen.py"


@pytest.mark.parametrize("name", GOLDEN_SPECS)
def test_golden_totals_are_the_published_ones(name: str) -> None:
    data, want = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8")), PUBLISHED[name]
    assert (data["params"], data["buffers"], data["macs"]) == (want.params, want.buffers, want.macs)
    assert data["outputs"] == {k: list(v) for k, v in want.outputs.items()}
