"""The L4GM network: U-Net + 1x1 ``conv`` + Gaussian activations (``docs/l4gm.md`` §1-§2).

Input ``[B, T·V, 9, H, W]`` frame-major (t0v0, t0v1, …, t1v0, …); output ``[B·T, V·S², 14]`` with
Gaussian index ``v·S² + row·S + col`` and columns xyz | opacity | scale | quaternion wxyz | rgb
(the layout of :mod:`video2gs.gaussians`). T is read from the input, so one instance serves
T = 1 (static), 4 (interpolation) and 16 (reconstruction). With ``use_temp_attn=False`` this is
plain LGM.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from video2gs.nn.configs import IN_CHANNELS, OUT_CHANNELS, L4GMConfig, resolve_config
from video2gs.nn.unet import UNet


def activate_gaussians(raw: torch.Tensor, rot_norm: str = "quat") -> torch.Tensor:
    """Pre-activation Gaussians [F, N, 14] -> activated [F, N, 14] (float32).

    xyz: clamp(-1, 1); opacity: sigmoid; scale: 0.1·softplus; quaternion: unit length over the
    last dim (``rot_norm="quat"``) or -- the legacy LGM bug -- over the Gaussian axis
    (``"gaussians"``); rgb: 0.5·tanh + 0.5.
    """
    x = raw.float()
    rot_dim = -1 if rot_norm == "quat" else 1
    return torch.cat(
        [
            x[..., 0:3].clamp(-1, 1),
            torch.sigmoid(x[..., 3:4]),
            0.1 * F.softplus(x[..., 4:7]),
            F.normalize(x[..., 7:11], dim=rot_dim),
            0.5 * torch.tanh(x[..., 11:14]) + 0.5,
        ],
        dim=-1,
    )


class L4GM(nn.Module):
    """L4GM (or LGM) reconstruction network. State-dict keys: ``unet.*`` and ``conv.*``."""

    def __init__(self, config: "L4GMConfig | str | dict" = "big"):
        super().__init__()
        self.config = resolve_config(config)
        self.unet = UNet(self.config)
        self.conv = nn.Conv2d(OUT_CHANNELS, OUT_CHANNELS, 1)
        self._compiled = None
        self.memory_format = torch.contiguous_format  # of the image tensors; see set_memory_format

    # -- properties ----------------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return self.conv.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.conv.weight.device

    def set_memory_format(self, memory_format: torch.memory_format) -> "L4GM":
        """Lay convolution weights and the images out as ``memory_format`` (``torch.channels_last``:
        NHWC, on which oneDNN runs CPU convolutions fastest; every block keeps its input's format)."""
        self.to(memory_format=memory_format)
        self.memory_format = memory_format
        return self

    def enable_compile(self, **compile_kwargs) -> "L4GM":
        """Route :meth:`forward_raw` through ``torch.compile`` (state-dict keys are unchanged)."""
        self._compiled = torch.compile(self._forward_raw, **compile_kwargs)
        return self

    # -- forward -------------------------------------------------------------------------------
    def split_frames(self, images: torch.Tensor, num_frames: int | None = None) -> tuple[int, int]:
        """(B, T) of an input [B, T·V, 9, H, W]; checks the shape against the config."""
        cfg = self.config
        if images.ndim != 5 or images.shape[2] != IN_CHANNELS:
            raise ValueError(f"L4GM input must be [B, T·V, {IN_CHANNELS}, H, W], got {tuple(images.shape)}")
        if images.shape[-2:] != (cfg.input_size, cfg.input_size):
            raise ValueError(f"L4GM '{cfg.name}' takes {cfg.input_size}² images, got {tuple(images.shape[-2:])}")
        b, tv = images.shape[:2]
        v = cfg.num_input_views
        if tv % v or (num_frames is not None and tv != num_frames * v):
            raise ValueError(f"input has {tv} images: not T·V with V = {v}" + (f", T = {num_frames}" if num_frames else ""))
        return b, tv // v

    def _forward_raw(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        return self.conv(self.unet(x, frames, self.config.num_input_views))

    def forward_raw(self, images: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """images [B, T·V, 9, H, W] -> pre-activation maps [B·T·V, 14, S, S] (after ``conv``)."""
        b, t = self.split_frames(images, num_frames)
        x = images.reshape(-1, *images.shape[2:]).to(dtype=self.dtype, memory_format=self.memory_format)
        fn = self._compiled if self._compiled is not None else self._forward_raw
        return fn(x, t)

    def to_gaussians(self, raw: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Maps [B·T·V, 14, S, S] -> activated Gaussians [B·T, V·S², 14] float32."""
        v, s = self.config.num_input_views, self.config.splat_size
        x = raw.reshape(-1, v, OUT_CHANNELS, s, s).permute(0, 1, 3, 4, 2).reshape(-1, v * s * s, OUT_CHANNELS)
        return activate_gaussians(x, self.config.rot_norm)

    def forward(self, images: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """images [B, T·V, 9, H, W] -> Gaussians [B·T, V·S², 14] float32 (index ``v·S² + row·S + col``)."""
        _, t = self.split_frames(images, num_frames)
        return self.to_gaussians(self.forward_raw(images, t), t)
