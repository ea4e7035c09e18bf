"""Rearranging and indexing a sample's values without computing: no parameters, no MACs.
Dims follow torch's convention, the batch being dim 0; the batch always stays first.

permute:   `[d1, ..., dn]` in the order `dims` gives (`[0, 2, 3, 1]`: NCHW -> NHWC)
transpose: dims `dim0` and `dim1` swapped (`[T, D] -> [D, T]` with dims 1 and 2)
reshape:   `[*S] -> shape` (one size may be -1: what is left), prod(shape) = prod(S)
unflatten: dim `dim` of size n -> `sizes` (one may be -1), prod(sizes) = n (torch.nn.Unflatten)
slice:     dim `dim` of size n -> len(range(start, end, step)) after Python's clamping
select:    dim `dim` removed, keeping the item at `index`
chunk:     dim `dim` of size n -> piece `index` of `chunks` pieces ceil(n / chunks) long
split:     dim `dim` of size n = sum(sizes) -> piece `index`, sizes[index] long
Each is a view of its input (autograd keeps nothing), but a reshape or unflatten of a
permuted or transposed tensor, which torch copies.
"""


import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from netspec.ops.base import (
    RF,
    Autocast,
    Op,
    PosInt,
    ShapeError,
    Tensor,
    TokenIds,
    TorchCall,
    sample_dim,
)
from netspec.shapes import Shape, fmt_shape, slice_length


class _Rearrange(Op):
    family: ClassVar[str] = "reshape"
    token_ids: ClassVar[TokenIds] = "kept"
    autocast_as: ClassVar[Autocast | None] = "same"

    def aliases(self, x: Sequence[Shape], y: Shape) -> int | None:
        return 0

    def returns_view(self, x: Sequence[Shape], y: Shape, strided: bool = False) -> bool:
        return True

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        """Values no longer sit on the input's spatial grid: the field ends, as at flatten."""
        return None



class _Reorder(_Rearrange):
    """A view of its input's dims in another order."""

    reorders: ClassVar[bool] = True

    def order(self, shape: Shape) -> list[int]:
        """Which of the input's per-sample dims each output dim is."""
        raise NotImplementedError

    def reorders_data(self, x: Sequence[Shape], y: Shape) -> bool:
        """Whether the dims of more than one element change order (a size-1 dim moves
        nothing: the view is then laid out as a contiguous tensor is)."""
        moved = [d for d in self.order(x[0]) if x[0][d] > 1]
        return moved != sorted(moved)


class Permute(_Reorder):
    """The dims in the order `dims` gives, the batch first (torch.permute)."""

    op: Literal["permute"] = "permute"
    positional: ClassVar[tuple[str, ...]] = ("dims",)

    dims: list[int]

    def infer(self, x: Sequence[Tensor]) -> Shape:
        shape = x[0].shape
        rank = len(shape) + 1
        order = [d % rank if -rank <= d < rank else d for d in self.dims]
        if sorted(order) != list(range(rank)):
            raise ShapeError(f"`dims` {self.dims} is not an order of the {rank} dims of batch + "
                             f"{fmt_shape(shape)}", key="dims",
                             hint=f"list each of 0..{rank - 1} once")
        if order[0] != 0:
            raise ShapeError(f"`dims` {self.dims} moves the batch dimension; it stays first",
                             key="dims", hint="dims count the batch as 0: start with 0")
        return tuple(shape[d - 1] for d in order[1:])

    def order(self, shape: Shape) -> list[int]:
        rank = len(shape) + 1
        return [d % rank - 1 for d in self.dims[1:]]

    def to_torch(self, torch: Any, x: Sequence[Shape], y: Shape) -> TorchCall:
        return TorchCall(torch.permute, {"dims": tuple(self.dims)})

    def label(self) -> str:
        return f"permute {self.dims}"


class Transpose(_Reorder):
    """Dims `dim0` and `dim1` swapped, the batch staying first (torch.transpose)."""

    op: Literal["transpose"] = "transpose"
    positional: ClassVar[tuple[str, ...]] = ("dim0", "dim1")

    dim0: int
    dim1: int

    def infer(self, x: Sequence[Tensor]) -> Shape:
        shape = list(x[0].shape)
        i, j = sample_dim(self.dim0, x[0].shape, "dim0"), sample_dim(self.dim1, x[0].shape, "dim1")
        shape[i], shape[j] = shape[j], shape[i]
        return tuple(shape)

    def order(self, shape: Shape) -> list[int]:
        dims = list(range(len(shape)))
        i, j = sample_dim(self.dim0, shape, "dim0"), sample_dim(self.dim1, shape, "dim1")
        dims[i], dims[j] = dims[j], dims[i]
        return dims

    def to_torch(self, torch: Any, x: Sequence[Shape], y: Shape) -> TorchCall:
        return TorchCall(torch.transpose, {"dim0": self.dim0, "dim1": self.dim1})

    def label(self) -> str:
        return f"transpose {self.dim0}, {self.dim1}"


