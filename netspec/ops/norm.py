"""Normalisation: batchnorm1d/2d/3d, instancenorm1d/2d/3d, groupnorm, layernorm, rmsnorm.

Shapes are unchanged. Costs as torch counts them, for C channels:
    params  = 2C (gamma, beta) when affine
    buffers = 2C + 1 (running_mean, running_var, num_batches_tracked) when tracking stats
layernorm and rmsnorm normalise each sample over its trailing dims S: params prod(S) (the
scale) and prod(S) more for layernorm's bias, when affine.
Normalisation is not a multiply-accumulate: 0 MACs by DESIGN.md's convention.
Saved for the backward (training mode, on the CPU): the input, and statistics per group
normalised: batch norm's mean and inverse deviation per channel (2C, whatever the batch);
instance norm runs batch norm over the batch's B*C channels, so per sample 2C, plus its
affine weight and running statistics repeated per sample (C each); group norm 2 per group,
layer norm 2 per normalised row. rmsnorm, composed of elementwise ops on the CPU, keeps the
input and 1/rms per row when the input requires grad, and the normalised input (prod(S)
per row) when its scale is trained.
"""


import math
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from netspec.ops.base import (
    Autocast,
    Cost,
    Note,
    Op,
    PosFloat,
    PosInt,
    Probability,
    Saved,
    Scratch,
    ShapeError,
    Tensor,
    channels_match,
    expect_rank,
    returned_anyway,
)
from netspec.shapes import Shape, fmt_shape


class _RunningNorm(Op):
    """Per-channel normalisation with optional affine parameters and running statistics."""

    family: ClassVar[str] = "norm"
    ranks: ClassVar[tuple[int, ...]]
    autocast_as: ClassVar[Autocast | None] = "same"

    eps: PosFloat = 1e-5
    momentum: Probability | None = 0.1
    affine: bool
    track_running_stats: bool
    in_: PosInt | None = Field(None, alias="in")

    def infer(self, x: Sequence[Tensor]) -> Shape:
        expect_rank(self, x[0], *self.ranks)
        channels_match(self, self.in_, x[0].shape[0], x[0])
        return x[0].shape

    def cost(self, x: Sequence[Shape], y: Shape) -> Cost:
        c = x[0][0]
        return Cost(params=2 * c if self.affine else 0,
                    buffers=2 * c + 1 if self.track_running_stats else 0)

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        """Its input, and the batch's mean and inverse deviation per channel."""
        return Saved(inputs=(0,), fixed=2 * x[0][0])

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return dict(num_features=x[0][0], eps=self.eps, momentum=self.momentum,
                    affine=self.affine, track_running_stats=self.track_running_stats)


class _BatchNorm(_RunningNorm):
    prefix: ClassVar[str] = "bn"
    affine: bool = True
    track_running_stats: bool = True


class BatchNorm1d(_BatchNorm):
    """Batch norm over `[C]` features or `[C, L]` signals (torch.nn.BatchNorm1d)."""

    op: Literal["batchnorm1d"] = "batchnorm1d"
    torch_class: ClassVar[str] = "BatchNorm1d"
    ranks: ClassVar[tuple[int, ...]] = (1, 2)


class BatchNorm2d(_BatchNorm):
    """Batch norm over `[C, H, W]` images (torch.nn.BatchNorm2d)."""

    op: Literal["batchnorm2d"] = "batchnorm2d"
    torch_class: ClassVar[str] = "BatchNorm2d"
    ranks: ClassVar[tuple[int, ...]] = (3,)


class BatchNorm3d(_BatchNorm):
    """Batch norm over `[C, D, H, W]` volumes (torch.nn.BatchNorm3d)."""

    op: Literal["batchnorm3d"] = "batchnorm3d"
    torch_class: ClassVar[str] = "BatchNorm3d"
    ranks: ClassVar[tuple[int, ...]] = (4,)


class _InstanceNorm(_RunningNorm):
    prefix: ClassVar[str] = "inorm"
    contiguous: ClassVar[bool] = True  # torch views the batch as one sample's channels
    affine: bool = False
    track_running_stats: bool = False

    def infer(self, x: Sequence[Tensor]) -> Shape:
        shape = super().infer(x)
        if math.prod(shape[1:]) == 1 and not self.track_running_stats:
            raise ShapeError(f"normalises each channel over its single spatial element from "
                             f"{x[0].src} ({fmt_shape(shape)}), which torch refuses",
                             hint="instance norm needs more than one element per channel")
        return shape

    def returns_view(self, x: Sequence[Shape], y: Shape, strided: bool = False) -> bool:
        """torch batch-normalises the samples' channels as one sample's and reshapes back."""
        return True

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        """Its input; per sample's channels the statistics, the weight and the running
        statistics repeated over the batch (module docstring)."""
        return Saved(inputs=(0,), stats=x[0][0] * (2 + self.affine + 2 * self.track_running_stats))

    def forward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                        trainable: bool, strided: bool = False) -> int:
        return returned_anyway(self, x, y, needs_input_grad, trainable, strided)

    def notes(self, x: Sequence[Tensor], y: Shape) -> list[Note]:
        if math.prod(y[1:]) == 1:
            return [Note("single-element-norm", f"each channel from {x[0].src} has one spatial "
                         "element: torch refuses to train this instance norm (eval mode uses "
                         "the running statistics)")]
        return []


