"""Convolutions: conv1d/2d/3d and conv_transpose1d/2d/3d.

Shapes per sample: input `[C_in, *S]`, output `[out, *S']` with one spatial size per dim.
Costs (weights `[out, C_in/groups, *k]`, torch.nn.Conv2d):
    params = out * C_in/groups * prod(k) + out (bias)
    MACs   = prod(S') * out * C_in/groups * prod(k)
Transposed (weights `[C_in, out/groups, *k]`): each input pixel scatters a kernel, so
    MACs   = prod(S) * C_in * out/groups * prod(k)     (as torch.utils.flop_counter counts).
Backward (one aten.convolution_backward): the input gradient is the transposed
convolution of the output gradient with the weights, the weight gradient the convolution
of the input with the output gradient; each takes the forward's MACs, transposed or not.
torch's flop counter (conv_backward_flop) counts the weight gradient `groups` times over:
its transposed shapes lose the group division (pytorch/pytorch#183405 proposes dividing it out);
netspec counts the products computed.
Saved for the backward (with its weights, whichever requires grad): its input; where torch
pads the input first, the padded copy instead: a padding mode other than zeros (reflect and
replicate keep their input too, for their own backward) and a 'same' padding of odd total,
whose extra pixel on the right torch pads alone.
"""


import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, PlainValidator, WithJsonSchema

from netspec.ops.base import (
    RF,
    TUPLES_AS_LISTS,
    Autocast,
    Cost,
    GradCost,
    NonNegInts,
    PosInt,
    PosInts,
    Saved,
    Scratch,
    ShapeError,
    Tensor,
    channels_match,
    expect_rank,
    fmt_pair,
    fmt_step,
    spatial,
)
from netspec.ops.window import Window
from netspec.shapes import Shape, conv_out, conv_transpose_out, fmt_spatial, same_padding


def _padding(value: Any) -> Any:
    if value in ("same", "valid"):
        return value
    if isinstance(value, str):
        raise ValueError(f"expected an integer, a list of integers, 'same' or 'valid', found {value!r}")
    items = value if isinstance(value, list | tuple) else [value]
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in items):
        raise ValueError(f"expected a non-negative integer, a list of them, 'same' or 'valid', "
                         f"found {value!r}")
    return tuple(items) if isinstance(value, list | tuple) else value


