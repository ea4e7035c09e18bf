"""Spatial resizing without parameters: upsample (interpolation), zero padding, center crop.

upsample:    `[C, *S] -> [C, *floor(S * scale)]`, `[C, *size]` (torch.nn.Upsample), or a second
             input's spatial size (`from: [x, skip]`: right at every input size)
zeropad1d/2d: `[C, *S] -> [C, *(S + before + after)]`; negative padding crops (torch.nn.ZeroPad2d)
center_crop: `[C, *S] -> [C, *target]`, the target being `size` or a second input's spatial
             size (U-Net skip connections); the crop starts at floor((S - target) / 2).
"""


import itertools
import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, model_validator

from netspec.ops.base import (
    RF,
    AnyInts,
    Autocast,
    Op,
    PosFloat,
    PosInts,
    Scratch,
    ShapeError,
    Tensor,
    TorchCall,
    expect_rank,
    ratio,
    spatial,
)
from netspec.shapes import Shape, fmt_spatial, interpolate_out

_INTERPOLATING = {"linear": 1, "bilinear": 2, "bicubic": 2}


class Upsample(Op):
    """Upsampling by interpolation, by a scale factor, to a size (torch.nn.Upsample), or to
    a second input's size (F.interpolate to it: FCN/DeepLab heads at any input size)."""

    op: Literal["upsample"] = "upsample"
    torch_class: ClassVar[str] = "Upsample"
    family: ClassVar[str] = "resize"
    prefix: ClassVar[str] = "up"
    positional: ClassVar[tuple[str, ...]] = ("scale", "mode")
    arity: ClassVar[tuple[int, int | None]] = (1, 2)
    autocast_as: ClassVar[Autocast | None] = "same"

    scale: PosFloat | list[PosFloat] | None = None
    size: PosInts | None = None
    mode: Literal["nearest", "nearest-exact", "linear", "bilinear", "bicubic"] = "nearest"
    align_corners: bool | None = None

    model_config = ConfigDict(json_schema_extra={  # `_one_target` for editors
        "not": {"allOf": [{"required": [key], "properties": {key: {"not": {"type": "null"}}}}
                          for key in ("scale", "size")]},
        "if": {"required": ["align_corners"],
               "properties": {"align_corners": {"not": {"type": "null"}}}},
        "then": {"required": ["mode"], "properties": {"mode": {"enum": list(_INTERPOLATING)}}},
    })

    @model_validator(mode="after")
    def _one_target(self) -> "Upsample":
        if self.scale is not None and self.size is not None:
            raise ValueError("give one of `scale` and `size`, not both")
        if self.align_corners is not None and self.mode not in _INTERPOLATING:
            raise ValueError("`align_corners` applies to linear, bilinear and bicubic modes only")
        return self

    def infer(self, x: Sequence[Tensor]) -> Shape:
        dims = _INTERPOLATING.get(self.mode)
        expect_rank(self, x[0], *((dims + 1,) if dims else (2, 3, 4)))
        c, *sizes = x[0].shape
        if len(x) == 2:
            expect_rank(self, x[1], len(x[0].shape))
            if self.scale is not None or self.size is not None:
                raise ShapeError("takes its size from its second input: give no `scale` or "
                                 "`size` as well", key="size" if self.size is not None else "scale")
            out = x[1].shape[1:]
        elif self.size is not None:
            out = spatial(self.size, len(sizes), "size")
        elif self.scale is None:
            raise ShapeError("needs a `scale`, a `size`, or a second input to take the size from",
                             hint="`from: [x, skip]` resizes x to skip's size")
        else:
            scales = self.scale if isinstance(self.scale, list) else [self.scale] * len(sizes)
            if len(scales) != len(sizes):
                raise ShapeError(f"`scale` needs {len(sizes)} values, found {len(scales)}",
                                 key="scale")
            out = tuple(interpolate_out(n, s) for n, s in zip(sizes, scales, strict=True))
            if any(n < 1 for n in out):
                raise ShapeError(f"scale {self.scale} shrinks the {fmt_spatial(tuple(sizes))} "
                                 f"input from {x[0].src} to {fmt_spatial(out)}", key="scale")
        return (c, *out)

    def differentiable_inputs(self, inputs: int) -> tuple[bool, ...]:
        """A second input gives the size only."""
        return (True, False)[:inputs]

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        """Units get closer by the scale; interpolating modes read two neighbours per axis."""
        if rf[0] is None:
            return None
        taps = 2 if self.mode in _INTERPOLATING else 1
        steps = [ratio(a, b) for a, b in zip(x[0][1:], y[1:], strict=True)]
        return rf[0].window([taps] * len(steps), steps)

    def torch_module(self, inputs: int) -> str | None:
        return None if inputs == 2 else self.torch_class

    def to_torch(self, torch: ModuleType, x: Sequence[Shape], y: Shape) -> Any:
        if len(x) == 2:
            from netspec.backends import functional

            return TorchCall(functional.interpolate_like,
                             {"mode": self.mode, "align_corners": self.align_corners})
        return super().to_torch(torch, x, y)

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        scale = tuple(self.scale) if isinstance(self.scale, list) else self.scale
        return dict(size=self.size, scale_factor=scale, mode=self.mode,
                    align_corners=self.align_corners)

    def label(self) -> str:
        if self.size is not None:
            sizes = (self.size,) if isinstance(self.size, int) else self.size
            return f"upsample → {fmt_spatial(sizes)} {self.mode}"
        if self.scale is None:
            return f"upsample → size of input 2, {self.mode}"
        scales = self.scale if isinstance(self.scale, list) else [self.scale]
        return f"upsample x{'x'.join(f'{s:g}' for s in scales)} {self.mode}"


