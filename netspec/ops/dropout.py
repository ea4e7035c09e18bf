"""Dropout: zeroes units with probability p in training only. Shape-preserving, free.

Saved for the backward: dropout's mask, one element per unit (on the CPU a float tensor,
input * mask; on CUDA native_dropout's bool mask); channel dropout's and drop path's noise,
one float per channel or per sample. At p = 0 dropout is its input (nothing kept); at p = 1
dropout and channel dropout multiply by a zero scalar, which they keep.
"""


import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any, ClassVar, Literal

from netspec.ops.base import Autocast, Op, Probability, Saved, Tensor, expect_rank
from netspec.shapes import Shape


class _Dropout(Op):
    family: ClassVar[str] = "dropout"
    prefix: ClassVar[str] = "dropout"
    positional: ClassVar[tuple[str, ...]] = ("p",)
    autocast_as: ClassVar[Autocast | None] = "same"

    p: Probability = 0.5
    inplace: bool = False

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        if self.p == 0:
            return Saved()
        return Saved(fixed=1) if self.p == 1 else Saved(masks=math.prod(x[0]))

    def aliases(self, x: Sequence[Shape], y: Shape) -> int | None:
        return 0 if self.inplace or self.p == 0 else None

    def label(self) -> str:
        return f"{self.kind()} {self.p:g}"


class Dropout(_Dropout):
    """Zero each unit with probability p (torch.nn.Dropout)."""

    op: Literal["dropout"] = "dropout"
    torch_class: ClassVar[str] = "Dropout"


class DropPath(_Dropout):
    """Stochastic depth: a sample's whole input zeroed with probability p, in training only
    (netspec.backends.modules.DropPath; torchvision's StochasticDepth "row"). Rates that
    grow with depth are expressions: `drop_path: "0.2 * i / 11"`."""

    op: Literal["drop_path"] = "drop_path"
    torch_class: ClassVar[str] = "DropPath"
    prefix: ClassVar[str] = "drop_path"

    def to_torch(self, torch: ModuleType, x: Sequence[Shape], y: Shape) -> Any:
        from netspec.backends.modules import DropPath

        return DropPath(self.p)

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return {"p": self.p}

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        return Saved() if self.p == 0 else Saved(floats=1)

    def aliases(self, x: Sequence[Shape], y: Shape) -> int | None:
        return 0 if self.p == 0 else None


class _ChannelDropout(_Dropout):
    """Zero whole channels of `[C, *S]` (S of `dims` sizes) with probability p."""

    dims: ClassVar[int]

    def infer(self, x: Sequence[Tensor]) -> Shape:
        expect_rank(self, x[0], self.dims + 1)
        return x[0].shape

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        if self.p == 0:
            return Saved()
        return Saved(fixed=1) if self.p == 1 else Saved(floats=x[0][0])


class Dropout1d(_ChannelDropout):
    """Zero whole channels of `[C, L]` with probability p (torch.nn.Dropout1d)."""

    op: Literal["dropout1d"] = "dropout1d"
    torch_class: ClassVar[str] = "Dropout1d"
    dims: ClassVar[int] = 1


class Dropout2d(_ChannelDropout):
    """Zero whole channels of `[C, H, W]` with probability p (torch.nn.Dropout2d)."""

    op: Literal["dropout2d"] = "dropout2d"
    torch_class: ClassVar[str] = "Dropout2d"
    dims: ClassVar[int] = 2


class Dropout3d(_ChannelDropout):
    """Zero whole channels of `[C, D, H, W]` with probability p (torch.nn.Dropout3d)."""

    op: Literal["dropout3d"] = "dropout3d"
    torch_class: ClassVar[str] = "Dropout3d"
    dims: ClassVar[int] = 3
