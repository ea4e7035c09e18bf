"""Shape errors, per op family: what netspec must refuse, and how it says so.

Each row gives the configuration, a substring of netspec's first error message and, where
torch itself refuses the configuration, a regex of torch's refusal (checked by building and
running the torch module on a batch of 2). `torch_says=None` marks what torch accepts but
netspec refuses on purpose (per-sample semantics, empty outputs) or what has no torch module.
"""

import pytest
import torch
from op_harness import ErrorCase, check_refused, refused

ANY_REFUSAL = ""
"""torch refuses, with a message that depends on its backend (oneDNN, ...)."""

TORCH = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
OVERFLOW = "without overflow|integer out of range"
"""A window argument past a C int: torch 2.13 says the former, 2.6 (netspec's floor) the latter."""
AVG_OVERFLOW = OVERFLOW if TORCH >= (2, 13) else None
"""torch 2.6's average pooling takes a stride past a C int without a word (netspec refuses)."""

CONV = [
    # kernel larger than the input, plain, dilated, and net of padding (7 - 2*1 = 5)
    refused("conv2d", {"out": 8, "kernel": 5}, [3, 4, 4],
            "needs at least 5x5 input but input gives 4x4", "Kernel size can't be greater"),
    refused("conv2d", {"out": 8, "kernel": 3, "dilation": 2}, [3, 4, 4],
            "needs at least 5x5 input but input gives 4x4", "Kernel size can't be greater"),
    refused("conv2d", {"out": 4, "kernel": 7, "padding": 1}, [3, 4, 4],
            "needs at least 5x5 input but input gives 4x4", "Kernel size can't be greater"),
    refused("conv2d", {"out": 4, "kernel": [5, 3]}, [3, 4, 8],
            "needs at least 5x3 input but input gives 4x8", "Kernel size can't be greater"),
    refused("conv1d", {"out": 4, "kernel": 5}, [2, 3],
            "needs at least length 5 input but input gives length 3", "Kernel size can't be greater"),
    # groups must divide both channel counts
    refused("conv2d", {"out": 8, "kernel": 3, "groups": 4}, [6, 8, 8],
            "groups=4 must divide the 6 input channels from input",
            "in_channels must be divisible by groups"),
    refused("conv2d", {"out": 6, "kernel": 3, "groups": 4}, [8, 8, 8],
            "groups=4 must divide out=6", "out_channels must be divisible by groups"),
    refused("conv2d", {"out": 6, "kernel": 3, "stride": 2, "padding": "same"}, [8, 8, 8],
            "padding='same' needs stride 1", "'same' is not supported for strided convolutions"),
    # reflect padding must be smaller than the input, circular at most the input
    refused("conv2d", {"out": 4, "kernel": 3, "padding": 4, "padding_mode": "reflect"}, [3, 4, 4],
            "reflect padding 4x4 must be smaller than the 4x4 input from input",
            "Padding size should be less than the corresponding input dimension"),
    refused("conv1d", {"out": 2, "kernel": 3, "padding": 5, "padding_mode": "circular"}, [1, 4],
            "circular padding 5 must be at most the 4 input from input",
            "wrapping around more than once"),
    # 'same' pads d*(k-1) in total, the odd pixel on the right: 1 + 2 for k=4, so the 2-row
    # input cannot be reflected by 2
    refused("conv2d", {"out": 4, "kernel": 4, "padding": "same", "padding_mode": "reflect"},
            [3, 2, 5], "reflect padding", "Padding size should be less than"),
    refused("conv1d", {"out": 1, "kernel": 4, "dilation": 3, "padding": "same",
                       "padding_mode": "circular"}, [6, 4],
            "circular padding", "wrapping around more than once"),
    # wrong rank, wrong argument length, declared `in`
    refused("conv2d", {"out": 4, "kernel": 3}, [3, 8],
            "conv2d expects a [C,H,W] input but input gives [3,8]", "to have 3 channels"),
    refused("conv1d", {"out": 4, "kernel": 3}, [3, 8, 8],
            "conv1d expects a [C,L] input but input gives [3,8,8]", "Expected 2D .* or 3D"),
    refused("conv2d", {"out": 4, "kernel": 3, "padding": [1, 1, 1]}, [3, 8, 8],
            "`padding` needs one value per spatial dimension (2), found 3",
            "expected padding to be a single integer value or a list of 2 values"),
    refused("conv2d", {"out": 4, "kernel": 3, "in": 4}, [3, 8, 8],
            "`in` says 4 input channels but input gives 3", "to have 4 channels, but got 3"),
]

