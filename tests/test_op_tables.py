"""Per-op tables: every layer op's shape, parameters, buffers and MACs, worked out by hand.

Each expected number is written as the arithmetic of its formula (cited in a comment), never
copied from netspec's output; `op_harness.check_row` holds both netspec's static analysis
and the real torch module to it. Shapes are per sample (batch excluded).

Formulas used (PyTorch documentation):
    conv      out = (n + 2p - d*(k-1) - 1) // s + 1
              params = out * C_in/groups * prod(k) + out (bias);  MACs = prod(S') * params w/o bias
    deconv    out = (n - 1)*s - 2p + d*(k-1) + output_padding + 1
              params = C_in * out/groups * prod(k) + out;  MACs = prod(S_in) * C_in * out/groups * prod(k)
    pool      floor: (n + 2p - d*(k-1) - 1) // s + 1;  ceil: the division rounds up, and a last
              window starting at or beyond n + p (the input and its left padding) is dropped
    norms     params 2C when affine; buffers 2C + 1 (running mean, var, num_batches_tracked)
    linear    params = F*out + out;  MACs = prod(leading dims) * F * out
    upsample  out = floor(n * scale), or `size`
    zeropad   out = n + before + after (negative values crop)
    attention params and MACs from its definition (`_attention`)
"""

import json
import math
import warnings
from typing import Any

import pytest
from op_harness import TORCH_BUILDERS, OpCase, check_row, row, spec_for

import netspec
from netspec.ops import LAYER_OPS

# torch's performance note on padding='same' with an even kernel
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")

