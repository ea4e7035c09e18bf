"""Ops that join or pass tensors: identity, add, mul (torch broadcasting), concat.

add/mul: per-sample shapes broadcast as torch does (aligned from the right, 1 stretches),
    so `[C,H,W] * [C,1,1]` (squeeze-and-excitation) works; the batch must agree.
concat:  shapes equal except along `dim` (torch convention: 1 = channels), which adds up.
Saved for the backward: nothing for add and concat; mul, folded pairwise (`a * b * c` is
`(a * b) * c`), keeps each factor whose partner requires grad, the partial products being
tensors of its own. identity is its input.
"""


import math
import operator
from collections.abc import Sequence
from types import ModuleType
from typing import ClassVar, Literal

from netspec.ops.base import (
    RF,
    Autocast,
    Op,
    Saved,
    Scratch,
    ShapeError,
    Tensor,
    TokenIds,
    TorchCall,
    broadcast,
    sample_dim,
)
from netspec.shapes import Shape, dims_label, fmt_shape


def _merge_rf(rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
    """A merged unit sees the union of its inputs' fields: the largest size. Its stride is
    the output grid's: the largest of the inputs on that grid, not of one broadcast over it
    (a squeeze-and-excitation gate, [C,1,1], sees the whole image but is no coarser grid)."""
    if any(r is None for r in rf) or len({len(r.size) for r in rf}) != 1:  # type: ignore[union-attr]
        return None
    on_grid = [r for r, s in zip(rf, x, strict=True) if s[1:] == y[1:]] or rf
    return RF(tuple(map(max, zip(*(r.size for r in rf), strict=True))),  # type: ignore[union-attr]
              tuple(map(max, zip(*(r.stride for r in on_grid), strict=True))))  # type: ignore[union-attr]


def _differs(word: str, x: Sequence[Tensor], a: Shape, b: Shape, index: int, rank: int) -> ShapeError:
    """`add of [64,28,28] and [32,28,28] differs in C (64 vs 32)`; `index` counts in `rank`
    dims aligned from the right."""
    m, n = (1,) * (rank - len(a)) + a, (1,) * (rank - len(b)) + b
    srcs = _listing(x)
    return ShapeError(f"{word} of {fmt_shape(a)} and {fmt_shape(b)} differs in "
                      f"{dims_label(rank)[index]} ({m[index]} vs {n[index]}); inputs: {srcs}")


def _listing(x: Sequence[Tensor]) -> str:
    """`a and b`, `a, b and c`."""
    names = [t.src for t in x]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def _partial(x: Sequence[Shape], count: int) -> Shape:
    """The shape of the result of the first `count` inputs, broadcast."""
    shape = x[0]
    for factor in x[1:count]:
        shape = tuple(max(m, n) for m, n in zip(shape, factor, strict=True))
    return shape


class Identity(Op):
    """Passes its input through unchanged (torch.nn.Identity)."""

    op: Literal["identity"] = "identity"
    torch_class: ClassVar[str] = "Identity"
    prefix: ClassVar[str] = "id"
    token_ids: ClassVar[TokenIds] = "kept"
    autocast_as: ClassVar[Autocast | None] = "same"

    def aliases(self, x: Sequence[Shape], y: Shape) -> int | None:
        return 0


class _Broadcast(Op):
    family: ClassVar[str] = "merge"
    arity: ClassVar[tuple[int, int | None]] = (2, None)
    short_inputs: ClassVar[bool] = True
    autocast_as: ClassVar[Autocast | None] = "same"

    def infer(self, x: Sequence[Tensor]) -> Shape:
        out = x[0].shape
        for t in x[1:]:
            if len(t.shape) != len(out):
                raise ShapeError(f"{self.kind()} of {fmt_shape(out)} and {fmt_shape(t.shape)} "
                                 f"mixes ranks; inputs: {_listing(x)}",
                                 hint="with the batch in front, torch would broadcast against "
                                      "the batch; keep singleton dims, e.g. [C,1,1]")
            both = broadcast(out, t.shape)
            if isinstance(both, int):
                raise _differs(self.kind(), x, out, t.shape, both, len(out))
            out = both
        return out

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        return _merge_rf(rf, x, y)

    def partial_results(self, x: Sequence[Shape], needs_input_grad: Sequence[bool]
                        ) -> list[tuple[int, bool]] | None:
        """Each pair's result: the first k factors', broadcast; a product keeps it where
        the next factor requires grad (`Mul.saved`)."""
        if len(x) < 3:
            return None
        return [(math.prod(_partial(x, k)), self.keeps_partial(k, needs_input_grad))
                for k in range(2, len(x))]

    def keeps_partial(self, k: int, needs_input_grad: Sequence[bool]) -> bool:
        """Whether autograd keeps the result of the first `k` inputs (an add keeps none)."""
        return False


class Add(_Broadcast):
    """Elementwise sum of two or more tensors, as in residual shortcuts."""

    op: Literal["add"] = "add"

    def passes_gradient(self, x: Sequence[Shape], y: Shape) -> tuple[bool, ...]:
        """The output's gradient is each input's, but where an input broadcasts (summed)."""
        return tuple(tuple(s) == tuple(y) for s in x)

    def to_torch(self, torch: ModuleType, x: Sequence[Shape], y: Shape) -> TorchCall:
        return TorchCall(operator.add, pairwise=True)


class Mul(_Broadcast):
    """Elementwise product of two or more tensors, as in attention gates."""

    op: Literal["mul"] = "mul"

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        """Pairwise from the left: each product keeps a factor when the other requires grad
        (the left factor: input 0, or a partial product)."""
        kept = [0] if needs_input_grad[1] else []
        kept += [i for i in range(1, len(x)) if any(needs_input_grad[:i])]
        floats = sum(size for size, keeps in self.partial_results(x, needs_input_grad) or ()
                     if keeps)
        return Saved(inputs=tuple(sorted(set(kept))), floats=floats)

    def keeps_partial(self, k: int, needs_input_grad: Sequence[bool]) -> bool:
        return needs_input_grad[k]

    def backward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                         trainable: bool) -> Scratch:
        """torch multiplies pairwise from the left and runs the pairs' backwards from the
        last: each makes its right factor's gradient and, where a factor on its left
        requires grad, the left product's (a broadcast one through a temporary of the pair's
        output size), then frees its output's gradient and the left product it kept. The
        most held during a pair's backward (`floats`), and what is freed by the end beyond
        the gradients still held then (`released`), both beside what it keeps and its
        output's gradient."""
        grads = [math.prod(s) if needed else 0 for s, needed in zip(x, needs_input_grad, strict=True)]
        extra = most = 0
        incoming = math.prod(y)
        for j in range(len(x) - 1, 0, -1):
            out, left = math.prod(_partial(x, j + 1)), math.prod(_partial(x, j))
            into_left = left if any(needs_input_grad[:j]) else 0
            temp = out if (grads[j] and grads[j] < out) or (into_left and left < out) else 0
            most = max(most, extra + grads[j] + into_left + temp)
            kept = left if j >= 2 and needs_input_grad[j] else 0
            extra += grads[j] + into_left - incoming - kept
            incoming = into_left
        return Scratch(floats=most, released=sum(grads) - extra)

    def to_torch(self, torch: ModuleType, x: Sequence[Shape], y: Shape) -> TorchCall:
        return TorchCall(operator.mul, pairwise=True)


