"""Image-prompt resampler (IP-Adapter "plus" style): CLIP patch features -> ``num_queries`` context tokens.

A Perceiver: learned query latents attend to ``cat(features, latents)`` for ``depth`` layers. In ImageDream
the sizes below are hard-coded, not part of the UNet config (only ``dim``/``output_dim`` = context_dim and
``num_queries`` = ip_dim vary).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from video2gs.nn.imagedream.attention import merge_heads, split_heads

EMBEDDING_DIM = 1280  # CLIP ViT-H/14 hidden size (penultimate hidden states)
HEADS = 12
DIM_HEAD = 64
DEPTH = 4
FF_MULT = 4


class PerceiverAttention(nn.Module):
    """Latents attend to image features and to themselves; no biases; inner width heads·dim_head."""

    def __init__(self, dim: int, dim_head: int = DIM_HEAD, heads: int = HEADS):
        super().__init__()
        inner = dim_head * heads
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)  # image features
        self.norm2 = nn.LayerNorm(dim)  # latents
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, features: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """features: [B, N, dim]; latents: [B, Q, dim] -> update [B, Q, dim]."""
        features = self.norm1(features)
        latents = self.norm2(latents)
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat([features, latents], dim=1)).chunk(2, dim=-1)
        # The reference scales q and k by d^-1/4 each and takes the softmax in fp32: the same
        # as SDPA's default 1/sqrt(d); upcasting keeps the fp32 softmax under fp16 weights.
        dtype = q.dtype
        q, k, v = (split_heads(t, self.heads).float() for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v).to(dtype)
        return self.to_out(merge_heads(out))


def feed_forward(dim: int, mult: int = FF_MULT) -> nn.Sequential:
    """LayerNorm -> Linear(dim, mult·dim) -> GELU -> Linear(mult·dim, dim), no biases (keys 0, 1, 3)."""
    return nn.Sequential(
        nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(), nn.Linear(dim * mult, dim, bias=False)
    )


class Resampler(nn.Module):
    """CLIP features [B, N, embedding_dim] -> image tokens [B, num_queries, output_dim]."""

    def __init__(
        self,
        dim: int,
        num_queries: int,
        output_dim: int,
        embedding_dim: int = EMBEDDING_DIM,
        depth: int = DEPTH,
        dim_head: int = DIM_HEAD,
        heads: int = HEADS,
        ff_mult: int = FF_MULT,
    ):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(1, num_queries, dim) / dim**0.5)
        self.proj_in = nn.Linear(embedding_dim, dim)
        self.proj_out = nn.Linear(dim, output_dim)
        self.norm_out = nn.LayerNorm(output_dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, dim_head, heads), feed_forward(dim, ff_mult)]) for _ in range(depth)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features: [B, N, embedding_dim] -> [B, num_queries, output_dim]."""
        x = self.proj_in(features)
        latents = self.latents.expand(features.shape[0], -1, -1)
        for attn, ff in self.layers:
            latents = latents + attn(x, latents)
            latents = latents + ff(latents)
        return self.norm_out(self.proj_out(latents))
