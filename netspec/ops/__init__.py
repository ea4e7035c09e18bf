"""The op registry: every layer type a spec can name, listed explicitly.

Adding a layer type is one class in one of these modules plus one line here; a package adds
its own through the entry-point group `netspec.ops` (netspec.ops.plugins).
"""


import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Annotated, Any

from pydantic import Field

from netspec.errors import clipped, closest
from netspec.ops.activation import (
    ELU,
    GELU,
    GLU,
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
from netspec.ops.attention import MultiheadAttention, RelativeAttention, WindowAttention
from netspec.ops.base import RF, Cost, GradCost, Note, Op, Saved, ShapeError, Tensor, TorchCall
from netspec.ops.conv import (
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
)
from netspec.ops.dropout import Dropout, Dropout1d, Dropout2d, Dropout3d, DropPath
from netspec.ops.embedding import Embedding, SinusoidalPositions
from netspec.ops.io import Input, Parameter
from netspec.ops.linear import Flatten, Linear, MatMul
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
    RMSNorm,
)
from netspec.ops.plugins import PluginProblem, Plugins, PluginWarning, discover
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
from netspec.ops.reshape import (
    Chunk,
    Permute,
    Reshape,
    Select,
    Slice,
    Split,
    Transpose,
    Unflatten,
)
from netspec.ops.resize import CenterCrop, Upsample, ZeroPad1d, ZeroPad2d
from netspec.ops.shuffle import ChannelShuffle, PixelShuffle, PixelUnshuffle

LAYER_OPS: tuple[type[Op], ...] = (
    Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d,
    MaxPool1d, MaxPool2d, MaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d,
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d,
    AdaptiveMaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool3d,
    BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d,
    GroupNorm, LayerNorm, RMSNorm,
    ReLU, ReLU6, LeakyReLU, PReLU, ELU, GELU, SiLU, Mish, Sigmoid, Tanh, Hardswish,
    Hardsigmoid, GLU,
    Softmax, LogSoftmax,
    Dropout, Dropout1d, Dropout2d, Dropout3d, DropPath,
    Flatten, Linear, MatMul, Embedding, MultiheadAttention, WindowAttention, RelativeAttention,
    Reshape, Unflatten, Permute, Transpose, Slice, Select, Chunk, Split,
    Upsample, ZeroPad1d, ZeroPad2d, CenterCrop,
    ChannelShuffle, PixelShuffle, PixelUnshuffle,
    Identity, Add, Concat, Mul, Parameter, SinusoidalPositions,
)  # fmt: skip
"""The ops a spec's `layers` may use, in the order documentation lists them."""



class Registry(Mapping[str, type[Op]]):
    """Every op a spec may name, by name: the built-ins, then the plugins' (see
    netspec.ops.plugins), loaded once and only when needed: a name no built-in has, or a
    walk over every op. Looking up a built-in never loads them."""

    def __init__(self, builtin: Iterable[type[Op]]):
        self.builtin: dict[str, type[Op]] = {cls.kind(): cls for cls in builtin}
        self.plugins: Plugins | None = None

    def loaded(self) -> Plugins:
        """The plugins' ops and problems, loaded (and each problem warned of) on first call."""
        if self.plugins is None:
            self.plugins = discover(self.builtin)
            for problem in self.plugins.problems:
                warnings.warn(str(problem), PluginWarning, stacklevel=2)
        return self.plugins

    def problem(self, kind: str) -> PluginProblem | None:
        """Why a plugin's op named `kind` is missing, if a refused entry point concerns it."""
        return next((p for p in self.loaded().problems if kind in p.ops), None)

    def __getitem__(self, kind: str) -> type[Op]:
        found = self.builtin.get(kind)
        return found if found is not None else self.loaded().ops[kind]

    def get(self, kind: str, default: Any = None) -> Any:
        found = self.builtin.get(kind)
        return found if found is not None else self.loaded().ops.get(kind, default)

    def __contains__(self, kind: object) -> bool:
        return kind in self.builtin or kind in self.loaded().ops

    def __iter__(self) -> Iterator[str]:
        yield from self.builtin
        yield from self.loaded().ops

    def __len__(self) -> int:
        return len(self.builtin) + len(self.loaded().ops)


