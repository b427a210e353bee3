"""LGM's asymmetric U-Net with L4GM's temporal attention (``docs/l4gm.md`` §2).

Images travel as [B·T·V, C, H, W] in frame-major order (b, t, v). Every module name matches the
reference state dict (``down_blocks.{i}.nets.{j}``, ``attns``, ``t_attns``, ``downsample``,
``upsample``, ``mid_block``, ``norm_out``, ``conv_out``). Slots of blocks without attention hold
``None`` in ``attns``/``t_attns`` (no parameters, as in the reference).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from video2gs.nn.attention import SKIP_SCALE, MVAttention, TempAttention
from video2gs.nn.configs import IN_CHANNELS, NORM_GROUPS, OUT_CHANNELS, L4GMConfig


def _silu(x: torch.Tensor) -> torch.Tensor:
    # In place when no graph is recorded: the normalised activations are never reused.
    return F.silu(x, inplace=not torch.is_grad_enabled())


class ResnetBlock(nn.Module):
    """``(conv2(silu(gn2(conv1(silu(gn1(x)))))) + shortcut(x)) · sqrt(0.5)``; x [n, cin, H, W] -> [n, cout, H, W]."""

    def __init__(self, cin: int, cout: int, eps: float = 1e-5):
        super().__init__()
        self.norm1 = nn.GroupNorm(NORM_GROUPS, cin, eps=eps, affine=True)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm2 = nn.GroupNorm(NORM_GROUPS, cout, eps=eps, affine=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1, bias=True) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_silu(self.norm1(x)))
        h = self.conv2(_silu(self.norm2(h)))
        if torch.is_grad_enabled():
            return (h + self.shortcut(x)) * SKIP_SCALE
        return h.add_(self.shortcut(x)).mul_(SKIP_SCALE)


def _attention_lists(n: int, channels: int, enabled: bool, temporal: bool, heads: int):
    """(attns, t_attns) ModuleLists of length n; ``None`` slots where attention is off."""
    attns = nn.ModuleList([MVAttention(channels, heads) if enabled else None for _ in range(n)])
    t_attns = nn.ModuleList([TempAttention(channels, heads) if enabled and temporal else None for _ in range(n)])
    return attns, t_attns


def _attend(x, attn, t_attn, frames: int, views: int) -> torch.Tensor:
    if attn is not None:
        x = attn(x, frames, views)
    if t_attn is not None:
        x = t_attn(x, frames, views)
    return x


class SkipStack:
    """Encoder outputs waiting for the decoder; the first ``discard`` pushes are never consumed
    (3 full-resolution maps in ``big``), so they are dropped at once instead of kept alive."""

    def __init__(self, discard: int):
        self._discard = discard
        self._items: list[torch.Tensor] = []

    def push(self, x: torch.Tensor) -> None:
        if self._discard > 0:
            self._discard -= 1
        else:
            self._items.append(x)

    def pop(self) -> torch.Tensor:
        return self._items.pop()

    def __len__(self) -> int:
        return len(self._items)


class DownBlock(nn.Module):
    def __init__(self, cin: int, cout: int, layers: int, downsample: bool, attention: bool, temporal: bool, heads: int):
        super().__init__()
        self.nets = nn.ModuleList([ResnetBlock(cin if j == 0 else cout, cout) for j in range(layers)])
        self.attns, self.t_attns = _attention_lists(layers, cout, attention, temporal, heads)
        self.downsample = nn.Conv2d(cout, cout, 3, 2, 1) if downsample else None

    def forward(self, x: torch.Tensor, skips: SkipStack, frames: int, views: int) -> torch.Tensor:
        for net, attn, t_attn in zip(self.nets, self.attns, self.t_attns):
            x = _attend(net(x), attn, t_attn, frames, views)
            skips.push(x)
        if self.downsample is not None:
            x = self.downsample(x)
            skips.push(x)
        return x


class MidBlock(nn.Module):
    """``nets.0 -> attns.0 -> t_attns.0 -> nets.1``."""

    def __init__(self, channels: int, attention: bool, temporal: bool, heads: int):
        super().__init__()
        self.nets = nn.ModuleList([ResnetBlock(channels, channels) for _ in range(2)])
        self.attns, self.t_attns = _attention_lists(1, channels, attention, temporal, heads)

    def forward(self, x: torch.Tensor, frames: int, views: int) -> torch.Tensor:
        x = self.nets[0](x)
        x = _attend(x, self.attns[0], self.t_attns[0], frames, views)
        return self.nets[1](x)


class UpBlock(nn.Module):
    """``layers`` x (pop skip, cat [x, skip], resnet, attention); then nearest x2 + conv."""

    def __init__(self, cin: int, cskip: int, cout: int, layers: int, upsample: bool, attention: bool, temporal: bool, heads: int):
        super().__init__()
        self.nets = nn.ModuleList(
            [
                ResnetBlock((cin if j == 0 else cout) + (cskip if j == layers - 1 else cout), cout)
                for j in range(layers)
            ]
        )
        self.attns, self.t_attns = _attention_lists(layers, cout, attention, temporal, heads)
        self.upsample = nn.Conv2d(cout, cout, 3, 1, 1) if upsample else None

    def forward(self, x: torch.Tensor, skips: SkipStack, frames: int, views: int) -> torch.Tensor:
        for net, attn, t_attn in zip(self.nets, self.attns, self.t_attns):
            x = net(torch.cat([x, skips.pop()], dim=1))
            x = _attend(x, attn, t_attn, frames, views)
        if self.upsample is not None:
            x = self.upsample(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return x


class UNet(nn.Module):
    """[B·T·V, 9, H, W] -> [B·T·V, 14, S, S] (pre-activation Gaussian maps)."""

    def __init__(self, config: L4GMConfig):
        super().__init__()
        cfg = config
        self.num_unused_skips = cfg.num_unused_skips
        heads, temporal, layers = cfg.attention_heads, cfg.use_temp_attn, cfg.layers_per_block
        self.conv_in = nn.Conv2d(IN_CHANNELS, cfg.down_channels[0], 3, 1, 1)
        down, cout = [], cfg.down_channels[0]
        for i, (c, attn) in enumerate(zip(cfg.down_channels, cfg.down_attention)):
            down.append(DownBlock(cout, c, layers, i < len(cfg.down_channels) - 1, attn, temporal, heads))
            cout = c
        self.down_blocks = nn.ModuleList(down)
        self.mid_block = MidBlock(cfg.down_channels[-1], cfg.mid_attention, temporal, heads)
        up, cout = [], cfg.up_channels[0]
        for i, (c, attn) in enumerate(zip(cfg.up_channels, cfg.up_attention)):
            cskip = cfg.down_channels[max(-2 - i, -len(cfg.down_channels))]
            up.append(UpBlock(cout, cskip, c, layers + 1, i < len(cfg.up_channels) - 1, attn, temporal, heads))
            cout = c
        self.up_blocks = nn.ModuleList(up)
        self.norm_out = nn.GroupNorm(NORM_GROUPS, cfg.up_channels[-1], eps=1e-5, affine=True)
        self.conv_out = nn.Conv2d(cfg.up_channels[-1], OUT_CHANNELS, 3, 1, 1)

    def forward(self, x: torch.Tensor, frames: int, views: int) -> torch.Tensor:
        """x: [B·T·V, 9, H, W] frame-major -> [B·T·V, 14, S, S]."""
        skips = SkipStack(self.num_unused_skips)
        x = self.conv_in(x)
        skips.push(x)
        for block in self.down_blocks:
            x = block(x, skips, frames, views)
        x = self.mid_block(x, frames, views)
        for block in self.up_blocks:
            x = block(x, skips, frames, views)
        return self.conv_out(_silu(self.norm_out(x)))
