"""Self-attention for the L4GM U-Net: multi-view and temporal blocks on one scalable core.

The core never materialises a full score matrix: it calls
``torch.nn.functional.scaled_dot_product_attention``. On CPU it hands SDPA 4D ``[b, heads, L, d]``
slices with a unit last-dim stride, the only inputs PyTorch's CPU flash kernel takes (3D inputs fall
back to the explicit ``softmax(q kᵀ) v`` path, which materialises fp32 scores and is several times
slower). Queries are additionally split into chunks sized from a memory budget, so even a call that
does not reach the flash kernel stays bounded. Softmax rows are independent, so chunking the queries
is exact.

Module and parameter names reproduce the reference checkpoints: ``norm``, ``attn.qkv``,
``attn.proj`` (``docs/l4gm.md`` §2).
"""

from __future__ import annotations

import contextlib
import math
import os

import torch
import torch.nn.functional as F
from torch import nn

from video2gs.nn.configs import NORM_GROUPS

SKIP_SCALE = math.sqrt(0.5)

# Score bytes one CPU attention call may use. The budget is counted as if the call took the explicit
# softmax path (fp32 scores and their softmax: 2 x 4 bytes per (query, key) pair and head), so it
# holds whichever kernel SDPA picks; the flash kernel itself needs far less (per-thread tiles).
DEFAULT_CPU_BUDGET_BYTES = 256 * 2**20
_BYTES_PER_SCORE = 8
_cpu_budget_bytes = DEFAULT_CPU_BUDGET_BYTES
# Benchmarks only: VIDEO2GS_ATTENTION_3D=1 restores the old 3D [b·heads, L, d] slices (math path)
# so ``benchmarks/bench_l4gm.py`` can time before/after in one tree. Never set it otherwise.
_LEGACY_3D = os.environ.get("VIDEO2GS_ATTENTION_3D") == "1"


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


