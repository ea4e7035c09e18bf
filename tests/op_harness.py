"""One harness for the per-op tables (Keras-style layer tests).

A row names an op and its arguments as a spec writes them, the per-sample input shape(s)
(batch excluded) and the output shape, parameters, buffers and MACs worked out by hand.
`check_row` holds both sides to the row:

* torch, the truth: the equivalent torch module (built by `TORCH_BUILDERS`, an explicit
  mapping written here, not taken from netspec) runs on a random batch of 2; its output
  shape, `sum(p.numel())`, `sum(b.numel())` and, for convolutions and linear layers,
  FlopCounterMode's MACs must equal the row;
* netspec: `check(load(spec))` of a one-layer spec must report the same in its last row,
  and a `macs_with_bias` of the row's MACs plus one add per output element when the torch
  module is a convolution or linear layer with a bias (the report's convention).

A disagreement on the netspec side raises `NetspecDisagrees`, so a row marked with `bug()`
expects exactly that failure: a wrong hand-worked row (torch disagreeing) still fails.

`check_row_training` is the rows' training column: the module netspec compiles runs a
forward and a backward pass under `training_counter()`, which must count the report's
forward MACs and backward MACs (`grad_input_macs + grad_weight_macs`), two FLOPs each.
A network's inputs never require grad: for a layer whose inputs do, each input passes
through a `prelu` first (one trained parameter, no MACs either way) in the spec.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, flop_registry

import netspec

if TYPE_CHECKING:
    from _pytest.mark.structures import ParameterSet

Shape = tuple[int, ...]
Args = Mapping[str, Any]
Builder = Callable[[dict[str, Any], tuple[Shape, ...]], nn.Module]

BATCH = 2
INPUT_NAMES = ("a", "b", "c", "d")
MAC_OPS = frozenset({"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                     "conv_transpose3d", "linear", "matmul", "multihead_attention",
                     "window_attention", "relative_attention"})
"""Ops whose MACs torch's flop counter sees (DESIGN.md: only these count MACs)."""
TORCH_REFUSALS = (RuntimeError, ValueError, NotImplementedError, IndexError, AssertionError)


class NetspecDisagrees(AssertionError):
    """netspec's analysis differs from a row that torch confirms (a netspec bug)."""


@dataclass(frozen=True)
class OpCase:
    """One row of a table: an op applied to per-sample `inputs`, and what it must give."""

    op: str
    args: Args
    inputs: tuple[Shape, ...]
    shape: Shape
    params: int = 0
    buffers: int = 0
    macs: int = 0
    vocab: int | None = None
    """When set, every input holds token ids below it (`{tokens: shape, vocab: vocab}`)."""


@dataclass(frozen=True)
class ErrorCase:
    """One configuration netspec must refuse with `message` (a substring of errors[0]).

    `torch_says` is a regex of torch's own refusal, or None where torch accepts the
    configuration (netspec refuses it on purpose) or has no module for the op.
    """

    op: str
    args: Args
    inputs: tuple[Shape, ...]
    message: str
    torch_says: str | None = None
    vocab: int | None = None


class Measured(NamedTuple):
    """What the torch module does on one sample."""

    shape: Shape
    params: int
    buffers: int
    macs: int
    bias_adds: int


class Reported(NamedTuple):
    """What netspec's report says of the layer, or what it must say."""

    shape: Shape
    params: int
    buffers: int
    macs: int
    macs_with_bias: int


# -- rows ------------------------------------------------------------------------------


def bug(reason: str) -> pytest.MarkDecorator:
    """Mark a row that fails because of a netspec bug (reported, not fixed here)."""
    return pytest.mark.xfail(strict=True, raises=NetspecDisagrees, reason=reason)


def row(op: str, args: Args, x: Sequence[Any], shape: Sequence[int], params: int = 0,
        buffers: int = 0, macs: int = 0, *, vocab: int | None = None,
        bug_reason: str | None = None) -> ParameterSet:
    """A table row as a pytest param; `x` is one shape, or a list of shapes for merges;
    with `vocab`, inputs of token ids."""
    case = OpCase(op, dict(args), _shapes(x), tuple(shape), params, buffers, macs, vocab)
    return pytest.param(case, id=_case_id(op, args, case.inputs),
                        marks=[bug(bug_reason)] if bug_reason else [])


def refused(op: str, args: Args, x: Sequence[Any], message: str, torch_says: str | None = None,
            *, vocab: int | None = None, bug_reason: str | None = None) -> ParameterSet:
    """An error-table row as a pytest param (see ErrorCase)."""
    case = ErrorCase(op, dict(args), _shapes(x), message, torch_says, vocab)
    return pytest.param(case, id=_case_id(op, args, case.inputs),
                        marks=[bug(bug_reason)] if bug_reason else [])


