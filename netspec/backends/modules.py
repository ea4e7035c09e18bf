"""Modules compiled specs use for ops that torch.nn has no class for. Imports torch: only
the torch backend (and modules it builds) import this. The Python export copies a class it
uses into its file, so both compute the very same thing."""

from __future__ import annotations

import torch
from torch import nn


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016), per sample: in training each sample's whole
    input is zeroed with probability `p` and the others scaled by 1 / (1 - p); the identity
    in eval. torchvision's StochasticDepth(p, "row") computes the same."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        noise = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        if keep > 0.0:
            noise.div_(keep)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LearnedTensor(nn.Module):
    """A learned tensor of per-sample shape `shape` (a class token, a position embedding, a
    layer scale), zeros until initialised, held as `weight` of shape (1, *shape). `forward(x)`
    reads `x` only for its batch size N and returns the tensor repeated to (N, *shape):
    every sample has the same values, and gradients add up in `weight`."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.weight = nn.Parameter(torch.zeros(1, *self.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A tensor of its own, not a view: a layer after it may work in place (an expanded
        # view refuses that), and a view of a parameter under no_grad makes torch's module
        # tracker (FlopCounterMode) fail with "Expected gradient function to be set".
        return self.weight.repeat(x.shape[0], *(1,) * len(self.shape))

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Attention(nn.Module):
    """Multi-head attention with its projections: queries from `x` [*B, T, dim], keys and
    values from `context` [*B, S, context_dim] (`x` itself when `context_dim` is None, then
    through one packed projection `qkv`, as GPT-2's c_attn and torch's MultiheadAttention
    in_proj hold them: queries, keys, values in that order). `heads` query heads of
    `head_dim` features share `kv_heads` key and value heads (grouped-query attention when
    fewer: repeated for their query heads, which every torch version and ONNX exporter
    takes, rather than SDPA's `enable_gqa`); rotary position embeddings rotate queries and
    keys when `rotary_base` is set. F.scaled_dot_product_attention computes the heads;
    `out` projects them to [*B, T, out].

    With `torch_keys` (self-attention only), its tensors are held under torch's
    nn.MultiheadAttention's `state_dict` keys: the packed projection as `in_proj_weight` and
    `in_proj_bias`, the output projection as `out_proj`; the same tensors, computing the same.
    """

    def __init__(self, dim: int, heads: int, head_dim: int, kv_heads: int, out: int,
                 causal: bool = False, dropout: float = 0.0, bias: bool = True,
                 rotary_base: float | None = None, context_dim: int | None = None,
                 torch_keys: bool = False) -> None:
        super().__init__()
        self.heads, self.head_dim, self.kv_heads = heads, head_dim, kv_heads
        self.causal, self.dropout, self.rotary_base = causal, dropout, rotary_base
        self.torch_keys = torch_keys
        queries, keys = heads * head_dim, kv_heads * head_dim
        if torch_keys:  # a Linear's tensors, initialised as netspec's `qkv`, under torch's keys
            packed = nn.Linear(dim, queries + 2 * keys, bias=bias)
            self.in_proj_weight = packed.weight
            self.register_parameter("in_proj_bias", packed.bias)
            self.out_proj = nn.Linear(queries, out, bias=bias)
            return
        if context_dim is None:
            self.qkv = nn.Linear(dim, queries + 2 * keys, bias=bias)
        else:
            self.q = nn.Linear(dim, queries, bias=bias)
            self.kv = nn.Linear(context_dim, 2 * keys, bias=bias)
        self.out = nn.Linear(queries, out, bias=bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        # One expression: the heads' output and the projections' are freed as soon as
        # nothing but autograd needs them (not held by locals through the output projection).
        out = self.out_proj if self.torch_keys else self.out
        return out(self._attend(x, context).transpose(-3, -2).flatten(-2))

    def _attend(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """The heads' output, [*B, heads, T, head_dim]."""
        keys = self.kv_heads * self.head_dim
        if context is None:
            packed = nn.functional.linear(x, self.in_proj_weight, self.in_proj_bias) \
                if self.torch_keys else self.qkv(x)
            q, k, v = packed.split([self.heads * self.head_dim, keys, keys], dim=-1)
        else:
            q = self.q(x)
            k, v = self.kv(context).split([keys, keys], dim=-1)
        q, k, v = (self._split_heads(t, n) for t, n in ((q, self.heads), (k, self.kv_heads),
                                                         (v, self.kv_heads)))
        if self.rotary_base is not None:
            q, k = self._rotate(q), self._rotate(k)
        if self.kv_heads != self.heads:  # each key/value head serves heads/kv_heads queries
            k, v = (t.repeat_interleave(self.heads // self.kv_heads, dim=-3) for t in (k, v))
        return nn.functional.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=self.causal)

    def _split_heads(self, t: torch.Tensor, heads: int) -> torch.Tensor:
        """[*B, T, heads * head_dim] -> [*B, heads, T, head_dim]."""
        return t.unflatten(-1, (heads, self.head_dim)).transpose(-3, -2)

    def _rotate(self, t: torch.Tensor) -> torch.Tensor:
        """Rotary embedding of [*B, heads, T, d]: position p turns the feature pairs
        (i, i + d/2) by the angle p * base^(-2i/d)."""
        half = t.shape[-1] // 2
        rates = self.rotary_base ** (-torch.arange(half, device=t.device, dtype=torch.float32)
                                     / half)
        angles = torch.arange(t.shape[-2], device=t.device, dtype=torch.float32)[:, None] * rates
        cos, sin = angles.cos().to(t.dtype), angles.sin().to(t.dtype)
        first, second = t[..., :half], t[..., half:]
        return torch.cat([first * cos - second * sin, second * cos + first * sin], dim=-1)

    def extra_repr(self) -> str:
        extras = [f"heads={self.heads}", f"head_dim={self.head_dim}"]
        if self.kv_heads != self.heads:
            extras.append(f"kv_heads={self.kv_heads}")
        if self.causal:
            extras.append("causal=True")
        if self.rotary_base is not None:
            extras.append(f"rotary_base={self.rotary_base}")
        if self.torch_keys:
            extras.append("torch_keys=True")
        return ", ".join(extras)


class SinusoidalPositions(nn.Module):
    """The fixed position table of Vaswani et al. 2017, (N, length, dim) for any input of
    batch N: feature 2i of position p is sin(p / base^(2i/dim)), feature 2i+1 its cosine.
    Computed in forward: no parameters, no buffers, nothing in the state dict."""

    def __init__(self, length: int, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.length, self.dim, self.base = length, dim, base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(self.length, device=x.device, dtype=torch.float32)[:, None]
        rates = self.base ** (-torch.arange(0, self.dim, 2, device=x.device,
                                            dtype=torch.float32) / self.dim)
        angles = positions * rates
        table = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)
        return table.repeat(x.shape[0], 1, 1)  # its own memory: later layers may work in place

    def extra_repr(self) -> str:
        return f"length={self.length}, dim={self.dim}, base={self.base}"


class WindowAttention(nn.Module):
    """Swin's window attention over [N, H, W, dim] (Liu et al. 2021): the map padded to
    whole windows and, with `shift`, rolled up and left (no roll along a dim one window
    covers); heads attend within each window of wh x ww tokens, their scores biased by a
    learned table indexed by relative position (`relative_position_bias_table`, indexed by
    the `relative_position_index` buffer) and, after a roll, masked by -100 between tokens
    that came from different regions of the map; then rolled back and cropped. The state
    is torchvision's ShiftedWindowAttention's, key for key."""

    def __init__(self, dim: int, heads: int, window: tuple[int, int], shift: tuple[int, int],
                 dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        self.heads, self.window, self.shift, self.dropout = heads, tuple(window), tuple(shift), dropout
        wh, ww = self.window
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * wh - 1) * (2 * ww - 1), heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        rows, cols = torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")
        rows, cols = rows.flatten(), cols.flatten()
        index = ((rows[:, None] - rows[None, :] + wh - 1) * (2 * ww - 1)
                 + cols[:, None] - cols[None, :] + ww - 1)
        self.register_buffer("relative_position_index", index.flatten())
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.proj = nn.Linear(dim, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, dim = x.shape
        (wh, ww) = self.window
        padded = (height + -height % wh, width + -width % ww)
        shift = [s if w < n else 0 for s, w, n in zip(self.shift, self.window, padded, strict=True)]
        # One expression: the shifted map, its windows and the heads' output are freed as
        # soon as nothing but autograd needs them (not held by locals to the end).
        y = self.proj(self._attend(self._windows(self._placed(x, shift)), padded, shift)
                      .transpose(-3, -2).flatten(-2))  # [N, windows, wh*ww, dim]
        y = y.view(batch, padded[0] // wh, padded[1] // ww, wh, ww, dim).transpose(2, 3)
        y = y.reshape(batch, *padded, dim)
        if any(shift):
            y = torch.roll(y, (shift[0], shift[1]), dims=(1, 2))
        return y[:, :height, :width]

    def _placed(self, x: torch.Tensor, shift: list[int]) -> torch.Tensor:
        """[N, H, W, C] padded to whole windows, rolled back by `shift`."""
        (height, width), (wh, ww) = x.shape[1:3], self.window
        x = nn.functional.pad(x, (0, 0, 0, -width % ww, 0, -height % wh))
        return torch.roll(x, (-shift[0], -shift[1]), dims=(1, 2)) if any(shift) else x

    def _attend(self, windows: torch.Tensor, padded: tuple[int, int], shift: list[int]
                ) -> torch.Tensor:
        """The heads' output over [N, windows, wh*ww, C]: [N, windows, heads, wh*ww, C/heads]."""
        tokens = self.window[0] * self.window[1]
        q, k, v = self.qkv(windows).unflatten(-1, (3, self.heads, -1)).permute(3, 0, 1, 4, 2, 5)
        bias = self.relative_position_bias_table[self.relative_position_index]
        mask = bias.view(tokens, tokens, self.heads).permute(2, 0, 1)  # [heads, t, t]
        if any(shift):
            mask = mask + self._regions_mask(padded, shift, windows.device).to(mask.dtype)[:, None]
        return nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=mask.to(q.dtype), dropout_p=self.dropout if self.training else 0.0)

    def _windows(self, x: torch.Tensor) -> torch.Tensor:
        """[N, H, W, C] with H, W whole windows -> [N, windows, wh*ww, C], row by row."""
        (wh, ww), (batch, height, width, dim) = self.window, x.shape
        x = x.view(batch, height // wh, wh, width // ww, ww, dim).transpose(2, 3)
        return x.reshape(batch, -1, wh * ww, dim)

    def _regions_mask(self, padded: torch.Size, shift: list[int],
                      device: torch.device) -> torch.Tensor:
        """[windows, wh*ww, wh*ww]: -100 between tokens of a window that the roll brought
        from different regions of the map (along a rolled dim: the last `shift` rows, the
        window before them, and the rest), 0 elsewhere."""
        def regions(size: int, window: int, step: int) -> torch.Tensor:
            at = torch.arange(size, device=device)
            return (at >= size - window).long() + (at >= size - step).long() if step else at * 0

        label = regions(padded[0], self.window[0], shift[0])[:, None] * 3 + \
            regions(padded[1], self.window[1], shift[1])[None, :]
        label = self._windows(label[None, :, :, None])[0, :, :, 0]  # [windows, wh*ww]
        return (label[:, None, :] != label[:, :, None]).float() * -100.0

    def extra_repr(self) -> str:
        return f"heads={self.heads}, window={self.window}, shift={self.shift}"


class RelativeAttention(nn.Module):
    """MaxViT's relative-position self-attention (Tu et al. 2022) over partitions already
    cut, [N, *G, P, dim] -> [N, *G, P, dim] with P = side^2: each partition's tokens attend
    to each other over `heads` heads, their scores scaled by dim^-1/2 (the features', as
    torchvision's) and biased by a learned table indexed by relative position
    (`relative_position_bias_table`, (2 side - 1)^2 x heads, indexed by the
    `relative_position_index` buffer, P x P); `to_qkv` projects queries, keys and values
    (in that order, head by head), `merge` the heads' output. The state is torchvision's
    RelativePositionalMultiHeadAttention's, key for key."""

    def __init__(self, dim: int, heads: int, side: int, bias: bool = True) -> None:
        super().__init__()
        self.heads, self.side = heads, side
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.merge = nn.Linear(dim, dim, bias=bias)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * side - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        at = torch.arange(side)
        rows, cols = at.repeat_interleave(side), at.repeat(side)  # token i at (rows[i], cols[i])
        self.register_buffer("relative_position_index",
                             (rows[:, None] - rows + side - 1) * (2 * side - 1)
                             + cols[:, None] - cols + side - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [N, *G, P, 3, heads, d] -> q, k, v each [N, *G, heads, P, d]
        q, k, v = self.to_qkv(x).unflatten(-1, (3, self.heads, -1)).movedim(-3, 0).transpose(-3, -2)
        bias = self.relative_position_bias_table[self.relative_position_index]  # [P, P, heads]
        return self.merge(nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=bias.permute(2, 0, 1).to(q.dtype), scale=x.shape[-1] ** -0.5)
            .transpose(-3, -2).flatten(-2))

    def extra_repr(self) -> str:
        return f"heads={self.heads}, side={self.side}"