CONV_TRANSPOSE = [
    # output_padding must be smaller than the stride or the dilation
    refused("conv_transpose2d", {"out": 4, "kernel": 3, "stride": 2, "output_padding": 2},
            [3, 4, 4], "output_padding 2 must be smaller than the stride (2) or the dilation (1)",
            "output padding must be smaller than either stride or dilation"),
    refused("conv_transpose1d", {"out": 2, "kernel": 3, "dilation": 2, "output_padding": 2},
            [3, 5], "output_padding 2 must be smaller than the stride (1) or the dilation (2)",
            "output padding must be smaller than either stride or dilation"),
    # (2 - 1)*1 - 2*3 + (3 - 1) + 1 = -2
    refused("conv_transpose2d", {"out": 4, "kernel": 3, "padding": 3}, [3, 2, 2],
            "padding 3x3 leaves an output of -2x-2 from the 2x2 input of input", ANY_REFUSAL),
    refused("conv_transpose2d", {"out": 3, "kernel": 2, "groups": 2}, [4, 3, 3],
            "groups=2 must divide out=3", "out_channels must be divisible by groups"),
    refused("conv_transpose2d", {"out": 2, "kernel": 2, "in": 5}, [4, 3, 3],
            "`in` says 5 input channels but input gives 4", "to have 5 channels, but got 4"),
    refused("conv_transpose1d", {"out": 2, "kernel": 2}, [4, 3, 3],
            "conv_transpose1d expects a [C,L] input but input gives [4,3,3]", "Expected 2D .* or 3D"),
]

POOL = [
    # avg_pool3d checks the window against the unpadded input (the 2-d pool pads first)
    refused("avgpool3d", {"kernel": [1, 1, 2], "padding": [0, 0, 1]}, [1, 1, 1, 1],
            "the 1x1x1 input from input is smaller than the 1x1x2 window, which torch's "
            "AvgPool3d refuses even with padding", "smaller than kernel size"),
    # torch's pooling kernels keep window arguments in C ints
    refused("maxpool2d", {"kernel": 2, "stride": 2**31}, [1, 5, 5],
            f"stride {2**31:,} is more than torch's MaxPool2d takes", OVERFLOW),
    refused("avgpool2d", {"kernel": 2, "stride": [1, 2**40]}, [1, 5, 5],
            f"stride {2**40:,} is more than torch's AvgPool2d takes", AVG_OVERFLOW),
    refused("avgpool1d", {"kernel": 2, "stride": 2**31}, [1, 5],
            f"stride {2**31:,} is more than torch's AvgPool1d takes", AVG_OVERFLOW),
    refused("maxpool2d", {"kernel": 1, "dilation": 2**31}, [1, 5, 5],
            f"dilation {2**31:,} is more than torch's MaxPool2d takes", OVERFLOW),
    refused("maxpool2d", {"kernel": 5}, [3, 4, 4],
            "needs at least 5x5 input but input gives 4x4", "Output size is too small"),
    # floor mode: (2 - 3)//2 + 1 = 0 (ceil mode would keep one window, see the tables)
    refused("maxpool2d", {"kernel": 3, "stride": 2}, [3, 2, 2],
            "needs at least 3x3 input but input gives 2x2", "Output size is too small"),
    # padding at most kernel // 2 (torch checks the kernel, not its dilated span)
    refused("maxpool2d", {"kernel": 3, "padding": 2}, [3, 8, 8],
            "padding 2 must be at most half the 3-wide window", "pad should be at most half"),
    refused("maxpool2d", {"kernel": 3, "padding": 2, "dilation": 2}, [3, 9, 9],
            "padding 2 must be at most half the 3-wide window",
            "pad should be smaller than or equal to half of kernel size"),
    refused("avgpool1d", {"kernel": 2, "padding": 2}, [1, 8],
            "padding 2 must be at most half the 2-wide window", "pad should be at most half"),
    refused("maxpool2d", {"kernel": 2}, [16],
            "maxpool2d expects a [C,H,W] input but input gives [16]", "3D or 4D"),
    refused("avgpool1d", {"kernel": 2}, [3, 8, 8],
            "avgpool1d expects a [C,L] input but input gives [3,8,8]", "Expected 2 to 3 dimensions"),
    refused("avgpool2d", {"kernel": [2, 2, 2]}, [3, 8, 8],
            "`kernel` needs one value per spatial dimension (2), found 3",
            "kernel_size must either be a single int, or a tuple of two ints"),
    refused("adaptive_maxpool1d", {"size": 1}, [3, 8, 8],
            "adaptive_maxpool1d expects a [C,L] input but input gives [3,8,8]",
            "Expected 2 to 3 dimensions"),
    refused("adaptive_avgpool2d", {"size": [1, 2, 3]}, [3, 8, 8],
            "`size` needs one value per spatial dimension (2), found 3", "output_size must be 2"),
    # torch reads a [B, 10] batch as one unbatched [C, H] image and drops the batch
    refused("adaptive_avgpool2d", {"size": 1}, [10],
            "adaptive_avgpool2d expects a [C,H,W] input but input gives [10]"),
]