def _fill(sizes: Sequence[int], total: int, where: str, key: str) -> tuple[int, ...]:
    """`sizes` with its one -1 made what is left of `total`; ShapeError when they cannot
    hold exactly `total` values."""
    if any(s == 0 or s < -1 for s in sizes) or list(sizes).count(-1) > 1:
        raise ShapeError(f"`{key}` {list(sizes)}: sizes are positive, with at most one -1",
                         key=key)
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if total % known:
            raise ShapeError(f"`{key}` {list(sizes)} cannot hold the {total} values of {where}",
                             key=key)
        return tuple(total // known if s == -1 else s for s in sizes)
    if known != total:
        raise ShapeError(f"`{key}` {list(sizes)} holds {known} values, {where} has {total}",
                         key=key)
    return tuple(sizes)


class Reshape(_Rearrange):
    """A sample's values in another shape, the batch kept (`x.reshape(N, *shape)`)."""

    op: Literal["reshape"] = "reshape"
    reshapes: ClassVar[bool] = True
    positional: ClassVar[tuple[str, ...]] = ("shape",)

    shape: list[int]

    def infer(self, x: Sequence[Tensor]) -> Shape:
        where = f"{fmt_shape(x[0].shape)} from {x[0].src}"
        return _fill(self.shape, math.prod(x[0].shape), where, "shape")

    def to_torch(self, torch: Any, x: Sequence[Shape], y: Shape) -> TorchCall:
        from netspec.backends import functional

        return TorchCall(functional.reshape_samples, {"shape": tuple(self.shape)})

    def label(self) -> str:
        return f"reshape {self.shape}"


class Unflatten(_Rearrange):
    """Dim `dim` split into `sizes` (torch.nn.Unflatten)."""

    op: Literal["unflatten"] = "unflatten"
    reshapes: ClassVar[bool] = True
    torch_class: ClassVar[str] = "Unflatten"
    positional: ClassVar[tuple[str, ...]] = ("dim", "sizes")

    dim: int
    sizes: list[int]

    def infer(self, x: Sequence[Tensor]) -> Shape:
        shape = x[0].shape
        i = sample_dim(self.dim, shape)
        where = f"dim {self.dim} ({shape[i]}) of {fmt_shape(shape)} from {x[0].src}"
        return (*shape[:i], *_fill(self.sizes, shape[i], where, "sizes"), *shape[i + 1:])

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return {"dim": self.dim, "unflattened_size": tuple(self.sizes)}

    def label(self) -> str:
        return f"unflatten dim={self.dim} {self.sizes}"


class Slice(Op):
    """Items `start:end:step` of dim `dim`, Python's rules (negatives count from the end;
    bounds past the ends are clamped): `x[:, ..., start:end:step]`."""

    op: Literal["slice"] = "slice"
    family: ClassVar[str] = "reshape"
    token_ids: ClassVar[TokenIds] = "kept"

    positional: ClassVar[tuple[str, ...]] = ("dim", "start", "end", "step")
    autocast_as: ClassVar[Autocast | None] = "same"

    dim: int
    start: int | None = None
    end: int | None = None
    step: PosInt = 1

    def infer(self, x: Sequence[Tensor]) -> Shape:
        shape = x[0].shape
        i = sample_dim(self.dim, shape)
        kept = slice_length(shape[i], self.start, self.end, self.step)
        if kept == 0:
            raise ShapeError(f"{self.label()} keeps nothing of dim {self.dim} ({shape[i]}) of "
                             f"{fmt_shape(shape)} from {x[0].src}", key="start")
        return (*shape[:i], kept, *shape[i + 1:])

    def aliases(self, x: Sequence[Shape], y: Shape) -> int | None:
        return 0

    def returns_view(self, x: Sequence[Shape], y: Shape, strided: bool = False) -> bool:
        return True

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        """Channels: unchanged; a spatial dim: kept items `step` apart."""
        i = sample_dim(self.dim, x[0])
        if rf[0] is None or i == 0:
            return rf[0]
        steps = [self.step if d == i - 1 else 1 for d in range(len(x[0]) - 1)]
        return rf[0].window([1] * len(steps), steps)

    def to_torch(self, torch: Any, x: Sequence[Shape], y: Shape) -> TorchCall:
        from netspec.backends import functional

        return TorchCall(functional.slice_dim, {"dim": self.dim, "start": self.start,
                                                "end": self.end, "step": self.step})

    def label(self) -> str:
        bounds = ":".join("" if v is None else str(v) for v in (self.start, self.end))
        return f"slice dim={self.dim} {bounds}" + (f":{self.step}" if self.step != 1 else "")


class Select(_Rearrange):
    """The item at `index` of dim `dim`, that dim removed (torch.select; the class token)."""

    op: Literal["select"] = "select"
    positional: ClassVar[tuple[str, ...]] = ("dim", "index")

    dim: int
    index: int

    def reorders_data(self, x: Sequence[Shape], y: Shape) -> bool:
        """An item of a dim before the last two: the dims around it no longer fold
        together."""
        return sample_dim(self.dim, x[0]) < len(x[0]) - 2

    def infer(self, x: Sequence[Tensor]) -> Shape:
        shape = x[0].shape
        i = sample_dim(self.dim, shape)
        if len(shape) == 1:
            raise ShapeError(f"select would leave nothing of the {fmt_shape(shape)} sample from "
                             f"{x[0].src} but a single number", key="dim",
                             hint="slice it (`slice: {dim: 1, start: i, end: i + 1}`) to keep a dim")
        if not -shape[i] <= self.index < shape[i]:
            raise ShapeError(f"index {self.index} is out of range for dim {self.dim} ({shape[i]}) "
                             f"of {fmt_shape(shape)} from {x[0].src}", key="index")
        return (*shape[:i], *shape[i + 1:])

    def to_torch(self, torch: Any, x: Sequence[Shape], y: Shape) -> TorchCall:
        return TorchCall(torch.select, {"dim": self.dim, "index": self.index})

    def label(self) -> str:
        return f"select dim={self.dim} [{self.index}]"


class _Pieces(Op):
    """One piece of dim `dim` cut into consecutive pieces, or, without `index`, every piece
    as its own layer (`name.0`, `name.1`, ...: see `pieces`). A piece is a view
    (torch.narrow), so it costs nothing."""

    family: ClassVar[str] = "reshape"
    token_ids: ClassVar[TokenIds] = "kept"
    autocast_as: ClassVar[Autocast | None] = "same"

    dim: int = 1
    index: int | None = None

    def aliases(self, x: Sequence[Shape], y: Shape) -> int | None:
        return 0

    def passes_gradient(self, x: Sequence[Shape], y: Shape) -> tuple[bool, ...]:
        """torch cuts even one piece of the whole (`chunks: 1`) as a slice, whose backward
        makes the input's gradient anew."""
        return (False,) * len(x)

    def returns_view(self, x: Sequence[Shape], y: Shape, strided: bool = False) -> bool:
        return True

    def lengths(self, n: int, where: str) -> list[int]:
        """The pieces' lengths along a dim of length `n`; ShapeError when they do not fit."""
        raise NotImplementedError

    def span(self, shape: Shape, src: str) -> tuple[int, int, int]:
        """(per-sample dim, start, length) of the chosen piece of `shape`."""
        i = sample_dim(self.dim, shape)
        lengths = self.lengths(shape[i], f"dim {self.dim} ({shape[i]}) of {fmt_shape(shape)} "
                                         f"from {src}")
        index = 0 if self.index is None else self.index
        if not -len(lengths) <= index < len(lengths):
            raise ShapeError(f"index {index} is out of range for {len(lengths)} pieces",
                             key="index")
        index %= len(lengths)
        return i, sum(lengths[:index]), lengths[index]

    def infer(self, x: Sequence[Tensor]) -> Shape:
        i, _, length = self.span(x[0].shape, x[0].src)
        return (*x[0].shape[:i], length, *x[0].shape[i + 1:])

    def to_torch(self, torch: Any, x: Sequence[Shape], y: Shape) -> TorchCall:
        i, start, length = self.span(x[0], "its input")
        return TorchCall(torch.narrow, {"dim": i + 1, "start": start, "length": length})


class Chunk(_Pieces):
    """`chunks` pieces of dim `dim`, each ceil(n / chunks) long but the last
    (torch.chunk; ShuffleNet's channel split)."""

    op: Literal["chunk"] = "chunk"
    positional: ClassVar[tuple[str, ...]] = ("chunks",)

    chunks: PosInt

    def pieces(self) -> int | None:
        return self.chunks if self.index is None else None

    def lengths(self, n: int, where: str) -> list[int]:
        size = -(-n // self.chunks)
        count = -(-n // size)
        if count != self.chunks:  # torch.chunk returns fewer pieces: say so, not a missing one
            raise ShapeError(f"{where} makes {count} chunks of {size}, not {self.chunks} "
                             "(torch.chunk's rule)", key="chunks",
                             hint="`split` with `sizes` cuts pieces of any lengths")
        return [min(size, n - k * size) for k in range(count)]

    def label(self) -> str:
        piece = "" if self.index is None else f" [{self.index}]"
        return f"chunk {self.chunks} dim={self.dim}{piece}"


class Split(_Pieces):
    """Pieces of dim `dim` with the lengths `sizes`, which add up to it (torch.split)."""

    op: Literal["split"] = "split"
    positional: ClassVar[tuple[str, ...]] = ("sizes",)

    sizes: list[PosInt]

    def pieces(self) -> int | None:
        return len(self.sizes) if self.index is None else None

    def lengths(self, n: int, where: str) -> list[int]:
        if sum(self.sizes) != n:
            raise ShapeError(f"`sizes` {self.sizes} add up to {sum(self.sizes)}, {where} has "
                             f"{n}", key="sizes")
        return list(self.sizes)

    def label(self) -> str:
        piece = "" if self.index is None else f" [{self.index}]"
        return f"split {self.sizes} dim={self.dim}{piece}"
