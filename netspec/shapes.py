"""Pure shape arithmetic for one spatial dimension, exactly as PyTorch computes it.

References: the `torch.nn.Conv2d`, `ConvTranspose2d`, `MaxPool2d` documentation and ATen's
`pooling_output_shape` (aten/src/ATen/native/Pool.h). Shapes elsewhere in netspec are per
sample, batch excluded: `[C, H, W]` for images, `[C, L]` for signals, `[F]` for features.
"""

from __future__ import annotations

import math

Shape = tuple[int, ...]


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: `d * (k - 1) + 1`."""
    return dilation * (kernel - 1) + 1


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Convolution output length: `floor((in + 2p - d*(k-1) - 1) / s) + 1`."""
    return (size + 2 * padding - effective_kernel(kernel, dilation)) // stride + 1


def conv_transpose_out(size: int, kernel: int, stride: int = 1, padding: int = 0,
                       dilation: int = 1, output_padding: int = 0) -> int:
    """Transposed convolution output: `(in - 1)*s - 2p + d*(k-1) + output_padding + 1`."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def pool_out(size: int, kernel: int, stride: int, padding: int = 0, dilation: int = 1,
             ceil_mode: bool = False) -> int:
    """Pooling output length, with PyTorch's `ceil_mode` rule.

    In ceil mode the division rounds up, but a last window that would start beyond the
    input and its left padding is dropped (it would see padding only).
    """
    span = size + 2 * padding - effective_kernel(kernel, dilation)
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def floor_slack(size: int, kernel: int, stride: int, padding: int = 0, dilation: int = 1) -> int:
    """How many more rows a floor-rounded window could lose before it drops real input:
    `p - (in + 2p - d*(k-1) - 1) mod s`. The unread tail after the last window is the
    right padding first; a negative slack is the input rows never read (for an input the
    window fits, `in + 2p >= d*(k-1) + 1`)."""
    return padding - (size + 2 * padding - effective_kernel(kernel, dilation)) % stride


def slice_length(size: int, start: int | None, end: int | None, step: int) -> int:
    """`len(range(*slice(start, end, step).indices(size)))` for `step >= 1`, by arithmetic
    alone (a symbolic size stays symbolic): negative bounds count from the end, bounds
    past the ends are clamped."""

    def bound(value: int | None, default: int) -> int:
        if value is None:
            return default
        return min(value, size) if value >= 0 else max(value + size, 0)

    return max(0, (bound(end, size) - bound(start, 0) + step - 1) // step)


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """PyTorch's `padding='same'` split for stride 1: total `d*(k-1)`, the extra on the right."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def interpolate_out(size: int, scale: float) -> int:
    """Output length of `nn.Upsample(scale_factor=...)`: `floor(in * scale)`."""
    return math.floor(size * scale)


def dims_label(rank: int) -> tuple[str, ...]:
    """Names of a per-sample shape's dimensions: [F], [C, L], [C, H, W], [C, D, H, W]."""
    return {1: ("F",), 2: ("C", "L"), 3: ("C", "H", "W"), 4: ("C", "D", "H", "W")}.get(
        rank, tuple(f"d{i}" for i in range(1, rank + 1)))


def fmt_shape(shape: Shape) -> str:
    """`[64,28,28]`, as messages print a per-sample shape."""
    return "[" + ",".join(str(d) for d in shape) + "]"


def fmt_spatial(sizes: Shape) -> str:
    """`28x28`, as messages print a spatial extent (`length 28` in 1-D)."""
    return f"length {sizes[0]}" if len(sizes) == 1 else "x".join(str(d) for d in sizes)
