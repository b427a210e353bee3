"""What every renderer backend shares: the output type, gsplat-classic constants, input checks.

The constants are gsplat 1.4's "classic" rasterizer (``conventions.md`` §5, §7), the one L4GM
was trained with. Backends implement exactly these semantics; ``dgr`` (the 3DGS kernel) is the
one documented exception (alpha clamp 0.99, near cull at z <= 0.2).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from video2gs.gaussians import OPACITY, RGB, ROTATION, SCALE, XYZ

TILE_SIZE = 16  # pixels per tile side (binning granularity; changes which pixels see a Gaussian)
EPS2D = 0.3  # low-pass filter added to the 2D covariance diagonal, in px^2
ALPHA_MAX = 0.999  # per-Gaussian alpha clamp
ALPHA_MIN = 1.0 / 255.0  # contributions below this are skipped
T_STOP = 1e-4  # a pixel stops when T * (1 - alpha) <= T_STOP (that Gaussian is excluded)
RADIUS_SIGMAS = 3.0  # tile-binning radius = ceil(3 * sqrt(largest eigenvalue of the 2D covariance))
DEPTH_EPS = 1e-10  # expected depth = accumulated depth / max(alpha, DEPTH_EPS), as gsplat's "ED"
# Perspective Jacobians are evaluated with x/z, y/z clamped to 1.3x the half field of view
# (gsplat and 3DGS do this so that Gaussians far off-screen do not blow up).
FOV_CLAMP = 0.3


class RenderOutput(NamedTuple):
    """Rendered images of V views.

    rgb:   [V,H,W,3] float32 in [0,1] (clamped), composited over the background.
    alpha: [V,H,W,1] float32, 1 - final transmittance.
    depth: [V,H,W,1] float32, *expected* view-space depth (gsplat "ED"): sum(w_i z_i) / alpha,
           with w_i = alpha_i T_i and z_i the camera-space z of Gaussian i's centre; 0 where
           nothing was hit. Multiply by ``alpha`` for the accumulated ("D") depth.
    """

    rgb: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor


class SplatFields(NamedTuple):
    """One frame of activated Gaussians split into the fields rasterizers take (gsplat names).

    means [N,3], quats [N,4] (w,x,y,z, not necessarily unit), scales [N,3] (linear std-dev),
    opacities [N] in [0,1], colors [N,3] in [0,1].
    """

    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    colors: torch.Tensor


def split_fields(data: torch.Tensor) -> SplatFields:
    """[N,14] activated L4GM layout -> :class:`SplatFields` (views, no copy)."""
    return SplatFields(data[:, XYZ], data[:, ROTATION], data[:, SCALE], data[:, OPACITY][:, 0], data[:, RGB])


def backgrounds_tensor(background, num_views: int, device, dtype=torch.float32) -> torch.Tensor:
    """3-tuple / [3] / [V,3] colour -> [V,3] tensor (keeps autograd if a tensor is given)."""
    bg = torch.as_tensor(background, dtype=dtype, device=device)
    if bg.ndim == 1:
        if bg.shape[0] != 3:
            raise ValueError(f"background must have 3 channels, got shape {tuple(bg.shape)}")
        return bg.expand(num_views, 3)
    if bg.shape != (num_views, 3):
        raise ValueError(f"background must be [3] or [V,3] with V={num_views}, got {tuple(bg.shape)}")
    return bg

