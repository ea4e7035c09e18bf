"""DenseNet-121 and MobileNetV2 written by hand in plain torch, the way torchvision
structures them (models.densenet121, models.mobilenet_v2(width_mult=...)): the oracle for
specs/densenet121.yaml and specs/mobilenet_v2.yaml."""

from __future__ import annotations

import torch
from torch import Tensor, nn

# -- DenseNet ----------------------------------------------------------------------------


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 (bn_size * growth)-BN-ReLU-3x3 (growth), concatenated onto its input."""

    def __init__(self, cin: int, growth: int, bn_size: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, bn_size * growth, 1, bias=False),
            nn.BatchNorm2d(bn_size * growth), nn.ReLU(),
            nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.body(x)], 1)


def transition(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False),
                         nn.AvgPool2d(2, 2))


def densenet(growth: int = 32, blocks: tuple[int, ...] = (6, 12, 24, 16), init: int = 64,
             bn_size: int = 4, classes: int = 1000) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(3, init, 7, 2, 3, bias=False), nn.BatchNorm2d(init),
                               nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    c = init
    for k, n in enumerate(blocks):
        layers += [DenseLayer(c + i * growth, growth, bn_size) for i in range(n)]
        c += n * growth
        if k < len(blocks) - 1:
            layers.append(transition(c, c // 2))
            c //= 2
    return nn.Sequential(*layers, nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(c, classes))


# -- MobileNetV2 -------------------------------------------------------------------------


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's `_make_divisible`: nearest multiple of `divisor`, never 10% below `v`."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def conv_bn(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups,
                                   bias=False), nn.BatchNorm2d(cout), nn.ReLU6())


class InvertedResidual(nn.Module):
    """1x1 expand (unless t = 1), 3x3 depthwise, linear 1x1 projection; a residual add when
    the stride is 1 and the channels are kept."""

    def __init__(self, cin: int, cout: int, stride: int, t: int):
        super().__init__()
        hidden = round(cin * t)  # torchvision: int(round(inp * expand_ratio))
        expand = [conv_bn(cin, hidden)] if t != 1 else []
        self.body = nn.Sequential(*expand, conv_bn(hidden, hidden, 3, stride, groups=hidden),
                                  nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x) if self.residual else self.body(x)


SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1))
"""torchvision's inverted residual setting: expand ratio t, channels c, blocks n, stride s."""


def mobilenet_v2(width: float = 1.0, classes: int = 1000) -> nn.Sequential:
    c = make_divisible(32 * width)
    last = make_divisible(1280 * max(1.0, width))
    layers: list[nn.Module] = [conv_bn(3, c, 3, 2)]
    for t, channels, n, s in SETTING:
        out = make_divisible(channels * width)
        for i in range(n):
            layers.append(InvertedResidual(c, out, s if i == 0 else 1, t))
            c = out
    return nn.Sequential(*layers, conv_bn(c, last), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.2), nn.Linear(last, classes))