class Concat(Op):
    """Concatenation along `dim` (1 = channels), as in Inception and DenseNet."""

    op: Literal["concat"] = "concat"
    family: ClassVar[str] = "merge"
    token_ids: ClassVar[TokenIds] = "kept"
    prefix: ClassVar[str] = "cat"
    arity: ClassVar[tuple[int, int | None]] = (2, None)
    short_inputs: ClassVar[bool] = True
    autocast_as: ClassVar[Autocast | None] = "same"

    dim: int = 1

    def infer(self, x: Sequence[Tensor]) -> Shape:
        first = x[0].shape
        axis = sample_dim(self.dim, first)
        for t in x[1:]:
            if len(t.shape) != len(first):
                raise ShapeError(f"concat of {fmt_shape(first)} and {fmt_shape(t.shape)} mixes "
                                 f"ranks; inputs: {_listing([x[0], t])}")
            for i, (m, n) in enumerate(zip(first, t.shape, strict=True)):
                if i != axis and m != n:
                    raise _differs("concat", [x[0], t], first, t.shape, i, len(first))
        total = sum(t.shape[axis] for t in x)
        return (*first[:axis], total, *first[axis + 1:])

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        return _merge_rf(rf, x, y)

    def passes_gradient(self, x: Sequence[Shape], y: Shape) -> tuple[bool, ...]:
        """Each input's gradient is a slice of the output's (a view: the whole is held
        until every slice is used)."""
        return (True,) * len(x)

    def to_torch(self, torch: ModuleType, x: Sequence[Shape], y: Shape) -> TorchCall:
        return TorchCall(torch.cat, {"dim": self.dim}, packed=True)

    def label(self) -> str:
        return "concat" if self.dim == 1 else f"concat dim={self.dim}"
