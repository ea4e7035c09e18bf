"""Sliding-window ops (convolutions and pooling): geometry, receptive field and the warnings
that only windows can earn (rows dropped by a floor, windows sliding over a 1-pixel map)."""


from collections.abc import Sequence
from typing import ClassVar

from netspec.ops.base import RF, Note, Op, ShapeError, Tensor, spatial
from netspec.shapes import Shape, effective_kernel, floor_slack, fmt_spatial


class Window(Op):
    """An op that slides a kernel over `dims` spatial dimensions with floor-rounded output."""

    dims: ClassVar[int] = 2

    def kernel_size(self) -> tuple[int, ...]:
        return spatial(self.kernel, self.dims, "kernel")  # type: ignore[attr-defined]

    def stride_size(self) -> tuple[int, ...]:
        return spatial(self.stride, self.dims, "stride")  # type: ignore[attr-defined]

    def padding_size(self) -> tuple[int, ...]:
        return spatial(self.padding, self.dims, "padding")  # type: ignore[attr-defined]

    def dilation_size(self) -> tuple[int, ...]:
        return spatial(getattr(self, "dilation", 1), self.dims, "dilation")

    def spans(self) -> tuple[int, ...]:
        """Effective kernel extents `d*(k-1)+1`."""
        return tuple(map(effective_kernel, self.kernel_size(), self.dilation_size()))

    def too_small(self, sizes: Shape, src: str) -> ShapeError:
        """The error for an input of spatial `sizes` (from `src`) the window does not fit."""
        need = tuple(max(1, span - 2 * p) for span, p in zip(self.spans(), self.padding_size(),
                                                              strict=True))
        return ShapeError(f"needs at least {fmt_spatial(need)} input but {src} gives "
                          f"{fmt_spatial(sizes)}", key="kernel",
                          hint="use a smaller kernel, padding, or a larger input")

    def rounds_up(self) -> bool:
        """Whether the output size rounds up (ceil_mode), so no input rows are dropped."""
        return False

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        return rf[0].window(self.spans(), self.stride_size()) if rf[0] else None

    def floor_slacks(self, x: Sequence[Shape]) -> list[int]:
        """Per spatial dim of a tiling window that rounds down, its `shapes.floor_slack`
        (negative: the input rows it never reads). A window narrower than its stride skips
        rows between windows by design, and one that rounds up reads every row: only
        windows that tile their input can silently lose its tail."""
        if self.rounds_up():
            return []
        return [floor_slack(n, k, s, p, d) for n, k, s, p, d, span in zip(
            x[0][1:], self.kernel_size(), self.stride_size(), self.padding_size(),
            self.dilation_size(), self.spans(), strict=True) if span >= s]

    def notes(self, x: Sequence[Tensor], y: Shape) -> list[Note]:
        notes = []
        sizes = x[0].shape[1:]
        if not self.rounds_up():
            slacks = iter(self.floor_slacks([x[0].shape]))
            lost = [max(0, -next(slacks)) if span >= s else 0
                    for s, span in zip(self.stride_size(), self.spans(), strict=True)]
            if any(lost):
                notes.append(Note("floor-drops-input", _lost_message(lost, sizes, x[0].src), "stride"))
        if any(n == 1 and k > 1 for n, k in zip(sizes, self.kernel_size(), strict=True)):
            notes.append(Note("spatial-collapsed",
                              f"{x[0].src} has collapsed to {'x'.join(map(str, sizes))} before this "
                              f"{self.kind()}; its {'x'.join(map(str, self.kernel_size()))} window "
                              "sees mostly padding", "kernel"))
        return notes


def _lost_message(lost: Sequence[int], sizes: Sequence[int], src: str) -> str:
    names = ("row", "column") if len(lost) == 2 else ("element",) * len(lost)
    parts = [f"the last {n} {name}{'s' if n > 1 else ''}"
             for n, name in zip(lost, names, strict=True) if n]
    extent = "x".join(map(str, sizes))
    return (f"the output size rounds down, so this layer never reads {' and '.join(parts)} "
            f"of its {extent} input from {src}")
