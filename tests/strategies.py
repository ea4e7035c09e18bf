"""Hypothesis strategies for valid netspec specs, for the truth tests (tests/test_truth.py).

Every layer op has a generator: given the per-sample shape it reads (batch excluded), it
draws arguments that torch accepts and returns the layer's value and the output shape.
The output shape is worked out here from PyTorch's documented formulas, independently of
netspec, only to keep the next layer valid; the tests never trust it, they compare netspec's
report with the real forward pass. Sizes stay small (channels <= 8, spatial <= 24 at the
input) so that a forward pass costs a few milliseconds.

Strategies (the first three give a `Case`: the spec and every layer's expected shape):
    single_op_specs(op)   one layer of `op` (several inputs for add, mul, concat, center_crop)
    chain_specs()         2-6 random layers in a row
    fork_specs()          a trunk forked into 2-4 branches, merged by add, mul or concat
    boundary_cases()      (op, arguments, input shapes) of one layer near or past the limits
                          of what torch accepts: these need not be valid
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from hypothesis import assume
from hypothesis import strategies as st

Shape = tuple[int, ...]
Draw = Callable[[st.SearchStrategy[Any]], Any]
Layer = dict[str, Any]

MAX_C = 8  # channels of inputs and of layers that choose their width
MAX_S = 24  # spatial size of inputs
MAX_GROWN = 40  # spatial size that upsampling layers may reach
MERGES = ("add", "mul", "concat")  # ops that only make sense with several inputs
PAIRS = ("matmul",)  # ops of exactly two inputs with their own spec strategy
TOKEN_OPS = ("embedding",)  # ops that take token ids, with their own spec strategy


class Case(NamedTuple):
    """A spec and every layer's output shape by the documented formulas (batch excluded)."""

    spec: dict[str, Any]
    shapes: dict[str, Shape]


# -- shape formulas (PyTorch documentation) --------------------------------------------


def conv_out(n: int, k: int, s: int, p: int, d: int) -> int:
    """nn.Conv: floor((n + 2p - d*(k-1) - 1) / s) + 1."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def conv_transpose_out(n: int, k: int, s: int, p: int, d: int, op: int) -> int:
    """nn.ConvTranspose: (n - 1)*s - 2p + d*(k-1) + output_padding + 1."""
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def pool_out(n: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    """nn.MaxPool/AvgPool; in ceil mode a last window starting in the right padding is dropped."""
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= n + p:
        out -= 1
    return out


def same_fits(mode: str, k: int, d: int, n: int) -> bool:
    """Whether padding='same' fits a size-n input: torch pads d*(k-1) in all, the odd extra on
    the right, and F.pad reflects less than n (wraps at most n) pixels."""
    right = d * (k - 1) - d * (k - 1) // 2
    return {"reflect": right < n, "circular": right <= n}.get(mode, True)


def divisors(n: int) -> list[int]:
    return [g for g in range(1, n + 1) if n % g == 0]


# -- helpers ---------------------------------------------------------------------------


def per_dim(draw: Draw, values: Sequence[Any]) -> Any:
    """One value for every dimension (an int) when they agree, sometimes; else a list."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return list(values)


def maybe(draw: Draw, args: Layer, key: str, strategy: st.SearchStrategy[Any]) -> None:
    """Set `args[key]` from `strategy`, or leave it at its default, half the time each."""
    if draw(st.booleans()):
        args[key] = draw(strategy)


def torch_dim(draw: Draw, rank: int) -> int:
    """A per-sample dimension in torch's numbering (batch is 0), positive or negative."""
    index = draw(st.integers(0, rank - 1))
    return draw(st.sampled_from([index + 1, index - rank]))


def sample_index(dim: int, rank: int) -> int:
    """The per-sample index of torch dim `dim` of a batch of rank-`rank` samples."""
    return dim % (rank + 1) - 1


# -- one generator per op --------------------------------------------------------------


@dataclass(frozen=True)
class OpGen:
    """Draws one op's value for an input shape (of a rank in `ranks`, where `accepts`)."""

    draw: Callable[[Draw, Shape], tuple[Any, Shape]]
    ranks: tuple[int, ...]
    accepts: Callable[[Shape], bool] = lambda x: True
    keeps_rank: bool = True


