"""Pooling: max/avg pool 1d/2d (window, stride defaulting to the window, padding, ceil_mode)
and adaptive avg/max pool 1d/2d (a fixed output size). No parameters, no MACs.

Shapes per sample: `[C, *S] -> [C, *S']`, with S' from `shapes.pool_out` (ATen's rule).
Saved for the backward: the input, and max pooling's argmax per output element (int64);
an adaptive average pool to one element per channel (a mean) keeps nothing.
"""


import math
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import PlainValidator, WithJsonSchema

from netspec.ops.base import (
    RF,
    TUPLES_AS_LISTS,
    Autocast,
    NonNegInts,
    Op,
    PosInt,
    PosInts,
    Saved,
    ShapeError,
    Tensor,
    expect_rank,
    fmt_pair,
    fmt_step,
    ratio,
    returned_anyway,
    spatial,
)
from netspec.ops.window import Window
from netspec.shapes import Shape, fmt_spatial, pool_out

C_INT_MAX = 2**31 - 1
"""The largest window argument torch's pooling takes: its kernels keep them in C ints (1-d
pooling runs on the 2-d kernels; a MaxPool1d whose input needs no gradient is the one
exception, and training needs it)."""


def _autocast(dims: int, device: str) -> Autocast:
    """How autocast runs a pool of `dims` spatial dims: CPU autocast pools volumes in
    float32 (max, average and adaptive pools alike)."""
    return "float32" if dims == 3 and device == "cpu" else "same"


class _Pool(Window):
    family: ClassVar[str] = "pool"
    torch_names: ClassVar[dict[str, str]] = {"kernel": "kernel_size"}
    positional: ClassVar[tuple[str, ...]] = ("kernel", "stride", "padding")
    word: ClassVar[str]

    kernel: PosInts
    stride: PosInts | None = None
    padding: NonNegInts = 0
    ceil_mode: bool = False

    def autocast(self, device: str, x: Sequence[Shape]) -> Autocast | None:
        return _autocast(self.dims, device)

    def stride_size(self) -> tuple[int, ...]:
        return self.kernel_size() if self.stride is None else spatial(self.stride, self.dims, "stride")

    def rounds_up(self) -> bool:
        return self.ceil_mode

    def returns_view(self, x: Sequence[Shape], y: Shape, strided: bool = False) -> bool:
        """torch pools a signal as a one-row image and squeezes the row away."""
        return self.dims == 1

    def infer(self, x: Sequence[Tensor]) -> Shape:
        t = x[0]
        expect_rank(self, t, self.dims + 1)
        c, *sizes = t.shape
        self.check_c_ints()
        for k, p in zip(self.kernel_size(), self.padding_size(), strict=True):
            if p > k // 2:
                raise ShapeError(f"padding {p} must be at most half the {k}-wide window",
                                 key="padding")
        geometry = zip(sizes, self.kernel_size(), self.stride_size(), self.padding_size(),
                       self.dilation_size(), strict=True)
        out = tuple(pool_out(*g, ceil_mode=self.ceil_mode) for g in geometry)
        if any(n < 1 for n in out):
            raise self.too_small(tuple(sizes), t.src)
        return (c, *out)

    def check_c_ints(self) -> None:
        for key, values in (("kernel", self.kernel_size()), ("stride", self.stride_size()),
                            ("padding", self.padding_size()), ("dilation", self.dilation_size())):
            if max(values) > C_INT_MAX:
                raise ShapeError(f"{key} {max(values):,} is more than torch's {self.torch_class} "
                                 f"takes ({C_INT_MAX:,})", key=key)

    def label(self) -> str:
        text = f"{self.word} {fmt_pair(self.kernel_size())}"
        if self.stride_size() != self.kernel_size():
            text += f" /{fmt_step(self.stride_size())}"
        return text + (" ceil" if self.ceil_mode else "")


class _MaxPool(_Pool):
    prefix: ClassVar[str] = "maxpool"
    word: ClassVar[str] = "maxpool"
    dilation: PosInts = 1

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        return Saved(inputs=(0,), indices=math.prod(y))

    def forward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                        trainable: bool, strided: bool = False) -> int:
        """torch's kernels return the indices with or without a gradient to come; but its
        1-d kernel on the CPU, which without one makes none, unless a dispatch mode is on
        (MemTracker's): counted, an upper bound there, as on CUDA."""
        return returned_anyway(self, x, y, needs_input_grad, trainable)

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return dict(kernel_size=self.kernel_size(), stride=self.stride_size(),
                    padding=self.padding_size(), dilation=self.dilation_size(),
                    ceil_mode=self.ceil_mode)


