"""CUDA backend: diff-gaussian-rasterization (the 3DGS kernel) with LGM's settings (``conventions.md`` §6).

Only used when asked for by name (never by ``auto``): it is CUDA-only, not on PyPI, and under the
Inria non-commercial licence, so it is no dependency of video2gs. Its semantics differ from the
other backends in two places that come from the kernel itself: alpha is clamped at 0.99 (not
0.999) and only centres with view z <= 0.2 are culled (``near``/``far`` of the cameras are used
for the projection matrix only, as LGM does).

One rasterizer call per view (as LGM). The forks return different tuples -- Inria's ``(image,
radii)``, ashawkey's ``(image, radii, depth)`` or ``(image, radii, depth, alpha)`` -- so alpha and
depth come from a second pass that composites ``(z, 1, 0)`` over a black background; that works
with every fork and yields the expected depth exactly like the other backends.
"""

from __future__ import annotations

import math

import torch

from video2gs.camera import Cameras, dgr_matrices
from video2gs.render._common import DEPTH_EPS, RenderOutput, SplatFields


def _module():
    import diff_gaussian_rasterization

    return diff_gaussian_rasterization


def rasterize(fields: SplatFields, cameras: Cameras, width: int, height: int, backgrounds: torch.Tensor) -> RenderOutput:
    """Render one frame (fields on a CUDA device) from V cameras; backgrounds [V,3].

    Returns :class:`RenderOutput` ([V,H,W,3|1|1]); differentiable through the rasterizer.
    """
    dgr = _module()
    f32 = torch.float32
    device = fields.means.device
    means = fields.means.to(f32)
    quats = fields.quats.to(f32)
    quats = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)  # the kernel does not normalise
    scales = fields.scales.to(f32)
    opacities = fields.opacities.to(f32)[:, None]  # [N,1]
    colors = fields.colors.to(f32)
    c2w = cameras.c2w.to(device=device, dtype=f32)
    cam_view, cam_view_proj, campos = dgr_matrices(c2w, cameras.fovy_deg, cameras.near, cameras.far)
    tan_y = math.tan(math.radians(cameras.fovy_deg) / 2)
    tan_x = tan_y * width / height  # square pixels, as camera.intrinsics
    # view depth of every centre, [V,N]: row 2 of the w2c, i.e. column 2 of cam_view (= w2c^T)
    z = (cam_view[:, None, :3, 2] * means[None]).sum(-1) + cam_view[:, None, 3, 2]
    black = torch.zeros(3, device=device, dtype=f32)

    rgbs, alphas, depths = [], [], []
    for v in range(c2w.shape[0]):
        def draw(cols: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
            settings = dgr.GaussianRasterizationSettings(
                image_height=height,
                image_width=width,
                tanfovx=tan_x,
                tanfovy=tan_y,
                bg=bg,
                scale_modifier=1.0,
                viewmatrix=cam_view[v],
                projmatrix=cam_view_proj[v],
                sh_degree=0,
                campos=campos[v],
                prefiltered=False,
                debug=False,
            )
            out = dgr.GaussianRasterizer(raster_settings=settings)(
                means3D=means,
                means2D=torch.zeros_like(means),
                shs=None,
                colors_precomp=cols,
                opacities=opacities,
                scales=scales,
                rotations=quats,
                cov3D_precomp=None,
            )
            return out[0].permute(1, 2, 0)  # [3,H,W] -> [H,W,3]

        rgbs.append(draw(colors, backgrounds[v].to(f32)).clamp(0, 1))
        aux = draw(torch.stack([z[v], torch.ones_like(z[v]), torch.zeros_like(z[v])], dim=-1), black)
        alphas.append(aux[..., 1:2])
        depths.append(aux[..., 0:1] / aux[..., 1:2].clamp(min=DEPTH_EPS))
    return RenderOutput(torch.stack(rgbs), torch.stack(alphas), torch.stack(depths))