class InstanceNorm1d(_InstanceNorm):
    """Instance norm over `[C, L]` (torch.nn.InstanceNorm1d)."""

    op: Literal["instancenorm1d"] = "instancenorm1d"
    torch_class: ClassVar[str] = "InstanceNorm1d"
    ranks: ClassVar[tuple[int, ...]] = (2,)


class InstanceNorm2d(_InstanceNorm):
    """Instance norm over `[C, H, W]` (torch.nn.InstanceNorm2d)."""

    op: Literal["instancenorm2d"] = "instancenorm2d"
    torch_class: ClassVar[str] = "InstanceNorm2d"
    ranks: ClassVar[tuple[int, ...]] = (3,)


class InstanceNorm3d(_InstanceNorm):
    """Instance norm over `[C, D, H, W]` (torch.nn.InstanceNorm3d)."""

    op: Literal["instancenorm3d"] = "instancenorm3d"
    torch_class: ClassVar[str] = "InstanceNorm3d"
    ranks: ClassVar[tuple[int, ...]] = (4,)


class GroupNorm(Op):
    """Group norm: channels split into `groups`, each normalised over (C/groups, *S).

    `[C, *S] -> [C, *S]`; params 2C when affine (torch.nn.GroupNorm)."""

    op: Literal["groupnorm"] = "groupnorm"
    torch_class: ClassVar[str] = "GroupNorm"
    autocast_as: ClassVar[Autocast | None] = "same"
    float32_on_cuda: ClassVar[bool] = True
    contiguous: ClassVar[bool] = True
    torch_names: ClassVar[dict[str, str]] = {"groups": "num_groups"}
    family: ClassVar[str] = "norm"
    prefix: ClassVar[str] = "gn"
    positional: ClassVar[tuple[str, ...]] = ("groups",)

    groups: PosInt
    eps: PosFloat = 1e-5
    affine: bool = True

    def infer(self, x: Sequence[Tensor]) -> Shape:
        c = x[0].shape[0]
        if c % self.groups:
            raise ShapeError(f"groups={self.groups} must divide the {c} channels from {x[0].src}",
                             key="groups")
        return x[0].shape

    def cost(self, x: Sequence[Shape], y: Shape) -> Cost:
        return Cost(params=2 * x[0][0] if self.affine else 0)

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        return Saved(inputs=(0,), stats=2 * self.groups)

    def forward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                        trainable: bool, strided: bool = False) -> int:
        return returned_anyway(self, x, y, needs_input_grad, trainable, strided)

    def notes(self, x: Sequence[Tensor], y: Shape) -> list[Note]:
        if y[0] // self.groups * math.prod(y[1:]) == 1:
            return [Note("single-element-norm", f"each group of {x[0].src} holds one value: "
                         "the output is the bias alone, whatever the input (and torch refuses "
                         "to train it at batch size 1)", key="groups")]
        return []

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return dict(num_groups=self.groups, num_channels=x[0][0], eps=self.eps, affine=self.affine)

    def label(self) -> str:
        return f"groupnorm /{self.groups}"


class _TrailingNorm(Op):
    """Normalisation over the trailing dimensions, each sample on its own.

    `shape` is torch's `normalized_shape`; when omitted it is the last `dims` dimensions of
    the input (1 by default: the feature axis)."""

    family: ClassVar[str] = "norm"
    positional: ClassVar[tuple[str, ...]] = ("dims",)
    torch_names: ClassVar[dict[str, str]] = {"shape": "normalized_shape"}

    dims: PosInt = 1
    shape: Annotated[list[PosInt], Field(min_length=1)] | None = None
    elementwise_affine: bool = True

    model_config = ConfigDict(json_schema_extra={"not": {  # `_one_extent` for editors
        "required": ["dims", "shape"], "properties": {"shape": {"not": {"type": "null"}}}}})

    @model_validator(mode="after")
    def _one_extent(self) -> "_TrailingNorm":
        if self.shape is not None and "dims" in self.model_fields_set:
            raise ValueError("give `dims` or `shape`, not both")
        return self

    def normalized(self, x: Shape) -> Shape:
        return tuple(self.shape) if self.shape is not None else x[len(x) - self.dims:]

    def rows(self, x: Shape) -> int:
        """How many rows of `normalized(x)` a sample holds."""
        return math.prod(x) // math.prod(self.normalized(x))

    def infer(self, x: Sequence[Tensor]) -> Shape:
        shape = x[0].shape
        if self.shape is None and self.dims > len(shape):
            raise ShapeError(f"normalises the last {self.dims} dims but {x[0].src} gives "
                             f"{fmt_shape(shape)} (its batch is not normalised over)", key="dims")
        want = self.normalized(shape)
        if len(want) > len(shape) or shape[len(shape) - len(want):] != want:
            key = "shape" if self.shape is not None else "dims"
            raise ShapeError(f"normalises the trailing {fmt_shape(want)} but {x[0].src} gives "
                             f"{fmt_shape(shape)}", key=key)
        return shape