NORM = [
    refused("batchnorm2d", {}, [3, 8],
            "batchnorm2d expects a [C,H,W] input but input gives [3,8]", "expected 4D input"),
    refused("batchnorm1d", {}, [3, 8, 8],
            "batchnorm1d expects a [F] or [C,L] input but input gives [3,8,8]",
            "expected 2D or 3D input"),
    refused("batchnorm2d", {"in": 4}, [3, 8, 8],
            "`in` says 4 input channels but input gives 3", "running_mean should contain 3 elements"),
    refused("instancenorm2d", {"affine": True, "in": 4}, [3, 8, 8],
            "`in` says 4 input channels but input gives 3", "to match num_features"),
    # torch reads the batch of [3, 8] as one unbatched [C, H, W] image (with a warning)
    refused("instancenorm2d", {}, [3, 8],
            "instancenorm2d expects a [C,H,W] input but input gives [3,8]"),
    refused("groupnorm", {"groups": 3}, [64, 8, 8],
            "groups=3 must divide the 64 channels from input",
            r"num_channels (\(64\) )?must be divisible by num_groups"),
    refused("layernorm", {"shape": [7, 8]}, [3, 8, 8],
            "normalises the trailing [7,8] but input gives [3,8,8]",
            r"Given normalized_shape=\[7, 8\]"),
    refused("layernorm", {"shape": [4, 8]}, [8],
            "normalises the trailing [4,8] but input gives [8]", r"Given normalized_shape=\[4, 8\]"),
    # more trailing dims than a sample has would normalise over the batch (torch accepts
    # LayerNorm([B, 3, 8, 8]) and mixes samples; there is no per-sample equivalent)
    refused("layernorm", {"dims": 4}, [3, 8, 8], "[3,8,8]"),
    refused("layernorm", {"shape": []}, [8], "`shape` needs at least 1 item",
            "normalized_shape to be at least 1-dimensional"),
    refused("layernorm", {"dims": 2}, [8], "[8]"),
    refused("rmsnorm", {"shape": [7, 8]}, [3, 8, 8],
            "normalises the trailing [7,8] but input gives [3,8,8]",
            r"Expected normalized_shape to match the trailing dims|normalized_shape=\[7, 8\]"),
    # `shape` silently wins over `dims` (upsample refuses `scale` with `size` alike)
    refused("layernorm", {"dims": 2, "shape": [8]}, [3, 8, 8], "`dims`"),
]

