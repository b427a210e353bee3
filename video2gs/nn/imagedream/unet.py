"""ImageDream's multi-view UNet (SD-2.1 UNet + camera MLP + image-prompt resampler + pixel controller).

Parameter names are the original LDM ``openaimodel`` names used by the released
``ashawkey/imagedream-ipmv-diffusers`` ``unet/`` folder, and the constructor takes the same arguments as
its ``config.json``, so ``MultiViewUNet.from_pretrained(folder, subfolder="unet")`` loads it (diffusers
accepts the stored ``_class_name`` "MultiViewUNetModel").

Layout (released config): latent 32² -> levels 320@32², 640@16², 1280@8², 1280@4²; each level has
``num_res_blocks`` ResBlocks, each followed by a :class:`SpatialTransformer3D` when the level's
downsample factor is in ``attention_resolutions``; mirrored decoder with skip concatenation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from video2gs.nn.imagedream.attention import SpatialTransformer3D
from video2gs.nn.imagedream.resampler import Resampler


class GroupNorm32(nn.GroupNorm):
    """GroupNorm(32) computed in fp32 and cast back (as LDM does, for fp16 stability)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.weight.float(), self.bias.float()
        return F.group_norm(x.float(), self.num_groups, w, b, self.eps).to(x.dtype)


def normalization(channels: int) -> GroupNorm32:
    return GroupNorm32(32, channels)


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding [N, dim] (fp32), ordered [cos | sin], for timesteps [N]."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half
    )
    args = timesteps.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class ResBlock(nn.Module):
    """GN-SiLU-conv, + per-channel bias from the embedding, GN-SiLU-dropout-conv, + (1x1-projected) input."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int, dropout: float = 0.0):
        super().__init__()
        self.in_layers = nn.Sequential(
            normalization(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            normalization(out_channels),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        self.skip_connection = (
            nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """x: [N, C, H, W]; emb: [N, E] -> [N, Cout, H, W]."""
        h = self.in_layers(x)
        h = h + self.emb_layers(emb).to(h.dtype)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class Downsample(nn.Module):
    """3x3 stride-2 conv (key ``op``), or 2x2 average pooling without ``conv_resample``."""

    def __init__(self, channels: int, use_conv: bool = True):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1) if use_conv else nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    """Nearest x2, then a 3x3 conv (key ``conv``) with ``conv_resample``."""

    def __init__(self, channels: int, use_conv: bool = True):
        super().__init__()
        self.use_conv = use_conv
        if use_conv:
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x


class EmbedSequential(nn.Sequential):
    """A sequence of layers, each receiving what it needs: embedding, context and/or num_frames."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor, num_frames: int) -> torch.Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer3D):
                x = layer(x, context, num_frames)
            else:
                x = layer(x)
        return x


def _mlp(dim_in: int, dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, dim), nn.SiLU(), nn.Linear(dim, dim))