OPS = Registry(LAYER_OPS)
"""Every op by name, the plugins' after the built-ins."""


KNOWN_AS: dict[str, str] = {
    "swish": "silu", "hswish": "hardswish", "hard_swish": "hardswish",
    "hsigmoid": "hardsigmoid", "hard_sigmoid": "hardsigmoid", "lrelu": "leaky_relu",
    "leakyrelu": "leaky_relu", "dense": "linear", "fc": "linear", "cat": "concat",
    "concatenate": "concat", "upsampling": "upsample", "interpolate": "upsample",
    "embed": "embedding", "attention": "multihead_attention", "mha": "multihead_attention",
    "self_attention": "multihead_attention",
    "shuffle": "channel_shuffle", "depth_to_space": "pixel_shuffle",
    "space_to_depth": "pixel_unshuffle",
}
"""Other frameworks' names (Keras, PyTorch functions, papers) for ops netspec has under
another name: the same function, so the hint may name it without a caveat."""

_FAMILY_NAMES = {"bn": "batchnorm", "deconv": "conv_transpose", "convtranspose": "conv_transpose",
                 "transposed_conv": "conv_transpose"}
"""Family names other than the ops' own stems (`conv` for conv1d/2d/3d is its own)."""


def unknown_op_hint(word: str, blocks: Iterable[str] = ()) -> str:
    """What to say about an op name that names neither an op nor a block: the op another
    framework calls that, the family members when it names a family (`conv`), or the
    closest op or block by spelling, with what that op computes (a near spelling may be
    another function: `hsigmoid` is not `sigmoid`)."""
    key = word.lower()
    problem = OPS.problem(word)
    if problem is not None:
        return str(problem)
    if key in KNOWN_AS:
        return f"netspec calls it `{KNOWN_AS[key]}`"
    families = _families()
    family = _FAMILY_NAMES.get(key, key)
    if family in families:
        members = families[family]
        return (f"use {', '.join(f'`{m}`' for m in members[:-1])} or `{members[-1]}`, by the "
                f"input's rank")
    match = closest(word, [*OPS, *blocks])
    if match is None:
        added = len(OPS) - len(OPS.builtin)
        return (f"`netspec schema` lists the {len(OPS)} ops ({len(OPS.builtin)} built in, as "
                f"the README's ops table, and {added} from plugins)") if added else (
            f"`netspec schema` or the README's ops table lists the {len(OPS)} ops")
    if match not in OPS:
        return f"did you mean the block `{match}`?"
    return f"did you mean `{match}` ({_computes(OPS[match])})?"


def _families() -> dict[str, list[str]]:
    """Ops by family stem: `conv` -> conv1d, conv2d, conv3d."""
    families: dict[str, list[str]] = {}
    for kind in OPS:
        if kind[-1] == "d" and kind[-2].isdigit():
            families.setdefault(kind[:-2], []).append(kind)
    return families


def _computes(cls: type[Op]) -> str:
    """An op's docstring up to its torch class: `max(x, 0)`, `1-D convolution over ...`."""
    first = (cls.__doc__ or cls.kind()).split(" (torch.")[0].split("\n")[0].rstrip(".:")
    return clipped(first, 60)


def any_layer_op() -> Any:
    """The discriminated union of every layer op's canonical model (tag: `op`), plugins'
    included."""
    from typing import Union

    return Annotated[Union[tuple(OPS.values())], Field(discriminator="op")]  # noqa: UP007


__all__ = ["KNOWN_AS", "LAYER_OPS", "OPS", "RF", "Cost", "GradCost", "Input", "Note", "Op",
           "PluginWarning", "Registry", "Saved", "ShapeError", "Tensor", "TorchCall",
           "any_layer_op", "unknown_op_hint"]
