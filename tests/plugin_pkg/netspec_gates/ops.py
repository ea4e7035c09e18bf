"""The `swish_gate` and `scaled_tanh` ops: declared as netspec's built-in ops are, each in
one class, without torch.

`netspec check` imports this module (through the `netspec.ops` entry points) and never
torch: `to_torch` imports the code that computes the op when a network is built.
"""

from collections.abc import Sequence
from types import ModuleType
from typing import Any, ClassVar, Literal

from pydantic import field_validator

from netspec.ops.base import RF, Cost, Op, PosFloat, PosInt, Tensor, TorchCall, expect_rank
from netspec.shapes import Shape


class SwishGate(Op):
    """x * sigmoid(a depthwise k x k convolution of x): each unit gated by the window
    around it in its own channel (netspec_gates.modules.SwishGate)."""

    op: Literal["swish_gate"] = "swish_gate"
    kernel: PosInt = 3
    torch_class: ClassVar[str] = "SwishGate"
    family: ClassVar[str] = "activation"
    positional: ClassVar[tuple[str, ...]] = ("kernel",)

    @field_validator("kernel")
    @classmethod
    def _odd(cls, kernel: int) -> int:
        if kernel % 2 == 0:
            raise ValueError(f"must be odd to keep the map's size, found {kernel}")
        return kernel

    def infer(self, x: Sequence[Tensor]) -> Shape:
        expect_rank(self, x[0], 3)  # [C, H, W]
        return x[0].shape

    def cost(self, x: Sequence[Shape], y: Shape) -> Cost:
        """The gate's depthwise conv: C k^2 weights and C biases; C H W k^2 MACs."""
        c, h, w = y
        window = self.kernel * self.kernel
        return Cost(params=c * window + c, macs=c * h * w * window, bias_adds=c * h * w)

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        return None if rf[0] is None else rf[0].window((self.kernel,) * 2, (1, 1))

    def label(self) -> str:
        return f"swish_gate {self.kernel}x{self.kernel}"

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return {"channels": x[0][0], "kernel": self.kernel}

    def to_torch(self, torch: ModuleType, x: Sequence[Shape], y: Shape) -> Any:
        from netspec_gates.modules import SwishGate

        return SwishGate(**self.torch_args(x, y))


class ScaledTanh(Op):
    """scale * tanh(x / scale): values softly capped at +-scale (Gemma 2's logit soft-capping),
    a function call (netspec_gates.functional.scaled_tanh)."""

    op: Literal["scaled_tanh"] = "scaled_tanh"
    scale: PosFloat = 1.0
    family: ClassVar[str] = "activation"
    positional: ClassVar[tuple[str, ...]] = ("scale",)

    def label(self) -> str:
        return f"scaled_tanh {self.scale:g}"

    def to_torch(self, torch: ModuleType, x: Sequence[Shape], y: Shape) -> TorchCall:
        from netspec_gates.functional import scaled_tanh

        return TorchCall(scaled_tanh, {"scale": self.scale})
