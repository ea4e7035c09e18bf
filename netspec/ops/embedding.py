"""Ops that turn token ids into vectors.

embedding: ids `[*S]` (each below `vocab`) -> `[*S, dim]`; vocab * dim parameters, no MACs
           (a lookup: torch's flop counter counts none either)
"""


from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from netspec.ops.base import RF, Cost, Op, PosInt, ShapeError, Tensor, TokenIds
from netspec.shapes import Shape


class Embedding(Op):
    """A learned vector of `dim` values for each of `vocab` token ids (torch.nn.Embedding)."""

    op: Literal["embedding"] = "embedding"
    torch_class: ClassVar[str] = "Embedding"
    family: ClassVar[str] = "linear"
    prefix: ClassVar[str] = "embed"
    positional: ClassVar[tuple[str, ...]] = ("vocab", "dim")
    token_ids: ClassVar[TokenIds] = "looked_up"

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

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        return None

    def weight_shape(self, x: Sequence[Shape], y: Shape) -> Shape:
        return (self.vocab, self.dim)

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return {"num_embeddings": self.vocab, "embedding_dim": self.dim,
                "padding_idx": self.padding_idx}

    def label(self) -> str:
        return f"embedding {self.vocab:,} x {self.dim}"
