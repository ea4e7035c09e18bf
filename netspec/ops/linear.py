"""Flatten, fully connected layers and matrix products.

linear: `[..., F] -> [..., out]` on the last dimension (torch.nn.Linear);
    params = F * out + out (bias), MACs = prod(leading dims) * F * out.
flatten: merges dims start..end (torch convention: batch is dim 0) into one.
matmul: `[*B, n, k] @ [*B, k, m] -> [*B, n, m]`; MACs = prod(B) * n * k * m.
Backward: linear's input gradient (grad_y W) and weight gradient (grad_y^T x) are each an
aten.mm of the forward's MACs; matmul's gradient of either input (grad_y b^T, a^T grad_y,
over the broadcast batch B before it is summed back) too.
Saved for the backward: linear keeps its input when its weights are trained (the input's
gradient needs the weights alone); matmul keeps each input whose partner requires grad, as
a copy broadcast to the output's batch B when its own leading dims differ from B. flatten
is a view of its input (a copy after a permute or transpose).
"""


import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any, ClassVar, Literal

from pydantic import Field

from netspec.ops.base import (
    RF,
    Autocast,
    Cost,
    GradCost,
    Note,
    Op,
    PosInt,
    Saved,
    ShapeError,
    Tensor,
    TokenIds,
    TorchCall,
    broadcast,
    channels_match,
    sample_dim,
)
from netspec.shapes import Shape, fmt_shape


class Linear(Op):
    """Fully connected layer over the last dimension (torch.nn.Linear)."""

    op: Literal["linear"] = "linear"
    torch_class: ClassVar[str] = "Linear"
    torch_names: ClassVar[dict[str, str]] = {"out": "out_features"}
    family: ClassVar[str] = "linear"
    folds: ClassVar[bool] = True
    prefix: ClassVar[str] = "fc"
    positional: ClassVar[tuple[str, ...]] = ("out",)
    autocast_as: ClassVar[Autocast | None] = "low"

    out: PosInt
    bias: bool = True
    in_: PosInt | None = Field(None, alias="in")

    def infer(self, x: Sequence[Tensor]) -> Shape:
        *lead, features = x[0].shape
        channels_match(self, self.in_, features, x[0])
        return (*lead, self.out)

    def cost(self, x: Sequence[Shape], y: Shape) -> Cost:
        features = x[0][-1]
        params = features * self.out + (self.out if self.bias else 0)
        return Cost(params=params, macs=math.prod(x[0][:-1]) * features * self.out,
                    bias_adds=math.prod(y) if self.bias else 0)

    def grad_cost(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                  trainable: bool) -> GradCost:
        """Each gradient one product of the forward's MACs (the bias's is a sum: 0)."""
        return GradCost.of_product(self.cost(x, y).macs, needs_input_grad[0], trainable)

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        return Saved(inputs=(0,)) if trainable else Saved()

    def forward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                        trainable: bool, strided: bool = False) -> int:
        """Over a strided view of more than one dim, torch multiplies (copying the view
        when it does not fold) and then adds the bias into a second output: two outputs
        at once."""
        return 2 * math.prod(y) if strided and self.bias and len(x[0]) > 1 else 0

    def returns_view(self, x: Sequence[Shape], y: Shape, strided: bool = False) -> bool:
        """With a bias, torch folds an input of several dims into a matrix (`addmm`) and
        views the result; a strided input or no bias goes through `matmul`, which does not."""
        return self.bias and len(x[0]) > 1 and not strided

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        return None

    def notes(self, x: Sequence[Tensor], y: Shape) -> list[Note]:
        """A warning when the last dimension is a spatial one ([C, H, W]: W), not when it is
        features or channels moved last (ConvNeXt's [H, W, C], a transformer's tokens)."""
        if len(x[0].shape) < 3 or not x[0].on_grid:
            return []
        return [Note("linear-on-last-dim",
                     f"linear acts on the last dimension only ({x[0].shape[-1]}) of "
                     f"{fmt_shape(x[0].shape)} from {x[0].src}; add `flatten` before it to "
                     "connect every unit")]

    def weight_shape(self, x: Sequence[Shape], y: Shape) -> Shape:
        return (self.out, x[0][-1])

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return {"in_features": x[0][-1], "out_features": self.out, "bias": self.bias}

    def label(self) -> str:
        return f"linear {self.out}"


