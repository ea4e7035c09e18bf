"""Activations and output normalisers. Elementwise, shape-preserving, no MACs; PReLU alone
has parameters (1, or one per channel). The gated unit `glu` halves its `dim`:
`[..., 2n] -> [..., n]`, the first half times act(the second).

Saved for the backward (derivatives.yaml, as torch runs it): the output of relu, sigmoid,
tanh, softmax and log_softmax, the input of the others. In place, the input's memory becomes
the output: relu, leaky_relu and elu keep that result, the others a copy of the input
taken before it is overwritten. glu keeps its input and act(second half), a tensor of its
own.
"""


import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any, ClassVar, Literal

from netspec.ops.base import (
    Autocast,
    Cost,
    Op,
    Saved,
    Scratch,
    ShapeError,
    Tensor,
    TorchCall,
    returned_anyway,
    sample_dim,
)
from netspec.shapes import Shape, fmt_shape


class _Activation(Op):
    family: ClassVar[str] = "activation"
    keeps: ClassVar[Literal["input", "output"]] = "input"
    """The tensor its backward reads (module docstring)."""
    autocast_as: ClassVar[Autocast | None] = "same"

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        return Saved(output=True) if self.keeps == "output" else Saved(inputs=(0,))


class _InPlace(_Activation):
    keeps_in_place: ClassVar[Literal["output", "copy"]] = "copy"
    """In place: the result its backward reads, or a copy of the input it overwrites."""

    inplace: bool = False

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        if not self.inplace:
            return super().saved(x, y, needs_input_grad, trainable)
        return Saved(output=True) if self.keeps_in_place == "output" else \
            Saved(floats=math.prod(x[0]))

    def aliases(self, x: Sequence[Shape], y: Shape) -> int | None:
        return 0 if self.inplace else None


class ReLU(_InPlace):
    """max(x, 0) (torch.nn.ReLU)."""

    op: Literal["relu"] = "relu"
    torch_class: ClassVar[str] = "ReLU"
    keeps: ClassVar[Literal["input", "output"]] = "output"
    keeps_in_place: ClassVar[Literal["output", "copy"]] = "output"


class ReLU6(_InPlace):
    """min(max(x, 0), 6) (torch.nn.ReLU6)."""

    op: Literal["relu6"] = "relu6"
    torch_class: ClassVar[str] = "ReLU6"


class LeakyReLU(_InPlace):
    """x if x > 0 else negative_slope * x (torch.nn.LeakyReLU)."""

    op: Literal["leaky_relu"] = "leaky_relu"
    torch_class: ClassVar[str] = "LeakyReLU"
    keeps_in_place: ClassVar[Literal["output", "copy"]] = "output"
    positional: ClassVar[tuple[str, ...]] = ("negative_slope",)
    negative_slope: float = 0.01


class ELU(_InPlace):
    """x if x > 0 else alpha * (exp(x) - 1) (torch.nn.ELU)."""

    op: Literal["elu"] = "elu"
    torch_class: ClassVar[str] = "ELU"
    keeps_in_place: ClassVar[Literal["output", "copy"]] = "output"
    positional: ClassVar[tuple[str, ...]] = ("alpha",)
    alpha: float = 1.0


class GELU(_Activation):
    """x * Phi(x), exact or with the tanh approximation (torch.nn.GELU)."""

    op: Literal["gelu"] = "gelu"
    torch_class: ClassVar[str] = "GELU"
    positional: ClassVar[tuple[str, ...]] = ("approximate",)
    approximate: Literal["none", "tanh"] = "none"


class SiLU(_InPlace):
    """x * sigmoid(x), a.k.a. swish (torch.nn.SiLU)."""

    op: Literal["silu"] = "silu"
    torch_class: ClassVar[str] = "SiLU"


class Hardswish(_InPlace):
    """x * relu6(x + 3) / 6 (torch.nn.Hardswish)."""

    op: Literal["hardswish"] = "hardswish"
    torch_class: ClassVar[str] = "Hardswish"


class Hardsigmoid(_InPlace):
    """relu6(x + 3) / 6 (torch.nn.Hardsigmoid): the gate of MobileNetV3's squeeze-excite."""

    op: Literal["hardsigmoid"] = "hardsigmoid"
    torch_class: ClassVar[str] = "Hardsigmoid"


class Mish(_InPlace):
    """x * tanh(softplus(x)) (torch.nn.Mish)."""

    op: Literal["mish"] = "mish"
    torch_class: ClassVar[str] = "Mish"


