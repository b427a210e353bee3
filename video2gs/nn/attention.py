"""Self-attention for the L4GM U-Net: multi-view and temporal blocks on one scalable core.

The core never materialises a full score matrix: it calls
``torch.nn.functional.scaled_dot_product_attention`` (flash / memory-efficient kernels on GPU)
and, on CPU, additionally splits the queries into chunks sized from a memory budget, so even a
kernel that falls back to the explicit ``softmax(q kᵀ) v`` path stays bounded. Softmax rows are
independent, so chunking the queries is exact.

Module and parameter names reproduce the reference checkpoints: ``norm``, ``attn.qkv``,
``attn.proj`` (``docs/l4gm.md`` §2).
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from video2gs.nn.configs import NORM_GROUPS

SKIP_SCALE = math.sqrt(0.5)

# Score bytes one CPU attention call may use (the explicit-softmax path needs the fp32 scores and
# their softmax: 2 x 4 bytes per (query, key) pair and head).
DEFAULT_CPU_BUDGET_BYTES = 256 * 2**20
_BYTES_PER_SCORE = 8
_cpu_budget_bytes = DEFAULT_CPU_BUDGET_BYTES


def set_cpu_attention_budget(nbytes: int | None) -> int:
    """Set the per-call CPU score-memory budget (``None`` restores the default); returns the old one."""
    global _cpu_budget_bytes
    old = _cpu_budget_bytes
    _cpu_budget_bytes = DEFAULT_CPU_BUDGET_BYTES if nbytes is None else max(1, int(nbytes))
    return old


@contextlib.contextmanager
def cpu_attention_budget(nbytes: int | None):
    """Temporarily change the CPU attention budget (see :func:`set_cpu_attention_budget`)."""
    old = set_cpu_attention_budget(nbytes)
    try:
        yield
    finally:
        set_cpu_attention_budget(old)


def chunk_plan(batch_heads: int, num_queries: int, num_keys: int, budget_bytes: int) -> tuple[int, int]:
    """(heads, rows) per SDPA call so that heads x rows x num_keys scores fit ``budget_bytes``.

    Query rows are split first; (batch x head) sequences only when one row of every head is already
    over budget. Never below one head x one row (a single row of scores is the floor).
    """
    pairs = max(1, budget_bytes // (num_keys * _BYTES_PER_SCORE))  # (head, query row) pairs per call
    heads = min(batch_heads, pairs)
    return heads, min(num_queries, max(1, pairs // heads))


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, budget_bytes: int | None = None) -> torch.Tensor:
    """softmax(q kᵀ / sqrt(d)) v without a full score matrix.

    q: [b, heads, Lq, d], k, v: [b, heads, Lk, d] -> [b, heads, Lq, d].
    On CPU the work is split per :func:`chunk_plan` (``budget_bytes`` defaults to the module
    budget); other devices use one SDPA call (flash / memory-efficient kernels).
    """
    if q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v)
    b, h, lq, _ = q.shape
    bh = b * h
    heads, rows = chunk_plan(bh, lq, k.shape[-2], _cpu_budget_bytes if budget_bytes is None else budget_bytes)
    if heads == bh and rows == lq:
        return F.scaled_dot_product_attention(q, k, v)
    q3, k3, v3 = (t.reshape(bh, t.shape[-2], t.shape[-1]) for t in (q, k, v))  # [b·heads, L, d]
    blocks = [(g, s) for g in range(0, bh, heads) for s in range(0, lq, rows)]

    def one(g: int, s: int) -> torch.Tensor:
        return F.scaled_dot_product_attention(q3[g : g + heads, s : s + rows], k3[g : g + heads], v3[g : g + heads])

    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        out = torch.cat([torch.cat([one(g, s) for s in range(0, lq, rows)], 1) for g in range(0, bh, heads)], 0)
    else:
        out = q3.new_empty(bh, lq, v.shape[-1])
        for g, s in blocks:
            out[g : g + heads, s : s + rows] = one(g, s)
    return out.view(b, h, lq, v.shape[-1])


class SelfAttention(nn.Module):
    """Multi-head self-attention on tokens [b, L, C] (the reference's ``MemEffAttention``).

    ``qkv`` (no bias) produces features ordered (3, heads, head_dim); ``proj`` has a bias.
    """

    def __init__(self, dim: int, num_heads: int = 16):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [b, L, C] -> [b, L, C]."""
        b, n, c = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [b, heads, L, head_dim]
        del qkv
        o = attention(q, k, v)
        del q, k, v
        return self.proj(o.transpose(1, 2).reshape(b, n, c))


class _TokenAttention(nn.Module):
    """GroupNorm -> tokens -> self-attention -> image layout, residual scaled by sqrt(0.5).

    Subclasses define how [B·T·V, C, H, W] images become token sequences and back.
    """

    def __init__(self, dim: int, num_heads: int = 16, eps: float = 1e-5):
        super().__init__()
        self.norm = nn.GroupNorm(NORM_GROUPS, dim, eps=eps, affine=True)
        self.attn = SelfAttention(dim, num_heads)

    def to_tokens(self, x: torch.Tensor, frames: int, views: int) -> torch.Tensor:
        raise NotImplementedError

    def from_tokens(self, tokens: torch.Tensor, frames: int, views: int, h: int, w: int) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, frames: int, views: int) -> torch.Tensor:
        """x: [B·T·V, C, H, W] (frame-major: b, t, v) -> same shape."""
        _, _, h, w = x.shape
        y = self.attn(self.to_tokens(self.norm(x), frames, views))
        y = self.from_tokens(y, frames, views, h, w)
        if torch.is_grad_enabled():
            return (y + x) * SKIP_SCALE
        return y.add_(x).mul_(SKIP_SCALE)


class MVAttention(_TokenAttention):
    """Cross-view attention within each frame: ``(B T V) C H W -> (B T) (V H W) C``."""

    def to_tokens(self, x, frames, views):
        btv, c, h, w = x.shape
        return x.view(btv // views, views, c, h, w).permute(0, 1, 3, 4, 2).reshape(btv // views, views * h * w, c)

    def from_tokens(self, tokens, frames, views, h, w):
        bt, _, c = tokens.shape
        return tokens.view(bt, views, h, w, c).permute(0, 1, 4, 2, 3).reshape(bt * views, c, h, w)


class TempAttention(_TokenAttention):
    """Attention over all frames and pixels of one view: ``(B T V) C H W -> (B V) (T H W) C``.

    No positional encoding: the block is equivariant to permuting frames. At T = 1 it is
    per-view spatial self-attention (not the identity).
    """

    def to_tokens(self, x, frames, views):
        btv, c, h, w = x.shape
        b = btv // (frames * views)
        return x.view(b, frames, views, c, h, w).permute(0, 2, 1, 4, 5, 3).reshape(b * views, frames * h * w, c)

    def from_tokens(self, tokens, frames, views, h, w):
        bv, _, c = tokens.shape
        b = bv // views
        return tokens.view(b, views, frames, h, w, c).permute(0, 2, 1, 5, 3, 4).reshape(b * frames * views, c, h, w)
