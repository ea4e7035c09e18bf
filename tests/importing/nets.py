"""Small torch models for tests/test_import.py, named as `importing.nets:Net(width=8)`."""

from __future__ import annotations

import torch
from torch import nn


class Net(nn.Module):
    """conv, norm, relu twice (one Sequential per stage), pooled to `classes` logits."""

    def __init__(self, width: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.stages = nn.Sequential(*(nn.Sequential(nn.Conv2d(3 if k == 0 else width, width, 3, padding=1),
                                                    nn.BatchNorm2d(width), nn.ReLU())
                                      for k in range(2)))
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(self.stages(x), 1), 1))


class Swapped(nn.Module):
    """A conv, then a cumulative sum over channels as a Tensor method (`x.cumsum(1)`): no
    netspec op is read from it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).cumsum(1)


class Means(nn.Module):
    """Means over every spatial dim, as MNASNet's head and squeeze-excitation take them:
    `x.mean([2, 3])` and `torch.mean(x, (-2, -1), keepdim=True)`."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        y = y * torch.mean(y, (-2, -1), keepdim=True)
        return self.fc(y.mean([2, 3]))


class Reordered(nn.Module):
    """Dims moved by functions and Tensor methods, as ConvNeXt and Swin move them: a linear
    layer over channels of an NHWC view, and back."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(torch.permute(x, [0, 2, 3, 1]))  # (N, H, W, 4)
        return y.permute(0, 3, 1, 2).transpose(2, 3)  # (N, 4, W, H)


class Residual(nn.Module):
    """A residual branch under torchvision's StochasticDepth (EfficientNet's), imported as
    drop_path: the identity in eval, whole samples dropped in training."""

    def __init__(self, p: float = 0.25, mode: str = "row") -> None:
        super().__init__()
        from torchvision.ops import StochasticDepth

        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.drop = StochasticDepth(p, mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.conv(x))


class Dense(nn.Module):
    """DenseNet's pattern: each conv reads the concatenation of all the maps before it, the
    first a list of one (`torch.cat([x], 1)`: x itself). With `listed`, the convs sit in an
    nn.ModuleList called between the root's concatenations: a block cannot hold them."""

    def __init__(self, listed: bool = False) -> None:
        super().__init__()
        convs = [nn.Conv2d(3 + 2 * k, 2, 3, padding=1) for k in range(3)]
        if listed:
            self.convs = nn.ModuleList(convs)
        else:
            for k, conv in enumerate(convs):
                self.add_module(f"conv{k}", conv)
        self.listed = listed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = [x]
        for conv in self.convs if self.listed else (self.conv0, self.conv1, self.conv2):
            maps.append(conv(torch.cat(maps, 1)))
        return torch.cat(maps, 1)


class Stack(nn.Module):
    """Convs in an nn.ModuleList run in a loop (its own forward never runs): their keys are
    `blocks.0.weight`, ..."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Conv2d(3, 3, 3, padding=1) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class Halves(nn.Module):
    """ShuffleNetV2's split: channels cut in two by `x.chunk(2, dim=1)`, one half convolved,
    the halves concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept, changed = x.chunk(2, dim=1)
        return torch.cat((kept, self.conv(changed)), dim=1)


