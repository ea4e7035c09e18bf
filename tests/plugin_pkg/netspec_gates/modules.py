"""The torch module computing `swish_gate` (imported only when a network is built)."""

import torch
from torch import nn


class SwishGate(nn.Module):
    """x * sigmoid(depthwise_conv(x)), the conv's padding keeping the map's size."""

    def __init__(self, channels: int, kernel: int = 3) -> None:
        super().__init__()
        self.gate = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.gate(x))
