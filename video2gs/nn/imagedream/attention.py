"""ImageDream's transformer blocks: multi-view 3-D self-attention and decoupled image cross-attention.

Module and parameter names follow the original LDM / MVDream code (``attn1``, ``attn2``, ``to_k_ip``,
``ff.net.0.proj``, ...) so that the released state dict loads unchanged. All attention goes through
``F.scaled_dot_product_attention`` (plain softmax(q kᵀ/√d) v; the reference used xformers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, L, H*D] -> [B, H, L, D]."""
    b, n, _ = x.shape
    return x.view(b, n, heads, -1).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[B, H, L, D] -> [B, L, H*D]."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head softmax attention. q: [B, Lq, H*D], k/v: [B, Lk, H*D] -> [B, Lq, H*D]."""
    out = F.scaled_dot_product_attention(split_heads(q, heads), split_heads(k, heads), split_heads(v, heads))
    return merge_heads(out)


class CrossAttention(nn.Module):
    """Self- or cross-attention, optionally with an IP-Adapter-style image branch.

    With ``ip_dim > 0`` the last ``ip_dim`` context tokens are image-prompt tokens: they get their own
    key/value projections (``to_k_ip``/``to_v_ip``) and a second attention with the same queries, whose
    output is added with weight ``ip_weight`` (decoupled cross-attention).
    """

    def __init__(
        self,
        query_dim: int,
        heads: int,
        dim_head: int,
        context_dim: int | None = None,
        dropout: float = 0.0,
        ip_dim: int = 0,
        ip_weight: float = 1.0,
    ):
        super().__init__()
        inner = heads * dim_head
        context_dim = query_dim if context_dim is None else context_dim
        self.heads = heads
        self.ip_dim = ip_dim
        self.ip_weight = ip_weight
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(dropout))
        if ip_dim > 0:
            self.to_k_ip = nn.Linear(context_dim, inner, bias=False)
            self.to_v_ip = nn.Linear(context_dim, inner, bias=False)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """x: [B, L, query_dim]; context: [B, T (+ ip_dim), context_dim] or None (self-attention)."""
        context = x if context is None else context
        q = self.to_q(x)
        if self.ip_dim > 0:
            text, image = context[:, : -self.ip_dim], context[:, -self.ip_dim :]
            out = attention(q, self.to_k(text), self.to_v(text), self.heads)
            out = out + self.ip_weight * attention(q, self.to_k_ip(image), self.to_v_ip(image), self.heads)
        else:
            out = attention(q, self.to_k(context), self.to_v(context), self.heads)
        return self.to_out(out)


class GEGLU(nn.Module):
    """Linear to 2·dim_out, then value · GELU(gate) (value first, gate second)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU feed-forward, 4x hidden width (keys ``net.0.proj``, ``net.2``)."""

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, dim * mult), nn.Dropout(dropout), nn.Linear(dim * mult, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BasicTransformerBlock3D(nn.Module):
    """Pre-norm block: multi-view self-attention, (decoupled) cross-attention, GEGLU feed-forward."""

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        context_dim: int,
        dropout: float = 0.0,
        ip_dim: int = 0,
        ip_weight: float = 1.0,
    ):
        super().__init__()
        self.attn1 = CrossAttention(dim, heads, dim_head, context_dim=None, dropout=dropout)
        self.ff = FeedForward(dim, dropout=dropout)
        self.attn2 = CrossAttention(
            dim, heads, dim_head, context_dim=context_dim, dropout=dropout, ip_dim=ip_dim, ip_weight=ip_weight
        )
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, num_frames: int) -> torch.Tensor:
        """x: [B*F, L, C] (F = num_frames views of one object, consecutive); context: [B*F, T, Cctx]."""
        bf, n, c = x.shape
        # 3-D attention: every token attends to the tokens of all F views of its object.
        x = x.reshape(bf // num_frames, num_frames * n, c)
        x = x + self.attn1(self.norm1(x))
        x = x.reshape(bf, n, c)
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class SpatialTransformer3D(nn.Module):
    """GroupNorm -> tokens -> linear proj_in -> ``depth`` blocks -> proj_out -> image, plus the input.

    Every block receives the same context (the upstream port indexes a per-depth list and crashes
    for depth > 1).
    """

    def __init__(
        self,
        channels: int,
        heads: int,
        dim_head: int,
        context_dim: int,
        depth: int = 1,
        dropout: float = 0.0,
        ip_dim: int = 0,
        ip_weight: float = 1.0,
    ):
        super().__init__()
        inner = heads * dim_head
        self.norm = nn.GroupNorm(32, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock3D(inner, heads, dim_head, context_dim, dropout, ip_dim, ip_weight)
            for _ in range(depth)
        )
        self.proj_out = nn.Linear(inner, channels)

    def forward(self, x: torch.Tensor, context: torch.Tensor, num_frames: int) -> torch.Tensor:
        """x: [B*F, C, H, W]; context: [B*F, T, Cctx] -> [B*F, C, H, W]."""
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # [B*F, H*W, C]
        tokens = self.proj_in(tokens)
        for block in self.transformer_blocks:
            tokens = block(tokens, context, num_frames)
        tokens = self.proj_out(tokens)
        return tokens.transpose(1, 2).reshape(b, c, h, w) + x
