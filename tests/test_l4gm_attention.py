"""Attention core: chunking is exact, respects its memory budget, and the token layouts are right."""

import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from conftest import REPO
from video2gs.nn import attention as attn_mod
from video2gs.nn.attention import MVAttention, TempAttention, attention, chunk_plan, cpu_attention_budget


def explicit_attention(q, k, v):
    scores = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
    return scores.softmax(-1) @ v


def qkv(b=2, h=4, lq=333, lk=333, d=8, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(b, h, n, d, generator=g, dtype=dtype) for n in (lq, lk, lk))


def test_chunked_equals_unchunked_and_explicit():
    q, k, v = qkv()
    full = attention(q, k, v, budget_bytes=1 << 40)
    budget = 2 * 4 * 333 * 8 * 50
    assert chunk_plan(2, 4, 333, 333, budget) == (2, 4, 50)  # 333 = 6 chunks of 50 + 33: uneven tail
    torch.testing.assert_close(attention(q, k, v, budget_bytes=budget), full, atol=1e-5, rtol=0)
    # below one row of every sequence: one batch element (all 4 heads) x 1 row per call
    assert chunk_plan(2, 4, 333, 333, 333 * 8 * 5) == (1, 4, 1)
    torch.testing.assert_close(attention(q, k, v, budget_bytes=333 * 8 * 5), full, atol=1e-5, rtol=0)
    # below one row of every head of one element: heads are split too (3 + 1 heads x 1 row per call)
    assert chunk_plan(2, 4, 333, 333, 333 * 8 * 3) == (1, 3, 1)
    torch.testing.assert_close(attention(q, k, v, budget_bytes=333 * 8 * 3), full, atol=1e-5, rtol=0)
    torch.testing.assert_close(full, explicit_attention(q, k, v), atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore:.*(Flash attention kernel not used|4 dimensional).*:UserWarning")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("budget", [1 << 40, 4 * 333 * 8 * 64, 333 * 8 * 3])
def test_every_cpu_call_takes_the_flash_kernel(dtype, budget):
    """With SDPA restricted to its flash kernel a call it cannot serve raises ("No available kernel")
    instead of falling back to the explicit softmax: so passing means every chunk reached flash."""
    q, k, v = qkv(dtype=dtype)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        out = attention(q, k, v, budget_bytes=budget)
        if budget < 2 * 4 * 333 * 333 * 8:  # chunked: the old 3D slices only reach the math path, refused here
            with pytest.raises(RuntimeError, match="No available kernel"):
                attn_mod._attention_3d(q, k, v, budget)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(out.float(), explicit_attention(*(t.float() for t in (q, k, v))), atol=tol, rtol=0)


def test_network_attention_blocks_dispatch_to_flash():
    """The blocks as the network calls them (fused qkv views, channels-last bf16 too) reach the flash
    kernel: the profiler sees its op and never the math path's."""
    x = torch.randn(3 * 4, 32, 6, 6)
    for block, xx in ((MVAttention(32, 16), x), (TempAttention(32, 16).bfloat16(), x.bfloat16().contiguous(memory_format=torch.channels_last))):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof, torch.inference_mode():
            with cpu_attention_budget(16 * 72 * 8 * 8):  # chunked: 8 rows of one element's 16 heads per call
                block.eval()(xx, frames=3, views=4)
        ops = {e.key for e in prof.key_averages()}
        assert "aten::_scaled_dot_product_flash_attention_for_cpu" in ops, sorted(ops)
        assert "aten::_scaled_dot_product_attention_math" not in ops


def test_chunked_attention_is_differentiable():
    q, k, v = (t.requires_grad_() for t in qkv(lq=70, lk=90))
    attention(q, k, v, budget_bytes=3 * 90 * 8 * 16).square().sum().backward()  # 3 heads x 16 rows
    grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    explicit_attention(q, k, v).square().sum().backward()
    for g, t in zip(grads, (q, k, v)):
        torch.testing.assert_close(g, t.grad, atol=1e-4, rtol=1e-4)


def test_sdpa_never_gets_more_query_rows_than_the_budget(monkeypatch):
    budget = 1 << 20
    calls = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, *args, **kwargs):
        calls.append(q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2] * 8)
        return real(q, k, v, *args, **kwargs)

    monkeypatch.setattr(attn_mod.F, "scaled_dot_product_attention", spy)
    # Temporal attention of a 6-frame clip at 8² with 4 views: 4 sequences of 384 tokens, 16 heads.
    block = TempAttention(32, 16).eval()
    x = torch.randn(6 * 4, 32, 8, 8)
    with torch.inference_mode():
        unchunked = block(x, frames=6, views=4)
    assert calls == [4 * 16 * 384 * 384 * 8] and calls[0] > budget
    calls.clear()
    with cpu_attention_budget(budget), torch.inference_mode():
        chunked = block(x, frames=6, views=4)
    assert len(calls) > 1
    assert max(calls) <= budget  # score bytes of every single call
    torch.testing.assert_close(chunked, unchunked, atol=1e-5, rtol=0)


