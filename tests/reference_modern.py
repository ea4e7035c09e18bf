"""GoogLeNet and SqueezeNet 1.0 written by hand in plain torch, structured the way
torchvision structures them: the oracles for specs/googlenet.yaml and
specs/squeezenet1_0.yaml.

As in `reference_models`, flattening is an `nn.Flatten` module and activations are `nn.ReLU`
modules, so that every layer is a leaf module a forward hook can see.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# -- GoogLeNet (torchvision's googlenet, aux_logits=False, transform_input=False) -------

# Inception modules: (in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool proj), as in
# torchvision's GoogLeNet.__init__ (the paper's table 1).
INCEPTION_3 = ((192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64))
INCEPTION_4 = ((480, 192, 96, 208, 16, 48, 64), (512, 160, 112, 224, 24, 64, 64),
               (512, 128, 128, 256, 24, 64, 64), (512, 112, 144, 288, 32, 64, 64),
               (528, 256, 160, 320, 32, 128, 128))
INCEPTION_5 = ((832, 256, 160, 320, 32, 128, 128), (832, 384, 192, 384, 48, 128, 128))


class BasicConv2d(nn.Sequential):
    """Conv without bias, batch norm with eps 0.001, ReLU (torchvision's BasicConv2d)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0):
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(cout, eps=0.001), nn.ReLU())


class Inception(nn.Module):
    """Four branches on the same input, concatenated along the channels. torchvision's
    "5x5" branch uses a 3x3 convolution (pytorch/vision#906); so does this one."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, proj: int):
        super().__init__()
        self.branch1 = BasicConv2d(cin, c1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, c3r, 1), BasicConv2d(c3r, c3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(cin, c5r, 1), BasicConv2d(c5r, c5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(cin, proj, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


def googlenet(classes: int = 1000) -> nn.Sequential:
    """[3, H, W] -> [classes]; every max pool rounds up (ceil_mode)."""
    return nn.Sequential(
        BasicConv2d(3, 64, 7, stride=2, padding=3), nn.MaxPool2d(3, 2, ceil_mode=True),
        BasicConv2d(64, 64, 1), BasicConv2d(64, 192, 3, padding=1),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        *(Inception(*widths) for widths in INCEPTION_3), nn.MaxPool2d(3, 2, ceil_mode=True),
        *(Inception(*widths) for widths in INCEPTION_4), nn.MaxPool2d(2, 2, ceil_mode=True),
        *(Inception(*widths) for widths in INCEPTION_5),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1024, classes),
    )  # fmt: skip


# -- SqueezeNet 1.0 (torchvision's squeezenet1_0) -------------------------------------


class Fire(nn.Module):
    """Squeeze with a 1x1 conv, then expand with a 1x1 and a 3x3 conv side by side."""

    def __init__(self, cin: int, squeeze: int, e1: int, e3: int):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU())
        self.expand1x1 = nn.Sequential(nn.Conv2d(squeeze, e1, 1), nn.ReLU())
        self.expand3x3 = nn.Sequential(nn.Conv2d(squeeze, e3, 3, padding=1), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        x = self.squeeze(x)
        return torch.cat([self.expand1x1(x), self.expand3x3(x)], 1)


def squeezenet1_0(classes: int = 1000) -> nn.Sequential:
    """[3, H, W] -> [classes]: no linear layer, a 1x1 conv per class and a global pool."""
    return nn.Sequential(
        nn.Conv2d(3, 96, 7, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(96, 16, 64, 64), Fire(128, 16, 64, 64), Fire(128, 32, 128, 128),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(256, 32, 128, 128), Fire(256, 48, 192, 192), Fire(384, 48, 192, 192),
        Fire(384, 64, 256, 256),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(512, 64, 256, 256),
        nn.Dropout(0.5), nn.Conv2d(512, classes, 1), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
    )  # fmt: skip


REFERENCES = {"googlenet": googlenet, "squeezenet1_0": squeezenet1_0}