class RMSNorm(_TrailingNorm):
    """Root-mean-square norm over the trailing dimensions: x / sqrt(mean(x^2) + eps), times
    a learned scale (torch.nn.RMSNorm; `eps` null is the dtype's machine epsilon, as in
    torch). Params prod(shape) when affine."""

    op: Literal["rmsnorm"] = "rmsnorm"
    torch_class: ClassVar[str] = "RMSNorm"
    prefix: ClassVar[str] = "rms"

    eps: PosFloat | None = None

    def cost(self, x: Sequence[Shape], y: Shape) -> Cost:
        return Cost(params=math.prod(self.normalized(x[0])) if self.elementwise_affine else 0)

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        """The input and 1/rms per row for the input's gradient, the normalised input for
        the scale's (module docstring)."""
        into_input = Saved(inputs=(0,), floats=self.rows(x[0])) if needs_input_grad[0] else Saved()
        scaled = math.prod(x[0]) if self.elementwise_affine and trainable else 0
        return into_input._replace(floats=into_input.floats + scaled)

    def forward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                        trainable: bool, strided: bool = False) -> int:
        """torch computes it op by op: the input squared beside its mean per row and 1/rms
        (the square freed once 1/rms is made); with a scale, the input scaled by 1/rms
        beside the output. Where the layer keeps 1/rms (and, training the scale, the
        input scaled), what it keeps is not counted again."""
        size, rows = math.prod(y), self.rows(x[0])
        if any(needs_input_grad) or trainable:
            return size + rows - (size if self.elementwise_affine and trainable else 0)
        return max(size + 2 * rows, 2 * size + rows if self.elementwise_affine else 0)

    def backward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                         trainable: bool) -> Scratch:
        """torch computes it op by op (the output's gradient is freed after the first):
        the input's gradient takes three tensors of the input's size at once (four
        without the scale), less one per row where a row holds more than one element (the
        mean's gradient is freed before the last is made), one of them the part through
        the product by 1/rms, handed on first; the scale's alone, the product of the
        output's gradient and the normalised input it sums over the batch."""
        if not needs_input_grad[0]:
            scale = self.elementwise_affine and trainable
            return Scratch(floats=math.prod(x[0]), weights=self.cost(x, y).params) if scale \
                else Scratch()
        rows = self.rows(x[0])
        freed = rows if rows < math.prod(x[0]) else 0
        return Scratch(floats=(3 if self.elementwise_affine and trainable else 4)
                       * math.prod(x[0]) - freed, early_input_grad=math.prod(x[0]))

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return dict(normalized_shape=self.normalized(x[0]), eps=self.eps,
                    elementwise_affine=self.elementwise_affine)


class LayerNorm(_TrailingNorm):
    """Layer norm over the trailing dimensions (torch.nn.LayerNorm). Params
    prod(shape) * (1 + bias) when affine."""

    op: Literal["layernorm"] = "layernorm"
    torch_class: ClassVar[str] = "LayerNorm"
    autocast_as: ClassVar[Autocast | None] = "same"
    float32_on_cuda: ClassVar[bool] = True
    prefix: ClassVar[str] = "ln"

    eps: PosFloat = 1e-5
    bias: bool = True

    def cost(self, x: Sequence[Shape], y: Shape) -> Cost:
        n = math.prod(self.normalized(x[0]))
        return Cost(params=n * (1 + self.bias) if self.elementwise_affine else 0)

    def saved(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
              trainable: bool) -> Saved:
        """Its input, and the mean and inverse deviation of each row."""
        return Saved(inputs=(0,), stats=2 * self.rows(x[0]))

    def forward_scratch(self, x: Sequence[Shape], y: Shape, needs_input_grad: Sequence[bool],
                        trainable: bool, strided: bool = False) -> int:
        return returned_anyway(self, x, y, needs_input_grad, trainable)

    def torch_args(self, x: Sequence[Shape], y: Shape) -> dict[str, Any]:
        return dict(normalized_shape=self.normalized(x[0]), eps=self.eps,
                    elementwise_affine=self.elementwise_affine, bias=self.bias)
