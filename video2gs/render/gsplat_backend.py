"""CUDA backend: ``gsplat.rasterization`` with the settings L4GM uses (``conventions.md`` §5).

gsplat is imported lazily, so the package works without it. One call renders all V views:
viewmats are OpenCV w2c, ``packed=False``, ``eps2d=0.3``, classic rasterization, 16x16 tiles,
no radius clip, pinhole camera, RGB colours (``sh_degree=None``), per-view backgrounds. The only
addition to L4GM's call is ``render_mode="RGB+ED"`` (depth as a 4th channel, which composites
exactly like a colour and leaves RGB and alpha unchanged).
"""

from __future__ import annotations

import torch

from video2gs.render._common import EPS2D, TILE_SIZE, RenderOutput


def _rasterization():
    import gsplat

    return gsplat.rasterization


def rasterize(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    colors: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    near: float,
    far: float,
    backgrounds: torch.Tensor,
    eps2d: float = EPS2D,
) -> RenderOutput:
    """Render N Gaussians into V views with gsplat (CUDA tensors; differentiable).

    means [N,3], quats [N,4] (wxyz), scales [N,3], opacities [N], colors [N,3]; viewmats [V,4,4]
    (OpenCV w2c), Ks [V,3,3]; backgrounds [V,3]. Returns :class:`RenderOutput` ([V,H,W,3|1|1]).
    """
    f32 = torch.float32
    render_colors, render_alphas, _meta = _rasterization()(
        means.to(f32),
        quats.to(f32),
        scales.to(f32),
        opacities.to(f32),
        colors.to(f32),
        viewmats.to(device=means.device, dtype=f32),
        Ks.to(device=means.device, dtype=f32),
        width,
        height,
        near_plane=float(near),
        far_plane=float(far),
        radius_clip=0.0,
        eps2d=float(eps2d),
        sh_degree=None,
        packed=False,
        tile_size=TILE_SIZE,
        backgrounds=backgrounds.to(device=means.device, dtype=f32),
        render_mode="RGB+ED",
        rasterize_mode="classic",
    )
    # render_colors [V,H,W,4] = RGB composited over the background, then expected depth
    rgb = render_colors[..., :3].clamp(0, 1)
    depth = render_colors[..., 3:4]
    return RenderOutput(rgb, render_alphas, depth)