ConvPadding = Annotated[
    int | tuple[int, ...] | Literal["same", "valid"],
    PlainValidator(_padding),
    TUPLES_AS_LISTS,
    WithJsonSchema({"anyOf": [
        {"type": "integer", "minimum": 0},
        {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
        {"enum": ["same", "valid"]},
    ]}),
]


def _check_groups(groups: int, c_in: int, out: int, t: Tensor) -> None:
    if c_in % groups:
        raise ShapeError(f"groups={groups} must divide the {c_in} input channels from {t.src}",
                         key="groups")
    if out % groups:
        raise ShapeError(f"groups={groups} must divide out={out}", key="groups")


class _ConvBase(Window):
    family: ClassVar[str] = "conv"
    torch_names: ClassVar[dict[str, str]] = {"out": "out_channels", "kernel": "kernel_size"}
    prefix: ClassVar[str] = "conv"
    positional: ClassVar[tuple[str, ...]] = ("out", "kernel", "stride", "padding")
    autocast_as: ClassVar[Autocast | None] = "low"

    out: PosInt
    kernel: PosInts
    stride: PosInts = 1
    dilation: PosInts = 1
    groups: PosInt = 1
    bias: bool = True
    in_: PosInt | None = Field(None, alias="in")

    def _input(self, x: Sequence[Tensor]) -> tuple[int, tuple[int, ...]]:
        t = x[0]
        expect_rank(self, t, self.dims + 1)
        c_in, *sizes = t.shape
        channels_match(self, self.in_, c_in, t)
        _check_groups(self.groups, c_in, self.out, t)
        return c_in, tuple(sizes)

    def grad_cost(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                  trainable: bool) -> GradCost:
        """Each gradient a convolution of the forward's MACs (see the module docstring)."""
        return GradCost.of_product(self.cost(x, y).macs, needs_input_grad[0], trainable)

    def _label(self, word: str) -> str:
        text = f"{word} {fmt_pair(self.kernel_size())}"
        if any(s > 1 for s in self.stride_size()):
            text += f" /{fmt_step(self.stride_size())}"
        if any(d > 1 for d in self.dilation_size()):
            text += f" d{fmt_step(self.dilation_size())}"
        if self.groups > 1:
            text += f" g{self.groups}"
        return f"{text}, {self.out}"


class _Conv(_ConvBase):
    padding: ConvPadding = 0
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros"

    def autocast(self, device: str, x: Sequence[Shape]) -> Autocast | None:
        """Padded first otherwise than with zeros (CPU autocast pads reflect and replicate
        in float32): not described."""
        return "low" if self.padding_mode == "zeros" else None

    def padding_size(self) -> tuple[int, ...]:
        if self.padding == "valid":
            return (0,) * self.dims
        if self.padding == "same":  # stride is 1 here; the odd extra pixel goes to the right
            return tuple(same_padding(k, d)[0] for k, d in
                         zip(self.kernel_size(), self.dilation_size(), strict=True))
        return spatial(self.padding, self.dims, "padding")

    def infer(self, x: Sequence[Tensor]) -> Shape:
        _, sizes = self._input(x)
        if self.padding == "same":
            if any(s != 1 for s in self.stride_size()):
                raise ShapeError("padding='same' needs stride 1 (PyTorch refuses strided 'same' "
                                 "convolutions)", key="padding",
                                 hint="use an explicit padding, e.g. (kernel - 1) // 2")
            right = tuple(same_padding(k, d)[1] for k, d in
                          zip(self.kernel_size(), self.dilation_size(), strict=True))
            self._check_padding_mode(right, sizes, x[0])
            return (self.out, *sizes)
        self._check_padding_mode(self.padding_size(), sizes, x[0])
        geometry = zip(sizes, self.kernel_size(), self.stride_size(), self.padding_size(),
                       self.dilation_size(), strict=True)
        out = tuple(conv_out(*g) for g in geometry)
        if any(n < 1 for n in out):
            raise self.too_small(sizes, x[0].src)
        return (self.out, *out)

    def _check_padding_mode(self, pads: tuple[int, ...], sizes: tuple[int, ...], t: Tensor) -> None:
        """Reflection needs padding < size, wrapping padding <= size (torch's F.pad rules)."""
        limits = {"reflect": (lambda p, n: p < n, "smaller than"),
                  "circular": (lambda p, n: p <= n, "at most")}
        if self.padding_mode in limits:
            fits, phrase = limits[self.padding_mode]
            if not all(fits(p, n) for p, n in zip(pads, sizes, strict=True)):
                raise ShapeError(f"{self.padding_mode} padding {fmt_pair(pads)} "
                                 f"must be {phrase} the {fmt_pair(sizes)} input from {t.src}",
                                 key="padding")

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        """Its input, or the copy torch pads first (module docstring)."""
        c, *sizes = x[0]
        if self.padding_mode != "zeros":
            pads = [sum(same_padding(k, d)) for k, d in
                    zip(self.kernel_size(), self.dilation_size(), strict=True)] \
                if self.padding == "same" else [2 * p for p in self.padding_size()]
            kept = (0,) if needs_input_grad[0] and self.padding_mode != "circular" else ()
            return Saved(inputs=kept, floats=c * math.prod(n + p for n, p in
                                                           zip(sizes, pads, strict=True)))
        if self.padding == "same":
            odd = [right - left for left, right in (same_padding(k, d) for k, d in
                   zip(self.kernel_size(), self.dilation_size(), strict=True))]
            if any(odd):
                return Saved(floats=c * math.prod(n + e for n, e in zip(sizes, odd, strict=True)))
        return Saved(inputs=(0,))

    def backward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                         trainable: bool) -> Scratch:
        """Where torch pads a copy first, the convolution's input gradient is the copy's,
        before the padding's backward cuts it to the input's. Circular padding is copies of
        slices into the padded tensor (ATen's `_pad_circular`): after the convolution has
        freed the copy it kept and its output's gradient, the backward of each slice's copy
        clones the padded gradient and adds the slice's gradient, scattered to the padded
        size, to the clone: three of the padded size at once."""
        padded = self.saved(x, y, needs_input_grad, trainable).floats
        if not padded or not needs_input_grad[0]:
            return Scratch()
        if self.padding_mode != "circular":
            return Scratch(floats=padded)
        # frees the copy and the output's gradient; holds three padded, the input's
        # gradient among them
        return Scratch(floats=padded, released=math.prod(y) + math.prod(x[0]) - 2 * padded)

    def cost(self, x: Sequence[Shape], y: Shape) -> Cost:
        per_output = x[0][0] // self.groups * math.prod(self.kernel_size())
        params = self.out * per_output + (self.out if self.bias else 0)
        return Cost(params=params, macs=math.prod(y) * per_output,
                    bias_adds=math.prod(y) if self.bias else 0)

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        padding = self.padding if isinstance(self.padding, str) else self.padding_size()
        return dict(in_channels=x[0][0], out_channels=self.out, kernel_size=self.kernel_size(),
                    stride=self.stride_size(), padding=padding, dilation=self.dilation_size(),
                    groups=self.groups, bias=self.bias, padding_mode=self.padding_mode)

    def label(self) -> str:
        return self._label("conv")


class Conv1d(_Conv):
    """1-D convolution over `[C, L]` signals (torch.nn.Conv1d)."""

    op: Literal["conv1d"] = "conv1d"
    torch_class: ClassVar[str] = "Conv1d"
    dims: ClassVar[int] = 1


class Conv2d(_Conv):
    """2-D convolution over `[C, H, W]` images (torch.nn.Conv2d)."""

    op: Literal["conv2d"] = "conv2d"
    torch_class: ClassVar[str] = "Conv2d"
    dims: ClassVar[int] = 2