class Flatten(Op):
    """Merge dims `start_dim..end_dim` into one (torch.nn.Flatten; batch is dim 0)."""

    op: Literal["flatten"] = "flatten"
    reshapes: ClassVar[bool] = True
    torch_class: ClassVar[str] = "Flatten"
    family: ClassVar[str] = "reshape"
    token_ids: ClassVar[TokenIds] = "kept"
    positional: ClassVar[tuple[str, ...]] = ("start_dim", "end_dim")
    autocast_as: ClassVar[Autocast | None] = "same"

    start_dim: int = 1
    end_dim: int = -1

    def infer(self, x: Sequence[Tensor]) -> Shape:
        shape = x[0].shape
        start = sample_dim(self.start_dim, shape, "start_dim")
        end = sample_dim(self.end_dim, shape, "end_dim")
        if start > end:
            raise ShapeError(f"start_dim {self.start_dim} comes after end_dim {self.end_dim}",
                             key="start_dim")
        return (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:])

    def aliases(self, x: Sequence[Shape], y: Shape) -> int | None:
        return 0

    def returns_view(self, x: Sequence[Shape], y: Shape, strided: bool = False) -> bool:
        """Unless there is nothing to merge: then torch returns the input itself."""
        return tuple(y) != tuple(x[0])

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        return None


class MatMul(Op):
    """Matrix product `[*B, n, k] @ [*B, k, m] -> [*B, n, m]`, the leading dims B broadcast
    as torch broadcasts them (torch.matmul: attention's Q K^T and its weights times V)."""

    op: Literal["matmul"] = "matmul"
    family: ClassVar[str] = "linear"
    arity: ClassVar[tuple[int, int | None]] = (2, 2)
    short_inputs: ClassVar[bool] = True
    autocast_as: ClassVar[Autocast | None] = "low"

    def infer(self, x: Sequence[Tensor]) -> Shape:
        a, b = x[0].shape, x[1].shape
        for t in x:
            if len(t.shape) < 2:
                raise ShapeError(f"matmul multiplies matrices, but {t.src} gives "
                                 f"{fmt_shape(t.shape)}: each input needs 2 dims or more per "
                                 "sample", hint="a vector times a weight matrix is `linear`")
        if len(a) != len(b):
            raise ShapeError(f"matmul of {fmt_shape(a)} and {fmt_shape(b)} mixes ranks; inputs: "
                             f"{x[0].src} and {x[1].src}",
                             hint="keep singleton dims to broadcast, e.g. [1,T,D]")
        if a[-1] != b[-2]:
            raise ShapeError(f"matmul of {fmt_shape(a)} and {fmt_shape(b)}: {x[0].src} has "
                             f"{a[-1]} columns, {x[1].src} {b[-2]} rows",
                             hint="swap the last two dims of one: `transpose: [-2, -1]`")
        lead = broadcast(a[:-2], b[:-2])
        if isinstance(lead, int):
            raise ShapeError(f"matmul of {fmt_shape(a)} and {fmt_shape(b)}: leading dims "
                             f"{a[lead]} and {b[lead]} do not broadcast; inputs: {x[0].src} "
                             f"and {x[1].src}")
        return (*lead, a[-2], b[-1])

    def cost(self, x: Sequence[Shape], y: Shape) -> Cost:
        """Each output element is a dot product of length k: prod(B) * n * m * k MACs."""
        return Cost(macs=math.prod(y) * x[0][-1])

    def grad_cost(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                  trainable: bool) -> GradCost:
        """One product of the forward's MACs per input requiring a gradient."""
        return GradCost(input_macs=sum(needs_input_grad) * self.cost(x, y).macs)

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        """Each input whose partner requires grad; broadcast to the output's leading dims,
        a copy of its own."""
        kept, copies = [], 0
        for i, partner in ((0, 1), (1, 0)):
            if needs_input_grad[partner]:
                if x[i][:-2] == y[:-2]:
                    kept.append(i)
                else:
                    copies += math.prod(y[:-2]) * x[i][-2] * x[i][-1]
        return Saved(inputs=tuple(kept), floats=copies)

    def receptive_field(self, rf: Sequence[RF | None], x: Sequence[Shape], y: Shape) -> RF | None:
        return None

    def to_torch(self, torch: ModuleType, x: Sequence[Shape], y: Shape) -> TorchCall:
        return TorchCall(torch.matmul)
