"""Where tensors come from: the network's inputs (declared by `input:`/`inputs:`, not
written in `layers`) and learned tensors (`parameter`).

parameter: any input [*S] -> `shape`, the same learned values for every sample;
           prod(shape) parameters, no MACs
"""


import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any, ClassVar, Literal

from netspec.ops.base import RF, Autocast, Cost, Op, PosInt, Tensor, TokenIds
from netspec.shapes import Shape, fmt_shape


class Input(Op):
    """A graph input of per-sample shape `shape` (`[C, H, W]` for images), of float values
    or, with `vocab`, of integer token ids below `vocab` (`[T]` for a sequence)."""

    op: Literal["input"] = "input"
    family: ClassVar[str] = "io"
    arity: ClassVar[tuple[int, int | None]] = (0, 0)

    shape: tuple[PosInt, ...]
    vocab: PosInt | None = None

    def infer(self, x: Sequence[Tensor]) -> Shape:
        return self.shape

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        """Each input pixel sees itself: size 1, stride 1 in every spatial dim (token ids
        have no grid: an embedding gives vectors, not pixels)."""
        spatial = len(self.shape) - 1 if self.vocab is None else 0
        return RF((1,) * spatial, (1,) * spatial) if spatial else None

    def label(self) -> str:
        return "input" if self.vocab is None else f"tokens (vocab {self.vocab:,})"


class Parameter(Op):
    """A learned tensor of per-sample shape `shape`, the same for every sample: a class
    token, a position embedding, a layer scale. It reads its input only for the batch
    size; zeros until `init:` says otherwise (netspec.backends.modules.LearnedTensor)."""

    op: Literal["parameter"] = "parameter"
    torch_class: ClassVar[str] = "LearnedTensor"
    family: ClassVar[str] = "io"
    positional: ClassVar[tuple[str, ...]] = ("shape",)
    token_ids: ClassVar[TokenIds] = "ignored"
    autocast_as: ClassVar[Autocast | None] = "float32"

    shape: list[PosInt]

    def infer(self, x: Sequence[Tensor]) -> Shape:
        return tuple(self.shape)

    def cost(self, x: Sequence[Shape], y: Shape) -> Cost:
        return Cost(params=math.prod(self.shape))

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        """Learned values see no input."""
        return None

    def differentiable_inputs(self, inputs: int) -> tuple[bool, ...]:
        """Its input gives the batch size only."""
        return (False,) * inputs

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return {"shape": tuple(self.shape)}

    def to_torch(self, torch: ModuleType, x: Sequence[Shape], y: Shape) -> Any:
        from netspec.backends.modules import LearnedTensor

        return LearnedTensor(tuple(self.shape))

    def label(self) -> str:
        return f"parameter {fmt_shape(tuple(self.shape))}"
