"""load_weights: port weights from a differently named model by order and shape, and say
exactly what does not line up."""

from __future__ import annotations

from pathlib import Path

import pytest
import reference_models
import torch

import netspec

SPECS = Path(__file__).resolve().parent.parent / "specs"


@pytest.fixture
def pair():
    torch.manual_seed(0)
    return netspec.build(SPECS / "lenet5.yaml", seed=0).eval(), reference_models.lenet5().eval()


def test_hand_written_weights_load_by_order_and_give_the_same_outputs(pair):
    model, hand = pair
    mapping = netspec.load_weights(model, hand.state_dict())
    assert mapping["conv1.weight"] == "0.weight" and mapping["fc3.bias"] == list(hand.state_dict())[-1]
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), hand(x))


def test_a_checkpoint_file_is_read_weights_only(pair, tmp_path):
    model, hand = pair
    path = tmp_path / "ckpt.pt"
    torch.save({"model": hand.state_dict(), "epoch": 3}, path)
    netspec.load_weights(model, path)
    assert torch.equal(model.get_submodule("conv1").weight, hand[0].weight)


def test_files_with_code_are_refused(tmp_path, pair):
    path = tmp_path / "evil.pt"
    torch.save({"model": pair[1].state_dict(), "thing": Path("x")}, path)  # needs real unpickling
    with pytest.raises(netspec.WeightsError, match="not a readable weights file"):
        netspec.load_weights(pair[0], path, strict=True)


def test_shape_mismatches_name_every_key_and_leave_the_model_alone(pair):
    model, hand = pair
    theirs = hand.state_dict()
    keys = list(theirs)
    theirs[keys[0]] = torch.zeros(6, 1, 3, 3)
    theirs[keys[-2]] = torch.zeros(12, 84)
    before = model.get_submodule("conv1").weight.clone()
    with pytest.raises(netspec.WeightsError) as info:
        netspec.load_weights(model, theirs, strict=True)
    assert info.value.mismatches == [
        "conv1.weight: [6, 1, 5, 5] here, [6, 1, 3, 3] in the weights (0.weight)",
        f"fc3.weight: [10, 84] here, [12, 84] in the weights ({keys[-2]})",
    ]
    assert torch.equal(model.get_submodule("conv1").weight, before)


def test_missing_and_extra_tensors_are_listed(pair):
    model, hand = pair
    theirs = dict(list(hand.state_dict().items())[:-1])
    with pytest.raises(netspec.WeightsError, match="9 tensors for the model's 10") as info:
        netspec.load_weights(model, theirs, strict=True)
    assert info.value.mismatches == ["fc3.bias [10]: nothing in the weights"]
    theirs = {**hand.state_dict(), "extra.weight": torch.zeros(2)}
    with pytest.raises(netspec.WeightsError) as info:
        netspec.load_weights(model, theirs, strict=True)
    assert info.value.mismatches == ["extra.weight [2]: nothing in the model"]


def test_missing_file(pair, tmp_path):
    with pytest.raises(netspec.WeightsError, match="no such weights file"):
        netspec.load_weights(pair[0], tmp_path / "nope.pt", strict=True)


def test_a_learned_tensor_loads_one_held_without_the_leading_1():
    """torchvision's ConvNeXt holds its layer scale as (C, 1, 1); netspec's `parameter`
    holds (1, C, 1, 1): the same values, so they load, and compute the same."""

    class Scaled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer_scale = torch.nn.Parameter(torch.randn(4, 1, 1))
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer_scale * self.conv(x)

    ref = Scaled()
    net = netspec.build("""
        input: [3, 8, 8]
        layers:
          - parameter: [4, 1, 1]
            name: layer_scale
          - conv2d: {out: 4, kernel: 3, padding: 1}
            from: input
          - mul: [layer_scale, conv1]
    """)
    pairs = netspec.load_weights(net, ref.state_dict())
    assert pairs["layer_scale.weight"] == "layer_scale"
    assert net.layer_scale.weight.shape == (1, 4, 1, 1)
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(net(x), ref(x))


def test_weights_created_in_another_order_load_by_shape():
    """A hand-written patch merging creates its projection before the norm that runs first
    (as torchvision's Swin does): the weights do not line up by position, so the i-th
    tensor of each shape loads into the i-th of that shape, and the two compute the same."""

    class Merging(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.reduction = torch.nn.Linear(8, 4, bias=False)
            self.norm = torch.nn.LayerNorm(8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.reduction(self.norm(x))

    torch.manual_seed(0)
    hand = Merging()
    with torch.no_grad():
        hand.norm.weight.uniform_(0.5, 1.5)
        hand.norm.bias.uniform_(-0.5, 0.5)
    net = netspec.build("""
        input: [5, 8]
        layers:
          - layernorm
          - linear: {out: 4, bias: false}
    """)
    mapping = netspec.load_weights(net, hand.state_dict())
    assert mapping == {"ln1.weight": "norm.weight", "ln1.bias": "norm.bias",
                       "fc1.weight": "reduction.weight"}
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        torch.testing.assert_close(net(x), hand(x))
