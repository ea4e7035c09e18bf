"""Ops that turn token ids into vectors, and positions into vectors.

embedding: ids `[*S]` (each below `vocab`) -> `[*S, dim]`; vocab * dim parameters, no MACs
           (a lookup: torch's flop counter counts none either)
sinusoidal_positions: ids `[*S, T]` or vectors `[*S, T, D]` -> the fixed table `[T, dim]`
           (dim = D by default) of Vaswani et al. 2017: feature 2i of position p is
           sin(p / base^(2i/dim)), feature 2i+1 its cosine; no parameters, no buffers
           (computed in forward), the same for every sample
Saved for the backward: embedding keeps its ids (int64) when its table is trained.
"""


from collections.abc import Sequence
from types import ModuleType
from typing import Any, ClassVar, Literal

from netspec.ops.base import RF, Autocast, Cost, Op, PosFloat, PosInt, Saved, ShapeError, Tensor, TokenIds
from netspec.shapes import Shape


class Embedding(Op):
    """A learned vector of `dim` values for each of `vocab` token ids (torch.nn.Embedding)."""

    op: Literal["embedding"] = "embedding"
    torch_class: ClassVar[str] = "Embedding"
    family: ClassVar[str] = "linear"
    prefix: ClassVar[str] = "embed"
    positional: ClassVar[tuple[str, ...]] = ("vocab", "dim")
    token_ids: ClassVar[TokenIds] = "looked_up"
    autocast_as: ClassVar[Autocast | None] = "float32"

    vocab: PosInt
    dim: PosInt
    padding_idx: int | None = None
    """An id whose vector starts at zero and gets no gradient (torch's `padding_idx`)."""

    def infer(self, x: Sequence[Tensor]) -> Shape:
        found = x[0].vocab or 0
        if self.vocab < found:
            raise ShapeError(f"`vocab` {self.vocab} is smaller than the vocabulary of "
                             f"{x[0].src} ({found}): ids up to {found - 1} have no vector",
                             key="vocab", hint=f"set `vocab: {found}` or more")
        if self.padding_idx is not None and not -self.vocab <= self.padding_idx < self.vocab:
            raise ShapeError(f"`padding_idx` {self.padding_idx} is not an id of the "
                             f"{self.vocab}-token vocabulary", key="padding_idx",
                             hint=f"an id in {-self.vocab}..{self.vocab - 1}")
        return (*x[0].shape, self.dim)

    def cost(self, x: Sequence[Shape], y: Shape) -> Cost:
        return Cost(params=self.vocab * self.dim)

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        return Saved(inputs=(0,)) if trainable else Saved()

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        return None

    def weight_shape(self, x: Sequence[Shape], y: Shape) -> Shape:
        return (self.vocab, self.dim)

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return {"num_embeddings": self.vocab, "embedding_dim": self.dim,
                "padding_idx": self.padding_idx}

    def label(self) -> str:
        return f"embedding {self.vocab:,} x {self.dim}"


class SinusoidalPositions(Op):
    """The fixed sine and cosine position table of the original transformer, one row per
    position of the input's sequence (netspec.backends.modules.SinusoidalPositions)."""

    op: Literal["sinusoidal_positions"] = "sinusoidal_positions"
    torch_class: ClassVar[str] = "SinusoidalPositions"
    family: ClassVar[str] = "io"
    prefix: ClassVar[str] = "positions"
    positional: ClassVar[tuple[str, ...]] = ("dim",)
    token_ids: ClassVar[TokenIds] = "ignored"
    autocast_as: ClassVar[Autocast | None] = "float32"

    dim: PosInt | None = None
    """Features per position; the input's last dim when it holds vectors."""
    base: PosFloat = 10000.0

    def infer(self, x: Sequence[Tensor]) -> Shape:
        shape, ids = x[0].shape, x[0].vocab is not None
        if not ids and len(shape) < 2:
            raise ShapeError(f"sinusoidal_positions reads a sequence [T, D] or token ids [T], "
                             f"but {x[0].src} gives {list(shape)}")
        dim = self.dim or (None if ids else shape[-1])
        if dim is None:
            raise ShapeError("token ids have no width: give `dim`", key="dim")
        if dim % 2:
            raise ShapeError(f"the table pairs a sine and a cosine per frequency, but `dim` "
                             f"is {dim}", key="dim", hint="an even `dim`")
        return (shape[-1] if ids else shape[-2], dim)

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        return None

    def differentiable_inputs(self, inputs: int) -> tuple[bool, ...]:
        """The table depends on its input's length only."""
        return (False,) * inputs

    def to_torch(self, torch: ModuleType, x: Sequence[Shape], y: Shape) -> Any:
        from netspec.backends.modules import SinusoidalPositions as Module

        return Module(**self.torch_args(x, y))

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        length, dim = y
        return {"length": length, "dim": dim, "base": self.base}

    def label(self) -> str:
        return "sinusoidal positions"
