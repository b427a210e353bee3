"""Pure-PyTorch tile rasterizer: the differentiable reference and the CPU training path.

Semantics are gsplat 1.4 "classic" (see :mod:`video2gs.render._common`), in three steps:

1. :func:`project` (plain autograd): world Gaussians -> per view 2D means, conics (inverse 2D
   covariances incl. the +0.3 px^2 low-pass), view depths, and the 3-sigma tile radius.
2. :func:`pixel_rects` + :func:`plan_tiles` (no gradient): the pixel rectangle each visible
   (view, Gaussian) pair can reach, then the pair is listed in every 8x8 block of pixels that
   rectangle meets; lists are sorted front to back and blocks grouped into padded batches of
   similar list length [B,K], so the work is dense tensors, not Python loops.
3. :class:`_RasterizeTiles` (custom autograd): for a batch of blocks, alpha of every (block, pixel,
   slot) [B,P=64,K], transmittance by ``cumprod`` along K, compositing by a batched matmul.
   The backward pass recomputes the batch (memory stays bounded by one batch) and applies the
   closed-form compositing gradient; no [B,P,K] tensor is kept between the passes.

Two exact shortcuts keep the work small, neither changes a single output value:

* A Gaussian whose alpha cannot reach 1/255 anywhere (``o < 1/255``) is dropped, and a tile is
  only listed if the ellipse ``1/2 d^T S^-1 d <= ln(255 o)`` (where alpha >= 1/255) touches it:
  outside that ellipse gsplat skips the Gaussian anyway.
* The Mahalanobis term is a quadratic polynomial in the pixel position, so ``1/2 d^T S^-1 d``
  for all (pixel, slot) pairs is one matmul ``features [P,6] @ coef [B,6,K]`` in tile-local
  coordinates (small numbers, so float32 cancellation stays ~1e-5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from video2gs.gaussians import quat_to_rotmat
from video2gs.render._common import (
    ALPHA_MAX,
    ALPHA_MIN,
    DEPTH_EPS,
    EPS2D,
    FOV_CLAMP,
    RADIUS_SIGMAS,
    T_STOP,
    TILE_SIZE,
    RenderOutput,
)

# Tiles are composited in square blocks of BATCH_TILE pixels. The gsplat tile grid (16 px) only
# decides which pixels a Gaussian may reach, and that is already folded into each pair's pixel
# rectangle (:func:`pixel_rects`), so any block size gives the same pixels; 8 wastes far less work
# on small splats than 16 (a block evaluates every listed Gaussian at each of its pixels).
BATCH_TILE = 8
PIXELS_PER_TILE = BATCH_TILE * BATCH_TILE
# Elements of one [B,P,K] work tensor per batch (about 16 MB in float32); ~8 such tensors live at once.
BATCH_ELEMENTS = 1 << 22
# Projection works on [V,N,...] tensors; views are processed in groups of at most this many pairs.
VIEW_GROUP_PAIRS = 1 << 22
# Safety margin of the alpha >= 1/255 ellipse bounding box (relative, and in pixels): pixels the
# margin adds are still tested exactly, so it only guards against rounding.
_ELLIPSE_MARGIN_REL = 1e-4
_ELLIPSE_MARGIN_PX = 1e-3


@dataclass
class Projection:
    """Per (view, Gaussian) screen-space quantities.

    means2d [V,N,2] (pixels, continuous; pixel i covers [i, i+1)), conics [V,N,3] (a, b, c of the
    inverse blurred 2D covariance [[a,b],[b,c]]), depths [V,N] (camera z), cov_diag [V,N,2]
    (blurred 2D variances xx, yy), radii [V,N] (3-sigma tile radius in px, 0 = culled; no grad).
    """

    means2d: torch.Tensor
    conics: torch.Tensor
    depths: torch.Tensor
    cov_diag: torch.Tensor
    radii: torch.Tensor


def project(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    near: float,
    far: float,
    eps2d: float = EPS2D,
) -> Projection:
    """EWA-project Gaussians (means [N,3], quats [N,4] wxyz, scales [N,3]) into V pinhole views
    (viewmats [V,4,4] OpenCV w2c, Ks [V,3,3]). Differentiable w.r.t. the Gaussians.

    Culled (radius 0): centre depth outside [near, far], singular 2D covariance, or the 3-sigma
    square entirely off-image.
    """
    rot = quat_to_rotmat(quats)  # [N,3,3]
    m = rot * scales[:, None, :]  # [N,3,3] = R S, so Sigma = m m^T
    r_v = viewmats[:, :3, :3].to(means.dtype)  # [V,3,3]
    t_v = viewmats[:, :3, 3].to(means.dtype)  # [V,3]
    mc = torch.einsum("vij,nj->vni", r_v, means) + t_v[:, None, :]  # [V,N,3]
    x, y, z = mc.unbind(-1)
    in_depth = (z >= near) & (z <= far)
    z = torch.where(in_depth, z, torch.ones_like(z))  # keeps culled pairs finite for autograd

    ks = Ks.to(means.dtype)
    fx, fy = ks[:, 0, 0, None], ks[:, 1, 1, None]  # [V,1]
    cx, cy = ks[:, 0, 2, None], ks[:, 1, 2, None]
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    tx = z * torch.minimum(torch.maximum(x / z, -(cx / fx + FOV_CLAMP * tan_x)), (width - cx) / fx + FOV_CLAMP * tan_x)
    ty = z * torch.minimum(torch.maximum(y / z, -(cy / fy + FOV_CLAMP * tan_y)), (height - cy) / fy + FOV_CLAMP * tan_y)
    # Rows of J W (the 2x3 Jacobian of the projection times the view rotation): [V,N,3] each.
    jw0 = (fx / z)[..., None] * r_v[:, None, 0, :] - (fx * tx / (z * z))[..., None] * r_v[:, None, 2, :]
    jw1 = (fy / z)[..., None] * r_v[:, None, 1, :] - (fy * ty / (z * z))[..., None] * r_v[:, None, 2, :]
    a0 = torch.einsum("vni,nij->vnj", jw0, m)  # [V,N,3]; 2D covariance = A A^T
    a1 = torch.einsum("vni,nij->vnj", jw1, m)
    cxx = (a0 * a0).sum(-1) + eps2d
    cyy = (a1 * a1).sum(-1) + eps2d
    cxy = (a0 * a1).sum(-1)
    det = cxx * cyy - cxy * cxy
    det_safe = torch.where(det > 0, det, torch.ones_like(det))
    conics = torch.stack([cyy / det_safe, -cxy / det_safe, cxx / det_safe], dim=-1)
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], dim=-1)

    with torch.no_grad():
        b = 0.5 * (cxx + cyy)
        v1 = b + torch.sqrt(torch.clamp(b * b - det, min=0.01))
        radii = torch.ceil(RADIUS_SIGMAS * torch.sqrt(v1))
        mx, my = means2d[..., 0], means2d[..., 1]
        inside = (mx + radii > 0) & (mx - radii < width) & (my + radii > 0) & (my - radii < height)
        radii = torch.where(in_depth & (det > 0) & inside, radii, torch.zeros_like(radii))
    return Projection(means2d, conics, mc[..., 2], torch.stack([cxx, cyy], dim=-1), radii)


@dataclass
class TilePlan:
    """Which (view, Gaussian) pairs each block of BATCH_TILE^2 pixels composites, front to back,
    in padded batches.

    batches: list of (blocks [B] long, slots [B,K] long index into the M listed pairs, filled
    [B,K] bool); origins [G,2] pixel origin of each of the G = V*TH*TW blocks; tile_counts [G].
    """

    batches: list
    origins: torch.Tensor
    num_tiles: int
    tile_counts: torch.Tensor


def pixel_rects(
    means2d: torch.Tensor, radii: torch.Tensor, cov_diag: torch.Tensor, opacities: torch.Tensor, width: int, height: int
) -> torch.Tensor:
    """Pixel rectangles [M,4] int64 (x0, x1, y0, y1; half-open) where each pair can contribute.

    = gsplat's tile range of the 3-sigma square (``floor(m/16 - r/16)`` .. ``ceil(m/16 + r/16)``)
    intersected with the bounding box of the alpha >= 1/255 ellipse and the image. Inputs are
    per pair: means2d [M,2], radii [M], cov_diag [M,2], opacities [M] (> 0).
    """
    tw, th = math.ceil(width / TILE_SIZE), math.ceil(height / TILE_SIZE)
    thresh = 2.0 * torch.log(255.0 * opacities).clamp(min=0)  # d^T S^-1 d <= thresh <=> alpha >= 1/255
    ext = torch.sqrt(thresh[:, None] * cov_diag) * (1 + _ELLIPSE_MARGIN_REL) + _ELLIPSE_MARGIN_PX  # [M,2]
    tile_m = means2d / TILE_SIZE
    tile_r = (radii / TILE_SIZE)[:, None]
    lim = torch.tensor([tw, th], device=means2d.device)
    t_lo = torch.minimum(torch.floor(tile_m - tile_r).long().clamp(min=0), lim) * TILE_SIZE
    t_hi = torch.minimum(torch.ceil(tile_m + tile_r).long().clamp(min=0), lim) * TILE_SIZE
    size = torch.tensor([width, height], device=means2d.device)
    # pixel i (centre i + 0.5) is inside [m - e, m + e]  <=>  ceil(m - e - 0.5) <= i <= floor(m + e - 0.5)
    lo = torch.maximum(torch.ceil(means2d - ext - 0.5).long(), t_lo).clamp(min=0)
    hi = torch.minimum(torch.floor(means2d + ext - 0.5).long() + 1, torch.minimum(t_hi, size))
    return torch.stack([lo[:, 0], hi[:, 0], lo[:, 1], hi[:, 1]], dim=-1)


@torch.no_grad()
def plan_tiles(
    rects: torch.Tensor, depths: torch.Tensor, view_ids: torch.Tensor, num_views: int, width: int, height: int,
    batch_elements: int = BATCH_ELEMENTS,
) -> TilePlan:
    """Bin M pairs (rects [M,4], depths [M], view_ids [M]) into blocks; sort each block by depth."""
    device = rects.device
    tw, th = math.ceil(width / BATCH_TILE), math.ceil(height / BATCH_TILE)
    num_tiles = num_views * tw * th
    m = rects.shape[0]
    x0, y0 = rects[:, 0] // BATCH_TILE, rects[:, 2] // BATCH_TILE
    nx = torch.where(rects[:, 1] > rects[:, 0], (rects[:, 1] - 1) // BATCH_TILE + 1 - x0, torch.zeros_like(x0))
    ny = torch.where(rects[:, 3] > rects[:, 2], (rects[:, 3] - 1) // BATCH_TILE + 1 - y0, torch.zeros_like(y0))
    per_pair = nx * ny  # [M] tiles each pair touches
    pair = torch.repeat_interleave(torch.arange(m, device=device), per_pair)  # [I]
    local = torch.arange(pair.numel(), device=device) - (torch.cumsum(per_pair, 0) - per_pair)[pair]
    tile_x = x0[pair] + local % nx[pair]
    tile_y = y0[pair] + local // nx[pair]
    tile = view_ids[pair] * (tw * th) + tile_y * tw + tile_x  # [I] global tile id
    # Front to back within a tile; equal depths keep input order (as gsplat's stable radix sort).
    rank = torch.empty(m, dtype=torch.long, device=device)
    rank[torch.sort(depths, stable=True).indices] = torch.arange(m, device=device)
    order = torch.sort(tile * max(m, 1) + rank[pair]).indices
    pair, tile = pair[order], tile[order]
    counts = torch.bincount(tile, minlength=num_tiles)  # [G]
    starts = torch.cumsum(counts, 0) - counts

    # Batches of tiles with similar list lengths (longest first), each within the element budget.
    busy = torch.nonzero(counts, as_tuple=True)[0]
    busy = busy[torch.sort(counts[busy], descending=True, stable=True).indices]
    busy_counts = counts[busy].tolist()
    batches, i = [], 0
    while i < len(busy_counts):
        k = busy_counts[i]
        b = max(1, batch_elements // (k * PIXELS_PER_TILE))
        tiles = busy[i : i + b]
        slot = torch.arange(k, device=device)
        filled = slot[None, :] < counts[tiles][:, None]  # [B,K]
        idx = torch.where(filled, starts[tiles][:, None] + slot[None, :], torch.zeros_like(filled, dtype=torch.long))
        batches.append((tiles, pair[idx], filled))
        i += b
    g = torch.arange(num_tiles, device=device) % (tw * th)
    origins = torch.stack([(g % tw) * BATCH_TILE, (g // tw) * BATCH_TILE], dim=-1)
    return TilePlan(batches, origins, num_tiles, counts)


def _pixel_features(device, dtype) -> torch.Tensor:
    """[P,6] = (1, x, y, x^2, y^2, x y) of the tile-local pixel centres (row-major, x fastest)."""
    p = torch.arange(PIXELS_PER_TILE, device=device)
    x = (p % BATCH_TILE).to(dtype) + 0.5
    y = (p // BATCH_TILE).to(dtype) + 0.5
    return torch.stack([torch.ones_like(x), x, y, x * x, y * y, x * y], dim=-1)


def _quad_coefs(mean: torch.Tensor, conic: torch.Tensor) -> torch.Tensor:
    """Coefficients [...,6] with 1/2 d^T S^-1 d = coef . (1, x, y, x^2, y^2, xy), d = p - mean."""
    mx, my = mean.unbind(-1)
    a, b, c = conic.unbind(-1)
    return torch.stack(
        [0.5 * a * mx * mx + 0.5 * c * my * my + b * mx * my, -(a * mx + b * my), -(c * my + b * mx), 0.5 * a, 0.5 * c, b],
        dim=-1,
    )


def _composite(mean, conic, opac, feats_pix):
    """Alpha and transmittance of one batch of tiles, laid out [B,P,K] (slots last: the scans
    along K are then contiguous, several times faster than along a middle dimension).

    mean [B,K,2] (tile-local), conic [B,K,3], opac [B,K] (0 in empty slots), feats_pix [P,6].
    Returns e = exp(-sigma), vis = o e, alpha (after clamp, 1/255 skip and the stop rule) and
    t_before (transmittance in front of each slot; meaningless where alpha is 0), all [B,P,K],
    and t_final [B,P].
    """
    sigma = feats_pix @ _quad_coefs(mean, conic).transpose(1, 2)  # [P,6] @ [B,6,K] -> [B,P,K]
    e = sigma.clamp_(min=0).neg_().exp_()  # sigma < 0 only by rounding next to the centre
    vis = e * opac[:, None, :]
    alpha = vis.clamp(max=ALPHA_MAX)
    alpha.masked_fill_(alpha < ALPHA_MIN, 0.0)
    one_minus = 1 - alpha
    t_after = torch.cumprod(one_minus, dim=-1)
    # The Gaussian that would take T to <= T_STOP, and every one behind it, drop out. T only
    # decreases, so the kept slots are a prefix and their transmittances are unchanged.
    dropped = t_after <= T_STOP
    alpha.masked_fill_(dropped, 0.0)
    t_final = t_after.masked_fill(dropped, 1.0).amin(dim=-1)  # T after the last kept slot
    t_before = t_after.div_(one_minus)  # exact enough: 1 - alpha >= 1e-3
    return e, vis, alpha, t_before, t_final


class _RasterizeTiles(torch.autograd.Function):
    """Composite listed pairs into tiles: (means2d [M,2], conics [M,3], opacities [M],
    feats [M,F], plan) -> (accumulated features [G,P,F] = sum_i w_i f_i, final transmittance [G,P])."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, feats, plan: TilePlan):
        g, f = plan.num_tiles, feats.shape[-1]
        acc = feats.new_zeros(g, PIXELS_PER_TILE, f)
        t_final = feats.new_ones(g, PIXELS_PER_TILE)
        fp = _pixel_features(feats.device, feats.dtype)
        for tiles, idx, filled in plan.batches:
            mean = means2d[idx] - plan.origins[tiles][:, None, :].to(means2d.dtype)
            opac = torch.where(filled, opacities[idx], 0.0)
            _, _, alpha, t_before, t_last = _composite(mean, conics[idx], opac, fp)
            acc[tiles] = (alpha * t_before) @ feats[idx]  # [B,P,K] @ [B,K,F]
            t_final[tiles] = t_last
        ctx.plan = plan
        ctx.save_for_backward(means2d, conics, opacities, feats)
        return acc, t_final

    @staticmethod
    def backward(ctx, g_acc, g_t):
        means2d, conics, opacities, feats = ctx.saved_tensors
        plan: TilePlan = ctx.plan
        fp = _pixel_features(feats.device, feats.dtype)
        g_means = torch.zeros_like(means2d)
        g_conics = torch.zeros_like(conics)
        g_opac = torch.zeros_like(opacities)
        g_feats = torch.zeros_like(feats)
        for tiles, idx, filled in plan.batches:
            mean = means2d[idx] - plan.origins[tiles][:, None, :].to(means2d.dtype)
            conic = conics[idx]
            opac = torch.where(filled, opacities[idx], 0.0)
            f = feats[idx]  # [B,K,F]
            e, vis, alpha, t_before, t_last = _composite(mean, conic, opac, fp)
            w = alpha * t_before  # [B,P,K] compositing weights
            ga = g_acc[tiles]  # [B,P,F]
            g_f = w.transpose(1, 2) @ ga  # [B,K,F]
            gc = ga @ f.transpose(1, 2)  # [B,P,K]: dL/d(pixel features) . f_k
            wg = w * gc
            # behind_k = sum_{j>k} wg_j + g_T T_final  (the loss through everything behind slot k)
            behind = (g_t[tiles] * t_last)[..., None] + wg.sum(-1, keepdim=True) - wg.cumsum(-1)
            # d/d alpha_k of sum_j alpha_j T_j f_j and of T_final: T_k gc_k - behind_k / (1 - alpha_k)
            g_vis = t_before * gc - behind / (1 - alpha)
            g_vis.masked_fill_((alpha == 0) | (vis >= ALPHA_MAX), 0.0)  # skipped, stopped or clamped
            g_o = (e * g_vis).sum(1)  # [B,K]
            g_sigma = g_vis.mul_(vis).neg_()  # d alpha / d sigma = -vis
            g_coef = g_sigma.transpose(1, 2) @ fp  # [B,K,P] @ [P,6] -> [B,K,6]
            gm, gcon = _quad_coef_backward(mean, conic, g_coef)
            flat = idx.reshape(-1)
            g_means.index_add_(0, flat, gm.reshape(-1, 2))
            g_conics.index_add_(0, flat, gcon.reshape(-1, 3))
            g_opac.index_add_(0, flat, g_o.reshape(-1))
            g_feats.index_add_(0, flat, g_f.reshape(-1, g_f.shape[-1]))
        return g_means, g_conics, g_opac, g_feats, None


