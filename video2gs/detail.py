"""Pixel detail (``reconstruct --detail``): one Gaussian per input pixel in front, at the network's depth.

A feed-forward model's view-0 Gaussians are pixel-aligned but coarse: the bundled ``demo`` gives
one Gaussian per 4 x 4 pixels of its 128² input, so even the view it was given comes back blurred
(17-23 dB). :func:`pixel_layer` swaps them for one small Gaussian per pixel of the input frame:

* where: on the pixel's ray, at the depth the network gave that part of the image (the view-0
  Gaussians' depths along the viewing axis, upsampled bilinearly; cells the mask leaves empty or
  the network made transparent take their neighbours' depth);
* what: the pixel's colour (un-composited from white), its mask as opacity (at most 0.99), a
  sphere of 0.6 px std-dev at that depth.

The other views' Gaussians -- the sides and back the network inferred -- stay, less what the input
view contradicts (the carving): a Gaussian whose centre the input camera sees as background is
removed, and one in front of the seen surface is moved back along its own ray onto that surface
(its projection in the input view is unchanged), where it no longer sits in front of the pixels.

The input camera is the network's view 0 (azimuth 0, elevation 0, :data:`~video2gs.camera.RADIUS`,
internal +Y-up frame, ``docs/conventions.md``). Images are float32 in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from video2gs.camera import FOVY_DEG, focal_from_fovy, get_rays, project_to_grid
from video2gs.gaussians import NUM_CHANNELS, OPACITY, RGB, ROTATION, SCALE, XYZ, Gaussians
from video2gs.refine import input_camera

SCALE_PX = 0.6  # std-dev of a pixel Gaussian, in pixels: neighbours overlap enough to leave no gaps
# Opacity cap of a pixel Gaussian. The rasterizer clamps alphas at 0.999 and stops a pixel *before*
# a Gaussian that would take its transmittance to 1e-4 or less, so a fully opaque one behind a
# neighbour's edge (transmittance < 0.1) would be dropped and leave a hole.
MAX_OPACITY = 0.99
MIN_ALPHA = 0.05  # pixels with less mask than this get no Gaussian
# A cell's depth is trusted when its Gaussian's opacity times the mask's cover of the cell reaches
# this; other cells take their neighbours' depth.
_MIN_CELL_WEIGHT = 0.05


def fill_from_neighbours(depth: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """depth [s,s], valid [s,s] bool -> depth [s,s] whose invalid cells take the mean of their valid
    3 x 3 neighbours, growing outwards ring by ring (with no valid cell at all, depth is returned)."""
    depth, valid = depth.clone(), valid.clone()
    if not valid.any():
        return depth
    kernel = torch.ones(1, 1, 3, 3, dtype=depth.dtype)
    while not valid.all():
        num = F.conv2d((depth * valid)[None, None], kernel, padding=1)[0, 0]
        cnt = F.conv2d(valid.to(depth.dtype)[None, None], kernel, padding=1)[0, 0]
        grow = (~valid) & (cnt > 0)
        depth[grow] = num[grow] / cnt[grow]
        valid |= grow
    return depth


def layer_depth(cells: torch.Tensor, alpha: torch.Tensor, c2w: torch.Tensor) -> torch.Tensor:
    """The depth map of one view's cells: Gaussians [s²,14] (row-major grid), mask [S,S] -> depth
    along the viewing axis of camera c2w [4,4] at every pixel [S,S] (S a multiple of s)."""
    s = round(cells.shape[0] ** 0.5)
    size = int(alpha.shape[0])
    if s * s != cells.shape[0] or size % s:
        raise ValueError(f"{cells.shape[0]} cells do not tile a {size}² image")
    depth = project_to_grid(cells[:, XYZ], c2w, size)[2].reshape(s, s)  # along the viewing axis
    cover = F.avg_pool2d(alpha[None, None], size // s)[0, 0]  # [s,s] mask fraction of each cell
    trusted = (cells[:, OPACITY].reshape(s, s) * cover > _MIN_CELL_WEIGHT) & (depth > 0)
    if trusted.any():
        depth = fill_from_neighbours(depth, trusted)
    else:  # the network put nothing where the mask is: a flat layer through the origin
        depth = torch.full_like(depth, float(torch.linalg.norm(c2w[:3, 3])))
    return F.interpolate(depth[None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]


def carve(gaussians: torch.Tensor, alpha: torch.Tensor, depth: torch.Tensor, c2w: torch.Tensor,
          fovy_deg: float = FOVY_DEG) -> torch.Tensor:
    """Gaussians [K,14] less what camera c2w's view contradicts -> [K',14] (K' <= K, order kept).

    alpha [S,S]: that view's mask; depth [S,S]: its seen surface along the viewing axis. A centre
    on a pixel whose 3 x 3 neighbourhood is all background (mask < 0.5) is removed (one pixel of
    leeway for the mask's edge); a centre on the object (mask > 0.5) but in front of the surface is
    moved back along its ray onto it.
    """
    size = int(alpha.shape[0])
    row, col, d = project_to_grid(gaussians[:, XYZ], c2w, size, fovy_deg)
    inside = (row >= 0) & (row < size) & (col >= 0) & (col < size) & (d > 0)
    r, c = row.clamp(0, size - 1), col.clamp(0, size - 1)
    near_object = F.max_pool2d(alpha[None, None], 3, 1, 1)[0, 0]  # [S,S]
    keep = ~(inside & (near_object[r, c] < 0.5))
    out, r, c, d, inside = gaussians[keep].clone(), r[keep], c[keep], d[keep], inside[keep]
    surface = depth[r, c]
    push = inside & (alpha[r, c] > 0.5) & (d < surface)
    factor = torch.where(push, surface / d.clamp_min(1e-6), torch.ones_like(d))  # along the ray from the camera
    campos = c2w[:3, 3]
    out[:, XYZ] = campos + (out[:, XYZ] - campos) * factor[:, None]
    return out


def pixel_layer(gaussians: Gaussians, image: torch.Tensor, splat_size: int, *, fovy_deg: float = FOVY_DEG) -> Gaussians:
    """Swap one frame's view-0 Gaussians for one Gaussian per pixel of its input image.

    gaussians: [N,14] activated, internal frame, in the network's order (view-major, then the
        ``splat_size``² cells row by row), so view 0 is the first ``splat_size``² rows.
    image: [S,S,4] the input frame: RGB composited on white, A its mask; S a multiple of
        ``splat_size`` (any such size: the layer has S² pixels' worth of Gaussians).
    Returns [M + K, 14]: the M pixel Gaussians (pixels with mask > :data:`MIN_ALPHA`, row by row),
    then the K Gaussians of views 1.. that the input view does not contradict (:func:`carve`). A
    frame with an empty mask (no object found) is returned as it is.

    Example::

        g = pixel_layer(g, torch.from_numpy(rgba), 32)  # g [4096,14], rgba [256,256,4] -> [M+K,14]
    """
    data = gaussians.data.detach().float().cpu()  # [N,14]; the layer is built on the CPU, as written
    if data.ndim != 2:
        raise ValueError(f"pixel_layer takes one frame [N,14], got {tuple(data.shape)}")
    if image.ndim != 3 or image.shape[-1] != 4 or image.shape[0] != image.shape[1]:
        raise ValueError(f"image must be a square RGBA image [S,S,4], got {tuple(image.shape)}")
    cells = splat_size * splat_size
    image = image.float().cpu()
    rgb_white, alpha = image[..., :3], image[..., 3]  # [S,S,3], [S,S]
    on = alpha > MIN_ALPHA  # [S,S] the pixels that get a Gaussian
    if not on.any():  # a frame where segmentation found nothing: the network's, as it is
        return Gaussians(data.clone())
    size = int(image.shape[0])
    c2w = input_camera().c2w[0]  # [4,4]
    depth = layer_depth(data[:cells], alpha, c2w)  # [S,S]

    origins, dirs = get_rays(c2w, size, size, fovy_deg)  # [S,S,3] each, unit directions
    t = depth / (dirs @ -c2w[:3, 2]).clamp_min(1e-6)  # depth along the axis -> distance along the ray
    a = alpha[on][:, None]  # [M,1]
    px = torch.zeros(int(on.sum()), NUM_CHANNELS)
    px[:, XYZ] = (origins + dirs * t[..., None])[on]
    px[:, OPACITY] = a.clamp_max(MAX_OPACITY)
    px[:, SCALE] = (SCALE_PX * depth[on] / focal_from_fovy(fovy_deg, size))[:, None]  # world units
    px[:, ROTATION] = torch.tensor([1.0, 0.0, 0.0, 0.0])
    # Over white, a Gaussian of opacity a and colour c gives a c + (1 - a): undo the PNG's compositing.
    px[:, RGB] = ((rgb_white[on] - (1 - a)) / a).clamp(0, 1)
    return Gaussians(torch.cat([px, carve(data[cells:], alpha, depth, c2w, fovy_deg)], dim=0))
