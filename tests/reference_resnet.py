"""ResNet written by hand in plain torch, the way torchvision structures it (basic and
bottleneck blocks, projection shortcuts where the stride or width changes): the oracle
for specs/resnet*.yaml."""

from __future__ import annotations

from torch import Tensor, nn


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]


class Residual(nn.Module):
    """`relu(body(x) + shortcut(x))`; the shortcut projects when the shape changes."""

    def __init__(self, body: list[nn.Module], cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(*body)
        self.shortcut = (nn.Sequential(*conv_bn(cin, cout, 1, stride))
                         if stride != 1 or cin != cout else nn.Identity())
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


def basic(cin: int, width: int, stride: int) -> Residual:
    body = [*conv_bn(cin, width, 3, stride), nn.ReLU(), *conv_bn(width, width, 3)]
    return Residual(body, cin, width, stride)


def bottleneck(cin: int, width: int, stride: int) -> Residual:
    body = [*conv_bn(cin, width, 1), nn.ReLU(), *conv_bn(width, width, 3, stride), nn.ReLU(),
            *conv_bn(width, 4 * width, 1)]
    return Residual(body, cin, 4 * width, stride)


def resnet(block, expansion: int, depths: tuple[int, ...], classes: int = 1000) -> nn.Sequential:
    layers: list[nn.Module] = [*conv_bn(3, 64, 7, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for k, depth in enumerate(depths):
        width = 64 * 2**k
        for i in range(depth):
            layers.append(block(cin, width, 2 if k and i == 0 else 1))
            cin = width * expansion
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))


REFERENCES = {
    "resnet18": lambda: resnet(basic, 1, (2, 2, 2, 2)),
    "resnet34": lambda: resnet(basic, 1, (3, 4, 6, 3)),
    "resnet50": lambda: resnet(bottleneck, 4, (3, 4, 6, 3)),
    "resnet152": lambda: resnet(bottleneck, 4, (3, 8, 36, 3)),
}
