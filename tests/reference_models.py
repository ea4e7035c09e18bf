"""LeNet-5 written by hand in plain torch.nn: the oracle for specs/lenet5.yaml, which
torchvision does not build (the zoo's other references are torchvision's models,
tests/test_zoo_torchvision.py; U-Net's is tests/reference_unet.py).

Flattening is an `nn.Flatten` module rather than a `torch.flatten` call, so that every
layer the spec compiles to is a leaf module a forward hook can see.
"""

from __future__ import annotations

from torch import nn


def lenet5(classes: int = 10) -> nn.Sequential:
    """LeNet-5 with ReLU and max pooling: [1, 32, 32] -> [classes]."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),       # 6x14x14
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),      # 16x5x5
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, classes),
    )  # fmt: skip