class Sigmoid(_Activation):
    """1 / (1 + exp(-x)) (torch.nn.Sigmoid)."""

    op: Literal["sigmoid"] = "sigmoid"
    torch_class: ClassVar[str] = "Sigmoid"
    keeps: ClassVar[Literal["input", "output"]] = "output"


class Tanh(_Activation):
    """tanh(x) (torch.nn.Tanh)."""

    op: Literal["tanh"] = "tanh"
    torch_class: ClassVar[str] = "Tanh"
    keeps: ClassVar[Literal["input", "output"]] = "output"


class PReLU(_Activation):
    """LeakyReLU with a learned slope: one shared, or one per channel (torch.nn.PReLU).

    params = C when `per_channel`, else 1."""

    op: Literal["prelu"] = "prelu"
    torch_class: ClassVar[str] = "PReLU"
    autocast_as: ClassVar[Autocast | None] = "low"
    per_channel: bool = False
    init: float = 0.25

    def cost(self, x: Sequence[Shape], y: Shape) -> Cost:
        return Cost(params=x[0][0] if self.per_channel else 1)

    def backward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                         trainable: bool) -> Scratch:
        """torch's fused kernel makes both gradients, whichever are needed: the input's,
        and the slope's elementwise before it is summed."""
        return Scratch(floats=2 * math.prod(x[0]))

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return {"num_parameters": x[0][0] if self.per_channel else 1, "init": self.init}


class _Normaliser(_Activation):
    """Softmax-like: normalises along `dim` (torch convention: batch is dim 0; 1 = channels)."""

    positional: ClassVar[tuple[str, ...]] = ("dim",)
    keeps: ClassVar[Literal["input", "output"]] = "output"
    float32_on_cuda: ClassVar[bool] = True
    dim: int = 1

    def infer(self, x: Sequence[Tensor]) -> Shape:
        sample_dim(self.dim, x[0].shape)
        return x[0].shape

    def label(self) -> str:
        return f"{self.kind()} dim={self.dim}" if self.dim != 1 else self.kind()


class Softmax(_Normaliser):
    """exp(x) / sum(exp(x)) along `dim` (torch.nn.Softmax)."""

    op: Literal["softmax"] = "softmax"
    torch_class: ClassVar[str] = "Softmax"


class LogSoftmax(_Normaliser):
    """log(softmax(x)) along `dim` (torch.nn.LogSoftmax)."""

    op: Literal["log_softmax"] = "log_softmax"
    torch_class: ClassVar[str] = "LogSoftmax"


class GLU(_Activation):
    """Gated linear unit: `dim` cut in two halves a and b, a * act(b) (torch.nn.GLU with
    sigmoid; SwiGLU with silu, GEGLU with gelu, as transformer MLPs gate)."""

    op: Literal["glu"] = "glu"
    positional: ClassVar[tuple[str, ...]] = ("activation",)

    activation: Literal["sigmoid", "silu", "gelu", "relu", "tanh"] = "sigmoid"
    dim: int = -1

    def infer(self, x: Sequence[Tensor]) -> Shape:
        shape = x[0].shape
        i = sample_dim(self.dim, shape)
        if shape[i] % 2:
            raise ShapeError(f"glu halves dim {self.dim} ({shape[i]}) of {fmt_shape(shape)} from "
                             f"{x[0].src}: it must be even", key="dim")
        return (*shape[:i], shape[i] // 2, *shape[i + 1:])

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        """Its input (both halves: each is the other's factor's) and act(second half)."""
        return Saved(inputs=(0,), floats=math.prod(y))

    def forward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                        trainable: bool, strided: bool = False) -> int:
        """Keeping nothing, act(second half) is still made, beside the product."""
        return returned_anyway(self, x, y, needs_input_grad, trainable)

    def backward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                         trainable: bool) -> Scratch:
        """The product's backward: both halves' gradients beside its output's."""
        return Scratch(floats=2 * math.prod(y))

    def to_torch(self, torch: ModuleType, x: Sequence[Shape], y: Shape) -> TorchCall:
        from netspec.backends import functional

        return TorchCall(functional.gated, {"dim": self.dim, "activation": self.activation})

    def label(self) -> str:
        gate = {"sigmoid": "glu", "silu": "swiglu", "gelu": "geglu"}.get(self.activation)
        return gate or f"glu ({self.activation})"