def _quad_coef_backward(mean: torch.Tensor, conic: torch.Tensor, g: torch.Tensor):
    """Chain rule through :func:`_quad_coefs`: g [...,6] -> (d mean [...,2], d conic [...,3])."""
    mx, my = mean.unbind(-1)
    a, b, c = conic.unbind(-1)
    g0, g1, g2, g3, g4, g5 = g.unbind(-1)
    d_mx = (a * mx + b * my) * g0 - a * g1 - b * g2
    d_my = (c * my + b * mx) * g0 - b * g1 - c * g2
    d_a = 0.5 * mx * mx * g0 - mx * g1 + 0.5 * g3
    d_b = mx * my * g0 - my * g1 - mx * g2 + g5
    d_c = 0.5 * my * my * g0 - my * g2 + 0.5 * g4
    return torch.stack([d_mx, d_my], -1), torch.stack([d_a, d_b, d_c], -1)


def _tiles_to_image(x: torch.Tensor, num_views: int, width: int, height: int) -> torch.Tensor:
    """[G,P,...] tile-major values -> [V,H,W,...] images."""
    tw, th = math.ceil(width / BATCH_TILE), math.ceil(height / BATCH_TILE)
    rest = x.shape[2:]
    x = x.reshape(num_views, th, tw, BATCH_TILE, BATCH_TILE, *rest)
    x = x.transpose(2, 3).reshape(num_views, th * BATCH_TILE, tw * BATCH_TILE, *rest)
    return x[:, :height, :width]


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
    """Render N Gaussians into V views; differentiable w.r.t. every Gaussian input and backgrounds.

    means [N,3], quats [N,4] (wxyz), scales [N,3], opacities [N], colors [N,3]; viewmats [V,4,4]
    (OpenCV w2c), Ks [V,3,3]; backgrounds [V,3]. Computes in the dtype of ``means`` (float64
    works, for gradient checks). Returns :class:`RenderOutput` ([V,H,W,3|1|1]).
    """
    num_views, n = viewmats.shape[0], means.shape[0]
    group = max(1, VIEW_GROUP_PAIRS // max(n, 1))
    if num_views > group:  # bound the [V,N,...] projection tensors
        parts = [
            rasterize(means, quats, scales, opacities, colors, viewmats[i : i + group], Ks[i : i + group],
                      width, height, near, far, backgrounds[i : i + group], eps2d)
            for i in range(0, num_views, group)
        ]
        return RenderOutput(*(torch.cat(p, 0) for p in zip(*parts)))

    proj = project(means, quats, scales, viewmats, Ks, width, height, near, far, eps2d)
    visible = (proj.radii > 0) & (opacities >= ALPHA_MIN)[None, :]  # [V,N]
    vi, ni = torch.nonzero(visible, as_tuple=True)  # the M listed (view, Gaussian) pairs
    means2d = proj.means2d[vi, ni]  # [M,2]
    depths = proj.depths[vi, ni]  # [M]
    opac = opacities[ni]
    with torch.no_grad():
        rects = pixel_rects(means2d.detach(), proj.radii[vi, ni], proj.cov_diag[vi, ni].detach(), opac.detach(), width, height)
        plan = plan_tiles(rects, depths.detach(), vi, num_views, width, height)
    feats = torch.cat([colors[ni], depths[:, None]], dim=-1)  # [M,4]: RGB + depth, composited alike
    acc, t_final = _RasterizeTiles.apply(means2d, proj.conics[vi, ni], opac, feats, plan)
    acc = _tiles_to_image(acc, num_views, width, height)  # [V,H,W,4]
    t_final = _tiles_to_image(t_final, num_views, width, height)[..., None]  # [V,H,W,1]
    alpha = 1 - t_final
    rgb = acc[..., :3] + t_final * backgrounds[:, None, None, :].to(acc.dtype)
    depth = acc[..., 3:] / alpha.clamp(min=DEPTH_EPS)
    return RenderOutput(rgb.clamp(0, 1), alpha, depth)