CONV = [
    # 3-D: a 3x3x3 kernel over 8 frames, stride (1, 2, 2), padding 1
    row("conv3d", {"out": 16, "kernel": 3, "stride": [1, 2, 2], "padding": 1}, [3, 8, 16, 16],
        [16, (8 + 2 - 3) // 1 + 1, (16 + 2 - 3) // 2 + 1, (16 + 2 - 3) // 2 + 1],
        params=16 * (3 * 3 * 3 * 3) + 16, macs=8 * 8 * 8 * 16 * (3 * 3 * 3 * 3)),
    # R(2+1)D-style factorised kernels, groups and no bias
    row("conv3d", {"out": 8, "kernel": [1, 3, 3], "groups": 2, "bias": False}, [4, 5, 7, 7],
        [8, 5, 7 - 3 + 1, 7 - 3 + 1], params=8 * (4 // 2) * (1 * 3 * 3),
        macs=5 * 5 * 5 * 8 * (4 // 2) * (1 * 3 * 3)),
    # plain 3x3, no padding: (32 - 3)//1 + 1
    row("conv2d", {"out": 64, "kernel": 3}, [3, 32, 32],
        [64, (32 - 3) // 1 + 1, (32 - 3) // 1 + 1],
        params=64 * (3 * 3 * 3) + 64, macs=30 * 30 * 64 * (3 * 3 * 3)),
    # stride 2, padding 1: (32 + 2*1 - 3)//2 + 1
    row("conv2d", {"out": 64, "kernel": 3, "stride": 2, "padding": 1}, [3, 32, 32],
        [64, (32 + 2 * 1 - 3) // 2 + 1, (32 + 2 * 1 - 3) // 2 + 1],
        params=64 * (3 * 3 * 3) + 64, macs=16 * 16 * 64 * (3 * 3 * 3)),
    # pairs: H (16 + 2*1 - 3)//1 + 1, W (20 + 2*2 - 5)//2 + 1
    row("conv2d", {"out": 8, "kernel": [3, 5], "stride": [1, 2], "padding": [1, 2]}, [4, 16, 20],
        [8, (16 + 2 * 1 - 3) // 1 + 1, (20 + 2 * 2 - 5) // 2 + 1],
        params=8 * (4 * 3 * 5) + 8, macs=16 * 10 * 8 * (4 * 3 * 5)),
    # 'same' keeps the size (stride 1), also with a dilated kernel
    row("conv2d", {"out": 8, "kernel": 5, "padding": "same", "dilation": 2}, [4, 15, 15],
        [8, 15, 15], params=8 * (4 * 5 * 5) + 8, macs=15 * 15 * 8 * (4 * 5 * 5)),
    # 'same' with an even kernel: torch puts the odd extra pixel on the right
    row("conv2d", {"out": 6, "kernel": 4, "padding": "same"}, [2, 9, 9],
        [6, 9, 9], params=6 * (2 * 4 * 4) + 6, macs=9 * 9 * 6 * (2 * 4 * 4)),
    # 'valid' is padding 0: (10 - 3)//1 + 1
    row("conv2d", {"out": 8, "kernel": 3, "padding": "valid"}, [3, 10, 10],
        [8, (10 - 3) + 1, (10 - 3) + 1], params=8 * (3 * 3 * 3) + 8, macs=8 * 8 * 8 * (3 * 3 * 3)),
    # dilation 2: span 2*(3-1) + 1 = 5, (20 - 5)//1 + 1
    row("conv2d", {"out": 16, "kernel": 3, "dilation": 2}, [8, 20, 20],
        [16, 20 - (2 * (3 - 1) + 1) + 1, 20 - (2 * (3 - 1) + 1) + 1],
        params=16 * (8 * 3 * 3) + 16, macs=16 * 16 * 16 * (8 * 3 * 3)),
    # groups 4: each output channel sees 16/4 input channels
    row("conv2d", {"out": 32, "kernel": 3, "padding": 1, "groups": 4}, [16, 14, 14],
        [32, 14, 14], params=32 * (16 // 4 * 3 * 3) + 32, macs=14 * 14 * 32 * (16 // 4 * 3 * 3)),
    # depthwise (groups = channels), strided, no bias: (28 + 2 - 3)//2 + 1
    row("conv2d", {"out": 32, "kernel": 3, "padding": 1, "stride": 2, "groups": 32, "bias": False},
        [32, 28, 28], [32, (28 + 2 - 3) // 2 + 1, (28 + 2 - 3) // 2 + 1],
        params=32 * (32 // 32 * 3 * 3), macs=14 * 14 * 32 * (1 * 3 * 3)),
    # stride 3 leaves the tail: (10 - 3)//3 + 1, (11 - 3)//3 + 1
    row("conv2d", {"out": 2, "kernel": 3, "stride": 3}, [1, 10, 11],
        [2, (10 - 3) // 3 + 1, (11 - 3) // 3 + 1], params=2 * (1 * 3 * 3) + 2, macs=3 * 3 * 2 * 9),
    # reflect padding 1 < 6 input
    row("conv2d", {"out": 4, "kernel": 3, "padding": 1, "padding_mode": "reflect"}, [2, 6, 6],
        [4, 6, 6], params=4 * (2 * 3 * 3) + 4, macs=6 * 6 * 4 * (2 * 3 * 3)),
    # circular padding may equal the input size: (4 + 2*4 - 3) + 1
    row("conv2d", {"out": 4, "kernel": 3, "padding": 4, "padding_mode": "circular"}, [1, 4, 4],
        [4, 4 + 2 * 4 - 3 + 1, 4 + 2 * 4 - 3 + 1], params=4 * 9 + 4, macs=10 * 10 * 4 * 9),
    # a declared `in` that matches
    row("conv2d", {"out": 4, "kernel": 1, "in": 3}, [3, 5, 5], [4, 5, 5],
        params=4 * 3 + 4, macs=5 * 5 * 4 * 3),
    # conv1d: (100 + 2*2 - 5)//2 + 1
    row("conv1d", {"out": 16, "kernel": 5, "stride": 2, "padding": 2}, [8, 100],
        [16, (100 + 2 * 2 - 5) // 2 + 1], params=16 * (8 * 5) + 16, macs=50 * 16 * (8 * 5)),
    row("conv1d", {"out": 8, "kernel": 3, "dilation": 3, "padding": "same"}, [4, 17],
        [8, 17], params=8 * (4 * 3) + 8, macs=17 * 8 * (4 * 3)),
    # conv1d groups 2, no padding: 10 - 3 + 1
    row("conv1d", {"out": 4, "kernel": 3, "groups": 2}, [6, 10], [4, 10 - 3 + 1],
        params=4 * (6 // 2 * 3) + 4, macs=8 * 4 * (6 // 2 * 3)),
    row("conv1d", {"out": 3, "kernel": 1, "bias": False, "padding": "valid"}, [5, 7], [3, 7],
        params=3 * 5, macs=7 * 3 * 5),
]

CONV_TRANSPOSE = [
    # output_size: anything from the smallest output, (7 - 1)*2 - 2*1 + (3 - 1) + 1 = 13, to
    # stride - 1 above it; torch's forward(x, output_size) is the truth
    row("conv_transpose2d", {"out": 4, "kernel": 3, "stride": 2, "padding": 1,
                             "output_size": [14, 13]}, [8, 7, 7], [4, 14, 13],
        params=8 * (4 * 3 * 3) + 4, macs=7 * 7 * 8 * (4 * 3 * 3)),
    row("conv_transpose1d", {"out": 2, "kernel": 4, "stride": 3, "output_size": 17}, [3, 5],
        [2, 17], params=3 * (2 * 4) + 2, macs=5 * 3 * (2 * 4)),
    # 3-D: (4 - 1)*2 + (2 - 1) + 1 per dim
    row("conv_transpose3d", {"out": 6, "kernel": 2, "stride": 2}, [4, 4, 4, 4],
        [6, (4 - 1) * 2 + (2 - 1) + 1, (4 - 1) * 2 + (2 - 1) + 1, (4 - 1) * 2 + (2 - 1) + 1],
        params=4 * (6 * 2 * 2 * 2) + 6, macs=4 * 4 * 4 * 4 * (6 * 2 * 2 * 2)),
    # (7 - 1)*2 - 0 + 1*(2 - 1) + 0 + 1
    row("conv_transpose2d", {"out": 16, "kernel": 2, "stride": 2}, [32, 7, 7],
        [16, (7 - 1) * 2 + (2 - 1) + 1, (7 - 1) * 2 + (2 - 1) + 1],
        params=32 * (16 * 2 * 2) + 16, macs=7 * 7 * 32 * (16 * 2 * 2)),
    # output_padding 1 < stride 2: (8 - 1)*2 - 2*1 + (3 - 1) + 1 + 1
    row("conv_transpose2d", {"out": 8, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1},
        [16, 8, 8], [8, (8 - 1) * 2 - 2 * 1 + (3 - 1) + 1 + 1, (8 - 1) * 2 - 2 + 2 + 1 + 1],
        params=16 * (8 * 3 * 3) + 8, macs=8 * 8 * 16 * (8 * 3 * 3)),
    # output_padding 1 < dilation 2 at stride 1: (5 - 1)*1 + 2*(3 - 1) + 1 + 1
    row("conv_transpose2d", {"out": 4, "kernel": 3, "dilation": 2, "output_padding": 1}, [2, 5, 5],
        [4, (5 - 1) + 2 * (3 - 1) + 1 + 1, (5 - 1) + 2 * (3 - 1) + 1 + 1],
        params=2 * (4 * 3 * 3) + 4, macs=5 * 5 * 2 * (4 * 3 * 3)),
    # groups 2, no bias, pairs: H (5 - 1)*2 + (3 - 1) + 1, W (6 - 1)*1 + 0 + 1
    row("conv_transpose2d", {"out": 6, "kernel": [3, 1], "stride": [2, 1], "groups": 2,
                             "bias": False},
        [4, 5, 6], [6, (5 - 1) * 2 + (3 - 1) + 1, (6 - 1) * 1 + 1],
        params=4 * (6 // 2 * 3 * 1), macs=5 * 6 * 4 * (6 // 2 * 3 * 1)),
    # padding pair: H (3 - 1)*2 - 2*1 + 3 + 1, W (3 - 1)*2 - 0 + 3 + 1
    row("conv_transpose2d", {"out": 3, "kernel": 4, "stride": 2, "padding": [1, 0]}, [5, 3, 3],
        [3, (3 - 1) * 2 - 2 * 1 + (4 - 1) + 1, (3 - 1) * 2 + (4 - 1) + 1],
        params=5 * (3 * 4 * 4) + 3, macs=3 * 3 * 5 * (3 * 4 * 4)),
    # 1-d: (10 - 1)*2 - 2*1 + (4 - 1) + 1
    row("conv_transpose1d", {"out": 4, "kernel": 4, "stride": 2, "padding": 1}, [8, 10],
        [4, (10 - 1) * 2 - 2 * 1 + (4 - 1) + 1], params=8 * (4 * 4) + 4, macs=10 * 8 * (4 * 4)),
    # 1-d, output_padding 2 < stride 3: (4 - 1)*3 + (3 - 1) + 2 + 1
    row("conv_transpose1d", {"out": 2, "kernel": 3, "stride": 3, "output_padding": 2}, [3, 4],
        [2, (4 - 1) * 3 + (3 - 1) + 2 + 1], params=3 * (2 * 3) + 2, macs=4 * 3 * (2 * 3)),
]

POOL = [
    # 3-D: (8 - 2)//2 + 1 per dim; with padding 1 and stride (1, 2, 2): (6 + 2 - 3)//s + 1
    row("maxpool3d", {"kernel": 2}, [4, 8, 8, 8], [4, (8 - 2) // 2 + 1, (8 - 2) // 2 + 1,
                                                   (8 - 2) // 2 + 1]),
    row("avgpool3d", {"kernel": 3, "stride": [1, 2, 2], "padding": 1}, [2, 6, 6, 6],
        [2, (6 + 2 - 3) // 1 + 1, (6 + 2 - 3) // 2 + 1, (6 + 2 - 3) // 2 + 1]),
    # stride defaults to the kernel: (32 - 2)//2 + 1
    row("maxpool2d", {"kernel": 2}, [16, 32, 32], [16, (32 - 2) // 2 + 1, (32 - 2) // 2 + 1]),
    # ResNet stem: (112 + 2*1 - 3)//2 + 1
    row("maxpool2d", {"kernel": 3, "stride": 2, "padding": 1}, [64, 112, 112],
        [64, (112 + 2 - 3) // 2 + 1, (112 + 2 - 3) // 2 + 1]),
    # floor vs ceil on the same input: (8 - 3)//2 + 1 = 3, ceil((8 - 3)/2) + 1 = 4 (its last
    # window starts at (4 - 1)*2 = 6 < 8: kept)
    row("maxpool2d", {"kernel": 3, "stride": 2}, [8, 8, 8], [8, (8 - 3) // 2 + 1, (8 - 3) // 2 + 1]),
    row("maxpool2d", {"kernel": 3, "stride": 2, "ceil_mode": True}, [8, 8, 8],
        [8, -(-(8 - 3) // 2) + 1, -(-(8 - 3) // 2) + 1]),
    # ceil mode keeps a window hanging over the edge: ceil((2 - 3)/2) + 1 = 1 (floor gives 0)
    row("maxpool2d", {"kernel": 3, "stride": 2, "ceil_mode": True}, [3, 2, 2],
        [3, -(-(2 - 3) // 2) + 1, -(-(2 - 3) // 2) + 1]),
    # ceil mode dropping the last window: H ceil((4 - 1)/2) + 1 = 3, but window 3 would start
    # at (3 - 1)*2 = 4 >= 4 + 0: dropped, 2; W ceil((5 - 1)/2) + 1 = 3 starts at 4 < 5: kept
    row("maxpool2d", {"kernel": 1, "stride": 2, "ceil_mode": True}, [3, 4, 5],
        [3, -(-(4 - 1) // 2) + 1 - 1, -(-(5 - 1) // 2) + 1]),
    # dilation 2: span 5, stride = kernel = 3: (10 - 5)//3 + 1
    row("maxpool2d", {"kernel": 3, "dilation": 2}, [4, 10, 10],
        [4, (10 - (2 * 2 + 1)) // 3 + 1, (10 - (2 * 2 + 1)) // 3 + 1]),
    # pairs: H (9 + 2 - 2)//2 + 1, W (9 + 2 - 3)//1 + 1
    row("maxpool2d", {"kernel": [2, 3], "stride": [2, 1], "padding": [1, 1]}, [4, 9, 9],
        [4, (9 + 2 - 2) // 2 + 1, (9 + 2 - 3) // 1 + 1]),
    # 1-d: (15 - 3)//2 + 1
    row("maxpool1d", {"kernel": 3, "stride": 2}, [4, 15], [4, (15 - 3) // 2 + 1]),
    # the largest stride torch's pooling kernels take (C ints)
    row("maxpool2d", {"kernel": 2, "stride": 2**31 - 1}, [1, 5, 5], [1, 1, 1]),
    row("avgpool1d", {"kernel": 2, "stride": 2**31 - 1}, [1, 5], [1, 1]),
    # 1-d ceil mode drops the window starting at (3 - 1)*3 = 6 >= 5 + 1: ceil((5 + 2 - 2)/3) + 1 - 1
    row("maxpool1d", {"kernel": 2, "stride": 3, "padding": 1, "ceil_mode": True}, [2, 5],
        [2, -(-(5 + 2 - 2) // 3) + 1 - 1]),
    row("maxpool1d", {"kernel": 2, "dilation": 3, "padding": 1}, [1, 12],
        [1, (12 + 2 - (3 * 1 + 1)) // 2 + 1]),
    # avg pool floor: (7 - 2)//2 + 1, the 7th row unread
    row("avgpool2d", {"kernel": 2}, [3, 7, 7], [3, (7 - 2) // 2 + 1, (7 - 2) // 2 + 1]),
    row("avgpool2d", {"kernel": 3, "stride": 2, "padding": 1, "count_include_pad": False},
        [8, 14, 14], [8, (14 + 2 - 3) // 2 + 1, (14 + 2 - 3) // 2 + 1]),
    # ceil((14 + 2 - 3)/2) + 1 = 8, last window at 14 < 14 + 1: kept
    row("avgpool2d", {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                      "count_include_pad": True},
        [8, 14, 14], [8, -(-(14 + 2 - 3) // 2) + 1, -(-(14 + 2 - 3) // 2) + 1]),
    row("avgpool2d", {"kernel": 2, "divisor_override": 3}, [2, 6, 6], [2, 6 // 2, 6 // 2]),
    # ceil((9 + 4 - 4)/2) + 1 = 6, last window at 10 < 9 + 2: kept (floor would give 5)
    row("avgpool1d", {"kernel": 4, "stride": 2, "padding": 2, "ceil_mode": True}, [3, 9],
        [3, -(-(9 + 4 - 4) // 2) + 1]),
    row("avgpool1d", {"kernel": 2, "stride": 3, "padding": 1, "ceil_mode": True,
                      "count_include_pad": False}, [2, 5], [2, -(-(5 + 2 - 2) // 3) + 1 - 1]),
]

ADAPTIVE_POOL = [
    row("adaptive_avgpool3d", {"size": 1}, [32, 4, 7, 7], [32, 1, 1, 1]),
    row("adaptive_maxpool3d", {"size": [None, 2, 3]}, [3, 5, 6, 7], [3, 5, 2, 3]),
    row("adaptive_avgpool2d", {"size": 1}, [512, 7, 7], [512, 1, 1]),
    # null keeps that input size
    row("adaptive_avgpool2d", {"size": [None, 7]}, [3, 5, 9], [3, 5, 7]),
    row("adaptive_avgpool2d", {"size": [3, 2]}, [2, 9, 9], [2, 3, 2]),
    row("adaptive_maxpool2d", {"size": [4, None]}, [3, 10, 6], [3, 4, 6]),
    # larger than the input: torch repeats cells
    row("adaptive_maxpool2d", {"size": 6}, [3, 4, 4], [3, 6, 6]),
    row("adaptive_avgpool1d", {"size": 5}, [8, 13], [8, 5]),
    row("adaptive_maxpool1d", {"size": 1}, [8, 13], [8, 1]),
]

NORM = [
    row("batchnorm3d", {}, [8, 2, 3, 3], [8, 2, 3, 3], params=2 * 8, buffers=2 * 8 + 1),
    row("instancenorm3d", {"affine": True}, [4, 2, 3, 3], [4, 2, 3, 3], params=2 * 4),
    # params 2C (gamma, beta), buffers 2C + 1 (running mean, var, num_batches_tracked)
    row("batchnorm2d", {}, [64, 8, 8], [64, 8, 8], params=2 * 64, buffers=2 * 64 + 1),
    row("batchnorm2d", {"affine": False}, [16, 4, 4], [16, 4, 4], buffers=2 * 16 + 1),
    row("batchnorm2d", {"track_running_stats": False}, [16, 4, 4], [16, 4, 4], params=2 * 16),
    row("batchnorm2d", {"in": 6, "eps": 1e-3}, [6, 2, 2], [6, 2, 2], params=2 * 6, buffers=2 * 6 + 1),
    row("batchnorm1d", {}, [100], [100], params=2 * 100, buffers=2 * 100 + 1),
    row("batchnorm1d", {"momentum": None, "eps": 0.001}, [10, 7], [10, 7],
        params=2 * 10, buffers=2 * 10 + 1),
    row("batchnorm1d", {"affine": False, "track_running_stats": False}, [10, 7], [10, 7]),
    # instance norm: torch's defaults are affine=False, track_running_stats=False
    row("instancenorm2d", {}, [8, 5, 5], [8, 5, 5]),
    row("instancenorm2d", {"affine": True, "track_running_stats": True}, [8, 5, 5], [8, 5, 5],
        params=2 * 8, buffers=2 * 8 + 1),
    row("instancenorm1d", {"affine": True}, [6, 20], [6, 20], params=2 * 6),
    row("instancenorm1d", {"track_running_stats": True}, [6, 20], [6, 20], buffers=2 * 6 + 1),
    # group norm: params 2C when affine, no buffers
    row("groupnorm", {"groups": 32}, [64, 8, 8], [64, 8, 8], params=2 * 64),
    row("groupnorm", {"groups": 1, "affine": False}, [6, 5, 5], [6, 5, 5]),
    row("groupnorm", {"groups": 4}, [8, 10], [8, 10], params=2 * 8),
    row("groupnorm", {"groups": 8, "eps": 1e-6}, [8], [8], params=2 * 8),
    # layer norm: params prod(normalized_shape) * 2 (weight, bias) when elementwise_affine
    row("layernorm", {}, [10, 32], [10, 32], params=2 * 32),
    row("layernorm", {"dims": 3}, [4, 6, 6], [4, 6, 6], params=2 * (4 * 6 * 6)),
    row("layernorm", {"shape": [6, 6]}, [4, 6, 6], [4, 6, 6], params=2 * (6 * 6)),
    row("layernorm", {"elementwise_affine": False}, [5, 7], [5, 7]),
    row("layernorm", {"bias": False}, [16], [16], params=16),
    row("layernorm", {"dims": 2, "bias": False, "eps": 1e-6}, [3, 4, 5], [3, 4, 5], params=4 * 5),
    # rmsnorm: a scale only, prod(normalised dims)
    row("rmsnorm", {}, [10, 32], [10, 32], params=32),
    row("rmsnorm", {"dims": 2, "eps": 1e-6}, [3, 4, 5], [3, 4, 5], params=4 * 5),
    row("rmsnorm", {"shape": [6, 6], "elementwise_affine": False}, [4, 6, 6], [4, 6, 6]),
    # rows of a few elements, where a row's tensors weigh beside the input's
    row("rmsnorm", {}, [6, 2], [6, 2], params=2),
    row("rmsnorm", {"dims": 2, "elementwise_affine": False}, [3, 5, 8], [3, 5, 8]),
]

ACTIVATION = [
    row("relu", {}, [3, 8, 8], [3, 8, 8]),
    row("relu", {"inplace": True}, [10], [10]),
    row("relu6", {}, [4, 7], [4, 7]),
    row("leaky_relu", {"negative_slope": 0.2}, [3, 8, 8], [3, 8, 8]),
    row("leaky_relu", {}, [5], [5]),
    # PReLU: one shared slope, or one per channel (dim 1 of the batch)
    row("prelu", {}, [16, 8, 8], [16, 8, 8], params=1),
    row("prelu", {"per_channel": True}, [16, 8, 8], [16, 8, 8], params=16),
    row("prelu", {"per_channel": True, "init": 0.1}, [10], [10], params=10),
    row("prelu", {"per_channel": True}, [6, 12], [6, 12], params=6),
    row("elu", {"alpha": 0.5}, [3, 4, 4], [3, 4, 4]),
    row("gelu", {}, [7, 9], [7, 9]),
    row("gelu", {"approximate": "tanh"}, [12], [12]),
    row("silu", {}, [2, 3, 4], [2, 3, 4]),
    row("sigmoid", {}, [1], [1]),
    row("tanh", {}, [5, 5], [5, 5]),
    row("hardswish", {"inplace": True}, [8, 2, 2], [8, 2, 2]),
    row("hardsigmoid", {}, [6, 3, 3], [6, 3, 3]),
    row("hardsigmoid", {"inplace": True}, [5], [5]),
    row("mish", {}, [4, 5], [4, 5]),
    row("mish", {"inplace": True}, [2, 3, 3, 3], [2, 3, 3, 3]),
    # glu: dim halved; the first half times act(the second) (torch.nn.GLU: sigmoid)
    row("glu", {}, [10, 64], [10, 64 // 2]),
    row("glu", {"activation": "silu"}, [197, 3072], [197, 3072 // 2]),
    row("glu", {"activation": "gelu", "dim": 1}, [8, 5, 5], [8 // 2, 5, 5]),
]

SOFTMAX = [
    # dims count the batch as 0: dim 1 is the first per-sample dim
    row("softmax", {}, [10], [10]),
    row("softmax", {"dim": -1}, [3, 4, 5], [3, 4, 5]),
    row("softmax", {"dim": 2}, [3, 4, 5], [3, 4, 5]),
    row("log_softmax", {}, [10], [10]),
    row("log_softmax", {"dim": -1}, [5, 7], [5, 7]),
    row("log_softmax", {"dim": 3}, [2, 3, 4], [2, 3, 4]),
]

DROPOUT = [
    row("dropout", {}, [100], [100]),
    row("dropout", {"p": 0.2}, [3, 8, 8], [3, 8, 8]),
    row("dropout", {"p": 0.1, "inplace": True}, [4], [4]),
    row("dropout2d", {"p": 0.3}, [8, 4, 4], [8, 4, 4]),
    row("dropout2d", {}, [1, 2, 2], [1, 2, 2]),
    row("dropout1d", {"p": 0.3}, [8, 12], [8, 12]),
    row("drop_path", {"p": 0.1}, [197, 768], [197, 768]),
    row("drop_path", {"p": 0.5}, [64, 7, 7], [64, 7, 7]),
    row("dropout3d", {"p": 0.2, "inplace": True}, [4, 3, 5, 5], [4, 3, 5, 5]),
    # p = 1: the input times a zero scalar, no mask
    row("dropout", {"p": 1.0}, [5, 4], [5, 4]),
    row("dropout1d", {"p": 1.0}, [6, 3], [6, 3]),
]

SHUFFLE = [
    # channel_shuffle keeps the shape; pixel_shuffle r: [C*r*r, H, W] -> [C, H*r, W*r]
    row("channel_shuffle", {"groups": 4}, [16, 5, 5], [16, 5, 5]),
    row("channel_shuffle", {"groups": 3}, [6, 7], [6, 7]),
    row("channel_shuffle", {"groups": 1}, [5, 2, 3, 4], [5, 2, 3, 4]),
    row("pixel_shuffle", {"factor": 2}, [12, 5, 7], [12 // 4, 5 * 2, 7 * 2]),
    row("pixel_shuffle", {"factor": 3}, [18, 4, 4], [18 // 9, 4 * 3, 4 * 3]),
    row("pixel_unshuffle", {"factor": 2}, [3, 8, 6], [3 * 4, 8 // 2, 6 // 2]),
    row("pixel_unshuffle", {"factor": 4}, [1, 16, 16], [1 * 16, 16 // 4, 16 // 4]),
]

REARRANGE = [
    # permute: the batch (0) first, then the sample's dims in the order given
    row("permute", {"dims": [0, 2, 3, 1]}, [16, 6, 8], [6, 8, 16]),
    row("permute", {"dims": [0, -1, 1]}, [5, 7], [7, 5]),
    # reshape: prod kept; -1 is what is left: 48 * 16 / 48
    row("reshape", {"shape": [48, -1]}, [16, 6, 8], [48, 16 * 6 * 8 // 48]),
    row("reshape", {"shape": [2, 3, 4]}, [24], [2, 3, 4]),
    row("unflatten", {"dim": 1, "sizes": [4, -1]}, [12, 5], [4, 12 // 4, 5]),
    row("unflatten", {"dim": -1, "sizes": [2, 8]}, [3, 16], [3, 2, 8]),
    # slice: len(range(start, end, step)) after clamping: range(2, 14, 3) over 16 -> 4
    row("slice", {"dim": 3, "start": 2, "end": 14, "step": 3}, [4, 6, 16], [4, 6, len(range(2, 14, 3))]),
    row("slice", {"dim": 1, "end": 8}, [64, 7, 7], [8, 7, 7]),
    row("slice", {"dim": -2, "start": -3}, [2, 10, 4], [2, 3, 4]),
    row("slice", {"dim": 1, "start": 5, "end": 100}, [12], [12 - 5]),
    # select: the dim goes (a class token: dim 1 of [T, D])
    row("select", {"dim": 1, "index": 0}, [197, 768], [768]),
    row("select", {"dim": -1, "index": -1}, [3, 4, 5], [3, 4]),
    # transpose: two dims swapped
    row("transpose", {"dim0": 1, "dim1": 2}, [197, 64], [64, 197]),
    row("transpose", {"dim0": -2, "dim1": -1}, [12, 197, 64], [12, 64, 197]),
    row("transpose", {"dim0": 3, "dim1": 1}, [3, 4, 5], [5, 4, 3]),
    # chunk: pieces ceil(n / chunks) long, the last what is left; split: the given lengths
    row("chunk", {"chunks": 2, "index": 1}, [116, 28, 28], [116 // 2, 28, 28]),
    row("chunk", {"chunks": 3, "dim": 2, "index": 2}, [4, 10, 5], [4, 10 - 2 * math.ceil(10 / 3), 5]),
    row("chunk", {"chunks": 4, "dim": -1, "index": -1}, [3, 7], [3, 7 - 3 * math.ceil(7 / 4)]),
    row("split", {"sizes": [3, 5], "index": 1}, [8, 4], [5, 4]),
    row("split", {"sizes": [1, 1, 2], "dim": 2, "index": 0}, [3, 4, 4], [3, 1, 4]),
    # parameter: a learned tensor of the given shape, prod(shape) params, whatever it reads
    row("parameter", {"shape": [768, 1, 1]}, [768, 7, 7], [768, 1, 1], params=768 * 1 * 1),
    row("parameter", {"shape": [1, 768]}, [196, 768], [1, 768], params=1 * 768),
    row("parameter", {"shape": [197, 64]}, [10], [197, 64], params=197 * 64),
]

FLATTEN_LINEAR = [
    # dims count the batch as 0; the default merges everything after it
    row("flatten", {}, [64, 4, 4], [64 * 4 * 4]),
    row("flatten", {}, [10], [10]),
    row("flatten", {"start_dim": 2}, [3, 4, 5], [3, 4 * 5]),
    row("flatten", {"start_dim": 1, "end_dim": 2}, [3, 4, 5], [3 * 4, 5]),
    row("flatten", {"start_dim": 2, "end_dim": 3}, [2, 3, 4, 5], [2, 3 * 4, 5]),
    row("flatten", {"start_dim": -2}, [3, 4, 5], [3, 4 * 5]),
    # linear: params F*out + out, MACs prod(leading) * F * out
    row("linear", {"out": 10}, [84], [10], params=84 * 10 + 10, macs=84 * 10),
    row("linear", {"out": 120, "bias": False}, [400], [120], params=400 * 120, macs=400 * 120),
    row("linear", {"out": 5}, [4, 16], [4, 5], params=16 * 5 + 5, macs=4 * 16 * 5),
    row("linear", {"out": 3, "in": 8}, [2, 3, 8], [2, 3, 3], params=8 * 3 + 3, macs=2 * 3 * 8 * 3),
]

UPSAMPLE = [
    # by scale: floor(n * scale)
    row("upsample", {"scale": 2}, [3, 8, 8], [3, 8 * 2, 8 * 2]),
    row("upsample", {"scale": 1.5}, [3, 7, 7], [3, int(7 * 1.5), int(7 * 1.5)]),
    row("upsample", {"scale": 1.5, "mode": "bilinear"}, [3, 7, 9], [3, int(7 * 1.5), int(9 * 1.5)]),
    row("upsample", {"scale": [2, 3]}, [1, 4, 5], [1, 4 * 2, 5 * 3]),
    row("upsample", {"scale": 0.5}, [3, 9, 9], [3, int(9 * 0.5), int(9 * 0.5)]),
    row("upsample", {"scale": 2, "mode": "linear"}, [4, 10], [4, 10 * 2]),
    row("upsample", {"scale": 3, "mode": "bicubic"}, [1, 3, 3], [1, 3 * 3, 3 * 3]),
    row("upsample", {"scale": 2, "mode": "nearest-exact"}, [2, 3, 3], [2, 6, 6]),
    # by size
    row("upsample", {"size": [5, 7]}, [2, 3, 3], [2, 5, 7]),
    row("upsample", {"size": 10, "mode": "bilinear", "align_corners": True}, [2, 4, 4], [2, 10, 10]),
    row("upsample", {"size": 12}, [3, 5], [3, 12]),
    # to a second input's spatial size (FCN/DeepLab heads at any input size)
    row("upsample", {"mode": "bilinear"}, [[21, 5, 6], [3, 37, 45]], [21, 37, 45]),
    row("upsample", {}, [[4, 3, 3, 3], [1, 7, 6, 5]], [4, 7, 6, 5]),
    row("upsample", {"mode": "linear", "align_corners": True}, [[2, 9], [5, 20]], [2, 20]),
]

ZEROPAD = [
    # zeropad2d padding is (left, right, top, bottom): H + top + bottom, W + left + right
    row("zeropad2d", {"padding": 1}, [3, 8, 8], [3, 8 + 1 + 1, 8 + 1 + 1]),
    row("zeropad2d", {"padding": [1, 2, 3, 4]}, [3, 8, 8], [3, 8 + 3 + 4, 8 + 1 + 2]),
    row("zeropad2d", {"padding": [-1, -1, 2, 0]}, [3, 8, 8], [3, 8 + 2 + 0, 8 - 1 - 1]),
    row("zeropad2d", {"padding": [0, 0, -3, -2]}, [2, 6, 5], [2, 6 - 3 - 2, 5]),
    row("zeropad1d", {"padding": 3}, [4, 10], [4, 10 + 3 + 3]),
    row("zeropad1d", {"padding": [2, -1]}, [4, 10], [4, 10 + 2 - 1]),
    row("zeropad1d", {"padding": [-2, -3]}, [4, 10], [4, 10 - 2 - 3]),
]

CENTER_CROP = [
    # to a second input's spatial size, keeping the first input's channels (U-Net skip)
    row("center_crop", {}, [[64, 64, 64], [32, 56, 56]], [64, 56, 56]),
    row("center_crop", {}, [[8, 9, 9], [4, 4, 5]], [8, 4, 5]),
    # to `size`
    row("center_crop", {"size": 24}, [16, 28, 28], [16, 24, 24]),
    row("center_crop", {"size": [3, 5]}, [2, 7, 6], [2, 3, 5]),
    row("center_crop", {"size": 4}, [2, 9], [2, 4]),
]

MERGE = [
    row("identity", {}, [3, 8, 8], [3, 8, 8]),
    row("identity", {}, [10], [10]),
    row("add", {}, [[64, 28, 28], [64, 28, 28]], [64, 28, 28]),
    row("add", {}, [[4, 5, 5], [4, 5, 5], [4, 5, 5]], [4, 5, 5]),
    # broadcasting: size-1 dims stretch, on either side
    row("add", {}, [[8, 4, 4], [8, 1, 1]], [8, 4, 4]),
    row("add", {}, [[8, 1, 4], [8, 4, 1]], [8, 4, 4]),
    row("mul", {}, [[64, 28, 28], [64, 1, 1]], [64, 28, 28]),  # squeeze-and-excitation
    row("mul", {}, [[1, 5, 5], [3, 5, 5]], [3, 5, 5]),
    row("mul", {}, [[4, 2, 2], [4, 1, 1], [1, 2, 2]], [4, 2, 2]),
    row("mul", {}, [[6], [6]], [6]),
    # concat adds up along dim (1 = channels)
    row("concat", {}, [[16, 8, 8], [32, 8, 8]], [16 + 32, 8, 8]),
    row("concat", {}, [[1, 4, 4], [2, 4, 4], [3, 4, 4]], [1 + 2 + 3, 4, 4]),
    row("concat", {"dim": 2}, [[4, 3, 5], [4, 2, 5]], [4, 3 + 2, 5]),
    row("concat", {"dim": -1}, [[4, 3, 5], [4, 3, 1]], [4, 3, 5 + 1]),
    row("concat", {}, [[10], [20]], [10 + 20]),
    # matmul [*B, n, k] @ [*B, k, m] -> [*B, n, m]: prod(B) * n * m * k MACs (attention's
    # scores: 12 heads of 197 tokens, head_dim 64)
    row("matmul", {}, [[12, 197, 64], [12, 64, 197]], [12, 197, 197], macs=12 * 197 * 197 * 64),
    row("matmul", {}, [[5, 3], [3, 7]], [5, 7], macs=5 * 7 * 3),
    row("matmul", {}, [[2, 1, 4, 3], [1, 6, 3, 5]], [2, 6, 4, 5], macs=2 * 6 * 4 * 5 * 3),
]

TOKENS = [
    # embedding: ids [*S] -> [*S, dim], a vocab x dim table, no MACs (a lookup)
    row("embedding", {"vocab": 100, "dim": 16}, [12], [12, 16], params=100 * 16, vocab=100),
    row("embedding", {"vocab": 120, "dim": 8, "padding_idx": 0}, [3, 5], [3, 5, 8],
        params=120 * 8, vocab=100),
    # ids move through the ops that only rearrange them
    row("slice", {"dim": 1, "start": 1}, [9], [9 - 1], vocab=50),
    row("reshape", {"shape": [2, 6]}, [12], [2, 6], vocab=50),
    row("concat", {"dim": 1}, [[4], [6]], [4 + 6], vocab=50),
    # sinusoidal_positions: the [T, dim] table of T positions, no parameters or buffers
    row("sinusoidal_positions", {}, [10, 16], [10, 16]),
    row("sinusoidal_positions", {"dim": 8, "base": 100.0}, [3, 7, 5], [7, 8]),
    row("sinusoidal_positions", {"dim": 12}, [9], [9, 12], vocab=50),
]

def _attention(t: int, d: int, heads: int, *, s: int | None = None, e: int | None = None,
               head_dim: int | None = None, kv_heads: int | None = None, out: int | None = None,
               bias: bool = True, lead: int = 1) -> tuple[int, int]:
    """(params, MACs) of multi-head attention by its definition: projections q = D -> H*hd,
    k and v = E -> G*hd, out = H*hd -> out; scores and weighted values H*T*S*hd each."""
    s, e = s or t, e or d
    hd, g, out = head_dim or d // heads, kv_heads or heads, out or d
    weights = d * heads * hd + 2 * e * g * hd + heads * hd * out
    biases = heads * hd + 2 * g * hd + out if bias else 0
    macs = t * d * heads * hd + 2 * s * e * g * hd + t * heads * hd * out + 2 * heads * t * s * hd
    return weights + biases, lead * macs


def _attention_row(args: dict[str, Any], x: list[Any], y: list[int], **shape: Any) -> Any:
    params, macs = _attention(**shape)
    return row("multihead_attention", args, x, y, params=params, macs=macs)


ATTENTION = [
    _attention_row({"heads": 4}, [10, 32], [10, 32], t=10, d=32, heads=4),
    _attention_row({"heads": 2}, [[6, 16], [9, 8]], [6, 16], t=6, d=16, heads=2, s=9, e=8),
    _attention_row({"heads": 2, "bias": False}, [3, 5, 8], [3, 5, 8], t=5, d=8, heads=2,
                   bias=False, lead=3),
    _attention_row({"heads": 4, "kv_heads": 2, "causal": True}, [12, 32], [12, 32], t=12, d=32,
                   heads=4, kv_heads=2),
    _attention_row({"heads": 3, "head_dim": 5, "out": 7, "bias": False}, [4, 6], [4, 7], t=4,
                   d=6, heads=3, head_dim=5, out=7, bias=False),
    _attention_row({"heads": 2, "rotary": True, "causal": True}, [5, 8], [5, 8], t=5, d=8,
                   heads=2),
    _attention_row({"heads": 4, "kv_heads": 1, "rotary": True, "rotary_base": 500.0},
                   [[7, 16], [3, 12]], [7, 16], t=7, d=16, heads=4, kv_heads=1, s=3, e=12),
    # the math path (more leading dims, dropout) with each variant of its locals
    _attention_row({"heads": 4, "kv_heads": 2, "rotary": True}, [3, 5, 8], [3, 5, 8], t=5, d=8,
                   heads=4, kv_heads=2, lead=3),
    _attention_row({"heads": 1, "rotary": True}, [2, 6, 8], [2, 6, 8], t=6, d=8, heads=1, lead=2),
    _attention_row({"heads": 2, "dropout": 0.1}, [[2, 6, 8], [2, 4, 6]], [2, 6, 8], t=6, d=8,
                   heads=2, s=4, e=6, lead=2),
    # the same tensors under nn.MultiheadAttention's keys
    _attention_row({"heads": 4, "state_dict": "torch"}, [10, 32], [10, 32], t=10, d=32, heads=4),
]

def _window_attention(h: int, w: int, c: int, heads: int, wh: int, ww: int, bias: bool = True
                      ) -> tuple[int, int, int]:
    """(params, buffers, MACs) of Swin's window attention by its definition, over the map
    padded to whole windows: qkv and projection 4C^2 per token, N * C per token for each of
    the scores and the weighted values (N = wh * ww), the bias table (2wh-1)(2ww-1) x heads
    and its N^2 index."""
    n = wh * ww
    tokens = -(-h // wh) * wh * (-(-w // ww) * ww)
    params = 4 * c * c + (4 * c if bias else 0) + (2 * wh - 1) * (2 * ww - 1) * heads
    return params, n * n, 4 * tokens * c * c + 2 * tokens * n * c


def _window_row(args: dict[str, Any], x: list[int], **shape: Any) -> Any:
    params, buffers, macs = _window_attention(*x, **shape)
    return row("window_attention", args, x, x, params=params, buffers=buffers, macs=macs)


WINDOW_ATTENTION = [
    _window_row({"heads": 2, "window": 4}, [8, 8, 8], heads=2, wh=4, ww=4),
    _window_row({"heads": 2, "window": 4, "shift": 2}, [8, 12, 8], heads=2, wh=4, ww=4),
    _window_row({"heads": 3, "window": [3, 2], "shift": [1, 1], "bias": False}, [7, 5, 6],
                heads=3, wh=3, ww=2, bias=False),
    _window_row({"heads": 1, "window": 5, "shift": 2}, [4, 3, 4], heads=1, wh=5, ww=5),
    # windows small beside the heads' size, so the weighted values' product and the map made
    # back hold the most: windows copied out of the padded map, a strided view of it (one
    # window high, one column wide), the map as it lies (one window wide)
    _window_row({"heads": 2, "window": 2}, [4, 3, 16], heads=2, wh=2, ww=2),
    _window_row({"heads": 1, "window": 2}, [4, 3, 8], heads=1, wh=2, ww=2),
    _window_row({"heads": 2, "window": [4, 1]}, [4, 3, 16], heads=2, wh=4, ww=1),
    _window_row({"heads": 3, "window": [2, 4]}, [4, 3, 9], heads=3, wh=2, ww=4),
]


def _relative_row(args: dict[str, Any], x: list[int], bias: bool = True) -> Any:
    """MaxViT's relative attention over partitions [*G, P, D] of P = s x s tokens, by its
    definition: qkv and projection 4D^2 per token, P * D per token for each of the scores
    and the weighted values, the bias table (2s-1)^2 x heads and its P x P index."""
    *_, p, d = x
    tokens, s = math.prod(x[:-1]), math.isqrt(p)
    params = 4 * d * d + (4 * d if bias else 0) + (2 * s - 1) ** 2 * args["heads"]
    return row("relative_attention", args, x, x, params=params, buffers=p * p,
               macs=4 * tokens * d * d + 2 * tokens * p * d)


RELATIVE_ATTENTION = [
    _relative_row({"heads": 2}, [3, 16, 8]),
    _relative_row({"heads": 1}, [2, 9, 6]),
    _relative_row({"heads": 3, "bias": False}, [4, 4, 12], bias=False),
    _relative_row({"heads": 2}, [2, 3, 4, 8]),
    # partitions small beside the heads' size: the output projection holds the most
    _relative_row({"heads": 2}, [3, 4, 16]),
    _relative_row({"heads": 1}, [3, 4, 8]),
]

TABLES = [*CONV, *CONV_TRANSPOSE, *POOL, *ADAPTIVE_POOL, *NORM, *ACTIVATION, *SOFTMAX, *DROPOUT,
          *SHUFFLE, *REARRANGE, *FLATTEN_LINEAR, *UPSAMPLE, *ZEROPAD, *CENTER_CROP, *MERGE,
          *TOKENS, *ATTENTION, *WINDOW_ATTENTION, *RELATIVE_ATTENTION]


@pytest.mark.parametrize("case", TABLES)
def test_op_row(case: OpCase) -> None:
    check_row(case)


@pytest.mark.parametrize("case", TABLES)
def test_op_row_dumps_as_json_that_loads_back(case: OpCase) -> None:
    """What training hashes every epoch (`architecture_hash`): each op's arguments as JSON
    (a per-dimension tuple as a list), without pydantic's serializer warnings; those the
    spec set load back to the same op."""
    spec = netspec.load(spec_for(case.op, case.args, case.inputs, case.vocab))
    netspec.check(spec)
    (op,) = [node.op for node in spec._graph.layers() if node.kind == case.op]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        json.dumps(op.model_dump(mode="json"))
        written = op.model_dump(mode="json", exclude_unset=True)
    assert type(op).model_validate(json.loads(json.dumps(written))) == op


@pytest.mark.parametrize("op", [cls.kind() for cls in LAYER_OPS])
def test_every_op_has_rows_and_a_torch_equivalent(op: str) -> None:
    assert op in TORCH_BUILDERS
    assert any(p.values[0].op == op for p in TABLES), f"no table row for {op}"


@pytest.mark.needs("torchvision")
@pytest.mark.parametrize("p", [0.0, 0.2, 0.7, 1.0])
def test_drop_path_is_torchvision_s_stochastic_depth(p: float) -> None:
    """In training, each sample is dropped whole with probability p and the rest scaled by
    1 / (1 - p), drawing what torchvision draws; in eval, the identity."""
    import torch
    from torchvision.ops import stochastic_depth

    import netspec

    net = netspec.build({"input": [4, 5, 5], "layers": [{"drop_path": p}]})
    x = torch.randn(64, 4, 5, 5)
    torch.manual_seed(3)
    ours = net.train()(x)
    torch.manual_seed(3)
    assert torch.equal(ours, stochastic_depth(x, p, "row", training=True))
    assert torch.equal(net.eval()(x), x)
