"""load_weights on a modified network: by name, then by order and shape, and a report that
accounts for every tensor (loaded, skipped with both shapes, missing, unused)."""

from __future__ import annotations

from pathlib import Path

import pytest
import reference_models
import torch

import netspec

SPECS = Path(__file__).resolve().parent.parent / "specs"
RESNET18 = SPECS / "resnet18.yaml"
LENET = SPECS / "lenet5.yaml"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A 1000-class resnet18's weights in a file, as a run's checkpoint holds them."""
    state = netspec.build(RESNET18, seed=1).state_dict()
    path = tmp_path_factory.mktemp("base") / "base.pt"
    torch.save({"model": state, "epoch": 90}, path)
    return path, state


def test_a_10_class_resnet18_takes_all_but_the_classifier_of_a_1000_class_checkpoint(checkpoint):
    path, base = checkpoint
    model = netspec.build(RESNET18, seed=0, params={"classes": 10})
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    report = netspec.load_weights(model, path)
    assert report.skipped == {"fc.weight": ("fc.weight", [10, 512], [1000, 512]),
                              "fc.bias": ("fc.bias", [10], [1000])}
    assert report.missing == {} and report.unused == {}
    total = len(fresh)
    assert report.total == total and len(report) == total - 2
    for key, value in model.state_dict().items():
        assert torch.equal(value, fresh[key] if key.startswith("fc.") else base[key]), key
    assert report.summary() == (f"transferred {total - 2}/{total}: fc.weight [10, 512] vs "
                                "[1000, 512] kept its initialisation; fc.bias [10] vs [1000] "
                                "kept its initialisation")


def test_strict_refuses_the_classifier_and_leaves_the_model_alone(checkpoint):
    path, _ = checkpoint
    model = netspec.build(RESNET18, seed=0, params={"classes": 10})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(netspec.WeightsError) as info:
        netspec.load_weights(model, path, strict=True)
    assert info.value.mismatches == ["fc.weight: [10, 512] here, [1000, 512] in the weights (fc.weight)",
                                     "fc.bias: [10] here, [1000] in the weights (fc.bias)"]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_renamed_model_loads_by_position_and_a_new_head_keeps_its_initialisation():
    """The hand-written LeNet's keys (`0.weight`, ...) share no name with the spec's
    (`conv1.weight`, ...): every tensor pairs by position, and the 12-class head differs."""
    torch.manual_seed(0)
    hand = reference_models.lenet5(classes=10)
    model = netspec.build(LENET, seed=0, params={"classes": 12})
    head = model.fc3.weight.clone()
    report = netspec.load_weights(model, hand)
    theirs = list(hand.state_dict())
    assert dict(report) == dict(zip(list(model.state_dict())[:-2], theirs[:-2], strict=True))
    assert report.skipped == {"fc3.weight": (theirs[-2], [12, 84], [10, 84]),
                              "fc3.bias": (theirs[-1], [12], [10])}
    assert torch.equal(model.fc3.weight, head)
    assert torch.equal(model.fc2.weight, hand[9].weight)
    assert "fc3.weight [12, 84] vs 11.weight [10, 84] kept its initialisation" in report.summary()


def test_tensors_the_source_lacks_are_missing_and_those_the_model_lacks_unused():
    torch.manual_seed(0)
    hand = reference_models.lenet5()
    extra = {**hand.state_dict(), "aux.weight": torch.ones(3, 84)}
    model = netspec.build(LENET, seed=0)
    report = netspec.load_weights(model, extra)
    assert len(report) == report.total == 10 and report.unused == {"aux.weight": [3, 84]}
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), hand(x))
    assert report.summary() == "transferred 10/10: aux.weight [3, 84] in the weights is not used"

    fewer = dict(list(hand.state_dict().items())[:-1])
    report = netspec.load_weights(netspec.build(LENET, seed=0), fewer)
    assert report.missing == {"fc3.bias": [10]} and report.unused == {} and len(report) == 9
    assert report.summary() == ("transferred 9/10: fc3.bias [10] is not in the weights: kept its "
                                "initialisation")


def test_names_load_first_and_the_rest_by_order():
    """A model whose classifier was renamed: the backbone loads by name, the head by order."""
    torch.manual_seed(0)
    spec = """
        input: [3, 8, 8]
        layers:
          - conv2d: {out: 4, kernel: 3}
          - flatten
          - linear: 5
            name: head
    """
    theirs = netspec.build(spec, seed=1).state_dict()
    theirs = {("classifier" + k[4:] if k.startswith("head") else k): v for k, v in theirs.items()}
    model = netspec.build(spec, seed=0)
    report = netspec.load_weights(model, dict(reversed(theirs.items())))
    assert dict(report) == {"conv1.weight": "conv1.weight", "conv1.bias": "conv1.bias",
                            "head.weight": "classifier.weight", "head.bias": "classifier.bias"}
    assert torch.equal(model.head.weight, theirs["classifier.weight"])