def chunk_plan(batch: int, heads: int, num_queries: int, num_keys: int, budget_bytes: int) -> tuple[int, int, int]:
    """(batch elements, heads, query rows) per SDPA call: a 4D block of ``[b, heads, Lq, d]`` whose
    scores (counted as the explicit path would store them) fit ``budget_bytes``.

    Query rows are split first; then batch elements (all heads each); heads only when one query row
    of every head of one element is already over budget. Never below one head x one row.
    """
    pairs = max(1, budget_bytes // (num_keys * _BYTES_PER_SCORE))  # (sequence, query row) pairs per call
    if pairs >= batch * heads:
        return batch, heads, min(num_queries, pairs // (batch * heads))
    if pairs >= heads:
        nb = pairs // heads
        return nb, heads, min(num_queries, pairs // (nb * heads))
    return 1, pairs, 1


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, budget_bytes: int | None = None) -> torch.Tensor:
    """softmax(q kᵀ / sqrt(d)) v without a full score matrix.

    q: [b, heads, Lq, d], k, v: [b, heads, Lk, d] -> [b, heads, Lq, d]. On CPU the work is split per
    :func:`chunk_plan` (``budget_bytes`` defaults to the module budget) into contiguous-head 4D
    slices, each a call the flash kernel accepts; other devices use one SDPA call.
    """
    if q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v)
    budget = _cpu_budget_bytes if budget_bytes is None else budget_bytes
    if _LEGACY_3D:
        return _attention_3d(q, k, v, budget)
    b, h, lq, _ = q.shape
    nb, nh, rows = chunk_plan(b, h, lq, k.shape[-2], budget)
    # The flash kernel reads [L, d] rows of each head: contiguous heads make those reads sequential
    # (about 2x faster in bf16 than the strided views of the fused qkv projection).
    q, k, v = (t.contiguous() for t in (q, k, v))
    if (nb, nh, rows) == (b, h, lq):
        return F.scaled_dot_product_attention(q, k, v)
    bsl = [slice(i, i + nb) for i in range(0, b, nb)]
    hsl = [slice(j, j + nh) for j in range(0, h, nh)]

    def one(bs: slice, hs: slice, s: int) -> torch.Tensor:  # [nb, nh, rows, dv]
        return F.scaled_dot_product_attention(q[bs, hs, s : s + rows], k[bs, hs], v[bs, hs])

    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        return torch.cat(
            [torch.cat([torch.cat([one(bs, hs, s) for s in range(0, lq, rows)], 2) for hs in hsl], 1) for bs in bsl], 0
        )
    # [b, heads, Lq, dv] view of a [b, Lq, heads, dv] buffer: the caller's transpose(1, 2) is free
    out = q.new_empty(b, lq, h, v.shape[-1]).transpose(1, 2)
    for bs in bsl:
        for hs in hsl:
            for s in range(0, lq, rows):
                out[bs, hs, s : s + rows] = one(bs, hs, s)
    return out


def _attention_3d(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, budget_bytes: int) -> torch.Tensor:
    """The previous CPU path (3D [b·heads, L, d] slices: SDPA's math kernel); benchmarks only."""
    b, h, lq, _ = q.shape
    bh = b * h
    pairs = max(1, budget_bytes // (k.shape[-2] * _BYTES_PER_SCORE))
    heads = min(bh, pairs)
    rows = min(lq, max(1, pairs // heads))
    if heads == bh and rows == lq:
        return F.scaled_dot_product_attention(q, k, v)
    q3, k3, v3 = (t.reshape(bh, t.shape[-2], t.shape[-1]) for t in (q, k, v))  # [b·heads, L, d]
    out = q3.new_empty(bh, lq, v.shape[-1])
    for g in range(0, bh, heads):
        for s in range(0, lq, rows):
            out[g : g + heads, s : s + rows] = F.scaled_dot_product_attention(
                q3[g : g + heads, s : s + rows], k3[g : g + heads], v3[g : g + heads]
            )
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
        if x.device.type == "cpu":  # one copy to [3, b, heads, L, head_dim]: contiguous heads for the flash kernel
            qkv = qkv.contiguous()
        q, k, v = qkv.unbind(0)  # each [b, heads, L, head_dim]
        del qkv
        o = attention(q, k, v)
        del q, k, v
        return self.proj(o.transpose(1, 2).reshape(b, n, c))


class _TokenAttention(nn.Module):
    """GroupNorm -> tokens -> self-attention -> image layout, residual scaled by sqrt(0.5).

    Subclasses define how [B·T·V, C, H, W] images become token sequences and back; the result has
    the memory format of the input (channels-last in, channels-last out: tokens [.., C] are then
    the images' own memory order, so the multi-view reshapes are free).
    """

    def __init__(self, dim: int, num_heads: int = 16, eps: float = 1e-5):
        super().__init__()
        self.norm = nn.GroupNorm(NORM_GROUPS, dim, eps=eps, affine=True)
        self.attn = SelfAttention(dim, num_heads)

    def to_tokens(self, x: torch.Tensor, frames: int, views: int) -> torch.Tensor:
        raise NotImplementedError

    def from_tokens(
        self, tokens: torch.Tensor, frames: int, views: int, h: int, w: int, channels_last: bool = False
    ) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, frames: int, views: int) -> torch.Tensor:
        """x: [B·T·V, C, H, W] (frame-major: b, t, v) -> same shape."""
        _, _, h, w = x.shape
        y = self.attn(self.to_tokens(self.norm(x), frames, views))
        y = self.from_tokens(y, frames, views, h, w, x.is_contiguous(memory_format=torch.channels_last))
        if torch.is_grad_enabled():
            return (y + x) * SKIP_SCALE
        return y.add_(x).mul_(SKIP_SCALE)


class MVAttention(_TokenAttention):
    """Cross-view attention within each frame: ``(B T V) C H W -> (B T) (V H W) C``."""

    def to_tokens(self, x, frames, views):
        btv, c, h, w = x.shape
        return x.view(btv // views, views, c, h, w).permute(0, 1, 3, 4, 2).reshape(btv // views, views * h * w, c)

    def from_tokens(self, tokens, frames, views, h, w, channels_last=False):
        bt, _, c = tokens.shape
        if channels_last:  # [B·T·V, H, W, C] memory: a view of the tokens
            return tokens.reshape(bt * views, h, w, c).permute(0, 3, 1, 2)
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

    def from_tokens(self, tokens, frames, views, h, w, channels_last=False):
        bv, _, c = tokens.shape
        b = bv // views
        if channels_last:
            x = tokens.view(b, views, frames, h, w, c).transpose(1, 2).reshape(b * frames * views, h, w, c)
            return x.permute(0, 3, 1, 2)
        return tokens.view(b, views, frames, h, w, c).permute(0, 2, 1, 5, 3, 4).reshape(b * frames * views, c, h, w)
