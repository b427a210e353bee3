"""Fast CPU forward rasterizer (numba), same semantics as the torch reference (gsplat classic).

Pipeline per view: project every Gaussian (EWA, +0.3 px^2 low-pass, near/far cull, 3-sigma
radius) -> stable radix sort of the visible ones by view depth -> bin them into 16x16 tiles
(counting sort, so each tile's list stays front to back) -> composite tile by tile.

All of it runs in one parallel kernel over "work items" of (view, band): a band is every n-th
row of tiles. Many views (e.g. 360 candidate azimuths) get one band each, so a thread renders
whole views with no per-view Python or parallel set-up; a single view is split into as many
interleaved bands as there are threads (each thread projects all Gaussians, which is cheap, and
composites only its band).

Exact shortcuts (outputs unchanged): Gaussians with opacity < 1/255 never reach the 1/255 alpha
threshold and are dropped; a Gaussian is only listed in the tiles, and only visits the pixel rows,
of its gsplat tile range that meet the bounding box of its alpha >= 1/255 ellipse
(``1/2 d^T S^-1 d <= ln(255 o)``); a tile stops once all its pixels have stopped.

Compositing updates whole 16-pixel tile rows per Gaussian without branches, so it runs as SIMD;
``exp`` is a polynomial there (relative error < 3e-7). Kernels compile on first use and are cached
on disk (``cache=True``).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils, types
from numba.extending import intrinsic

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

# float32 constants so the compositing loop stays in single precision (numba promotes
# float32 op python-float to float64).
_F_HALF = np.float32(0.5)
_F_ONE = np.float32(1.0)
_F_ZERO = np.float32(0.0)
_F_ALPHA_MAX = np.float32(ALPHA_MAX)
_F_ALPHA_MIN = np.float32(ALPHA_MIN)
_F_T_STOP = np.float32(T_STOP)
_F_DEPTH_EPS = np.float32(DEPTH_EPS)
_F_EIGHTH = np.float32(0.125)
# exp(-6) < 1/255: beyond sigma = 6 no Gaussian of opacity <= 1 reaches the alpha threshold.
_F_SIGMA_CAP = np.float32(6.0)
_EXP_C = tuple(np.float32((-1) ** i / math.factorial(i)) for i in range(10))  # Taylor coefficients of exp(-u)
# Margins of the alpha >= 1/255 ellipse box (they only widen the region that is tested exactly).
_ELLIPSE_MARGIN_REL = 1e-4
_ELLIPSE_MARGIN_PX = 1e-3

# A projected Gaussian, one float32 row of 16 (64 bytes, one cache line) per Gaussian and view:
# centre, conic, opacity, view depth, colour, then its pixel rectangle x0 x1 y0 y1 (half-open,
# integers stored exactly as floats; x0 >= x1 = culled).
_MX, _MY, _CA, _CB, _CC, _OP, _Z, _R, _G, _B, _X0, _X1, _Y0, _Y1 = range(14)
_NPROJ = 16
# A tile-list entry: columns _MX.._B of the projected Gaussian, then the rows it covers in that
# tile, packed as y0 + 32 y1 (tile-local). Compositing reads each tile's entries sequentially.
_ROWS = 10
_NENTRY = 11
_PREFETCH_AHEAD = 16  # Gaussians (rows of the projection) requested ahead while binning


@intrinsic
def _prefetch_row(typingctx, arr, row):
    """Ask the CPU to start loading row ``row`` of the 2D array ``arr`` (``llvm.prefetch``).

    Binning walks the projected Gaussians in depth order, i.e. at random through memory; hinting
    rows a few steps ahead overlaps those cache misses (about 2.5x faster binning). No effect on
    results.
    """
    sig = types.void(arr, row)

    def codegen(context, builder, signature, args):
        ary_t = signature.args[0]
        ary = context.make_array(ary_t)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer(context, builder, ary_t, ary, [args[1], zero], wraparound=False)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # read access, high temporal locality, data cache
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, error_model="numpy")
def _project_range(lo, hi, means, cov3, opac, colors, thresh, vm, K, width, height, near, far, eps2d, proj):
    """Project Gaussians lo..hi-1 into one view, writing rows of proj [N,16] (columns above).

    means [N,3], cov3 [N,6] world covariances (xx xy xz yy yz zz), opac [N], colors [N,3],
    thresh [N] = 2 ln(255 o) (< 0: never visible), vm [4,4] OpenCV w2c, K [3,3].
    """
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    lim_xp, lim_xn = (width - cx) / fx + FOV_CLAMP * tan_x, cx / fx + FOV_CLAMP * tan_x
    lim_yp, lim_yn = (height - cy) / fy + FOV_CLAMP * tan_y, cy / fy + FOV_CLAMP * tan_y
    tiles_x = (width + TILE_SIZE - 1) // TILE_SIZE
    tiles_y = (height + TILE_SIZE - 1) // TILE_SIZE
    for i in range(lo, hi):
        proj[i, _X0] = 0.0
        proj[i, _X1] = 0.0
        if thresh[i] < 0:
            continue
        px, py, pz = means[i, 0], means[i, 1], means[i, 2]
        x = vm[0, 0] * px + vm[0, 1] * py + vm[0, 2] * pz + vm[0, 3]
        y = vm[1, 0] * px + vm[1, 1] * py + vm[1, 2] * pz + vm[1, 3]
        z = vm[2, 0] * px + vm[2, 1] * py + vm[2, 2] * pz + vm[2, 3]
        if z < near or z > far:
            continue
        tx = z * min(max(x / z, -lim_xn), lim_xp)
        ty = z * min(max(y / z, -lim_yn), lim_yp)
        # rows of J W: the projection Jacobian times the view rotation
        j0 = fx / z
        j2 = -fx * tx / (z * z)
        a0 = j0 * vm[0, 0] + j2 * vm[2, 0]
        a1 = j0 * vm[0, 1] + j2 * vm[2, 1]
        a2 = j0 * vm[0, 2] + j2 * vm[2, 2]
        j1 = fy / z
        j2 = -fy * ty / (z * z)
        b0 = j1 * vm[1, 0] + j2 * vm[2, 0]
        b1 = j1 * vm[1, 1] + j2 * vm[2, 1]
        b2 = j1 * vm[1, 2] + j2 * vm[2, 2]
        sxx, sxy, sxz, syy, syz, szz = cov3[i, 0], cov3[i, 1], cov3[i, 2], cov3[i, 3], cov3[i, 4], cov3[i, 5]
        sa0 = sxx * a0 + sxy * a1 + sxz * a2
        sa1 = sxy * a0 + syy * a1 + syz * a2
        sa2 = sxz * a0 + syz * a1 + szz * a2
        sb0 = sxx * b0 + sxy * b1 + sxz * b2
        sb1 = sxy * b0 + syy * b1 + syz * b2
        sb2 = sxz * b0 + syz * b1 + szz * b2
        cxx = a0 * sa0 + a1 * sa1 + a2 * sa2 + eps2d
        cxy = b0 * sa0 + b1 * sa1 + b2 * sa2
        cyy = b0 * sb0 + b1 * sb1 + b2 * sb2 + eps2d
        det = cxx * cyy - cxy * cxy
        if det <= 0:
            continue
        mx = fx * x / z + cx
        my = fy * y / z + cy
        bb = 0.5 * (cxx + cyy)
        radius = math.ceil(RADIUS_SIGMAS * math.sqrt(bb + math.sqrt(max(0.01, bb * bb - det))))
        if mx + radius <= 0 or mx - radius >= width or my + radius <= 0 or my - radius >= height:
            continue
        # gsplat's tile range of the 3-sigma square, intersected with the alpha >= 1/255 ellipse box
        tx0 = min(max(math.floor(mx / TILE_SIZE - radius / TILE_SIZE), 0), tiles_x) * TILE_SIZE
        tx1 = min(max(math.ceil(mx / TILE_SIZE + radius / TILE_SIZE), 0), tiles_x) * TILE_SIZE
        ty0 = min(max(math.floor(my / TILE_SIZE - radius / TILE_SIZE), 0), tiles_y) * TILE_SIZE
        ty1 = min(max(math.ceil(my / TILE_SIZE + radius / TILE_SIZE), 0), tiles_y) * TILE_SIZE
        ex = math.sqrt(thresh[i] * cxx) * (1 + _ELLIPSE_MARGIN_REL) + _ELLIPSE_MARGIN_PX
        ey = math.sqrt(thresh[i] * cyy) * (1 + _ELLIPSE_MARGIN_REL) + _ELLIPSE_MARGIN_PX
        # pixel j (centre j + 0.5) lies in [m - e, m + e]  <=>  ceil(m - e - 0.5) <= j <= floor(m + e - 0.5)
        x0 = max(math.ceil(mx - ex - 0.5), tx0, 0)
        x1 = min(math.floor(mx + ex - 0.5) + 1, tx1, width)
        y0 = max(math.ceil(my - ey - 0.5), ty0, 0)
        y1 = min(math.floor(my + ey - 0.5) + 1, ty1, height)
        if x0 >= x1 or y0 >= y1:
            continue
        proj[i, _MX] = mx
        proj[i, _MY] = my
        proj[i, _CA] = cyy / det
        proj[i, _CB] = -cxy / det
        proj[i, _CC] = cxx / det
        proj[i, _OP] = opac[i]
        proj[i, _Z] = z
        proj[i, _R] = colors[i, 0]
        proj[i, _G] = colors[i, 1]
        proj[i, _B] = colors[i, 2]
        proj[i, _X0] = x0
        proj[i, _X1] = x1
        proj[i, _Y0] = y0
        proj[i, _Y1] = y1


@njit(cache=True)
def _depth_order(ids, depth):
    """Stable LSD radix sort (3 passes x 11 bits): ``ids`` [M] reordered by float32 ``depth`` [M]."""
    m = ids.shape[0]
    keys = depth.view(np.uint32).copy()
    sign = np.uint32(0x80000000)
    for j in range(m):
        # order-preserving map of IEEE floats to unsigned ints (negative depths flip all bits)
        keys[j] = ~keys[j] if keys[j] & sign else keys[j] | sign
    src_k, src_i = keys, ids.copy()
    dst_k, dst_i = np.empty_like(keys), np.empty_like(ids)
    hist = np.empty(2048, np.int64)
    for shift in (0, 11, 22):
        hist[:] = 0
        for j in range(m):
            hist[(src_k[j] >> np.uint32(shift)) & np.uint32(2047)] += 1
        total = 0
        for b in range(2048):
            c = hist[b]
            hist[b] = total
            total += c
        for j in range(m):
            b = (src_k[j] >> np.uint32(shift)) & np.uint32(2047)
            dst_k[hist[b]] = src_k[j]
            dst_i[hist[b]] = src_i[j]
            hist[b] += 1
        src_k, dst_k = dst_k, src_k
        src_i, dst_i = dst_i, src_i
    return src_i


@njit(cache=True)
def _in_band(y0, y1, band, n_bands):
    """Do pixel rows y0..y1-1 reach a tile row r with r % n_bands == band?"""
    r0 = y0 // TILE_SIZE
    r1 = (y1 - 1) // TILE_SIZE
    if r1 - r0 + 1 >= n_bands:
        return True
    for r in range(r0, r1 + 1):
        if r % n_bands == band:
            return True
    return False


@njit(cache=True)
def _sort_and_bin(n, proj, tiles_x, tiles_y, band, n_bands):
    """Bin the visible Gaussians of one view that reach the band's tile rows, front to back.

    Returns (starts [G+1] int64, entries [I,11] float32): tile t's list is entries
    starts[t]:starts[t+1], sorted by view depth; tiles of other bands stay empty.
    """
    n_tiles = tiles_x * tiles_y
    starts = np.zeros(n_tiles + 1, np.int64)
    ids = np.empty(n, np.int64)
    depth = np.empty(n, np.float32)
    m = 0
    for i in range(n):  # in index order: sequential reads
        x0, x1, y0, y1 = int(proj[i, _X0]), int(proj[i, _X1]), int(proj[i, _Y0]), int(proj[i, _Y1])
        if x0 < x1 and _in_band(y0, y1, band, n_bands):
            ids[m] = i
            depth[m] = proj[i, _Z]
            m += 1
            for ty in range(y0 // TILE_SIZE, (y1 - 1) // TILE_SIZE + 1):
                if ty % n_bands == band:
                    for tx in range(x0 // TILE_SIZE, (x1 - 1) // TILE_SIZE + 1):
                        starts[ty * tiles_x + tx + 1] += 1
    for t in range(n_tiles):
        starts[t + 1] += starts[t]
    order = _depth_order(ids[:m], depth[:m])
    fill = starts[:-1].copy()
    entries = np.empty((starts[n_tiles], _NENTRY), np.float32)
    for s in range(m):  # in depth order, so every tile's list is front to back
        if s + _PREFETCH_AHEAD < m:
            _prefetch_row(proj, order[s + _PREFETCH_AHEAD])
        i = order[s]
        x0, x1, y0, y1 = int(proj[i, _X0]), int(proj[i, _X1]), int(proj[i, _Y0]), int(proj[i, _Y1])
        for ty in range(y0 // TILE_SIZE, (y1 - 1) // TILE_SIZE + 1):
            if ty % n_bands == band:
                rows = max(y0 - ty * TILE_SIZE, 0) + 32 * min(y1 - ty * TILE_SIZE, TILE_SIZE)
                for tx in range(x0 // TILE_SIZE, (x1 - 1) // TILE_SIZE + 1):
                    t = ty * tiles_x + tx
                    e = fill[t]
                    fill[t] += 1
                    for c in range(_ROWS):
                        entries[e, c] = proj[i, c]
                    entries[e, _ROWS] = rows
    return starts, entries


@njit(cache=True, inline="always")
def _exp_neg(sigma):
    """exp(-sigma) for sigma in [0, 6], branch-free so the tile-row loop vectorizes: degree-9
    Taylor polynomial of exp(-sigma/8), raised to the 8th power (relative error < 3e-7)."""
    u = sigma * _F_EIGHTH
    e = _EXP_C[0] + u * (_EXP_C[1] + u * (_EXP_C[2] + u * (_EXP_C[3] + u * (_EXP_C[4] + u * (
        _EXP_C[5] + u * (_EXP_C[6] + u * (_EXP_C[7] + u * (_EXP_C[8] + u * _EXP_C[9]))))))))
    e = e * e
    e = e * e
    return e * e


@njit(cache=True, fastmath=True)
def _raster_tile(t, tiles_x, width, height, starts, entries, buf, bg, rgb, alpha, depth):
    """Composite tile t front to back and write its final pixels.

    starts/entries: the tile lists of :func:`_sort_and_bin`. buf [5,16,16] float32 scratch:
    transmittance, then accumulated r, g, b, depth. A pixel that has stopped stores -T (its final
    transmittance, negated), so one value carries both.
    Each listed Gaussian updates whole 16-pixel rows of the tile (the rows of its rectangle):
    pixels where it stays below alpha 1/255 are left unchanged by the exact per-pixel test, and
    full rows without branches let the loop run as 16-lane SIMD. Writes rgb [H,W,3] (over the
    background bg [3], clamped), alpha [H,W] and expected depth [H,W].
    """
    x_lo = (t % tiles_x) * TILE_SIZE
    y_lo = (t // tiles_x) * TILE_SIZE
    buf[0] = _F_ONE
    buf[1:] = _F_ZERO
    for k in range(starts[t], starts[t + 1]):
        rows = int(entries[k, _ROWS])
        mx = entries[k, _MX] - np.float32(x_lo)
        my = entries[k, _MY] - np.float32(y_lo)
        ca, cb, cc = entries[k, _CA], entries[k, _CB], entries[k, _CC]
        op, z = entries[k, _OP], entries[k, _Z]
        cr, cg, cbl = entries[k, _R], entries[k, _G], entries[k, _B]
        for y in range(rows % 32, rows // 32):
            dy = np.float32(y) + _F_HALF - my
            for x in range(TILE_SIZE):
                tp = buf[0, y, x]
                dx = np.float32(x) + _F_HALF - mx
                # negative only by rounding next to the centre: treated as 0
                sigma = max(_F_HALF * (ca * dx * dx + cc * dy * dy) + cb * dx * dy, _F_ZERO)
                a = min(_F_ALPHA_MAX, op * _exp_neg(min(sigma, _F_SIGMA_CAP)))
                live = (tp > _F_ZERO) & (sigma < _F_SIGMA_CAP) & (a >= _F_ALPHA_MIN)
                t_next = tp * (_F_ONE - a)
                stop = live & (t_next <= _F_T_STOP)
                w = a * tp if (live and not stop) else _F_ZERO
                buf[1, y, x] += w * cr
                buf[2, y, x] += w * cg
                buf[3, y, x] += w * cbl
                buf[4, y, x] += w * z
                buf[0, y, x] = -tp if stop else (t_next if live else tp)
        if (k - starts[t]) % 16 == 15:  # every 16 Gaussians: stop once every pixel has stopped
            n_live = 0
            for y in range(TILE_SIZE):
                for x in range(TILE_SIZE):
                    n_live += buf[0, y, x] > _F_ZERO
            if n_live == 0:
                break
    for y in range(min(TILE_SIZE, height - y_lo)):
        for x in range(min(TILE_SIZE, width - x_lo)):
            tf = abs(buf[0, y, x])
            for c in range(3):
                rgb[y_lo + y, x_lo + x, c] = min(max(buf[1 + c, y, x] + tf * bg[c], _F_ZERO), _F_ONE)
            a = _F_ONE - tf
            alpha[y_lo + y, x_lo + x] = a
            depth[y_lo + y, x_lo + x] = buf[4, y, x] / max(a, _F_DEPTH_EPS)


@njit(cache=True, parallel=True)
def _render_kernel(means, cov3, opac, colors, thresh, vms, Ks, width, height, near, far, eps2d, bgs,
                   rgb, alpha, depth, n_bands, n_threads):
    """Render V views split into n_bands interleaved bands of tile rows each.

    means [N,3] f64, cov3 [N,6] f64 world covariances, opac [N] f32, colors [N,3] f32, thresh [N]
    f64 (2 ln(255 o), < 0 = never visible), vms [V,4,4] f64 OpenCV w2c, Ks [V,3,3] f64, bgs [V,3]
    f32. Writes rgb [V,H,W,3], alpha [V,H,W], depth [V,H,W]. Work items (view, band) are dealt
    round-robin to one worker per thread.
    """
    n = means.shape[0]
    n_items = vms.shape[0] * n_bands
    n_workers = min(n_threads, n_items)
    tiles_x = (width + TILE_SIZE - 1) // TILE_SIZE
    tiles_y = (height + TILE_SIZE - 1) // TILE_SIZE
    for w in prange(n_workers):
        proj = np.empty((n, _NPROJ), np.float32)
        buf = np.empty((5, TILE_SIZE, TILE_SIZE), np.float32)
        for item in range(w, n_items, n_workers):
            v = item // n_bands
            band = item % n_bands
            _project_range(0, n, means, cov3, opac, colors, thresh, vms[v], Ks[v], width, height, near, far, eps2d,
                           proj)
            starts, entries = _sort_and_bin(n, proj, tiles_x, tiles_y, band, n_bands)
            for ty in range(band, tiles_y, n_bands):
                for tx in range(tiles_x):
                    _raster_tile(ty * tiles_x + tx, tiles_x, width, height, starts, entries, buf, bgs[v], rgb[v],
                                 alpha[v], depth[v])


def default_bands(num_views: int, n_threads: int) -> int:
    """Bands per view so that work items spread evenly over threads (1 once views are plentiful)."""
    if num_views >= 2 * n_threads:
        return 1
    return n_threads // math.gcd(num_views, n_threads)


def world_covariances(quats: torch.Tensor, scales: torch.Tensor) -> np.ndarray:
    """Upper triangles of R S S R^T, [N,6] float64 (xx xy xz yy yz zz); quats [N,4] wxyz, scales [N,3]."""
    rot = quat_to_rotmat(quats.detach().to("cpu", torch.float64))
    m = rot * scales.detach().to("cpu", torch.float64)[:, None, :]
    cov = m @ m.transpose(1, 2)
    return np.ascontiguousarray(cov[:, [0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2]].numpy())


def _as_array(t: torch.Tensor, dtype) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to("cpu").numpy(), dtype=dtype)


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
    *,
    n_bands: int | None = None,
) -> RenderOutput:
    """Render N Gaussians into V views on the CPU (no gradients).

    means [N,3], quats [N,4] (wxyz), scales [N,3], opacities [N], colors [N,3]; viewmats [V,4,4]
    (OpenCV w2c), Ks [V,3,3], backgrounds [V,3]. Returns float32 CPU tensors ([V,H,W,3|1|1]).
    ``n_bands`` overrides :func:`default_bands` (the result does not depend on it).
    """
    num_views = viewmats.shape[0]
    opac = _as_array(opacities, np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        # 2 ln(255 o): alpha >= 1/255 only inside d^T S^-1 d <= thresh; -1 marks "never visible"
        thresh = np.where(opac >= np.float32(ALPHA_MIN), 2.0 * np.log(255.0 * opac.astype(np.float64)), -1.0)
    rgb = np.empty((num_views, height, width, 3), np.float32)
    alpha = np.empty((num_views, height, width), np.float32)
    depth = np.empty((num_views, height, width), np.float32)
    # numba.get_num_threads() is read here, not in the kernel: calling it there defeats cache=True.
    n_threads = numba.get_num_threads()
    _render_kernel(
        _as_array(means, np.float64), world_covariances(quats, scales), opac, _as_array(colors, np.float32),
        np.ascontiguousarray(thresh), _as_array(viewmats, np.float64), _as_array(Ks, np.float64),
        width, height, float(near), float(far), float(eps2d), _as_array(backgrounds, np.float32),
        rgb, alpha, depth, n_bands or default_bands(num_views, n_threads), n_threads,
    )
    return RenderOutput(torch.from_numpy(rgb), torch.from_numpy(alpha)[..., None], torch.from_numpy(depth)[..., None])