def _shapes(x: Sequence[Any]) -> tuple[Shape, ...]:
    if x and isinstance(x[0], Sequence):
        return tuple(tuple(s) for s in x)
    return (tuple(x),)


def _case_id(op: str, args: Args, inputs: tuple[Shape, ...]) -> str:
    text = ",".join(f"{k}={v}" for k, v in args.items()).replace(" ", "")
    shapes = "+".join("x".join(map(str, s)) for s in inputs)
    return f"{op}({text})@{shapes}"


# -- netspec side ----------------------------------------------------------------------


def spec_for(op: str, args: Args, inputs: Sequence[Shape], vocab: int | None = None
             ) -> dict[str, Any]:
    """A one-layer spec: `input:` for one input, `inputs:` and `from:` for several; with
    `vocab`, inputs of token ids."""
    layer: dict[str, Any] = {op: dict(args)}
    declared = [list(s) if vocab is None else {"tokens": list(s), "vocab": vocab} for s in inputs]
    if len(inputs) == 1:
        return {"name": "t", "input": declared[0], "layers": [layer]}
    names = list(INPUT_NAMES[:len(inputs)])
    return {"name": "t", "inputs": dict(zip(names, declared, strict=True)),
            "layers": [{**layer, "from": names}]}


def netspec_report(op: str, args: Args, inputs: Sequence[Shape], vocab: int | None = None
                   ) -> Reported:
    report = netspec.check(netspec.load(spec_for(op, args, inputs, vocab)))
    row = report.layers[-1]
    return Reported(tuple(row.shape), row.params, row.buffers, row.macs, report.macs_with_bias)


def netspec_error(case: ErrorCase) -> str:
    """The first error netspec reports for the case; NetspecDisagrees when it accepts it."""
    try:
        report = netspec.check(netspec.load(spec_for(case.op, case.args, case.inputs,
                                                     case.vocab)))
    except netspec.SpecError as exc:
        return exc.errors[0].message
    raise NetspecDisagrees(f"netspec accepts it (gives {list(report.layers[-1].shape)}); "
                           f"expected an error containing {case.message!r}")


# -- torch side ------------------------------------------------------------------------


def _kwargs(args: Mapping[str, Any], names: Mapping[str, str], handled: Sequence[str] = ()
            ) -> dict[str, Any]:
    """Rename spec arguments to torch keywords; an argument without a torch name fails the
    test (the mapping must grow with the tables). Lists become tuples; `in` and the `handled`
    arguments are the caller's to translate."""
    unknown = set(args) - set(names) - {"in", *handled}
    assert not unknown, f"the harness maps no torch argument for {sorted(unknown)}"
    return {names[k]: tuple(v) if isinstance(v, list) else v for k, v in args.items() if k in names}


CONV = {"out": "out_channels", "kernel": "kernel_size", "stride": "stride", "padding": "padding",
        "dilation": "dilation", "groups": "groups", "bias": "bias"}
POOL = {"kernel": "kernel_size", "stride": "stride", "padding": "padding", "ceil_mode": "ceil_mode"}
RUNNING_NORM = {"eps": "eps", "momentum": "momentum", "affine": "affine",
                "track_running_stats": "track_running_stats"}
INPLACE = {"inplace": "inplace"}


def _channels(args: Mapping[str, Any], x: tuple[Shape, ...]) -> int:
    """Input channels: the declared `in` when given (so torch sees a mismatch too)."""
    return args.get("in", x[0][0])


def _conv(cls: type[nn.Module], names: Mapping[str, str]) -> Builder:
    return lambda a, x: cls(_channels(a, x), **_kwargs(a, names))


class _ToOutputSize(nn.Module):
    """A transposed convolution called with torch's `output_size` forward argument."""

    def __init__(self, conv: nn.Module, size: Sequence[int]):
        super().__init__()
        self.conv, self.size = conv, list(size)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.conv(t, output_size=self.size)


def _conv_transpose(cls: type[nn.Module]) -> Builder:
    def build(a: dict[str, Any], x: tuple[Shape, ...]) -> nn.Module:
        conv = cls(_channels(a, x), **_kwargs(a, {**CONV, "output_padding": "output_padding"},
                                              handled=("output_size",)))
        if "output_size" not in a:
            return conv
        size = a["output_size"]
        return _ToOutputSize(conv, [size] * (len(x[0]) - 1) if isinstance(size, int) else size)
    return build


def _module(cls: type[nn.Module], names: Mapping[str, str] | None = None) -> Builder:
    return lambda a, x: cls(**_kwargs(a, names or {}))


def _running_norm(cls: type[nn.Module]) -> Builder:
    return lambda a, x: cls(_channels(a, x), **_kwargs(a, RUNNING_NORM))