class ChannelNorm(nn.LayerNorm):
    """A LayerNorm over the channels of a CxHxW map, its own tensors passed to F.layer_norm
    between two permutes (torchvision's LayerNorm2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Scaled(nn.Module):
    """A conv, a ChannelNorm and a residual branch scaled by a tensor of its own
    (ConvNeXt's layer_scale), in a Sequential so that the norm's keys are `body.1.weight`."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), ChannelNorm(4))
        self.layer_scale = nn.Parameter(torch.full((4, 1, 1), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return y + self.layer_scale * torch.relu(y)


class Windowed(nn.Module):
    """torchvision's ShiftedWindowAttention (a module netspec reads whole; `dropout` on
    its output, which window_attention has not) over a conv's map, channels last, and one
    StochasticDepth called twice (a scope per call)."""

    def __init__(self, dropout: float = 0.0) -> None:
        from torchvision.models.swin_transformer import ShiftedWindowAttention
        from torchvision.ops import StochasticDepth

        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)
        self.attn = ShiftedWindowAttention(8, [4, 4], [2, 2], 2, dropout=dropout)
        self.drop = StochasticDepth(0.1, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).permute(0, 2, 3, 1)
        x = x + self.drop(self.attn(x))
        return x + self.drop(torch.relu(x))


class Partitioned(nn.Module):
    """torchvision's RelativePositionalMultiHeadAttention (MaxViT's, a module netspec reads
    whole: feat_dim 16, head_dim 8, partitions of 2 x 2) over a linear's partitions
    [G, 4, 16]."""

    def __init__(self) -> None:
        from torchvision.models.maxvit import RelativePositionalMultiHeadAttention

        super().__init__()
        self.proj = nn.Linear(6, 16)
        self.attn = RelativePositionalMultiHeadAttention(16, 8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(self.proj(x))


def corners(x: torch.Tensor) -> torch.Tensor:
    """Even rows' even columns beside odd rows' odd columns, the map padded to even sizes
    first: sizes read off `x.shape` (torchvision's _patch_merging_pad)."""
    height, width = x.shape[-2:]
    x = nn.functional.pad(x, (0, width % 2, 0, height % 2))
    return torch.cat([x[..., 0::2, 0::2], x[:, :, 1::2, 1::2]], 1)


torch.fx.wrap("corners")


class Corners(nn.Module):
    """A conv, then `corners` (a function fx keeps whole) under a check of the rank."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch._assert(x.dim() == 4, "a batch of maps")
        return corners(self.conv(x))


class Tokens(nn.Module):
    """ViT's idioms: patches reshaped by the batch size read off the input, a class token
    expanded to the batch and put first, a position embedding added, token 0 classified."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 4, stride=4)
        self.class_token = nn.Parameter(torch.zeros(1, 1, 8))
        self.pos_embedding = nn.Parameter(torch.zeros(1, 5, 8))
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        torch._assert(h == w, "square images")
        x = self.patch(x).reshape(n, 8, (h // 4) * (w // 4)).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1) + self.pos_embedding
        return self.head(x[:, 0])


class Attending(nn.Module):
    """torch's nn.MultiheadAttention over tokens [T, 8]: self-attention whose weights are
    unread (returned by default, `need_weights`), or sequences first (`batch_first` False),
    or masked (`key_padding_mask`: the tokens of negative sums; `causal`: an `attn_mask`,
    which fx makes a constant tensor), which netspec does not read."""

    def __init__(self, batch_first: bool = True, masked: bool = False, bias: bool = True,
                 causal: bool = False) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(8)
        self.attn = nn.MultiheadAttention(8, 2, bias=bias, batch_first=batch_first)
        self.masked, self.causal = masked, causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(x)
        mask = x.sum(-1) < 0 if self.masked else None
        causal = nn.Transformer.generate_square_subsequent_mask(6) if self.causal else None
        y, _ = self.attn(y, y, y, key_padding_mask=mask, attn_mask=causal)
        return x + y


class Auxiliary(nn.Module):
    """A classifier with an auxiliary head that, as Inception's and GoogLeNet's, runs in
    training only: eval returns the logits, training `(logits, aux)`; `stddev` is set on
    the head as Inception sets it for its weight init."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.aux = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5),
                                 nn.Linear(4, 2))
        self.head = nn.Linear(4, 3)
        self.head.stddev = 0.01  # type: ignore[assignment]

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = self.stem(x)
        aux = self.aux(x) if self.training else None
        logits = self.head(torch.flatten(nn.functional.adaptive_max_pool2d(x, 1), 1))
        return (logits, aux) if self.training else logits


class Swapping(nn.Module):
    """torch.swapaxes, an alias of torch.transpose (MaxViT's SwapAxes), around a linear
    layer over channels."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.swapaxes(self.fc(torch.swapaxes(x, 1, -1)), -1, 1)


class Shuffled(nn.Module):
    """Channels cut by `torch.split` into unequal pieces, one upsampled by a transposed conv
    and pooled back, ShuffleNetV2's channel shuffle written out (a view to groups, a
    transpose, a view back), then a GELU and a softmax over channels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.up = nn.ConvTranspose2d(4, 2, 2, stride=2)
        self.down = nn.MaxPool2d(2)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.split(self.conv(x), [2, 4], dim=1)
        y = torch.cat([a, self.down(self.up(b))], 1)  # (N, 4, H, W)
        n, c, h, w = y.shape
        y = y.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return torch.softmax(self.act(y), dim=1)


class Thirds(nn.Module):
    """Channels cut into pieces of a given length by `x.split(2, dim=1)` (the last shorter)
    and concatenated in another order."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b, c = x.split(2, dim=1)
        return torch.cat([c, a, b], 1)