ACTIVATION = [
    refused("softmax", {"dim": 4}, [3, 8, 8],
            "`dim` 4 is out of range for a 4-d tensor (batch + [3,8,8])", "Dimension out of range"),
    refused("log_softmax", {"dim": -3}, [10],
            "`dim` -3 is out of range for a 2-d tensor (batch + [10])", "Dimension out of range"),
    # torch would normalise across the batch: netspec refuses, layers work per sample
    refused("softmax", {"dim": 0}, [10], "`dim` 0 is the batch dimension"),
    refused("gelu", {"approximate": "fast"}, [10],
            "`approximate` must be 'none' or 'tanh', found 'fast'",
            "approximate argument must be either none or tanh"),
    refused("dropout", {"p": 1.5}, [10], "`p`", "dropout probability has to be between 0 and 1"),
    refused("glu", {}, [4, 7], "glu halves dim -1 (7) of [4,7] from input: it must be even",
            "Halving dimension must be even"),
    # torch warns and treats a [B, C, L] batch as an unbatched [C, H, W] image
    refused("dropout2d", {}, [16, 4], "dropout2d expects a [C,H,W] input but input gives [16,4]"),
    refused("channel_shuffle", {"groups": 4}, [6, 3, 3], "4 groups do not divide the 6 channels",
            "Number of channels must be divisible by groups"),
    refused("pixel_shuffle", {"factor": 2}, [6, 3, 3], "factor 2 needs channels in multiples of 4",
            "divisible by the square of upscale_factor"),
    refused("pixel_unshuffle", {"factor": 2}, [3, 6, 5], "factor 2 does not divide the 6x5 input",
            "divisible by downscale_factor"),
]

FLATTEN_LINEAR = [
    refused("flatten", {"start_dim": 3, "end_dim": 1}, [3, 4, 5],
            "start_dim 3 comes after end_dim 1", "start_dim cannot come after end_dim"),
    refused("flatten", {"start_dim": 5}, [3, 4],
            "`start_dim` 5 is out of range for a 3-d tensor (batch + [3,4])",
            "Dimension out of range"),
    refused("flatten", {"start_dim": 0}, [3, 4], "`start_dim` 0 is the batch dimension"),
    refused("linear", {"out": 10, "in": 100}, [84],
            "`in` says 100 input features but input gives 84", "cannot be multiplied"),
]

CONV_TRANSPOSE_SIZE = [
    refused("conv_transpose2d", {"out": 4, "kernel": 3, "stride": 2, "padding": 1,
                                 "output_size": [15, 12]}, [8, 7, 7],
            "output_size 15x12 is out of reach from the 7x7 input: each size lies from 13x13 "
            "to 14x14", r"requested an output size of \[15, 12\], but valid sizes range"),
    refused("conv_transpose2d", {"out": 4, "kernel": 2, "stride": 2, "output_padding": 1,
                                 "output_size": 14}, [8, 7, 7],
            "give `output_size` or `output_padding`, not both"),
]

REARRANGE = [
    refused("permute", {"dims": [0, 1, 1]}, [3, 4], "`dims` [0, 1, 1] is not an order of the 3 dims",
            "duplicate dims are not allowed"),
    refused("permute", {"dims": [1, 0, 2]}, [3, 4], "moves the batch dimension; it stays first"),
    refused("reshape", {"shape": [5, -1]}, [3, 4], "cannot hold the 12 values",
            "invalid for input of size"),
    refused("reshape", {"shape": [5, 2]}, [3, 4], "`shape` [5, 2] holds 10 values, [3,4] from "
            "input has 12", "invalid for input of size"),
    refused("unflatten", {"dim": 1, "sizes": [5, -1]}, [12], "cannot hold the 12 values",
            "don't multiply up to the size of dim"),
    refused("slice", {"dim": 1, "start": 5, "end": 2}, [8], "keeps nothing of dim 1 (8)"),
    refused("select", {"dim": 1, "index": 9}, [8, 3], "index 9 is out of range for dim 1 (8)",
            "out of range"),
    refused("select", {"dim": 0, "index": 0}, [8, 3], "`dim` 0 is the batch dimension"),
    refused("transpose", {"dim0": 0, "dim1": 2}, [3, 4], "`dim0` 0 is the batch dimension"),
    refused("transpose", {"dim0": 1, "dim1": 4}, [3, 4],
            "`dim1` 4 is out of range for a 3-d tensor (batch + [3,4])", "Dimension out of range"),
    # torch.chunk returns 3 pieces of 2 here: a fourth would be missing
    refused("chunk", {"chunks": 4, "index": 3}, [6, 3], "makes 3 chunks of 2, not 4",
            "tuple index out of range"),
    refused("chunk", {"chunks": 2, "index": -3}, [6], "index -3 is out of range for 2 pieces",
            "tuple index out of range"),
    refused("split", {"sizes": [2, 3]}, [6, 2], "`sizes` [2, 3] add up to 5, dim 1 (6)",
            "split_with_sizes expects split_sizes to sum exactly to 6"),
]

