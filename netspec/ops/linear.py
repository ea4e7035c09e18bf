"""Flatten and fully connected layers.

linear: `[..., F] -> [..., out]` on the last dimension (torch.nn.Linear);
    params = F * out + out (bias), MACs = prod(leading dims) * F * out.
flatten: merges dims start..end (torch convention: batch is dim 0) into one.
"""


import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from netspec.ops.base import (
    RF,
    Cost,
    Note,
    Op,
    PosInt,
    ShapeError,
    Tensor,
    channels_match,
    sample_dim,
)
from netspec.shapes import Shape, fmt_shape


class Linear(Op):
    """Fully connected layer over the last dimension (torch.nn.Linear)."""

    op: Literal["linear"] = "linear"
    torch_class: ClassVar[str] = "Linear"
    family: ClassVar[str] = "linear"
    prefix: ClassVar[str] = "fc"
    positional: ClassVar[tuple[str, ...]] = ("out",)

    out: PosInt
    bias: bool = True
    in_: PosInt | None = Field(None, alias="in")

    def infer(self, x: Sequence[Tensor]) -> Shape:
        *lead, features = x[0].shape
        channels_match(self, self.in_, features, x[0])
        return (*lead, self.out)

    def cost(self, x: Sequence[Shape], y: Shape) -> Cost:
        features = x[0][-1]
        params = features * self.out + (self.out if self.bias else 0)
        return Cost(params=params, macs=math.prod(x[0][:-1]) * features * self.out,
                    bias_adds=math.prod(y) if self.bias else 0)

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        return None

    def notes(self, x: Sequence[Tensor], y: Shape) -> list[Note]:
        """A warning when the last dimension is a spatial one ([C, H, W]: W), not when it is
        features or channels moved last (ConvNeXt's [H, W, C], a transformer's tokens)."""
        if len(x[0].shape) < 3 or not x[0].on_grid:
            return []
        return [Note("linear-on-last-dim",
                     f"linear acts on the last dimension only ({x[0].shape[-1]}) of "
                     f"{fmt_shape(x[0].shape)} from {x[0].src}; add `flatten` before it to "
                     "connect every unit")]

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return {"in_features": x[0][-1], "out_features": self.out, "bias": self.bias}

    def label(self) -> str:
        return f"linear {self.out}"


class Flatten(Op):
    """Merge dims `start_dim..end_dim` into one (torch.nn.Flatten; batch is dim 0)."""

    op: Literal["flatten"] = "flatten"
    torch_class: ClassVar[str] = "Flatten"
    family: ClassVar[str] = "reshape"
    positional: ClassVar[tuple[str, ...]] = ("start_dim", "end_dim")

    start_dim: int = 1
    end_dim: int = -1

    def infer(self, x: Sequence[Tensor]) -> Shape:
        shape = x[0].shape
        start = sample_dim(self.start_dim, shape, "start_dim")
        end = sample_dim(self.end_dim, shape, "end_dim")
        if start > end:
            raise ShapeError(f"start_dim {self.start_dim} comes after end_dim {self.end_dim}",
                             key="start_dim")
        return (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:])

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        return None
