"""Modules compiled specs use for ops that torch.nn has no class for. Imports torch: only
the torch backend (and modules it builds) import this. The Python export copies a class it
uses into its file, so both compute the very same thing."""

from __future__ import annotations

import torch
from torch import nn


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016), per sample: in training each sample's whole
    input is zeroed with probability `p` and the others scaled by 1 / (1 - p); the identity
    in eval. torchvision's StochasticDepth(p, "row") computes the same."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        noise = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        if keep > 0.0:
            noise.div_(keep)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LearnedTensor(nn.Module):
    """A learned tensor of per-sample shape `shape` (a class token, a position embedding, a
    layer scale), zeros until initialised, held as `weight` of shape (1, *shape). `forward(x)`
    reads `x` only for its batch size N and returns the tensor expanded to (N, *shape), a
    view: every sample shares the same values, and gradients add up in `weight`."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.weight = nn.Parameter(torch.zeros(1, *self.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Expanded from a copy of the weight (not of the batch): a module output that is a
        # view of a parameter, under no_grad, makes torch's module tracker (FlopCounterMode)
        # fail with "Expected gradient function to be set".
        return self.weight.clone().expand(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"