def _layernorm(a: dict[str, Any], x: tuple[Shape, ...]) -> nn.Module:
    # torch's normalized_shape: the explicit `shape`, else the last `dims` per-sample dims
    shape = a["shape"] if "shape" in a else x[0][-a.get("dims", 1):]
    names = {"eps": "eps", "elementwise_affine": "elementwise_affine", "bias": "bias"}
    return nn.LayerNorm(tuple(shape), **_kwargs(a, names, handled=("dims", "shape")))


def _prelu(a: dict[str, Any], x: tuple[Shape, ...]) -> nn.Module:
    per_channel = a.get("per_channel", False)
    return nn.PReLU(x[0][0] if per_channel else 1,
                    **_kwargs(a, {"init": "init"}, handled=("per_channel",)))


class Token(nn.Module):
    """A learned tensor shared by every sample, as torchvision's ViT holds its class token:
    a (1, *shape) parameter expanded over the batch."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = shape
        self.token = nn.Parameter(torch.zeros(1, *shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a copy: FlopCounterMode's module tracker refuses a module output that is a view
        # of a parameter under no_grad
        return self.token.clone().expand(x.shape[0], *self.shape)


def _gate(t: torch.Tensor, a: dict[str, Any]) -> torch.Tensor:
    """SwiGLU / GEGLU as transformer MLPs write them: value * act(gate), halves of `dim`."""
    value, gate = t.chunk(2, dim=a.get("dim", -1))
    return value * getattr(nn.functional, a["activation"])(gate)


class Functional(nn.Module):
    """A torch function as a module, for the ops that compile to functions; `modules` are
    the modules it calls (so their parameters count)."""

    def __init__(self, fn: Callable[..., torch.Tensor], modules: Sequence[nn.Module] = ()):
        super().__init__()
        self.fn = fn
        self.parts = nn.ModuleList(modules)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.fn(*xs)


class WrittenOutAttention(nn.Module):
    """Multi-head attention written out from its definition (Vaswani et al. 2017), with the
    variants as their papers define them: separate q, k, v projections; each of the
    `kv_heads` key/value heads serving heads / kv_heads consecutive query heads (grouped-
    query attention, Ainslie et al. 2023); rotary embeddings turning feature pairs
    (i, i + d/2) at position p by p * base^(-2i/d) as complex rotations (Su et al. 2021);
    a causal mask; then softmax(q k^T / sqrt(d)) v and the output projection."""

    def __init__(self, a: Mapping[str, Any], x: tuple[Shape, ...]):
        super().__init__()
        features, context = x[0][-1], x[-1][-1]
        self.heads = a["heads"]
        self.dim = a.get("head_dim", features // self.heads)
        self.groups = a.get("kv_heads", self.heads)
        self.causal, self.rotary = a.get("causal", False), a.get("rotary", False)
        self.base = a.get("rotary_base", 10000.0)
        bias = a.get("bias", True)
        self.q = nn.Linear(features, self.heads * self.dim, bias=bias)
        self.k = nn.Linear(context, self.groups * self.dim, bias=bias)
        self.v = nn.Linear(context, self.groups * self.dim, bias=bias)
        self.o = nn.Linear(self.heads * self.dim, a.get("out", features), bias=bias)

    def heads_of(self, t: torch.Tensor, heads: int) -> torch.Tensor:
        return t.unflatten(-1, (heads, self.dim)).transpose(-3, -2)  # [..., heads, T, d]

    def rotate(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        turns = torch.polar(torch.ones(t.shape[-2], half), torch.arange(t.shape[-2])[:, None]
                            * self.base ** (-2 * torch.arange(half) / self.dim))
        turned = torch.complex(t[..., :half], t[..., half:]) * turns
        return torch.cat([turned.real, turned.imag], dim=-1)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        c = x if context is None else context
        q = self.heads_of(self.q(x), self.heads)
        k, v = (self.heads_of(p(c), self.groups).repeat_interleave(self.heads // self.groups, -3)
                for p in (self.k, self.v))
        if self.rotary:
            q, k = self.rotate(q), self.rotate(k)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.dim)
        if self.causal:
            later = torch.ones(scores.shape[-2:], dtype=torch.bool).triu(1)
            scores = scores.masked_fill(later, float("-inf"))
        y = scores.softmax(-1) @ v
        return self.o(y.transpose(-3, -2).flatten(-2))


class WrittenOutWindowAttention(nn.Module):
    """Swin's shifted window attention (Liu et al. 2021, section 3.2) written out window by
    window: the [H, W, C] map zero-padded to whole windows and rolled up-left by the shift
    along each dim the window does not cover; in each window, per head, softmax(q k^T /
    sqrt(d) + B) v, with B[i, j] = table[(r_i - r_j + wh - 1) * (2ww - 1) + c_i - c_j + ww - 1]
    and -100 added between tokens from different regions of the rolled map (rows: the last
    `shift`, the window before them, the rest; likewise columns); the projection, the roll
    back and the crop."""

    def __init__(self, a: Mapping[str, Any], x: tuple[Shape, ...]):
        super().__init__()
        c = x[0][-1]
        self.heads = a["heads"]
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
        self.window, self.shift = pair(a.get("window", 7)), pair(a.get("shift", 0))
        wh, ww = self.window
        self.table = nn.Parameter(torch.randn((2 * wh - 1) * (2 * ww - 1), self.heads))
        self.register_buffer("index", torch.zeros(wh * ww * wh * ww, dtype=torch.long))
        self.qkv = nn.Linear(c, 3 * c, bias=a.get("bias", True))
        self.proj = nn.Linear(c, c, bias=a.get("bias", True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (wh, ww), (_, h, w, c) = self.window, x.shape
        x = nn.functional.pad(x, (0, 0, 0, (ww - w % ww) % ww, 0, (wh - h % wh) % wh))
        ph, pw = x.shape[1:3]
        shift = [s if win < size else 0
                 for s, win, size in zip(self.shift, self.window, (ph, pw), strict=True)]
        x = torch.roll(x, (-shift[0], -shift[1]), dims=(1, 2))
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        d = c // self.heads

        def region(i: int, size: int, win: int, s: int) -> int:
            return 0 if not s or i < size - win else (1 if i < size - s else 2)

        out = torch.zeros_like(q)
        for top in range(0, ph, wh):
            for left in range(0, pw, ww):
                cells = [(top + i, left + j) for i in range(wh) for j in range(ww)]
                rows = torch.tensor([r for r, _ in cells])
                cols = torch.tensor([col for _, col in cells])
                labels = torch.tensor([region(r, ph, wh, shift[0]) * 3
                                       + region(col, pw, ww, shift[1]) for r, col in cells])
                mask = (labels[:, None] != labels[None, :]).float() * -100.0
                where = ((rows[:, None] - rows[None, :] + wh - 1) * (2 * ww - 1)
                         + cols[:, None] - cols[None, :] + ww - 1)
                for head in range(self.heads):
                    part = slice(head * d, (head + 1) * d)
                    qs, ks, vs = (t[:, rows, cols, part] for t in (q, k, v))
                    scores = qs @ ks.transpose(-1, -2) / math.sqrt(d)
                    scores = scores + self.table[where, head] + mask
                    out[:, rows, cols, part] = scores.softmax(-1) @ vs
        y = torch.roll(self.proj(out), (shift[0], shift[1]), dims=(1, 2))
        return y[:, :h, :w]


class WrittenOutRelativeAttention(nn.Module):
    """MaxViT's relative-position attention (Tu et al. 2022, section 3.1) written out: in
    each partition of P = s x s tokens [*G, P, D], per head, softmax(q k^T / sqrt(D) + B) v
    (scaled by the features' D, not a head's), with B[i, j] = table[(r_i - r_j + s - 1) *
    (2s - 1) + c_i - c_j + s - 1] for token i at row r_i, column c_i of its partition; the
    heads' outputs side by side, then the output projection."""

    def __init__(self, a: Mapping[str, Any], x: tuple[Shape, ...]):
        super().__init__()
        self.heads, (p, d) = a["heads"], x[0][-2:]
        s = math.isqrt(p)
        self.table = nn.Parameter(torch.randn((2 * s - 1) ** 2, self.heads))
        cells = [(i // s, i % s) for i in range(p)]
        self.register_buffer("index", torch.tensor(
            [[(ri - rj + s - 1) * (2 * s - 1) + ci - cj + s - 1 for rj, cj in cells]
             for ri, ci in cells]))
        self.qkv = nn.Linear(d, 3 * d, bias=a.get("bias", True))
        self.proj = nn.Linear(d, d, bias=a.get("bias", True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        d = x.shape[-1] // self.heads
        heads = []
        for head in range(self.heads):
            part = slice(head * d, (head + 1) * d)
            scores = q[..., part] @ k[..., part].transpose(-1, -2) / math.sqrt(x.shape[-1])
            heads.append((scores + self.table[self.index, head]).softmax(-1) @ v[..., part])
        return self.proj(torch.cat(heads, dim=-1))


def sinusoid_table(a: Mapping[str, Any], x: tuple[Shape, ...]) -> torch.Tensor:
    """The position table of Vaswani et al. 2017, entry by entry: PE(p, 2i) =
    sin(p / base^(2i/d)), PE(p, 2i+1) = cos(p / base^(2i/d)); T is the ids' last dim or
    the vectors' second-to-last."""
    ids = len(x[0]) == 1  # the rows give ids as [T]; vectors have two dims or more
    length, d = (x[0][-1], a["dim"]) if ids else (x[0][-2], a.get("dim", x[0][-1]))
    base = a.get("base", 10000.0)
    return torch.tensor([[math.sin(p / base ** (i / d)) if i % 2 == 0
                          else math.cos(p / base ** ((i - 1) / d)) for i in range(d)]
                         for p in range(length)])


def _attention(a: dict[str, Any], x: tuple[Shape, ...]) -> nn.Module:
    """torch's own nn.MultiheadAttention where it has the variant (heads of D / heads
    features, output D, its default need_weights path counted by the flop counter);
    written out otherwise."""
    if set(a) - {"heads", "bias", "dropout"} or len(x[0]) != 2:
        return WrittenOutAttention(a, x)
    mha = nn.MultiheadAttention(x[0][-1], a["heads"], bias=a.get("bias", True),
                                kdim=x[-1][-1], vdim=x[-1][-1], batch_first=True)
    return Functional(lambda q, *kv: mha(q, kv[0] if kv else q, kv[0] if kv else q)[0],
                      modules=[mha])


def _upsample(a: dict[str, Any], x: tuple[Shape, ...]) -> nn.Module:
    """nn.Upsample, or with a second input F.interpolate to that input's spatial size."""
    names = {"scale": "scale_factor", "size": "size", "mode": "mode",
             "align_corners": "align_corners"}
    if len(x) == 1:
        return nn.Upsample(**_kwargs(a, names))
    options = _kwargs(a, {"mode": "mode", "align_corners": "align_corners"})
    return Functional(lambda t, like: nn.functional.interpolate(t, size=like.shape[2:], **options))


def _center_crop(a: dict[str, Any], x: tuple[Shape, ...]) -> nn.Module:
    size = _kwargs(a, {"size": "size"}).get("size")

    def crop(t: torch.Tensor, *like: torch.Tensor) -> torch.Tensor:
        spatial = t.shape[2:]
        target = like[0].shape[2:] if like else (
            (size,) * len(spatial) if isinstance(size, int) else size)
        # the crop starts at floor((n - t) / 2) in every spatial dim
        index = [slice((n - m) // 2, (n - m) // 2 + m) for n, m in zip(spatial, target, strict=True)]
        return t[(slice(None), slice(None), *index)]

    return Functional(crop)


def _merge(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Builder:
    def build(a: dict[str, Any], x: tuple[Shape, ...]) -> nn.Module:
        _kwargs(a, {})
        return Functional(lambda *xs: reduce(fn, xs))
    return build


def _concat(a: dict[str, Any], x: tuple[Shape, ...]) -> nn.Module:
    dim = _kwargs(a, {"dim": "dim"}).get("dim", 1)
    return Functional(lambda *xs: torch.cat(xs, dim=dim))


TORCH_BUILDERS: dict[str, Builder] = {
    "conv1d": _conv(nn.Conv1d, {**CONV, "padding_mode": "padding_mode"}),
    "conv2d": _conv(nn.Conv2d, {**CONV, "padding_mode": "padding_mode"}),
    "conv3d": _conv(nn.Conv3d, {**CONV, "padding_mode": "padding_mode"}),
    "conv_transpose1d": _conv_transpose(nn.ConvTranspose1d),
    "conv_transpose2d": _conv_transpose(nn.ConvTranspose2d),
    "conv_transpose3d": _conv_transpose(nn.ConvTranspose3d),
    "maxpool1d": _module(nn.MaxPool1d, {**POOL, "dilation": "dilation"}),
    "maxpool2d": _module(nn.MaxPool2d, {**POOL, "dilation": "dilation"}),
    "maxpool3d": _module(nn.MaxPool3d, {**POOL, "dilation": "dilation"}),
    "avgpool1d": _module(nn.AvgPool1d, {**POOL, "count_include_pad": "count_include_pad"}),
    "avgpool2d": _module(nn.AvgPool2d, {**POOL, "count_include_pad": "count_include_pad",
                                        "divisor_override": "divisor_override"}),
    "avgpool3d": _module(nn.AvgPool3d, {**POOL, "count_include_pad": "count_include_pad",
                                        "divisor_override": "divisor_override"}),
    "adaptive_avgpool1d": _module(nn.AdaptiveAvgPool1d, {"size": "output_size"}),
    "adaptive_avgpool2d": _module(nn.AdaptiveAvgPool2d, {"size": "output_size"}),
    "adaptive_avgpool3d": _module(nn.AdaptiveAvgPool3d, {"size": "output_size"}),
    "adaptive_maxpool1d": _module(nn.AdaptiveMaxPool1d, {"size": "output_size"}),
    "adaptive_maxpool2d": _module(nn.AdaptiveMaxPool2d, {"size": "output_size"}),
    "adaptive_maxpool3d": _module(nn.AdaptiveMaxPool3d, {"size": "output_size"}),
    "batchnorm1d": _running_norm(nn.BatchNorm1d),
    "batchnorm2d": _running_norm(nn.BatchNorm2d),
    "batchnorm3d": _running_norm(nn.BatchNorm3d),
    "instancenorm1d": _running_norm(nn.InstanceNorm1d),
    "instancenorm2d": _running_norm(nn.InstanceNorm2d),
    "instancenorm3d": _running_norm(nn.InstanceNorm3d),
    "groupnorm": lambda a, x: nn.GroupNorm(a["groups"], x[0][0], **_kwargs(
        a, {"eps": "eps", "affine": "affine"}, handled=("groups",))),
    "layernorm": _layernorm,
    "rmsnorm": lambda a, x: nn.RMSNorm(a.get("shape") or list(x[0][len(x[0]) - a.get("dims", 1):]),
                                       **_kwargs(a, {"eps": "eps",
                                                     "elementwise_affine": "elementwise_affine"},
                                                 handled=("dims", "shape"))),
    "relu": _module(nn.ReLU, INPLACE),
    "relu6": _module(nn.ReLU6, INPLACE),
    "leaky_relu": _module(nn.LeakyReLU, {**INPLACE, "negative_slope": "negative_slope"}),
    "prelu": _prelu,
    "elu": _module(nn.ELU, {**INPLACE, "alpha": "alpha"}),
    "gelu": _module(nn.GELU, {"approximate": "approximate"}),
    "silu": _module(nn.SiLU, INPLACE),
    "sigmoid": _module(nn.Sigmoid),
    "tanh": _module(nn.Tanh),
    "hardswish": _module(nn.Hardswish, INPLACE),
    "hardsigmoid": _module(nn.Hardsigmoid, INPLACE),
    "mish": _module(nn.Mish, INPLACE),
    "glu": lambda a, x: (nn.GLU(a.get("dim", -1)) if a.get("activation", "sigmoid") == "sigmoid"
                         else Functional(lambda t: _gate(t, a))),
    # netspec's softmax dim defaults to 1 (channels); torch's has no default
    "softmax": lambda a, x: nn.Softmax(**{"dim": 1, **_kwargs(a, {"dim": "dim"})}),
    "log_softmax": lambda a, x: nn.LogSoftmax(**{"dim": 1, **_kwargs(a, {"dim": "dim"})}),
    "dropout": _module(nn.Dropout, {"p": "p", **INPLACE}),
    # eval-mode drop path is the identity; tests/test_op_tables.py compares training mode
    # with torchvision's stochastic_depth
    "drop_path": lambda a, x: nn.Identity(),
    "dropout1d": _module(nn.Dropout1d, {"p": "p", **INPLACE}),
    "dropout2d": _module(nn.Dropout2d, {"p": "p", **INPLACE}),
    "dropout3d": _module(nn.Dropout3d, {"p": "p", **INPLACE}),
    "channel_shuffle": _module(nn.ChannelShuffle, {"groups": "groups"}),
    "pixel_shuffle": _module(nn.PixelShuffle, {"factor": "upscale_factor"}),
    "pixel_unshuffle": _module(nn.PixelUnshuffle, {"factor": "downscale_factor"}),
    "flatten": _module(nn.Flatten, {"start_dim": "start_dim", "end_dim": "end_dim"}),
    "permute": lambda a, x: Functional(lambda t: t.permute(*a["dims"])),
    "reshape": lambda a, x: Functional(lambda t: t.reshape(t.shape[0], *a["shape"])),
    "unflatten": lambda a, x: nn.Unflatten(a["dim"], tuple(a["sizes"])),
    "slice": lambda a, x: Functional(lambda t: t[(slice(None),) * (a["dim"] % t.dim())
                                                 + (slice(a.get("start"), a.get("end"),
                                                          a.get("step", 1)),)]),
    "select": lambda a, x: Functional(lambda t: t.select(a["dim"], a["index"])),
    "transpose": lambda a, x: Functional(lambda t: t.transpose(a["dim0"], a["dim1"])),
    "chunk": lambda a, x: Functional(lambda t: t.chunk(a["chunks"], a.get("dim", 1))[
        a.get("index", 0)]),
    "split": lambda a, x: Functional(lambda t: t.split(a["sizes"], a.get("dim", 1))[
        a.get("index", 0)]),
    "parameter": lambda a, x: Token(tuple(a["shape"])),
    "embedding": lambda a, x: nn.Embedding(a["vocab"], a["dim"], **_kwargs(
        a, {"padding_idx": "padding_idx"}, handled=("vocab", "dim"))),
    "multihead_attention": _attention,
    "window_attention": WrittenOutWindowAttention,
    "relative_attention": WrittenOutRelativeAttention,
    "sinusoidal_positions": lambda a, x: Functional(lambda t: sinusoid_table(a, x).expand(
        t.shape[0], -1, -1)),
    "linear": lambda a, x: nn.Linear(a.get("in", x[0][-1]), **_kwargs(
        a, {"out": "out_features", "bias": "bias"})),
    "upsample": _upsample,
    "zeropad1d": _module(nn.ZeroPad1d, {"padding": "padding"}),
    "zeropad2d": _module(nn.ZeroPad2d, {"padding": "padding"}),
    "center_crop": _center_crop,
    "identity": _module(nn.Identity),
    "add": _merge(torch.add),
    "concat": _concat,
    "mul": _merge(torch.mul),
    "matmul": _merge(torch.matmul),
}


BIASED = (nn.modules.conv._ConvNd, nn.Linear)
"""Modules whose bias adds `macs_with_bias` counts, one per output element."""


def _bias_adds(module: nn.Module) -> tuple[list[int], list[Any]]:
    """Hooks counting the bias additions of every biased module inside `module` (one per
    output element; nn.MultiheadAttention's packed input projection: one per projected
    query, key and value element and output element, its modules being called as functions);
    the counts land in the returned list."""
    counts: list[int] = []

    def biased(m: nn.Module, inputs: tuple[torch.Tensor, ...], out: Any) -> None:
        counts.append(out.numel())

    def projected(m: nn.MultiheadAttention, inputs: tuple[torch.Tensor, ...], out: Any) -> None:
        q, k, v = inputs[:3]  # projected to embed_dim, and the output projection (F.linear)
        counts.append(q.numel() + (k.numel() // k.shape[-1] + v.numel() // v.shape[-1])
                      * m.embed_dim + out[0].numel())

    handles = [m.register_forward_hook(biased) for m in module.modules()
               if isinstance(m, BIASED) and m.bias is not None]
    handles += [m.register_forward_hook(projected) for m in module.modules()
                if isinstance(m, nn.MultiheadAttention) and m.in_proj_bias is not None]
    return counts, handles


def run_torch(op: str, args: Args, inputs: Sequence[Shape], vocab: int | None = None
              ) -> Measured:
    """Build the torch equivalent, run it on a random batch (of token ids below `vocab`
    when set), and measure it."""
    torch.manual_seed(0)
    module = TORCH_BUILDERS[op](dict(args), tuple(inputs))
    xs = [torch.randn(BATCH, *s) if vocab is None else torch.randint(0, vocab, (BATCH, *s))
          for s in inputs]
    adds, handles = _bias_adds(module)
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        y = module(*xs)
    for handle in handles:
        handle.remove()
    assert y.shape[0] == BATCH, f"torch output {tuple(y.shape)} lost the batch dimension"
    return Measured(shape=tuple(y.shape[1:]),
                    params=sum(p.numel() for p in module.parameters()),
                    buffers=sum(b.numel() for b in module.buffers()),
                    macs=flops.get_total_flops() // 2 // BATCH,
                    bias_adds=sum(adds) // BATCH)


def torch_refusal(case: ErrorCase) -> str:
    """torch's error message for the case (building or running its module)."""
    with pytest.raises(TORCH_REFUSALS) as info:
        run_torch(case.op, case.args, case.inputs, case.vocab)
    return str(info.value)


# -- the checks ------------------------------------------------------------------------


def check_row(case: OpCase) -> None:
    """torch must agree with the hand-worked row, then netspec must too."""
    real = run_torch(case.op, case.args, case.inputs, case.vocab)
    assert real.shape == case.shape, f"torch gives shape {real.shape}, the row {case.shape}"
    assert (real.params, real.buffers) == (case.params, case.buffers), \
        f"torch has {real.params} params, {real.buffers} buffers; the row {case.params}, {case.buffers}"
    if case.op in MAC_OPS:
        assert real.macs == case.macs, f"torch counts {real.macs} MACs, the row {case.macs}"

    found = netspec_report(case.op, case.args, case.inputs, case.vocab)
    expected = Reported(case.shape, case.params, case.buffers, case.macs, case.macs + real.bias_adds)
    if found != expected:
        raise NetspecDisagrees(f"netspec reports {found}, expected {expected}")


def check_refused(case: ErrorCase) -> None:
    """torch must refuse the case where the row says so; netspec must refuse it with the
    row's message."""
    if case.torch_says is not None:
        refusal = torch_refusal(case)
        assert re.search(case.torch_says, refusal), f"torch refuses for another reason: {refusal}"
    message = netspec_error(case)
    if case.message not in message:
        raise NetspecDisagrees(f"netspec says {message!r}, expected {case.message!r}")


# -- the training column ---------------------------------------------------------------

aten = torch.ops.aten


def _raw(formula: Callable[..., int]) -> Callable[..., int]:
    """A formula of torch's flop registry (it takes tensors) as a custom mapping entry."""
    def count(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
        return formula(*args, out_val=out_val, **kwargs)
    count._get_raw = True  # type: ignore[attr-defined]  # FlopCounterMode's flag: no shape wrapper
    return count


def _conv_backward_per_group(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
    """torch's conv_backward_flop with its weight-gradient term divided by `groups`: its
    transposed shapes lose the group division, counting a grouped convolution's weight
    gradient `groups` times over (pytorch/pytorch#183405 proposes the same division)."""
    formula = flop_registry[aten.convolution_backward]
    groups, (input_grad, weight_grad) = args[9], args[10][:2]
    inputs = formula(*args[:10], [input_grad, False, False], *args[11:], out_val=out_val, **kwargs)
    weights = formula(*args[:10], [False, weight_grad, False], *args[11:], out_val=out_val,
                      **kwargs)
    return inputs + weights // groups


_conv_backward_per_group._get_raw = True  # type: ignore[attr-defined]

TRAINING_COUNTS = {
    # the CPU's flash kernel, which torch's registry leaves out: its formulas for the
    # fused kernels (sdpa_flop; sdpa_backward_flop, which recomputes the scores)
    aten._scaled_dot_product_flash_attention_for_cpu:
        _raw(flop_registry[aten._scaled_dot_product_flash_attention]),
    aten._scaled_dot_product_flash_attention_for_cpu_backward:
        _raw(flop_registry[aten._scaled_dot_product_flash_attention_backward]),
    aten.convolution_backward: _conv_backward_per_group,
}
"""FlopCounterMode's formulas, completed for a CPU training step (see the entries)."""


def training_counter() -> FlopCounterMode:
    """torch's flop counter with `TRAINING_COUNTS`."""
    return FlopCounterMode(display=False, custom_mapping=TRAINING_COUNTS)


def random_inputs(inputs: Sequence[Shape], vocab: int | None) -> list[torch.Tensor]:
    """A batch per input: floats, or ids below `vocab`."""
    if vocab is not None:
        return [torch.randint(0, vocab, (BATCH, *s)) for s in inputs]
    return [torch.randn(BATCH, *s) for s in inputs]


def counted_step(module: nn.Module, xs: Sequence[torch.Tensor]) -> FlopCounterMode:
    """The counter after a forward pass and, when a gradient can flow, `sum().backward()`."""
    with training_counter() as counter:
        y = module(*xs)
        outputs = [t for t in (y if isinstance(y, tuple) else (y,)) if t.requires_grad]
        if outputs:
            sum(t.sum() for t in outputs).backward()
    return counter


def spec_requiring_grad(op: str, args: Args, inputs: Sequence[Shape]) -> dict[str, Any]:
    """`spec_for`'s one-layer spec with a `prelu` before the layer on each input, so that
    its inputs require grad."""
    names = list(INPUT_NAMES[:len(inputs)])
    spec = spec_for(op, args, inputs)
    declared = {"inputs": dict(zip(names, [list(s) for s in inputs], strict=True))}
    ahead = [{"prelu": {}, "name": f"{n}_grad", "from": n} for n in names]
    return {"name": "t", **declared,
            "layers": [*ahead, {**spec["layers"][0], "from": [f"{n}_grad" for n in names]}]}


def check_row_training(case: OpCase, input_grad: bool) -> None:
    """The compiled layer's forward and backward FLOPs, as the training counter counts them,
    must be twice the report's MACs of both passes (per sample, times the batch); with
    `input_grad`, its inputs require grad."""
    spec = spec_requiring_grad(case.op, case.args, case.inputs) if input_grad else \
        spec_for(case.op, case.args, case.inputs, case.vocab)
    torch.manual_seed(0)
    counter = counted_step(netspec.build(spec, seed=0),
                           random_inputs(case.inputs, case.vocab))
    report = netspec.check(spec)
    layer = report.layers[-1]
    found = {str(k): v for k, v in counter.get_flop_counts().get("Global", {}).items()}
    if counter.get_total_flops() != 2 * BATCH * report.train_macs:
        raise NetspecDisagrees(
            f"torch counts {found}, {counter.get_total_flops()} FLOPs; netspec "
            f"{report.train_macs} MACs (forward {layer.macs}, input gradients "
            f"{layer.grad_input_macs}, weight gradients {layer.grad_weight_macs}) x {BATCH} "
            "samples x 2")


def with_input_grad(tables: Sequence[ParameterSet]) -> list[ParameterSet]:
    """Each row as (case, input_grad) params: its input not requiring grad, and requiring
    it, except rows of token ids (ids never require grad)."""
    return [pytest.param(param.values[0], grad, id=f"{param.id}-{'input_grad' if grad else 'no_input_grad'}",
                         marks=param.marks)
            for param in tables for grad in (False, True)
            if not (grad and param.values[0].vocab is not None)]