UPSAMPLE = [
    refused("upsample", {"scale": 2, "size": 4}, [3, 8, 8],
            "give one of `scale` and `size`, not both", "only one of size or scale_factor"),
    refused("upsample", {"mode": "bilinear"}, [3, 8, 8],
            "needs a `scale`, a `size`, or a second input to take the size from",
            "either size or scale_factor"),
    refused("upsample", {"scale": 2}, [[3, 4, 4], [3, 8, 8]],
            "takes its size from its second input: give no `scale` or `size` as well"),
    refused("upsample", {"scale": 2, "mode": "bilinear"}, [3, 8],
            "upsample expects a [C,H,W] input but input gives [3,8]", "bilinear mode needs 4D"),
    refused("upsample", {"scale": [2, 2, 2]}, [3, 8, 8],
            "`scale` needs 2 values, found 3", "same number of spatial dimensions"),
    refused("upsample", {"size": [2, 2, 2]}, [3, 8, 8],
            "`size` needs one value per spatial dimension (2), found 3",
            "same number of spatial dimensions"),
    refused("upsample", {"scale": 2, "align_corners": True}, [3, 8, 8],
            "`align_corners` applies to linear, bilinear and bicubic modes only",
            "align_corners option can only be set with the interpolating modes"),
    # floor(4 * 0.1) = 0: torch returns an empty tensor
    refused("upsample", {"scale": 0.1}, [3, 4, 4], "shrinks the 4x4 input from input to 0x0"),
]

ZEROPAD = [
    # W: 4 - 3 - 3 = -2
    refused("zeropad2d", {"padding": [-3, -3, 0, 0]}, [3, 4, 4],
            "crops away all of the 4x4 input from input", "length must be non-negative"),
    # W: 4 - 2 - 2 = 0; torch returns an empty tensor
    refused("zeropad2d", {"padding": [-2, -2, 0, 0]}, [3, 4, 4],
            "crops away all of the 4x4 input from input"),
    # torch's ZeroPad2d pads only W with a pair; netspec wants 1 or 4 values
    refused("zeropad2d", {"padding": [1, 2]}, [3, 8, 8],
            "`padding` is one integer or 4 values (left, right, top, bottom), found 2 values"),
    refused("zeropad1d", {"padding": 1}, [3, 8, 8],
            "zeropad1d expects a [C,L] input but input gives [3,8,8]"),
    # torch crops before it pads: cropping 2 of a 1-long input fails even though the total
    # 1 - 2 + 2 = 1 is positive
    refused("zeropad1d", {"padding": [-2, 2]}, [1, 1], "crops", "length must be non-negative"),
    refused("zeropad2d", {"padding": [0, 0, 3, -5]}, [2, 4, 3], "crops",
            "length must be non-negative"),
]

# center_crop compiles to slicing, which never refuses: no torch column
CENTER_CROP = [
    refused("center_crop", {"size": 10}, [3, 8, 8],
            "cannot crop the 8x8 input from input to a larger 10x10"),
    refused("center_crop", {}, [[3, 8, 8], [3, 9, 9]],
            "cannot crop the 8x8 input from a to a larger 9x9"),
    refused("center_crop", {}, [[3, 8, 8], [3, 8]],
            "center_crop expects a [C,H,W] input but b gives [3,8]"),
    refused("center_crop", {}, [3, 8, 8], "needs a `size` or a second input"),
    refused("center_crop", {"size": [2, 2, 2]}, [3, 8, 8],
            "`size` needs one value per spatial dimension (2), found 3"),
]