class Conv3d(_Conv):
    """3-D convolution over `[C, D, H, W]` volumes and clips (torch.nn.Conv3d)."""

    op: Literal["conv3d"] = "conv3d"
    torch_class: ClassVar[str] = "Conv3d"
    dims: ClassVar[int] = 3


class _ConvTranspose(_ConvBase):
    """Transposed convolution; the output size is set by `output_padding`, or reached by
    giving `output_size` (torch's forward argument: within `stride - 1` of the smallest)."""

    prefix: ClassVar[str] = "deconv"

    padding: NonNegInts = 0
    output_padding: NonNegInts = 0
    output_size: PosInts | None = None

    def infer(self, x: Sequence[Tensor]) -> Shape:
        _, sizes = self._input(x)
        extra = self.extra(sizes)
        for e, s, d in zip(extra, self.stride_size(), self.dilation_size(), strict=True):
            if e >= s and e >= d:
                raise ShapeError(f"output_padding {e} must be smaller than the stride ({s}) or the "
                                 f"dilation ({d})", key="output_padding")
        out = self._sizes(sizes, extra)
        if any(n < 1 for n in out):
            raise ShapeError(f"padding {fmt_spatial(self.padding_size())} leaves an output of "
                             f"{fmt_spatial(out)} from the {fmt_spatial(sizes)} input of {x[0].src}",
                             key="padding")
        return (self.out, *out)

    def extra(self, sizes: Sequence[int]) -> tuple[int, ...]:
        """The output padding per spatial dim: `output_padding`, or what reaches
        `output_size` from the smallest output (ShapeError when none can)."""
        if self.output_size is None:
            return spatial(self.output_padding, self.dims, "output_padding")
        if self.output_padding != 0:
            raise ShapeError("give `output_size` or `output_padding`, not both", key="output_size")
        smallest = self._sizes(sizes, (0,) * self.dims)
        wanted = spatial(self.output_size, self.dims, "output_size")
        largest = tuple(low + s - 1 for low, s in zip(smallest, self.stride_size(), strict=True))
        if any(not low <= n <= high for n, low, high in zip(wanted, smallest, largest, strict=True)):
            raise ShapeError(f"output_size {fmt_spatial(wanted)} is out of reach from the "
                             f"{fmt_spatial(tuple(sizes))} input: each size lies "
                             f"from {fmt_spatial(smallest)} to {fmt_spatial(largest)}",
                             key="output_size")
        return tuple(n - low for n, low in zip(wanted, smallest, strict=True))

    def _sizes(self, sizes: Sequence[int], extra: Sequence[int]) -> tuple[int, ...]:
        geometry = zip(sizes, self.kernel_size(), self.stride_size(), self.padding_size(),
                       self.dilation_size(), extra, strict=True)
        return tuple(conv_transpose_out(*g) for g in geometry)

    def cost(self, x: Sequence[Shape], y: Shape) -> Cost:
        per_input = self.out // self.groups * math.prod(self.kernel_size())
        params = x[0][0] * per_input + (self.out if self.bias else 0)
        return Cost(params=params, macs=math.prod(x[0]) * per_input,
                    bias_adds=math.prod(y) if self.bias else 0)

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        return Saved(inputs=(0,))

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        """Output units `s` apart share inputs: the stride shrinks by `s`, and one output unit
        sees `ceil(span / s)` input units."""
        if rf[0] is None:
            return None
        strides = self.stride_size()
        taps = [-(-span // s) for span, s in zip(self.spans(), strides, strict=True)]
        grown = rf[0].window(taps, (1,) * self.dims)
        return RF(grown.size, tuple(Fraction(j) / s for j, s in zip(grown.stride, strides, strict=True)))

    def notes(self, x: Sequence[Tensor], y: Shape) -> list:
        return []

    def floor_slacks(self, x: Sequence[Shape]) -> list[int]:
        """None: every input pixel scatters a kernel, nothing is rounded away."""
        return []

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return dict(in_channels=x[0][0], out_channels=self.out, kernel_size=self.kernel_size(),
                    stride=self.stride_size(), padding=self.padding_size(),
                    output_padding=self.extra(x[0][1:]),
                    groups=self.groups, bias=self.bias, dilation=self.dilation_size())

    def label(self) -> str:
        return self._label("deconv")


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution (torch.nn.ConvTranspose1d), for learned upsampling."""

    op: Literal["conv_transpose1d"] = "conv_transpose1d"
    torch_class: ClassVar[str] = "ConvTranspose1d"
    dims: ClassVar[int] = 1


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution (torch.nn.ConvTranspose2d), for learned upsampling."""

    op: Literal["conv_transpose2d"] = "conv_transpose2d"
    torch_class: ClassVar[str] = "ConvTranspose2d"
    dims: ClassVar[int] = 2


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution (torch.nn.ConvTranspose3d), for learned upsampling."""

    op: Literal["conv_transpose3d"] = "conv_transpose3d"
    torch_class: ClassVar[str] = "ConvTranspose3d"
    dims: ClassVar[int] = 3
