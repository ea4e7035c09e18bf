"""Network inputs: a named tensor of a given per-sample shape. Not written in `layers`; the
spec's `input:`/`inputs:` declare them."""


from collections.abc import Sequence
from typing import ClassVar, Literal

from netspec.ops.base import RF, Op, PosInt, Tensor
from netspec.shapes import Shape


class Input(Op):
    """A graph input of per-sample shape `shape` (`[C, H, W]` for images)."""

    op: Literal["input"] = "input"
    family: ClassVar[str] = "io"
    arity: ClassVar[tuple[int, int | None]] = (0, 0)

    shape: tuple[PosInt, ...]

    def infer(self, x: Sequence[Tensor]) -> Shape:
        return self.shape

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        """Each input pixel sees itself: size 1, stride 1 in every spatial dim."""
        spatial = len(self.shape) - 1
        return RF((1,) * spatial, (1,) * spatial) if spatial else None

    def label(self) -> str:
        return "input"