def test_token_layouts_round_trip_and_group_correctly():
    b, t, v, c, h, w = 2, 3, 4, 32, 5, 6
    x = torch.randn(b * t * v, c, h, w)
    mv, tp = MVAttention(c), TempAttention(c)
    mv_tokens = mv.to_tokens(x, t, v)
    tp_tokens = tp.to_tokens(x, t, v)
    assert mv_tokens.shape == (b * t, v * h * w, c)
    assert tp_tokens.shape == (b * v, t * h * w, c)
    torch.testing.assert_close(mv.from_tokens(mv_tokens, t, v, h, w), x, atol=0, rtol=0)
    torch.testing.assert_close(tp.from_tokens(tp_tokens, t, v, h, w), x, atol=0, rtol=0)
    # temporal sequence (batch 1, view 2) = pixels of image (1, t, 2) for t = 0..2, in (t, h, w) order
    images = x.view(b, t, v, c, h, w)[1, :, 2]  # [T, C, H, W]
    torch.testing.assert_close(tp_tokens[1 * v + 2], images.permute(0, 2, 3, 1).reshape(t * h * w, c))
    # multi-view sequence (batch 0, frame 1) = pixels of its 4 views in (v, h, w) order
    views = x.view(b, t, v, c, h, w)[0, 1]  # [V, C, H, W]
    torch.testing.assert_close(mv_tokens[0 * t + 1], views.permute(0, 2, 3, 1).reshape(v * h * w, c))


def test_qkv_feature_order_is_three_heads_headdim():
    """Rows 0..C-1 of qkv are q (head-major), C..2C-1 k, 2C..3C-1 v."""
    torch.manual_seed(0)
    c, heads, n = 32, 16, 7
    block = attn_mod.SelfAttention(c, heads)
    x = torch.randn(1, n, c)
    wq, wk, wv = block.qkv.weight.split(c)
    hd = c // heads
    split = lambda y: y.view(n, heads, hd).transpose(0, 1)  # noqa: E731 - [heads, n, hd]
    q, k, v = split(x[0] @ wq.T), split(x[0] @ wk.T), split(x[0] @ wv.T)
    o = explicit_attention(q, k, v).transpose(0, 1).reshape(n, c)
    torch.testing.assert_close(block(x)[0], o @ block.proj.weight.T + block.proj.bias, atol=1e-5, rtol=0)


_RSS_SCRIPT = textwrap.dedent(
    """
    import torch
    from video2gs.nn.attention import attention, cpu_attention_budget

    def hwm():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM"))

    L, H, D = 5120, 4, 8  # the explicit path needs 4·5120² fp32 scores + softmax = 800 MiB
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, H, L, D, generator=g) for _ in range(3))
    attention(q[:, :, :64], k[:, :, :64], v[:, :, :64])  # warm up kernels and allocator
    base = hwm()
    with cpu_attention_budget(16 * 2**20), torch.inference_mode():
        out = attention(q, k, v)
    grown = hwm() - base
    rows = torch.arange(0, L, 1021)
    s = (q[:, :, rows] @ k.transpose(-1, -2) * D**-0.5).softmax(-1) @ v
    print(grown, float((out[:, :, rows] - s).abs().max()))
    """
)


def test_long_sequence_peak_memory_stays_bounded():
    if not sys.platform.startswith("linux"):
        pytest.skip("peak RSS is read from /proc/self/status (Linux only)")
    res = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT], capture_output=True, text=True, cwd=REPO, timeout=120, check=True
    )
    grown, err = res.stdout.split()
    assert int(grown) < 128 * 2**20, f"attention grew peak RSS by {int(grown) / 2**20:.0f} MiB"
    assert float(err) < 1e-5


def test_channels_last_blocks_keep_their_layout_and_values():
    """Channels-last images go through the token reshapes without changing the result, and come back
    channels-last (so the next convolution needs no layout change)."""
    torch.manual_seed(0)
    b, t, v, c, h, w = 1, 3, 4, 32, 5, 6
    x = torch.randn(b * t * v, c, h, w)
    for block in (MVAttention(c).eval(), TempAttention(c).eval()):
        with torch.inference_mode():
            ref = block(x.clone(), frames=t, views=v)
            out = block(x.contiguous(memory_format=torch.channels_last), frames=t, views=v)
        assert out.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