def _conv(dims: int) -> Callable[[Draw, Shape], tuple[Layer, Shape]]:
    def draw_conv(draw: Draw, x: Shape) -> tuple[Layer, Shape]:
        c_in, *sizes = x
        groups = draw(st.sampled_from(divisors(c_in)))
        out = groups * draw(st.integers(1, max(1, MAX_C // groups)))
        mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
        style = draw(st.sampled_from(["int", "int", "same", "valid"]))
        ks, ss, ps, ds, ys = [], [], [], [], []
        for n in sizes:
            if style == "same":  # stride 1; the padding is d*(k-1) split, the extra on the right
                s, p = 1, 0
                k = draw(st.integers(1, 5))
                k = max(k_ for k_ in range(1, k + 1) if same_fits(mode, k_, 1, n))
                d = draw(st.sampled_from([d for d in range(1, 4) if same_fits(mode, k, d, n)]))
                y = n
            else:
                s = draw(st.integers(1, 3))
                top = {"reflect": n - 1, "circular": n}.get(mode, 3)
                p = 0 if style == "valid" else draw(st.integers(0, min(3, top)))
                span = n + 2 * p
                k = draw(st.integers(1, min(5, span)))
                d = draw(st.integers(1, 1 if k == 1 else min(3, (span - 1) // (k - 1))))
                y = conv_out(n, k, s, p, d)
            ks.append(k), ss.append(s), ps.append(p), ds.append(d), ys.append(y)
        args: Layer = {"out": out, "kernel": per_dim(draw, ks)}
        if style == "int":
            args["padding"] = per_dim(draw, ps)
        else:
            args["padding"] = style
        if any(s != 1 for s in ss) or draw(st.booleans()):
            args["stride"] = per_dim(draw, ss)
        if any(d != 1 for d in ds) or draw(st.booleans()):
            args["dilation"] = per_dim(draw, ds)
        if groups > 1 or draw(st.booleans()):
            args["groups"] = groups
        if mode != "zeros" or draw(st.booleans()):
            args["padding_mode"] = mode
        maybe(draw, args, "bias", st.booleans())
        maybe(draw, args, "in", st.just(c_in))
        return args, (out, *ys)

    return draw_conv


def _conv_transpose(dims: int) -> Callable[[Draw, Shape], tuple[Layer, Shape]]:
    def draw_deconv(draw: Draw, x: Shape) -> tuple[Layer, Shape]:
        c_in, *sizes = x
        groups = draw(st.sampled_from(divisors(c_in)))
        out = groups * draw(st.integers(1, max(1, MAX_C // groups)))
        ks, ss, ps, ds, ops, ys = [], [], [], [], [], []
        for n in sizes:
            s = draw(st.integers(1, max(1, min(3, 32 // n))))
            d = draw(st.integers(1, 2))
            k = draw(st.integers(1, 4))
            op = draw(st.integers(0, max(s, d) - 1))  # torch: smaller than stride or dilation
            full = conv_transpose_out(n, k, s, 0, d, op)
            p = draw(st.integers(0, min(2, (full - 1) // 2)))
            ks.append(k), ss.append(s), ps.append(p), ds.append(d), ops.append(op)
            ys.append(full - 2 * p)
        args: Layer = {"out": out, "kernel": per_dim(draw, ks)}
        for key, values, default in (("stride", ss, 1), ("padding", ps, 0), ("dilation", ds, 1),
                                     ("output_padding", ops, 0)):
            if any(v != default for v in values) or draw(st.booleans()):
                args[key] = per_dim(draw, values)
        if groups > 1 or draw(st.booleans()):
            args["groups"] = groups
        maybe(draw, args, "bias", st.booleans())
        maybe(draw, args, "in", st.just(c_in))
        return args, (out, *ys)

    return draw_deconv


def _pool(kind: str) -> Callable[[Draw, Shape], tuple[Layer, Shape]]:
    def draw_pool(draw: Draw, x: Shape) -> tuple[Layer, Shape]:
        c, *sizes = x
        ceil = draw(st.booleans())
        default_stride = draw(st.booleans())
        ks, ss, ps, ds, ys = [], [], [], [], []
        for n in sizes:
            # torch's avg_pool3d also wants the window to fit the unpadded input
            k = draw(st.integers(1, min(4, n) if kind == "avg" and len(sizes) == 3 else 4))

            def least_padding(d: int, k: int = k, n: int = n) -> int:
                return max(0, -(-(d * (k - 1) + 1 - n) // 2))

            # torch: padding at most half the (undilated) kernel; the window must fit
            dilations = [d for d in (1, 2) if least_padding(d) <= k // 2] if kind == "max" else [1]
            d = draw(st.sampled_from(dilations))
            p = draw(st.integers(least_padding(d), k // 2))
            s = k if default_stride else draw(st.integers(1, 3))
            ks.append(k), ss.append(s), ps.append(p), ds.append(d)
            ys.append(pool_out(n, k, s, p, d, ceil))
        args: Layer = {"kernel": per_dim(draw, ks)}
        if not default_stride:
            args["stride"] = per_dim(draw, ss)
        if any(ps) or draw(st.booleans()):
            args["padding"] = per_dim(draw, ps)
        if kind == "max" and (any(d != 1 for d in ds) or draw(st.booleans())):
            args["dilation"] = per_dim(draw, ds)
        maybe(draw, args, "ceil_mode", st.just(ceil))
        if ceil:
            args["ceil_mode"] = True
        if kind == "avg":
            maybe(draw, args, "count_include_pad", st.booleans())
            if len(sizes) > 1:
                maybe(draw, args, "divisor_override", st.integers(1, 9))
        return args, (c, *ys)

    return draw_pool


def _adaptive(dims: int) -> Callable[[Draw, Shape], tuple[Any, Shape]]:
    def draw_adaptive(draw: Draw, x: Shape) -> tuple[Any, Shape]:
        c, *sizes = x
        # null keeps the input's size (not in 1-d: torch's 1-d adaptive pools refuse None)
        choices = st.integers(1, 6) | st.none() if dims > 1 else st.integers(1, 6)
        wanted = [draw(choices) for _ in sizes]
        size = per_dim(draw, wanted) if None not in wanted else wanted
        value = {"size": size} if draw(st.booleans()) else size
        return value, (c, *(n if w is None else w for w, n in zip(wanted, sizes, strict=True)))

    return draw_adaptive


def _running_norm(draw: Draw, x: Shape) -> tuple[Layer, Shape]:
    """batchnorm (affine and tracking by default) or instancenorm (neither by default)."""
    args: Layer = {}
    maybe(draw, args, "affine", st.booleans())
    maybe(draw, args, "track_running_stats", st.booleans())
    maybe(draw, args, "momentum", st.sampled_from([None, 0.1, 0.5, 1.0]))
    maybe(draw, args, "eps", st.sampled_from([1e-5, 1e-3, 0.1]))
    maybe(draw, args, "in", st.just(x[0]))
    return args, x


def _groupnorm(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    groups = draw(st.sampled_from(divisors(x[0])))
    if draw(st.booleans()):
        return groups, x
    args: Layer = {"groups": groups}
    maybe(draw, args, "affine", st.booleans())
    maybe(draw, args, "eps", st.sampled_from([1e-5, 0.1]))
    return args, x


def _layernorm(draw: Draw, x: Shape) -> tuple[Layer, Shape]:
    trailing = draw(st.integers(1, len(x)))
    args: Layer = {}
    if draw(st.booleans()):
        args["shape"] = list(x[len(x) - trailing:])
    elif trailing > 1 or draw(st.booleans()):
        args["dims"] = trailing
    maybe(draw, args, "elementwise_affine", st.booleans())
    maybe(draw, args, "bias", st.booleans())
    maybe(draw, args, "eps", st.sampled_from([1e-5, 1e-3]))
    return args, x


def _glu(draw: Draw, x: Shape) -> tuple[Layer, Shape]:
    dim = draw(st.sampled_from([d for d in range(1, len(x) + 1) if x[d - 1] % 2 == 0]))
    dim = dim - len(x) - 1 if draw(st.booleans()) else dim  # or counted from the end
    i = sample_index(dim, len(x))
    args: Layer = {"dim": dim}
    maybe(draw, args, "activation", st.sampled_from(["sigmoid", "silu", "gelu", "relu", "tanh"]))
    return args, (*x[:i], x[i] // 2, *x[i + 1:])


def _attention(draw: Draw, x: Shape) -> tuple[Layer, Shape]:
    """Self-attention over [*B, T, D]: heads dividing D (or a head_dim of their own), key
    and value heads dividing the heads, and any of causal, rotary, bias, out."""
    features = x[-1]
    args: Layer = {"heads": draw(st.integers(1, 4))}
    if features % args["heads"] or draw(st.booleans()):
        args["head_dim"] = 2 * draw(st.integers(1, 3)) if draw(st.booleans()) \
            else draw(st.integers(1, 5))
    head_dim = args.get("head_dim", features // args["heads"])
    maybe(draw, args, "kv_heads", st.sampled_from(divisors(args["heads"])))
    maybe(draw, args, "causal", st.booleans())
    if head_dim % 2 == 0:
        maybe(draw, args, "rotary", st.booleans())
    maybe(draw, args, "bias", st.booleans())
    maybe(draw, args, "out", st.integers(1, MAX_C))
    return args, (*x[:-1], args.get("out", features))


def _window_attention(draw: Draw, x: Shape) -> tuple[Layer, Shape]:
    """Swin's window attention over [H, W, C]: heads dividing C, windows of 1-4 per dim
    (often not dividing the map: padded), a shift below the window."""
    args: Layer = {"heads": draw(st.sampled_from(divisors(x[-1])))}
    window = [draw(st.integers(1, 4)) for _ in range(2)]
    args["window"] = per_dim(draw, window)
    if draw(st.booleans()):
        args["shift"] = per_dim(draw, [draw(st.integers(0, w - 1)) for w in window])
    maybe(draw, args, "bias", st.booleans())
    return args, x


def _relative_attention(draw: Draw, x: Shape) -> tuple[Layer, Shape]:
    """MaxViT's relative attention over partitions [*G, P, D] of P square: heads dividing D."""
    args: Layer = {"heads": draw(st.sampled_from(divisors(x[-1])))}
    maybe(draw, args, "bias", st.booleans())
    return args, x


def _sinusoidal(draw: Draw, x: Shape) -> tuple[Layer, Shape]:
    """The position table of a sequence [*S, T, D]: [T, dim], dim even (D unless given)."""
    args: Layer = {}
    if x[-1] % 2 or draw(st.booleans()):
        args["dim"] = 2 * draw(st.integers(1, MAX_C // 2))
    maybe(draw, args, "base", st.sampled_from([100.0, 10000.0]))
    return args, (x[-2], args.get("dim", x[-1]))


def _rmsnorm(draw: Draw, x: Shape) -> tuple[Layer, Shape]:
    """layernorm's extents and eps; a scale only, so no `bias`."""
    args, y = _layernorm(draw, x)
    args.pop("bias", None)
    return args, y


def _activation(**extra: st.SearchStrategy[Any]) -> Callable[[Draw, Shape], tuple[Any, Shape]]:
    """An elementwise op whose optional arguments are drawn from `extra`."""

    def draw_activation(draw: Draw, x: Shape) -> tuple[Any, Shape]:
        args: Layer = {}
        for key, strategy in extra.items():
            maybe(draw, args, key, strategy)
        return (args or None), x

    return draw_activation


def _softmax(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    if draw(st.booleans()):
        return None, x  # dim 1: the channels
    return {"dim": torch_dim(draw, len(x))}, x


def _channel_shuffle(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    return draw(st.sampled_from(divisors(x[0]))), x


def _pixel_shuffle(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    r = draw(st.sampled_from([r for r in divisors(x[0]) if x[0] % (r * r) == 0]))
    return r, (x[0] // (r * r), x[1] * r, x[2] * r)


def _pixel_unshuffle(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    r = draw(st.sampled_from([r for r in divisors(x[1]) if x[2] % r == 0]))
    return r, (x[0] * r * r, x[1] // r, x[2] // r)


def _drop_path(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    p = draw(st.sampled_from([0.0, 0.1, 0.5]))
    return (p if draw(st.booleans()) else {"p": p}), x


def _dropout(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    p = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    if draw(st.booleans()):
        return p, x
    args: Layer = {"p": p}
    maybe(draw, args, "inplace", st.booleans())
    return args, x


def _permute(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    order = draw(st.permutations(range(1, len(x) + 1)))
    return [0, *order], tuple(x[d - 1] for d in order)


def _reshape(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    total = math.prod(x)
    first = draw(st.sampled_from(divisors(total)))
    y = (first, total // first) if draw(st.booleans()) else (total,)
    shape = list(y)
    if draw(st.booleans()):
        shape[draw(st.integers(0, len(shape) - 1))] = -1
    return shape, y


def _unflatten(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    dim = torch_dim(draw, len(x))
    i = sample_index(dim, len(x))
    first = draw(st.sampled_from(divisors(x[i])))
    sizes = [first, x[i] // first]
    y = (*x[:i], *sizes, *x[i + 1:])
    if draw(st.booleans()):
        sizes[draw(st.integers(0, 1))] = -1
    return {"dim": dim, "sizes": sizes}, y


def _slice(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    dim = torch_dim(draw, len(x))
    i = sample_index(dim, len(x))
    n = x[i]
    bound = st.none() | st.integers(-n - 2, n + 2)
    args: Layer = {"dim": dim, "start": draw(bound), "end": draw(bound),
                   "step": draw(st.integers(1, 3))}
    kept = len(range(*slice(args["start"], args["end"], args["step"]).indices(n)))
    assume(kept > 0)
    return {k: v for k, v in args.items() if v is not None}, (*x[:i], kept, *x[i + 1:])


def _select(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    dim = torch_dim(draw, len(x))
    i = sample_index(dim, len(x))
    index = draw(st.integers(-x[i], x[i] - 1))
    return {"dim": dim, "index": index}, (*x[:i], *x[i + 1:])


def _transpose(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    dim0, dim1 = torch_dim(draw, len(x)), torch_dim(draw, len(x))
    y = list(x)
    i, j = sample_index(dim0, len(x)), sample_index(dim1, len(x))
    y[i], y[j] = y[j], y[i]
    return {"dim0": dim0, "dim1": dim1}, tuple(y)


def _chunk(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    dim = torch_dim(draw, len(x))
    i = sample_index(dim, len(x))
    n = x[i]
    size = draw(st.integers(1, n))  # torch.chunk: pieces of ceil(n / chunks), the last shorter
    chunks = -(-n // size)
    size = -(-n // chunks)
    assume(-(-n // size) == chunks)
    index = draw(st.integers(-chunks, chunks - 1))
    length = min(size, n - (index % chunks) * size)
    return {"chunks": chunks, "dim": dim, "index": index}, (*x[:i], length, *x[i + 1:])


def _split(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    dim = torch_dim(draw, len(x))
    i = sample_index(dim, len(x))
    cuts = sorted(draw(st.sets(st.integers(1, x[i] - 1), max_size=3))) if x[i] > 1 else []
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, x[i]], strict=True)]
    index = draw(st.integers(0, len(sizes) - 1))
    return {"sizes": sizes, "dim": dim, "index": index}, (*x[:i], sizes[index], *x[i + 1:])


def _parameter(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    shape = tuple(draw(st.lists(st.integers(1, MAX_C), min_size=1, max_size=3)))
    return {"shape": list(shape)}, shape


def _flatten(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    rank = len(x)
    start = draw(st.integers(0, rank - 1))
    end = draw(st.integers(start, rank - 1))
    y = (*x[:start], math.prod(x[start:end + 1]), *x[end + 1:])
    start_dim = draw(st.sampled_from([start + 1, start - rank]))
    end_dim = draw(st.sampled_from([end + 1, end - rank]))
    args: Layer = {}
    if start_dim != 1 or draw(st.booleans()):
        args["start_dim"] = start_dim
    if end_dim != -1 or draw(st.booleans()):
        args["end_dim"] = end_dim
    return (args or None), y


def _linear(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    out = draw(st.integers(1, MAX_C))
    if draw(st.booleans()):
        return out, (*x[:-1], out)
    args: Layer = {"out": out}
    maybe(draw, args, "bias", st.booleans())
    maybe(draw, args, "in", st.just(x[-1]))
    return args, (*x[:-1], out)


SCALES = [0.3, 0.5, 0.75, 1, 1.1, 1.25, 1.5, 1.7, 2, 2.5, 3.0]
INTERPOLATING = {2: ["linear"], 3: ["bilinear", "bicubic"], 4: []}


def _upsample(draw: Draw, x: Shape) -> tuple[Layer, Shape]:
    c, *sizes = x
    mode = draw(st.sampled_from(["nearest", "nearest-exact", *INTERPOLATING[len(x)]]))
    args: Layer = {}
    if draw(st.booleans()):
        wanted = [draw(st.integers(1, MAX_S)) for _ in sizes]
        args["size"] = per_dim(draw, wanted)
        ys = wanted
    else:
        scales = [draw(st.sampled_from([s for s in SCALES if 1 <= math.floor(n * s) <= MAX_GROWN]))
                  for n in sizes]
        args["scale"] = per_dim(draw, scales)
        ys = [math.floor(n * s) for n, s in zip(sizes, scales, strict=True)]
    if mode != "nearest" or draw(st.booleans()):
        args["mode"] = mode
    if mode in INTERPOLATING[len(x)]:
        maybe(draw, args, "align_corners", st.booleans())
    return args, (c, *ys)


def _zeropad(dims: int) -> Callable[[Draw, Shape], tuple[Any, Shape]]:
    def draw_pad(draw: Draw, x: Shape) -> tuple[Any, Shape]:
        c, *sizes = x
        if draw(st.booleans()):  # one amount on every side; negative amounts crop
            p = draw(st.integers(max(-2, -((min(sizes) - 1) // 2)), 3))
            return p, (c, *(n + 2 * p for n in sizes))
        pairs = []
        for n in sizes:
            before = draw(st.integers(max(-3, -n), 3))
            # torch narrows by the negative amounts first: they may not remove more than n
            after = draw(st.integers(max(-3, 1 - n - before, -(n + min(before, 0))), 3))
            pairs.append((before, after))
        # torch lists the last dimension first: (left, right, top, bottom)
        padding = [v for pair in reversed(pairs) for v in pair]
        value = {"padding": padding} if draw(st.booleans()) else padding
        return value, (c, *(n + a + b for n, (a, b) in zip(sizes, pairs, strict=True)))

    return draw_pad


def _center_crop(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    c, *sizes = x
    wanted = [draw(st.integers(1, n)) for n in sizes]
    size = per_dim(draw, wanted)  # one int fits every dim: each wanted size fits its own
    return ({"size": size} if draw(st.booleans()) else size), (c, *wanted)


def _identity(draw: Draw, x: Shape) -> tuple[Any, Shape]:
    return None, x


ANY_RANK = (1, 2, 3, 4)
INPLACE = st.booleans()
GENERATORS: dict[str, OpGen] = {
    "conv1d": OpGen(_conv(1), (2,)),
    "conv2d": OpGen(_conv(2), (3,)),
    "conv3d": OpGen(_conv(3), (4,)),
    "conv_transpose1d": OpGen(_conv_transpose(1), (2,)),
    "conv_transpose2d": OpGen(_conv_transpose(2), (3,)),
    "conv_transpose3d": OpGen(_conv_transpose(3), (4,)),
    "maxpool1d": OpGen(_pool("max"), (2,)),
    "maxpool2d": OpGen(_pool("max"), (3,)),
    "maxpool3d": OpGen(_pool("max"), (4,)),
    "avgpool1d": OpGen(_pool("avg"), (2,)),
    "avgpool2d": OpGen(_pool("avg"), (3,)),
    "avgpool3d": OpGen(_pool("avg"), (4,)),
    "adaptive_avgpool1d": OpGen(_adaptive(1), (2,)),
    "adaptive_avgpool2d": OpGen(_adaptive(2), (3,)),
    "adaptive_avgpool3d": OpGen(_adaptive(3), (4,)),
    "adaptive_maxpool1d": OpGen(_adaptive(1), (2,)),
    "adaptive_maxpool2d": OpGen(_adaptive(2), (3,)),
    "adaptive_maxpool3d": OpGen(_adaptive(3), (4,)),
    "batchnorm1d": OpGen(_running_norm, (1, 2)),
    "batchnorm2d": OpGen(_running_norm, (3,)),
    "batchnorm3d": OpGen(_running_norm, (4,)),
    # torch normalises each instance over its spatial elements: it refuses a single one
    "instancenorm1d": OpGen(_running_norm, (2,), lambda x: math.prod(x[1:]) > 1),
    "instancenorm2d": OpGen(_running_norm, (3,), lambda x: math.prod(x[1:]) > 1),
    "instancenorm3d": OpGen(_running_norm, (4,), lambda x: math.prod(x[1:]) > 1),
    "groupnorm": OpGen(_groupnorm, ANY_RANK),
    "layernorm": OpGen(_layernorm, ANY_RANK),
    "rmsnorm": OpGen(_rmsnorm, ANY_RANK),
    "multihead_attention": OpGen(_attention, (2, 3)),
    "sinusoidal_positions": OpGen(_sinusoidal, (2, 3), keeps_rank=False),
    "window_attention": OpGen(_window_attention, (3,)),
    "relative_attention": OpGen(_relative_attention, (3, 4),
                                lambda x: math.isqrt(x[-2]) ** 2 == x[-2]),
    "relu": OpGen(_activation(inplace=INPLACE), ANY_RANK),
    "relu6": OpGen(_activation(inplace=INPLACE), ANY_RANK),
    "leaky_relu": OpGen(_activation(negative_slope=st.sampled_from([0.01, 0.2, 1.5]),
                                    inplace=INPLACE), ANY_RANK),
    "prelu": OpGen(_activation(per_channel=st.booleans(), init=st.sampled_from([0.25, 0.0, -1.0])),
                   ANY_RANK),
    "elu": OpGen(_activation(alpha=st.sampled_from([1.0, 0.5, 2.0]), inplace=INPLACE), ANY_RANK),
    "gelu": OpGen(_activation(approximate=st.sampled_from(["none", "tanh"])), ANY_RANK),
    "silu": OpGen(_activation(inplace=INPLACE), ANY_RANK),
    "sigmoid": OpGen(_activation(), ANY_RANK),
    "tanh": OpGen(_activation(), ANY_RANK),
    "hardswish": OpGen(_activation(inplace=INPLACE), ANY_RANK),
    "hardsigmoid": OpGen(_activation(inplace=INPLACE), ANY_RANK),
    "mish": OpGen(_activation(inplace=INPLACE), ANY_RANK),
    "glu": OpGen(_glu, ANY_RANK, accepts=lambda x: any(n % 2 == 0 for n in x)),
    "softmax": OpGen(_softmax, ANY_RANK),
    "log_softmax": OpGen(_softmax, ANY_RANK),
    "dropout": OpGen(_dropout, ANY_RANK),
    "drop_path": OpGen(_drop_path, ANY_RANK),
    "dropout1d": OpGen(_dropout, (2,)),
    "dropout2d": OpGen(_dropout, (3,)),
    "dropout3d": OpGen(_dropout, (4,)),
    "channel_shuffle": OpGen(_channel_shuffle, (2, 3, 4)),
    "pixel_shuffle": OpGen(_pixel_shuffle, (3,), accepts=lambda x: x[0] % 4 == 0),
    "pixel_unshuffle": OpGen(_pixel_unshuffle, (3,)),
    "flatten": OpGen(_flatten, ANY_RANK, keeps_rank=False),
    "permute": OpGen(_permute, ANY_RANK),
    "reshape": OpGen(_reshape, ANY_RANK, keeps_rank=False),
    "unflatten": OpGen(_unflatten, ANY_RANK, keeps_rank=False),
    "slice": OpGen(_slice, ANY_RANK),
    "select": OpGen(_select, (2, 3, 4), keeps_rank=False),
    "transpose": OpGen(_transpose, (2, 3, 4)),
    "chunk": OpGen(_chunk, ANY_RANK),
    "split": OpGen(_split, ANY_RANK),
    "linear": OpGen(_linear, ANY_RANK),
    "upsample": OpGen(_upsample, (2, 3, 4)),
    "zeropad1d": OpGen(_zeropad(1), (2,)),
    "zeropad2d": OpGen(_zeropad(2), (3,)),
    "center_crop": OpGen(_center_crop, (2, 3, 4)),
    "identity": OpGen(_identity, ANY_RANK),
    "parameter": OpGen(_parameter, ANY_RANK, keeps_rank=False),
}
"""Single-input generators; add, mul and concat (MERGES) are drawn as whole specs."""


# -- inputs and layers -----------------------------------------------------------------


def shapes(rank: int, max_c: int = MAX_C, max_s: int = MAX_S) -> st.SearchStrategy[Shape]:
    """A per-sample shape: channels (features for rank 1) then spatial sizes (3-d smaller)."""
    max_s = min(max_s, 10) if rank > 3 else max_s
    return st.tuples(st.integers(1, max_c), *[st.integers(1, max_s)] * (rank - 1))


def input_for(gen: OpGen) -> st.SearchStrategy[Shape]:
    return st.sampled_from(gen.ranks).flatmap(shapes).filter(gen.accepts)


def layer(op: str, value: Any, name: str, source: str | list[str] | None = None) -> Layer:
    """A layer entry in mapping form, named, reading `source` (else the previous layer)."""
    entry: Layer = {op: value, "name": name}
    if source is not None:
        entry["from"] = source
    return entry


def spec(inputs: Shape | dict[str, Shape], layers: list[Layer],
         outputs: list[str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": "t"}
    if isinstance(inputs, dict):
        doc["inputs"] = {k: list(v) for k, v in inputs.items()}
    else:
        doc["input"] = list(inputs)
    doc["layers"] = layers
    if outputs:
        doc["outputs"] = outputs
    return doc


# -- whole specs -----------------------------------------------------------------------


@st.composite
def single_op_specs(draw: Draw, op: str) -> Case:
    """A spec whose only layer (besides the inputs) is `op`."""
    if op in ("add", "mul"):
        return draw(broadcast_specs(op))
    if op == "concat":
        return draw(concat_specs())
    if op == "matmul":
        return draw(matmul_specs())
    if op == "embedding":
        return draw(embedding_specs())
    if op == "center_crop" and draw(st.booleans()):
        return draw(crop_like_specs())
    gen = GENERATORS[op]
    x = draw(input_for(gen))
    value, y = gen.draw(draw, x)
    return Case(spec(x, [layer(op, value, "l0")]), {"l0": y})


def _merge_entry(draw: Draw, op: str, names: list[str], dim: int = 1) -> Layer:
    """add/mul/concat of `names`: the short form (inputs as the value) or `from`."""
    if op == "concat" and (dim != 1 or draw(st.booleans())):
        return layer(op, {"dim": dim}, "m", names)
    if draw(st.booleans()):
        return layer(op, names, "m")
    return layer(op, None, "m", names)


@st.composite
def broadcast_specs(draw: Draw, op: str) -> Case:
    """add/mul of 2-4 inputs of one rank, each keeping a dim or broadcasting it from 1."""
    rank = draw(st.integers(1, 3))
    full = draw(shapes(rank, max_s=12))
    count = draw(st.integers(2, 4))
    inputs = {f"x{i}": tuple(n if draw(st.booleans()) else 1 for n in full) for i in range(count)}
    return Case(spec(inputs, [_merge_entry(draw, op, list(inputs))]),
                {"m": tuple(map(max, *inputs.values()))})


@st.composite
def matmul_specs(draw: Draw) -> Case:
    """matmul of [*B, n, k] and [*B, k, m], each leading dim kept or broadcast from 1."""
    lead = tuple(draw(st.lists(st.integers(1, 4), max_size=2)))
    n, k, m = (draw(st.integers(1, MAX_C)) for _ in range(3))
    a = tuple(d if draw(st.booleans()) else 1 for d in lead)
    b = tuple(d if draw(st.booleans()) else 1 for d in lead)
    inputs = {"x0": (*a, n, k), "x1": (*b, k, m)}
    return Case(spec(inputs, [_merge_entry(draw, "matmul", list(inputs))]),
                {"m": (*map(max, a, b), n, m)})


@st.composite
def embedding_specs(draw: Draw) -> Case:
    """embedding of ids [*S] below a vocabulary V into a table of V or more rows, then a
    random chain over the vectors: [*S] -> [*S, dim] -> ..."""
    x = draw(shapes(draw(st.integers(1, 2)), max_s=12))
    vocab = draw(st.integers(1, 40))
    args: Layer = {"vocab": vocab + draw(st.integers(0, 5)), "dim": draw(st.integers(1, MAX_C))}
    maybe(draw, args, "padding_idx", st.integers(-args["vocab"], args["vocab"] - 1))
    doc = spec(x, [layer("embedding", args, "l0")])
    doc["input"] = {"tokens": list(x), "vocab": vocab}
    known = {"l0": (*x, args["dim"])}
    last = "l0"
    for i in range(draw(st.integers(0, 2))):
        entry, known[f"z{i}"] = _next_layer(draw, known[last], f"z{i}")
        doc["layers"].append(entry)
        last = f"z{i}"
    return Case(doc, known)


@st.composite
def concat_specs(draw: Draw) -> Case:
    """concat of 2-4 inputs along a drawn dim (channels most often)."""
    rank = draw(st.integers(1, 3))
    full = draw(shapes(rank, max_s=12))
    dim = 1 if draw(st.booleans()) else torch_dim(draw, rank)
    axis = sample_index(dim, rank)
    count = draw(st.integers(2, 4))
    inputs = {}
    for i in range(count):
        sizes = list(full)
        sizes[axis] = draw(st.integers(1, MAX_C))
        inputs[f"x{i}"] = tuple(sizes)
    y = list(full)
    y[axis] = sum(shape[axis] for shape in inputs.values())
    return Case(spec(inputs, [_merge_entry(draw, "concat", list(inputs), dim)]), {"m": tuple(y)})


@st.composite
def crop_like_specs(draw: Draw) -> Case:
    """center_crop of a first input to a second one's spatial size (U-Net skips)."""
    rank = draw(st.integers(2, 3))
    big = draw(shapes(rank))
    small = (draw(st.integers(1, MAX_C)), *(draw(st.integers(1, n)) for n in big[1:]))
    return Case(spec({"skip": big, "up": small}, [layer("center_crop", None, "l0", ["skip", "up"])]),
                {"l0": (big[0], *small[1:])})


def _next_layer(draw: Draw, x: Shape, name: str, source: str | None = None,
                keep_rank: bool = False) -> tuple[Layer, Shape]:
    """A random single-input layer that takes `x`."""
    ops = [op for op, gen in GENERATORS.items()
           if len(x) in gen.ranks and gen.accepts(x) and (gen.keeps_rank or not keep_rank)]
    assume(ops)  # a shape no generated op takes (a rank none reads): another draw
    op = draw(st.sampled_from(ops))
    value, y = GENERATORS[op].draw(draw, x)
    return layer(op, value, name, source), y


@st.composite
def chain_specs(draw: Draw) -> Case:
    """2-6 random layers, each reading the previous one."""
    x = draw(st.sampled_from([1, 2, 3, 3]).flatmap(shapes))
    layers, known, y = [], {}, x
    for i in range(draw(st.integers(2, 6))):
        entry, y = _next_layer(draw, y, f"l{i}")
        if draw(st.integers(0, 5)) == 0:
            entry["frozen"] = True  # its parameters do not train
        layers.append(entry)
        known[entry["name"]] = y
    return Case(spec(x, layers), known)


@st.composite
def fork_specs(draw: Draw) -> Case:
    """A trunk (0-2 layers) forked into 2-4 branches (0-2 layers each, any rank-keeping op),
    aligned and merged by add, mul or concat, then a tail of 0-2 layers; the spec's outputs
    are the last layer and, sometimes, a branch as well.

    Branches are aligned as their merge needs: spatial sizes by a center crop (of a size,
    or like the smallest branch) or an adaptive pool; add/mul also align channels with a
    1x1 convolution, and leave size-1 dims (channels or spatial) to broadcasting.
    """
    x = draw(st.sampled_from([2, 3]).flatmap(shapes))
    known: dict[str, Shape] = {"input": x}
    layers: list[Layer] = []

    def add(entry: Layer, y: Shape) -> str:
        layers.append(entry)
        known[entry["name"]] = y
        return entry["name"]

    trunk = "input"
    for i in range(draw(st.integers(0, 2))):
        trunk = add(*_next_layer(draw, known[trunk], f"t{i}", keep_rank=True))
    merge = draw(st.sampled_from(MERGES))
    ends = []
    for b in range(draw(st.integers(2, 4) if merge == "concat" else st.integers(2, 3))):
        end = trunk
        for i in range(draw(st.integers(0, 2))):
            end = add(*_next_layer(draw, known[end], f"b{b}_{i}", end, keep_rank=True))
        ends.append(end)
    broadcast = merge != "concat"
    # the common spatial size: the smallest of each dim, ignoring the 1s that add/mul broadcast
    spatial = list(zip(*(known[e][1:] for e in ends), strict=True))
    target = tuple(min((n for n in dim if n != 1 or not broadcast), default=1) for dim in spatial)
    channels = max(known[e][0] for e in ends)
    like = next((e for e in ends if known[e][1:] == target), None)
    merged = []
    for b, end in enumerate(ends):
        c, *sizes = known[end]
        want = tuple(1 if n == 1 and broadcast else t for n, t in zip(sizes, target, strict=True))
        if tuple(sizes) != want:
            how = draw(st.sampled_from(["crop", "crop_like", "avg", "max"]))
            if how == "crop_like" and like is not None and want == target:
                end = add(layer("center_crop", None, f"b{b}_fit", [end, like]), (c, *want))
            elif how in ("crop", "crop_like"):
                end = add(layer("center_crop", list(want), f"b{b}_fit", end), (c, *want))
            else:
                op = f"adaptive_{how}pool{len(want)}d"
                end = add(layer(op, list(want), f"b{b}_fit", end), (c, *want))
        if broadcast and c not in (1, channels):
            conv = f"conv{len(sizes)}d"
            end = add(layer(conv, {"out": channels, "kernel": 1}, f"b{b}_proj", end),
                      (channels, *want))
        merged.append(end)
    if broadcast:
        y = tuple(map(max, *(known[e] for e in merged)))
    else:
        y = (sum(known[e][0] for e in merged), *target)
    add(_merge_entry(draw, merge, merged), y)
    last = "m"
    for i in range(draw(st.integers(0, 2))):
        last = add(*_next_layer(draw, known[last], f"z{i}"))
    # sometimes a branch is an output too: the compiled module returns a tuple
    outputs = [last, draw(st.sampled_from(ends))] if draw(st.booleans()) else None
    _in_place_only_where_alone(layers, outputs or [])
    del known["input"]
    return Case(spec(x, layers, outputs), known)


VIEWS = frozenset({"slice", "select", "chunk", "split", "center_crop", "identity", "flatten",
                   "reshape", "unflatten", "permute", "transpose"})
"""Ops whose output is a view of their input's memory (and in-place layers, and dropout of
p 0)."""


def _in_place_only_where_alone(layers: list[Layer], outputs: list[str]) -> None:
    """Drops `inplace` from a layer whose input's memory (through views) another layer or
    an output also reads: overwriting it would change what they read, which netspec
    refuses."""
    root: dict[str, str] = {"input": "input"}
    readers: dict[str, int] = {}
    previous = "input"
    for entry in layers:
        op, args = next((k, v) for k, v in entry.items() if k not in ("name", "from", "frozen"))
        source = entry.get("from", previous)
        sources = source if isinstance(source, list) else [source]
        view = op in VIEWS or (isinstance(args, dict) and (args.get("inplace") or args.get("p") == 0))
        root[entry["name"]] = root[sources[0]] if view else entry["name"]
        for name in sources:
            readers[root[name]] = readers.get(root[name], 0) + 1
        previous = entry["name"]
    for name in outputs:
        readers[root[name]] = readers.get(root[name], 0) + 1
    previous = "input"
    for entry in layers:
        args = next(v for k, v in entry.items() if k not in ("name", "from", "frozen"))
        source = entry.get("from", previous)
        if isinstance(args, dict) and args.get("inplace") and readers[root[source]] > 1:
            args["inplace"] = False
        previous = entry["name"]


# -- near the limits -------------------------------------------------------------------


def _loose_window(draw: Draw, op: str, dims: int, x: Shape) -> Layer:
    """Window arguments drawn without regard to the input: many do not fit it."""

    def ints(lo: int, hi: int) -> Any:
        return per_dim(draw, [draw(st.integers(lo, hi)) for _ in range(dims)])

    args: Layer = {"kernel": ints(1, 5)}
    maybe(draw, args, "stride", st.integers(1, 3) if draw(st.booleans()) else st.just(ints(1, 3)))
    maybe(draw, args, "dilation", st.just(ints(1, 3)))
    if op.startswith("conv"):
        args["out"] = draw(st.integers(1, MAX_C))
        maybe(draw, args, "groups", st.integers(1, 4))
    if op.startswith("conv_transpose"):
        maybe(draw, args, "padding", st.just(ints(0, 4)))
        maybe(draw, args, "output_padding", st.just(ints(0, 3)))
    elif op.startswith("conv"):
        maybe(draw, args, "padding", st.just(ints(0, 4)) | st.sampled_from(["same", "valid"]))
        maybe(draw, args, "padding_mode", st.sampled_from(["zeros", "reflect", "replicate",
                                                           "circular"]))
    else:
        maybe(draw, args, "padding", st.just(ints(0, 3)))
        maybe(draw, args, "ceil_mode", st.booleans())
        if op.startswith("avg"):
            args.pop("dilation", None)
            maybe(draw, args, "count_include_pad", st.booleans())
    return args


@st.composite
def boundary_cases(draw: Draw) -> tuple[str, Layer, tuple[Shape, ...]]:
    """(op, arguments, input shapes) of one layer, drawn near or past the limits of what
    torch accepts: windows larger than small inputs, paddings past half a kernel, groups
    that do not divide, negative paddings larger than the input, merges of shapes that may
    not broadcast. The arguments themselves are always well-formed; only whether they fit
    the input varies."""
    op = draw(st.sampled_from([
        "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
        "conv_transpose3d", "maxpool1d", "maxpool2d", "maxpool3d", "avgpool1d", "avgpool2d",
        "avgpool3d", "adaptive_avgpool1d", "adaptive_maxpool2d", "adaptive_avgpool3d",
        "instancenorm1d", "instancenorm2d", "instancenorm3d", "groupnorm", "layernorm",
        "upsample", "zeropad1d", "zeropad2d", "softmax", "flatten", "linear", "add", "mul",
        "concat", "center_crop"]))
    if op in (*MERGES, "center_crop"):
        return draw(_loose_merge(op))
    dims = int(op[-2]) if op[-1] == "d" and op[-2].isdigit() else 1
    rank = draw(st.integers(1, 3)) if op in ("groupnorm", "layernorm", "softmax", "flatten",
                                             "linear", "upsample") else dims + 1
    x = draw(shapes(rank, max_s=6))
    args: Layer
    if "conv" in op or ("pool" in op and "adaptive" not in op):
        args = _loose_window(draw, op, dims, x)
    elif op.startswith("adaptive"):
        sizes = [draw(st.integers(1, 8) | st.none()) for _ in range(dims)]
        args = {"size": sizes if None in sizes else per_dim(draw, sizes)}
    elif op.startswith("instancenorm"):
        args = {}
        maybe(draw, args, "track_running_stats", st.booleans())
    elif op == "groupnorm":
        args = {"groups": draw(st.integers(1, 8))}
    elif op == "layernorm":
        args = {"shape": draw(st.lists(st.integers(1, 6), min_size=1, max_size=rank))} \
            if draw(st.booleans()) else {"dims": draw(st.integers(1, rank))}
    elif op == "upsample":
        mode = draw(st.sampled_from(["nearest", "linear", "bilinear", "bicubic"]))
        args = {"mode": mode}
        if draw(st.booleans()):
            args["scale"] = draw(st.sampled_from([0.1, 0.25, 0.5, 1.0, 2.0]))
        else:
            args["size"] = draw(st.integers(1, 8))
    elif op.startswith("zeropad"):
        args = {"padding": draw(st.integers(-3, 2)) if draw(st.booleans())
                else [draw(st.integers(-6, 2)) for _ in range(2 * dims)]}
    elif op in ("softmax", "flatten"):  # dims of the sample only: netspec refuses the batch's
        dims_ = [d for d in range(-rank - 2, rank + 2) if d not in (0, -rank - 1)]
        keys = ("dim",) if op == "softmax" else ("start_dim", "end_dim")
        args = {k: draw(st.sampled_from(dims_)) for k in keys}
    else:  # linear with a declared input size
        args = {"out": draw(st.integers(1, MAX_C)), "in": draw(st.integers(1, 6))}
    return op, args, (x,)


@st.composite
def _loose_merge(draw: Draw, op: str) -> tuple[str, Layer, tuple[Shape, ...]]:
    """2-3 inputs of sizes 1-3 (ranks 1-3, mostly one rank; center crop: 2 inputs of one rank,
    2 or 3, since netspec's own crop function is the truth for other ranks)."""
    if op == "center_crop":
        rank = draw(st.integers(2, 3))
        return op, {}, (draw(shapes(rank, max_c=3, max_s=3)), draw(shapes(rank, max_c=3, max_s=3)))
    count = draw(st.integers(2, 3))
    rank = draw(st.integers(1, 3))
    ranks = [rank if draw(st.integers(0, 4)) else draw(st.integers(1, 3)) for _ in range(count)]
    xs = tuple(tuple(draw(st.integers(1, 3)) for _ in range(r)) for r in ranks)
    args: Layer = {}
    if op == "concat":
        dims_ = [d for d in range(-rank - 1, rank + 2) if d not in (0, -rank - 1)]
        args["dim"] = draw(st.sampled_from(dims_))
    return op, args, xs