class _AvgPool(_Pool):
    prefix: ClassVar[str] = "avgpool"
    word: ClassVar[str] = "avgpool"
    fits_unpadded: ClassVar[bool] = False
    """Whether torch also refuses an input smaller than the window before padding
    (avg_pool3d does; the 1-d and 2-d pools pad first)."""
    count_include_pad: bool = True

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        return Saved(inputs=(0,))

    def infer(self, x: Sequence[Tensor]) -> Shape:
        shape = super().infer(x)
        sizes = x[0].shape[1:]
        if self.fits_unpadded and any(n < k for n, k in zip(sizes, self.kernel_size(), strict=True)):
            raise ShapeError(f"the {fmt_spatial(tuple(sizes))} input from {x[0].src} is smaller "
                             f"than the {fmt_pair(self.kernel_size())} window, which torch's "
                             f"{self.torch_class} refuses even with padding", key="kernel")
        return shape

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        extra = {"divisor_override": self.divisor_override} if self.dims > 1 else {}
        return dict(kernel_size=self.kernel_size(), stride=self.stride_size(),
                    padding=self.padding_size(), ceil_mode=self.ceil_mode,
                    count_include_pad=self.count_include_pad, **extra)


class MaxPool1d(_MaxPool):
    """Max pooling over `[C, L]` (torch.nn.MaxPool1d)."""

    op: Literal["maxpool1d"] = "maxpool1d"
    torch_class: ClassVar[str] = "MaxPool1d"
    dims: ClassVar[int] = 1


class MaxPool2d(_MaxPool):
    """Max pooling over `[C, H, W]` (torch.nn.MaxPool2d)."""

    op: Literal["maxpool2d"] = "maxpool2d"
    torch_class: ClassVar[str] = "MaxPool2d"
    dims: ClassVar[int] = 2


class MaxPool3d(_MaxPool):
    """Max pooling over `[C, D, H, W]` (torch.nn.MaxPool3d)."""

    op: Literal["maxpool3d"] = "maxpool3d"
    torch_class: ClassVar[str] = "MaxPool3d"
    dims: ClassVar[int] = 3


class AvgPool1d(_AvgPool):
    """Average pooling over `[C, L]` (torch.nn.AvgPool1d)."""

    op: Literal["avgpool1d"] = "avgpool1d"
    torch_class: ClassVar[str] = "AvgPool1d"
    dims: ClassVar[int] = 1


class AvgPool2d(_AvgPool):
    """Average pooling over `[C, H, W]` (torch.nn.AvgPool2d)."""

    op: Literal["avgpool2d"] = "avgpool2d"
    torch_class: ClassVar[str] = "AvgPool2d"
    dims: ClassVar[int] = 2
    divisor_override: PosInt | None = None


class AvgPool3d(_AvgPool):
    """Average pooling over `[C, D, H, W]` (torch.nn.AvgPool3d)."""

    op: Literal["avgpool3d"] = "avgpool3d"
    torch_class: ClassVar[str] = "AvgPool3d"
    dims: ClassVar[int] = 3
    fits_unpadded: ClassVar[bool] = True
    divisor_override: PosInt | None = None


def _output_size(value: Any) -> Any:
    if value is None:
        raise ValueError("expected a positive integer or a list of them, found None")
    items = value if isinstance(value, list | tuple) else [value]
    ok = all(v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1) for v in items)
    if not items or not ok:
        raise ValueError(f"expected a positive integer or a list of positive integers or nulls, "
                         f"found {value!r}")
    return tuple(items) if isinstance(value, list | tuple) else value


OutputSize = Annotated[
    int | tuple[int | None, ...],
    PlainValidator(_output_size),
    TUPLES_AS_LISTS,
    WithJsonSchema({"anyOf": [
        {"type": "integer", "minimum": 1},
        {"type": "array", "minItems": 1,
         "items": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]}},
    ]}),
]


