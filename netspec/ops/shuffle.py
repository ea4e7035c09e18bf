"""Rearranging values without computing: channels shuffled between groups, and pixels moved
between space and channels. No parameters, no MACs.

channel_shuffle: `[C, *S] -> [C, *S]`, C divisible by `groups` (torch.nn.ChannelShuffle)
pixel_shuffle:   `[C * r^2, H, W] -> [C, H * r, W * r]` (torch.nn.PixelShuffle)
pixel_unshuffle: `[C, H * r, W * r] -> [C * r^2, H, W]` (torch.nn.PixelUnshuffle)
"""


from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from netspec.ops.base import RF, Autocast, Op, PosInt, ShapeError, Tensor, expect_rank, ratio
from netspec.shapes import Shape, fmt_spatial


class ChannelShuffle(Op):
    """Channels regrouped as `[groups, C / groups]`, transposed and flattened: ShuffleNet's
    mixing of grouped convolutions (torch.nn.ChannelShuffle)."""

    op: Literal["channel_shuffle"] = "channel_shuffle"
    torch_class: ClassVar[str] = "ChannelShuffle"
    family: ClassVar[str] = "resize"
    prefix: ClassVar[str] = "shuffle"
    positional: ClassVar[tuple[str, ...]] = ("groups",)
    autocast_as: ClassVar[Autocast | None] = "same"

    groups: PosInt

    def infer(self, x: Sequence[Tensor]) -> Shape:
        expect_rank(self, x[0], 2, 3, 4)
        if x[0].shape[0] % self.groups:
            raise ShapeError(f"{self.groups} groups do not divide the {x[0].shape[0]} channels "
                             f"from {x[0].src}", key="groups")
        return x[0].shape

    def label(self) -> str:
        return f"channel_shuffle {self.groups}"


class _PixelShuffle(Op):
    """Moves an r x r block of pixels into (or out of) r^2 channels."""

    family: ClassVar[str] = "resize"
    positional: ClassVar[tuple[str, ...]] = ("factor",)
    torch_arg: ClassVar[str]
    autocast_as: ClassVar[Autocast | None] = "same"

    factor: PosInt

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return {self.torch_arg: self.factor}

    def label(self) -> str:
        return f"{self.kind()} {self.factor}"


class PixelShuffle(_PixelShuffle):
    """`[C * r^2, H, W] -> [C, H * r, W * r]`: sub-pixel upsampling (torch.nn.PixelShuffle)."""

    op: Literal["pixel_shuffle"] = "pixel_shuffle"
    torch_class: ClassVar[str] = "PixelShuffle"
    torch_arg: ClassVar[str] = "upscale_factor"

    def infer(self, x: Sequence[Tensor]) -> Shape:
        expect_rank(self, x[0], 3)
        c, h, w = x[0].shape
        block = self.factor ** 2
        if c % block:
            raise ShapeError(f"factor {self.factor} needs channels in multiples of {block}; "
                             f"the input from {x[0].src} has {c}", key="factor")
        return (c // block, h * self.factor, w * self.factor)

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        """Each output pixel is one input pixel; neighbours are 1/r of an input pixel apart."""
        step = ratio(1, self.factor)
        return None if rf[0] is None else rf[0].window((1, 1), (step, step))


class PixelUnshuffle(_PixelShuffle):
    """`[C, H * r, W * r] -> [C * r^2, H, W]`: space to depth (torch.nn.PixelUnshuffle)."""

    op: Literal["pixel_unshuffle"] = "pixel_unshuffle"
    torch_class: ClassVar[str] = "PixelUnshuffle"
    torch_arg: ClassVar[str] = "downscale_factor"

    def infer(self, x: Sequence[Tensor]) -> Shape:
        expect_rank(self, x[0], 3)
        c, h, w = x[0].shape
        r = self.factor
        if h % r or w % r:
            raise ShapeError(f"factor {r} does not divide the {fmt_spatial((h, w))} input from "
                             f"{x[0].src}", key="factor")
        return (c * r * r, h // r, w // r)

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        """Each output position gathers an r x r block, blocks r pixels apart."""
        r = self.factor
        return None if rf[0] is None else rf[0].window((r, r), (r, r))
