"""VGG-11 with batch norm written by hand in plain PyTorch, in torchvision's layout and with
its names (`features.0.weight`, `classifier.6.bias`): the kind of model whose weights
`netspec.load_weights` ports onto `specs/vgg11_bn.yaml`, by order and shape."""

from __future__ import annotations

from torch import nn

STAGES = ((64, 1), (128, 1), (256, 2), (512, 2), (512, 2))
"""(width, convolutions) per stage; each stage ends with a 2x2 max pool."""


class VGG11BN(nn.Module):
    """(N, 3, H, W) images -> (N, 1000) class scores."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for width, convs in STAGES:
            for _ in range(convs):
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)                    # (N, 512, H/32, W/32)
        self.avgpool = nn.AdaptiveAvgPool2d(7)                    # (N, 512, 7, 7)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))
