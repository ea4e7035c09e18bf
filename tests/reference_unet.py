"""U-Net (Ronneberger, Fischer & Brox 2015) written by hand in plain torch: the oracle for
specs/unet.yaml.

Every 3x3 convolution is unpadded, so a contracting-path map is larger than the up-sampled
map it joins: it is cropped to the middle by slicing, starting at floor((S - target) / 2),
and concatenated in front of it. Modules are registered in the order they run, so weights
port to the compiled spec by order (`netspec.load_weights`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

WIDTHS = (64, 128, 256, 512, 1024)


def convs(cin: int, width: int) -> nn.Sequential:
    """Two unpadded 3x3 convolutions, each then ReLU: `[cin, H, W] -> [width, H-4, W-4]`."""
    return nn.Sequential(nn.Conv2d(cin, width, 3), nn.ReLU(), nn.Conv2d(width, width, 3), nn.ReLU())


def crop(skip: Tensor, like: Tensor) -> Tensor:
    """The middle of `skip` at `like`'s spatial size."""
    (h, w), (th, tw) = skip.shape[2:], like.shape[2:]
    top, left = (h - th) // 2, (w - tw) // 2
    return skip[:, :, top:top + th, left:left + tw]


class Up(nn.Module):
    """2x2 up-convolution halving the channels, the cropped skip concatenated before it,
    then convs: `[2w, H, W], skip -> [w, 2H-4, 2W-4]`."""

    def __init__(self, width: int):
        super().__init__()
        self.upconv = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.convs = convs(2 * width, width)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.upconv(x)
        return self.convs(torch.cat([crop(skip, x), x], dim=1))


class UNet(nn.Module):
    """`[channels, H, W] -> [classes, H-184, W-184]` for H, W in 188, 204, ..., 572, ..."""

    def __init__(self, channels: int = 1, classes: int = 2):
        super().__init__()
        ins = (channels, *WIDTHS[:-1])
        self.down = nn.ModuleList(convs(cin, w) for cin, w in zip(ins, WIDTHS, strict=True))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(Up(w) for w in reversed(WIDTHS[:-1]))
        self.classifier = nn.Conv2d(WIDTHS[0], classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for level, block in enumerate(self.down):
            x = block(self.pool(x) if level else x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = block(x, skip)
        return self.classifier(x)