class MultiViewUNet(ModelMixin, ConfigMixin):
    """Epsilon-prediction UNet over groups of ``num_frames`` views (4 generated + 1 reference).

    Constructor arguments are the released ``unet/config.json`` keys; the remaining LDM options are
    accepted at their defaults only (anything else raises ``ValueError``).
    """

    @register_to_config
    def __init__(
        self,
        image_size: int = 32,
        in_channels: int = 4,
        model_channels: int = 320,
        out_channels: int = 4,
        num_res_blocks: int = 2,
        attention_resolutions: Sequence[int] = (4, 2, 1),
        channel_mult: Sequence[int] = (1, 2, 4, 4),
        num_head_channels: int = 64,
        transformer_depth: int = 1,
        context_dim: int = 1024,
        camera_dim: int | None = 16,
        ip_dim: int = 16,
        ip_weight: float = 1.0,
        dropout: float = 0.0,
        conv_resample: bool = True,
        dims: int = 2,
        use_scale_shift_norm: bool = False,
        resblock_updown: bool = False,
        num_classes: int | None = None,
        use_checkpoint: bool = False,
    ):
        super().__init__()
        if dims != 2 or use_scale_shift_norm or resblock_updown or num_classes is not None:
            raise ValueError(
                "MultiViewUNet supports only dims=2, use_scale_shift_norm=False, resblock_updown=False and "
                "num_classes=None"
            )
        if num_head_channels <= 0 or any((model_channels * m) % num_head_channels for m in channel_mult):
            raise ValueError(f"num_head_channels={num_head_channels} must divide every level's channel count")
        self.model_channels = model_channels
        self.ip_dim = ip_dim
        emb_dim = model_channels * 4

        self.time_embed = _mlp(model_channels, emb_dim)
        if camera_dim is not None:
            self.camera_embed = _mlp(camera_dim, emb_dim)
        if ip_dim > 0:
            self.image_embed = Resampler(dim=context_dim, num_queries=ip_dim, output_dim=context_dim)

        def transformer(ch: int) -> SpatialTransformer3D:
            return SpatialTransformer3D(
                ch, ch // num_head_channels, num_head_channels, context_dim,
                depth=transformer_depth, dropout=dropout, ip_dim=ip_dim, ip_weight=ip_weight,
            )  # fmt: skip

        self.input_blocks = nn.ModuleList([EmbedSequential(nn.Conv2d(in_channels, model_channels, 3, padding=1))])
        skip_channels = [model_channels]
        ch, ds = model_channels, 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers: list[nn.Module] = [ResBlock(ch, emb_dim, model_channels * mult, dropout)]
                ch = model_channels * mult
                if ds in attention_resolutions:
                    layers.append(transformer(ch))
                self.input_blocks.append(EmbedSequential(*layers))
                skip_channels.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(EmbedSequential(Downsample(ch, conv_resample)))
                skip_channels.append(ch)
                ds *= 2

        self.middle_block = EmbedSequential(
            ResBlock(ch, emb_dim, ch, dropout), transformer(ch), ResBlock(ch, emb_dim, ch, dropout)
        )

        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [ResBlock(ch + skip_channels.pop(), emb_dim, model_channels * mult, dropout)]
                ch = model_channels * mult
                if ds in attention_resolutions:
                    layers.append(transformer(ch))
                if level and i == num_res_blocks:
                    layers.append(Upsample(ch, conv_resample))
                    ds //= 2
                self.output_blocks.append(EmbedSequential(*layers))

        self.out = nn.Sequential(normalization(ch), nn.SiLU(), nn.Conv2d(model_channels, out_channels, 3, padding=1))

    def embed_time_and_camera(
        self, timesteps: torch.Tensor, camera: torch.Tensor | None, dtype: torch.dtype
    ) -> torch.Tensor:
        """timesteps: [N]; camera: [N, camera_dim] or None -> emb [N, 4·model_channels] in ``dtype``."""
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels).to(dtype))
        if camera is not None:
            emb = emb + self.camera_embed(camera.to(dtype))
        return emb

    def image_prompt_tokens(self, ip: torch.Tensor) -> torch.Tensor:
        """CLIP features ip: [N, P, 1280] -> image tokens [N, ip_dim, context_dim]."""
        return self.image_embed(ip)

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor,
        num_frames: int = 5,
        camera: torch.Tensor | None = None,
        ip: torch.Tensor | None = None,
        ip_img: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict noise for B groups of ``num_frames`` views.

        x: [B·F, C, H, W] noisy latents, views of one object consecutive (F = num_frames).
        timesteps: [B·F]. context: [B·F, T, context_dim] text tokens. camera: [B·F, camera_dim] or None.
        ip: [B·F, P, 1280] CLIP features (required when ip_dim > 0).
        ip_img: [B, C, H, W] clean reference latents, written into the last view of each group
        (pixel controller) on a copy of ``x``; the caller's tensor is never modified.
        Returns eps: [B·F, out_channels, H, W] in x's dtype.
        """
        if x.shape[0] % num_frames:
            raise ValueError(f"batch {x.shape[0]} is not a multiple of num_frames={num_frames}")
        dtype = x.dtype
        emb = self.embed_time_and_camera(timesteps, camera, dtype)
        if self.ip_dim > 0:
            if ip is None or ip_img is None:
                raise ValueError("this UNet has an image prompt (ip_dim > 0): pass ip and ip_img")
            x = x.clone()
            x[num_frames - 1 :: num_frames] = ip_img.to(dtype)
            context = torch.cat([context.to(dtype), self.image_prompt_tokens(ip.to(dtype))], dim=1)
        context = context.to(dtype)

        skips = []
        h = x
        for block in self.input_blocks:
            h = block(h, emb, context, num_frames)
            skips.append(h)
        h = self.middle_block(h, emb, context, num_frames)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb, context, num_frames)
        return self.out(h.to(dtype))