MERGE = [
    refused("add", {}, [[64, 28, 28], [32, 28, 28]],
            "add of [64,28,28] and [32,28,28] differs in C (64 vs 32)",
            "must match the size of tensor b"),
    refused("add", {}, [[3, 8, 8], [3, 8, 8], [4, 8, 8]],
            "add of [3,8,8] and [4,8,8] differs in C (3 vs 4)", "must match the size of tensor b"),
    refused("mul", {}, [[3, 8, 8], [3, 8, 7]],
            "mul of [3,8,8] and [3,8,7] differs in W (8 vs 7)", "must match the size of tensor b"),
    refused("concat", {}, [[16, 28, 28], [8, 27, 28]],
            "concat of [16,28,28] and [8,27,28] differs in H (28 vs 27)",
            "Sizes of tensors must match except in dimension 1"),
    refused("concat", {}, [[1, 4, 4], [1, 4, 4], [1, 4, 5]],
            "differs in W (4 vs 5); inputs: a and c",
            "Sizes of tensors must match except in dimension 1"),
    refused("concat", {}, [[3, 8, 8], [3, 8]],
            "concat of [3,8,8] and [3,8] mixes ranks", "must have same number of dimensions"),
    refused("concat", {"dim": 0}, [[3, 8, 8], [3, 8, 8]], "`dim` 0 is the batch dimension"),
    refused("matmul", {}, [[5, 3], [4, 7]], "matmul of [5,3] and [4,7]: a has 3 columns, b 4 rows",
            "Expected size for first two dimensions of batch2 tensor"),
    refused("matmul", {}, [[2, 5, 3], [4, 3, 7]], "leading dims 2 and 4 do not broadcast",
            "must match the size of tensor"),
    refused("matmul", {}, [[5], [5, 3]], "matmul multiplies matrices, but a gives [5]"),
    refused("add", {}, [3, 8, 8], "add needs at least 2 inputs, found 1"),
    # per-sample shapes of different ranks: batched, torch aligns the batch dim of the
    # shorter with a per-sample dim of the longer ([2,4,8,8] + [2,8] fails)
    refused("add", {}, [[4, 8, 8], [8]], "[4,8,8] and [8]", "must match the size of tensor b"),
    refused("mul", {}, [[3, 3, 2], [1]], "[3,3,2] and [1]", "must match the size of tensor b"),
]

TOKENS = [
    refused("embedding", {"vocab": 10, "dim": 4}, [5],
            "`vocab` 10 is smaller than the vocabulary of input (100)", "index out of range",
            vocab=100),
    refused("embedding", {"vocab": 10, "dim": 4}, [5],
            "embedding looks up token ids, but input gives float values", "'indices'"),
    refused("embedding", {"vocab": 10, "dim": 4, "padding_idx": 10}, [5],
            "`padding_idx` 10 is not an id of the 10-token vocabulary",
            "Padding_idx must be within num_embeddings", vocab=10),
    refused("linear", {"out": 4}, [5], "linear computes on float values, but input holds "
            "token ids (vocabulary 100)", "same dtype", vocab=100),
    refused("sinusoidal_positions", {}, [9], "token ids have no width: give `dim`", vocab=50),
    refused("sinusoidal_positions", {"dim": 7}, [9, 4], "but `dim` is 7"),
    refused("sinusoidal_positions", {}, [9], "sinusoidal_positions reads a sequence [T, D] or "
            "token ids [T], but input gives [9]"),
    # torch applies relu to integers; netspec refuses ids for every op that computes
    refused("relu", {}, [5], "relu computes on float values", vocab=100),
]

ATTENTION = [
    refused("multihead_attention", {"heads": 5}, [10, 32],
            "`heads` 5 does not divide the 32 features of input",
            "embed_dim must be divisible by num_heads"),
    refused("multihead_attention", {"heads": 4, "kv_heads": 3}, [10, 32],
            "`kv_heads` 3 does not divide `heads` 4"),
    refused("multihead_attention", {"heads": 2}, [32],
            "multihead_attention takes sequences [T, D] (or [*B, T, D]), but input gives [32]"),
    refused("multihead_attention", {"heads": 2, "causal": True}, [[6, 8], [5, 8]],
            "`causal` masks a sequence attending to itself"),
    refused("multihead_attention", {"heads": 2, "head_dim": 3, "rotary": True}, [6, 8],
            "rotary embeddings rotate pairs of features, but `head_dim` is 3"),
    refused("multihead_attention", {"heads": 2}, [[3, 6, 8], [2, 5, 8]],
            "their leading dims differ"),
    refused("multihead_attention", {"heads": 2, "state_dict": "torch"}, [[6, 8], [5, 8]],
            "`state_dict: torch` holds nn.MultiheadAttention's packed in_proj, one projection "
            "of one input: self-attention only"),
]

