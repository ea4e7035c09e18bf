"""The op registry: every layer type a spec can name, listed explicitly.

Adding a layer type is one class in one of these modules plus one line here.
"""


from typing import Annotated, Any

from pydantic import Field

from netspec.ops.activation import (
    ELU,
    GELU,
    Hardsigmoid,
    Hardswish,
    LeakyReLU,
    LogSoftmax,
    Mish,
    PReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
)
from netspec.ops.base import RF, Cost, Note, Op, ShapeError, Tensor, TorchCall
from netspec.ops.conv import (
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
)
from netspec.ops.dropout import Dropout, Dropout1d, Dropout2d, Dropout3d
from netspec.ops.io import Input
from netspec.ops.linear import Flatten, Linear
from netspec.ops.merge import Add, Concat, Identity, Mul
from netspec.ops.norm import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    LayerNorm,
)
from netspec.ops.pool import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AdaptiveMaxPool3d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
)
from netspec.ops.resize import CenterCrop, Upsample, ZeroPad1d, ZeroPad2d
from netspec.ops.shuffle import ChannelShuffle, PixelShuffle, PixelUnshuffle

LAYER_OPS: tuple[type[Op], ...] = (
    Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d,
    MaxPool1d, MaxPool2d, MaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d,
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d,
    AdaptiveMaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool3d,
    BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d,
    GroupNorm, LayerNorm,
    ReLU, ReLU6, LeakyReLU, PReLU, ELU, GELU, SiLU, Mish, Sigmoid, Tanh, Hardswish,
    Hardsigmoid,
    Softmax, LogSoftmax,
    Dropout, Dropout1d, Dropout2d, Dropout3d,
    Flatten, Linear,
    Upsample, ZeroPad1d, ZeroPad2d, CenterCrop,
    ChannelShuffle, PixelShuffle, PixelUnshuffle,
    Identity, Add, Concat, Mul,
)  # fmt: skip
"""The ops a spec's `layers` may use, in the order documentation lists them."""

OPS: dict[str, type[Op]] = {cls.kind(): cls for cls in LAYER_OPS}


def any_layer_op() -> Any:
    """The discriminated union of every layer op's canonical model (tag: `op`)."""
    from typing import Union

    return Annotated[Union[LAYER_OPS], Field(discriminator="op")]  # noqa: UP007


__all__ = ["LAYER_OPS", "OPS", "RF", "Cost", "Input", "Note", "Op", "ShapeError", "Tensor", "TorchCall",
           "any_layer_op"]