class _AdaptivePool(Op):
    """Pools each region so the output has exactly `size` (null keeps that input size)."""

    family: ClassVar[str] = "pool"
    torch_names: ClassVar[dict[str, str]] = {"size": "output_size"}
    positional: ClassVar[tuple[str, ...]] = ("size",)
    dims: ClassVar[int]
    word: ClassVar[str]

    size: OutputSize

    def returns_view(self, x: Sequence[Shape], y: Shape, strided: bool = False) -> bool:
        """torch pools a signal as a one-row image and squeezes the row away."""
        return self.dims == 1

    def autocast(self, device: str, x: Sequence[Shape]) -> Autocast | None:
        return _autocast(self.dims, device)

    def target(self, sizes: Sequence[int]) -> tuple[int, ...]:
        wanted = spatial(self.size, self.dims, "size")
        if self.dims == 1 and None in wanted:
            raise ShapeError("a 1-d adaptive pool needs its output length (torch takes no null "
                             "here)", key="size")
        return tuple(n if w is None else w for w, n in zip(wanted, sizes, strict=True))

    def infer(self, x: Sequence[Tensor]) -> Shape:
        expect_rank(self, x[0], self.dims + 1)
        c, *sizes = x[0].shape
        return (c, *self.target(sizes))

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        """Output cell i pools input cells [floor(i*n/m), ceil((i+1)*n/m)), spaced n/m apart;
        the widest such region is the window."""
        if rf[0] is None:
            return None
        spans = [max(-(-(i + 1) * n // m) - i * n // m for i in range(m))
                 for n, m in zip(x[0][1:], y[1:], strict=True)]
        steps = [ratio(n, m) for n, m in zip(x[0][1:], y[1:], strict=True)]
        return rf[0].window(spans, steps)

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        if self.word == "adaptive maxpool":
            return Saved(inputs=(0,), indices=math.prod(y))
        return Saved() if math.prod(y[1:]) == 1 else Saved(inputs=(0,))

    def forward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                        trainable: bool, strided: bool = False) -> int:
        """A max pool's kernel returns the indices with or without a gradient to come."""
        return returned_anyway(self, x, y, needs_input_grad, trainable)

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return {"output_size": self.size}

    def label(self) -> str:
        sizes = spatial(self.size, self.dims, "size")
        return f"{self.word} → " + "x".join("*" if s is None else str(s) for s in sizes)


class AdaptiveAvgPool1d(_AdaptivePool):
    """Adaptive average pooling to a fixed length (torch.nn.AdaptiveAvgPool1d)."""

    op: Literal["adaptive_avgpool1d"] = "adaptive_avgpool1d"
    torch_class: ClassVar[str] = "AdaptiveAvgPool1d"
    prefix: ClassVar[str] = "avgpool"
    word: ClassVar[str] = "adaptive avgpool"
    dims: ClassVar[int] = 1


class AdaptiveAvgPool2d(_AdaptivePool):
    """Adaptive average pooling to a fixed size (torch.nn.AdaptiveAvgPool2d); `1` is global."""

    op: Literal["adaptive_avgpool2d"] = "adaptive_avgpool2d"
    torch_class: ClassVar[str] = "AdaptiveAvgPool2d"
    prefix: ClassVar[str] = "avgpool"
    word: ClassVar[str] = "adaptive avgpool"
    dims: ClassVar[int] = 2


class AdaptiveAvgPool3d(_AdaptivePool):
    """Adaptive average pooling of `[C, D, H, W]` to a fixed size (torch.nn.AdaptiveAvgPool3d)."""

    op: Literal["adaptive_avgpool3d"] = "adaptive_avgpool3d"
    torch_class: ClassVar[str] = "AdaptiveAvgPool3d"
    prefix: ClassVar[str] = "avgpool"
    word: ClassVar[str] = "adaptive avgpool"
    dims: ClassVar[int] = 3


class AdaptiveMaxPool1d(_AdaptivePool):
    """Adaptive max pooling to a fixed length (torch.nn.AdaptiveMaxPool1d)."""

    op: Literal["adaptive_maxpool1d"] = "adaptive_maxpool1d"
    torch_class: ClassVar[str] = "AdaptiveMaxPool1d"
    prefix: ClassVar[str] = "maxpool"
    word: ClassVar[str] = "adaptive maxpool"
    dims: ClassVar[int] = 1


class AdaptiveMaxPool2d(_AdaptivePool):
    """Adaptive max pooling to a fixed size (torch.nn.AdaptiveMaxPool2d)."""

    op: Literal["adaptive_maxpool2d"] = "adaptive_maxpool2d"
    torch_class: ClassVar[str] = "AdaptiveMaxPool2d"
    prefix: ClassVar[str] = "maxpool"
    word: ClassVar[str] = "adaptive maxpool"
    dims: ClassVar[int] = 2


class AdaptiveMaxPool3d(_AdaptivePool):
    """Adaptive max pooling of `[C, D, H, W]` to a fixed size (torch.nn.AdaptiveMaxPool3d)."""

    op: Literal["adaptive_maxpool3d"] = "adaptive_maxpool3d"
    torch_class: ClassVar[str] = "AdaptiveMaxPool3d"
    prefix: ClassVar[str] = "maxpool"
    word: ClassVar[str] = "adaptive maxpool"
    dims: ClassVar[int] = 3