class _ZeroPad(Op):
    family: ClassVar[str] = "resize"
    prefix: ClassVar[str] = "pad"
    positional: ClassVar[tuple[str, ...]] = ("padding",)
    dims: ClassVar[int]
    autocast_as: ClassVar[Autocast | None] = "same"

    padding: AnyInts

    def amounts(self) -> tuple[tuple[int, int], ...]:
        """(before, after) per spatial dim, first dim first; torch lists the last dim first."""
        pads = spatial(self.padding, 2 * self.dims, "padding") if isinstance(self.padding, int) \
            else self.padding
        if len(pads) != 2 * self.dims:
            sides = "(left, right)" if self.dims == 1 else "(left, right, top, bottom)"
            raise ShapeError(f"`padding` is one integer or {2 * self.dims} values {sides}, "
                             f"found {len(pads)} values", key="padding")
        pairs = [(pads[i], pads[i + 1]) for i in range(0, len(pads), 2)]
        return tuple(reversed(pairs))

    def infer(self, x: Sequence[Tensor]) -> Shape:
        expect_rank(self, x[0], self.dims + 1)
        c, *sizes = x[0].shape
        pairs = self.amounts()
        out = tuple(n + a + b for n, (a, b) in zip(sizes, pairs, strict=True))
        kept = tuple(n + min(a, 0) + min(b, 0) for n, (a, b) in zip(sizes, pairs, strict=True))
        if any(n < 1 for n in out) or any(n < 0 for n in kept):
            shown = list(self.padding) if isinstance(self.padding, tuple) else self.padding
            raise ShapeError(f"padding {shown} crops away all of the {fmt_spatial(tuple(sizes))} "
                             f"input from {x[0].src}", key="padding")
        return (c, *out)

    def label(self) -> str:
        return f"zeropad {self.padding}"


class ZeroPad1d(_ZeroPad):
    """Zero padding of `[C, L]`: `padding` is p or (left, right) (torch.nn.ZeroPad1d)."""

    op: Literal["zeropad1d"] = "zeropad1d"
    torch_class: ClassVar[str] = "ZeroPad1d"
    dims: ClassVar[int] = 1


class ZeroPad2d(_ZeroPad):
    """Zero padding of `[C, H, W]`: p or (left, right, top, bottom) (torch.nn.ZeroPad2d)."""

    op: Literal["zeropad2d"] = "zeropad2d"
    torch_class: ClassVar[str] = "ZeroPad2d"
    dims: ClassVar[int] = 2


class CenterCrop(Op):
    """Crop the middle of the first input to `size`, or to the second input's spatial size.

    `from: [skip, up]` crops `skip` to `up`'s size, as U-Net's skip connections do."""

    op: Literal["center_crop"] = "center_crop"
    family: ClassVar[str] = "resize"
    prefix: ClassVar[str] = "crop"
    positional: ClassVar[tuple[str, ...]] = ("size",)
    arity: ClassVar[tuple[int, int | None]] = (1, 2)
    autocast_as: ClassVar[Autocast | None] = "same"

    size: PosInts | None = None

    def infer(self, x: Sequence[Tensor]) -> Shape:
        expect_rank(self, x[0], 2, 3, 4)
        c, *sizes = x[0].shape
        if len(x) == 2:
            expect_rank(self, x[1], len(x[0].shape))
            target = x[1].shape[1:]
        elif self.size is not None:
            target = spatial(self.size, len(sizes), "size")
        else:
            raise ShapeError("needs a `size` or a second input to take the size from",
                             hint="`from: [skip, up]` crops skip to up's size")
        if not sizes or any(t > n for t, n in zip(target, sizes, strict=True)):
            raise ShapeError(f"cannot crop the {fmt_spatial(tuple(sizes))} input from {x[0].src} "
                             f"to a larger {fmt_spatial(tuple(target))}", key="size")
        return (c, *target)

    def aliases(self, x: Sequence[Shape], y: Shape) -> int | None:
        """A view (torch.narrow) of its first input."""
        return 0

    def returns_view(self, x: Sequence[Shape], y: Shape, strided: bool = False) -> bool:
        return True

    def differentiable_inputs(self, inputs: int) -> tuple[bool, ...]:
        """A second input gives the size only."""
        return (True, False)[:inputs]

    def backward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                         trainable: bool) -> Scratch:
        """One narrow per cropped dim: their backwards, last first, each pad the gradient
        back to one more dim's full size, the one before held until it is made (the
        output's freed after the first)."""
        shape, sizes = list(y), []
        for dim in reversed([d for d in range(1, len(y)) if y[d] != x[0][d]]):
            shape[dim] = x[0][dim]
            sizes.append(math.prod(shape))
        most = max((a + b for a, b in itertools.pairwise(sizes)), default=0)
        return Scratch(floats=most, frees_output_grad=True) if most else Scratch()

    def to_torch(self, torch: ModuleType, x: Sequence[Shape], y: Shape) -> TorchCall:
        from netspec.backends import functional

        if len(x) == 2:
            return TorchCall(functional.center_crop_like)
        return TorchCall(functional.center_crop, {"size": y[1:]})

    def label(self) -> str:
        return "center crop"