WINDOW_ATTENTION = [
    refused("window_attention", {"heads": 3, "window": 4}, [8, 8, 8],
            "`heads` 3 does not divide the 8 features of input"),
    refused("window_attention", {"heads": 2, "window": 4, "shift": 4}, [8, 8, 8],
            "`shift` [4, 4] must be smaller than the window [4, 4]"),
    refused("window_attention", {"heads": 2}, [8, 8],
            "window_attention reads a map of vectors [H, W, C], but input gives [8,8]"),
    refused("window_attention", {"heads": 2, "window": [2, 2, 2]}, [8, 8, 8],
            "`window` needs one value per spatial dimension (2), found 3"),
]

RELATIVE_ATTENTION = [
    refused("relative_attention", {"heads": 3}, [2, 16, 8],
            "`heads` 3 does not divide the 8 features of input"),
    refused("relative_attention", {"heads": 2}, [2, 12, 8],
            "the 12 tokens of a partition of input are not a square s x s"),
    refused("relative_attention", {"heads": 2}, [16, 8],
            "relative_attention reads partitions of tokens [G, P, D] (or [*G, P, D]), but "
            "input gives [16,8]"),
]

TABLES = [*CONV, *CONV_TRANSPOSE, *CONV_TRANSPOSE_SIZE, *POOL, *NORM, *ACTIVATION, *FLATTEN_LINEAR,
          *REARRANGE, *UPSAMPLE,
          *ZEROPAD, *CENTER_CROP, *MERGE, *TOKENS, *ATTENTION, *WINDOW_ATTENTION,
          *RELATIVE_ATTENTION]


@pytest.mark.parametrize("case", TABLES)
def test_op_refuses(case: ErrorCase) -> None:
    check_refused(case)


# -- op names that are not ops --------------------------------------------------------------

def unknown_op_hint_for(word: str) -> str:
    import netspec

    report = netspec.diagnose({"input": [3, 8, 8], "layers": [word]})[2]
    (error,) = report
    assert error.message == f"unknown op `{word}`"
    return error.hint


@pytest.mark.parametrize(("word", "same_function"), [
    ("swish", torch.nn.SiLU), ("hswish", torch.nn.Hardswish), ("hard_sigmoid", torch.nn.Hardsigmoid),
    ("hsigmoid", torch.nn.Hardsigmoid), ("dense", torch.nn.Linear), ("lrelu", torch.nn.LeakyReLU),
])
def test_another_framework_s_name_is_answered_with_the_same_function(word, same_function) -> None:
    from netspec.ops import OPS

    hint = unknown_op_hint_for(word)
    named = hint.removeprefix("netspec calls it `").removesuffix("`")
    assert OPS[named].torch_class == same_function.__name__


@pytest.mark.parametrize("word", ["conv", "batchnorm", "bn", "maxpool", "deconv"])
def test_a_family_name_lists_its_members_by_rank(word) -> None:
    hint = unknown_op_hint_for(word)
    members = [m.strip("`") for m in hint.removeprefix("use ").split(", by")[0]
               .replace(" or ", ", ").split(", ")]
    assert [m[-2:] for m in members] == ["1d", "2d", "3d"] and hint.endswith("by the input's rank")


def test_a_near_spelling_says_what_the_op_computes() -> None:
    """A spelling neighbour may be another function (`sigmod` is sigmoid, `hardsigmid` is not):
    the hint shows what the suggested op computes, so the reader can tell."""
    assert unknown_op_hint_for("sigmod") == "did you mean `sigmoid` (1 / (1 + exp(-x)))?"
    assert unknown_op_hint_for("hardsigmid") == "did you mean `hardsigmoid` (relu6(x + 3) / 6)?"
