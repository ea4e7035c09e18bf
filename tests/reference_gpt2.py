"""GPT-2 written by hand in plain torch, from the papers (Radford et al. 2018, "Improving
Language Understanding by Generative Pre-Training", and 2019, "Language Models are
Unsupervised Multitask Learners"), to check specs/gpt2.yaml and specs/gpt_tiny.yaml against.

A decoder-only transformer: token embedding plus a learned position embedding, pre-norm
blocks (x + attn(ln_1(x)), then + mlp(ln_2(.))), a final LayerNorm, and the output
projection sharing the token embedding's matrix. Attention is written out: one packed
projection gives queries, keys and values, each head's scores q k^T / sqrt(d) are masked
above the diagonal with an explicit lower-triangular mask, softmaxed and applied to the
values. Nothing here calls scaled_dot_product_attention. Modules are created in the order
GPT-2's checkpoints list their tensors, so `state_dict()` loads into the spec by order.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)  # queries, keys, values stacked (GPT-2's c_attn)
        self.proj = nn.Linear(dim, dim)
        self.weights_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, t, dim = x.shape
        head_dim = dim // self.heads
        q, k, v = (part.reshape(batch, t, self.heads, head_dim).transpose(1, 2)
                   for part in self.qkv(x).split(dim, dim=-1))        # [B, H, T, d] each
        scores = q @ k.transpose(-2, -1) / math.sqrt(head_dim)        # [B, H, T, T]
        allowed = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))          # no later position
        weights = self.weights_dropout(scores.softmax(dim=-1))
        heads = (weights @ v).transpose(1, 2).reshape(batch, t, dim)  # heads side by side
        return self.proj(heads)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = CausalSelfAttention(dim, heads, dropout)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-5)
        self.fc = nn.Linear(dim, 4 * dim)
        self.proj = nn.Linear(4 * dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.ln_1(x)))
        hidden = nn.functional.gelu(self.fc(self.ln_2(x)), approximate="tanh")
        return x + self.dropout(self.proj(hidden))


class GPT2(nn.Module):
    """GPT-2 small by default: 12 layers, 12 heads, 768 wide, 50,257 tokens, 1024 positions."""

    def __init__(self, vocab: int = 50257, context: int = 1024, dim: int = 768,
                 layers: int = 12, heads: int = 12, dropout: float = 0.1) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.wpe = nn.Embedding(context, dim)  # learned positions: one vector each
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim, eps=1e-5)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.wte.weight  # tied: one matrix reads and writes tokens

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.dropout(self.wte(ids) + self.wpe(positions))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))
