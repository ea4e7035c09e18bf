"""The classic zoo written by hand in plain torch.nn: the oracle the specs are checked against.

Each builder follows the layer order of the paper's network as torchvision lays it out
(AdaptiveAvgPool2d before the classifier, dropouts where torchvision puts them), with one
difference: flattening is an `nn.Flatten` module rather than a `torch.flatten` call, so
that every layer a spec compiles to is a leaf module a forward hook can see.
"""

from __future__ import annotations

from torch import nn

VGG16_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # configuration D
VGG11_STAGES = ((64, 1), (128, 1), (256, 2), (512, 2), (512, 2))  # configuration A


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


def alexnet(classes: int = 1000) -> nn.Sequential:
    """torchvision's AlexNet (64-192-384-256-256 channels): [3, H, W] -> [classes]."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.AdaptiveAvgPool2d((6, 6)),
        nn.Flatten(),
        nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(),
        nn.Linear(4096, classes),
    )  # fmt: skip


def vgg(stages: tuple[tuple[int, int], ...], batch_norm: bool = False,
        classes: int = 1000) -> nn.Sequential:
    """VGG from (width, number of 3x3 convolutions) per stage; each stage ends in a 2x2
    max pool, so [3, H, W] -> [512, H/32, W/32] -> (adaptive pool 7x7) -> [classes]."""
    layers: list[nn.Module] = []
    channels = 3
    for width, convs in stages:
        for _ in range(convs):
            layers.append(nn.Conv2d(channels, width, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU())
            channels = width
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(
        *layers,
        nn.AdaptiveAvgPool2d((7, 7)),
        nn.Flatten(),
        nn.Linear(channels * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, classes),
    )  # fmt: skip


def vgg16() -> nn.Sequential:
    return vgg(VGG16_STAGES)


def vgg11_bn() -> nn.Sequential:
    return vgg(VGG11_STAGES, batch_norm=True)
