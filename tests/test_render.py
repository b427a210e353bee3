"""Renderer: backends agree on real scenes and with an independent per-pixel reference; analytic
footprints, compositing order, the stop rule, near/far culling, backgrounds, backend selection."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import DATA
from video2gs.camera import Cameras, focal_from_fovy
from video2gs.errors import UserError
from video2gs.gaussians import Gaussians, quat_to_rotmat
from video2gs.render import BACKENDS, available_backends, render

BACKENDS_HERE = available_backends()
SPLATS = DATA / "splats"


# -- scenes -----------------------------------------------------------------------------------
def load_splat(name: str, keep: int | None = None) -> Gaussians:
    """A .splat object (32-byte records), flipped from -Y up to +Y up; every k-th record if keep."""
    path = SPLATS / f"{name}.splat"
    if not path.is_file():
        pytest.skip(f"{path} not found (needs ../shared/data/splats)")
    rec = np.fromfile(path, dtype=[("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])
    if keep is not None:
        rec = rec[:: max(1, len(rec) // keep)]
    quat = (rec["rot"].astype(np.float32) - 128) / 128
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    rgba = rec["rgba"].astype(np.float32) / 255
    data = np.concatenate([rec["pos"], rgba[:, 3:], rec["scale"], quat, rgba[:, :3]], axis=1)
    return Gaussians(torch.from_numpy(np.ascontiguousarray(data))).flip_up_axis()


def gaussian(xyz, scale, opacity, rgb, quat=(1.0, 0.0, 0.0, 0.0), dtype=torch.float32) -> torch.Tensor:
    """One Gaussian row [14]; scale is a float (isotropic) or 3 values."""
    scale = [scale] * 3 if np.isscalar(scale) else list(scale)
    return torch.tensor([*xyz, opacity, *scale, *quat, *rgb], dtype=dtype)


def random_scene(n: int, seed: int = 0, dtype=torch.float32, scales=(0.02, 0.12)) -> torch.Tensor:
    """n random anisotropic Gaussians in [-0.4, 0.4]^3, opacities 0.05..0.95, random colours."""
    g = torch.Generator().manual_seed(seed)
    xyz = (torch.rand(n, 3, generator=g) - 0.5) * 0.8
    scale = torch.exp(torch.empty(n, 3).uniform_(math.log(scales[0]), math.log(scales[1]), generator=g))
    quat = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    opacity = torch.empty(n, 1).uniform_(0.05, 0.95, generator=g)
    rgb = torch.rand(n, 3, generator=g)
    return torch.cat([xyz, opacity, scale, quat, rgb], dim=-1).to(dtype)


# -- an independent, literal per-pixel implementation of gsplat classic (numpy, float64) ---------
def naive_render(data: torch.Tensor, cams: Cameras, width: int, height: int, bg) -> tuple[np.ndarray, np.ndarray]:
    """Project, bin into 16x16 tiles with gsplat's tile range, sort each tile by depth and
    composite every pixel of every listed tile one Gaussian at a time. Returns rgb [V,H,W,3], alpha [V,H,W]."""
    d = data.double().numpy()
    xyz, opac, scale, rgb = d[:, 0:3], d[:, 3], d[:, 4:7], d[:, 11:14]
    rot = quat_to_rotmat(torch.from_numpy(d[:, 7:11])).numpy()
    cov3 = np.einsum("nij,nj,nkj->nik", rot, scale**2, rot)
    w2c = cams.viewmats().double().numpy()
    ks = cams.Ks(width, height).double().numpy()
    tw, th = -(-width // 16), -(-height // 16)
    out_rgb = np.zeros((len(w2c), height, width, 3))
    out_alpha = np.zeros((len(w2c), height, width))
    for v in range(len(w2c)):
        fx, fy, cx, cy = ks[v, 0, 0], ks[v, 1, 1], ks[v, 0, 2], ks[v, 1, 2]
        tiles = [[[] for _ in range(tw)] for _ in range(th)]
        for i in range(len(d)):
            x, y, z = w2c[v, :3, :3] @ xyz[i] + w2c[v, :3, 3]
            if z < cams.near or z > cams.far:
                continue
            limx, limy = 1.3 * 0.5 * width / fx, 1.3 * 0.5 * height / fy
            tx, ty = z * np.clip(x / z, -limx, limx), z * np.clip(y / z, -limy, limy)
            jac = np.array([[fx / z, 0, -fx * tx / z**2], [0, fy / z, -fy * ty / z**2]])
            cov2 = jac @ w2c[v, :3, :3] @ cov3[i] @ w2c[v, :3, :3].T @ jac.T + 0.3 * np.eye(2)
            mean = np.array([fx * x / z + cx, fy * y / z + cy])
            lam = 0.5 * np.trace(cov2) + math.sqrt(max(0.01, 0.25 * np.trace(cov2) ** 2 - np.linalg.det(cov2)))
            r = math.ceil(3 * math.sqrt(lam))
            if mean[0] + r <= 0 or mean[0] - r >= width or mean[1] + r <= 0 or mean[1] - r >= height:
                continue
            x0, x1 = (min(max(f(c), 0), lim) for f, c, lim in ((math.floor, (mean[0] - r) / 16, tw), (math.ceil, (mean[0] + r) / 16, tw)))
            y0, y1 = (min(max(f(c), 0), lim) for f, c, lim in ((math.floor, (mean[1] - r) / 16, th), (math.ceil, (mean[1] + r) / 16, th)))
            for ty_ in range(y0, y1):
                for tx_ in range(x0, x1):
                    tiles[ty_][tx_].append((z, i, mean, np.linalg.inv(cov2)))
        for ty_ in range(th):
            for tx_ in range(tw):
                ys, xs = np.mgrid[ty_ * 16 : min(ty_ * 16 + 16, height), tx_ * 16 : min(tx_ * 16 + 16, width)]
                pix = np.stack([xs + 0.5, ys + 0.5], -1)  # [h,w,2] pixel centres
                trans = np.ones(xs.shape)
                live = np.ones(xs.shape, bool)
                col = np.zeros(xs.shape + (3,))
                for z, i, mean, conic in sorted(tiles[ty_][tx_], key=lambda e: (e[0], e[1])):
                    dd = pix - mean
                    sigma = 0.5 * np.einsum("hwi,ij,hwj->hw", dd, conic, dd)
                    a = np.minimum(0.999, opac[i] * np.exp(-sigma))
                    use = live & (a >= 1 / 255)
                    t_next = trans * (1 - a)
                    stop = use & (t_next <= 1e-4)
                    live &= ~stop
                    use &= ~stop
                    col += np.where(use, a * trans, 0)[..., None] * rgb[i]
                    trans = np.where(use, t_next, trans)
                out_rgb[v, ys, xs] = col + trans[..., None] * np.asarray(bg)[v]
                out_alpha[v, ys, xs] = 1 - trans
    return np.clip(out_rgb, 0, 1), out_alpha


# -- analytic single-Gaussian footprint -----------------------------------------------------------
def analytic_alpha(xyz_world, sigma, opacity, cams: Cameras, width: int, height: int, blur=0.3) -> np.ndarray:
    """alpha [H,W] of one isotropic Gaussian seen by the front camera (w2c = diag(1,-1,-1), t=(0,0,1.5)).

    EWA: Sigma_2D = s^2 J J^T + blur I with J the pinhole Jacobian at the centre; pixel centres
    i + 0.5; alpha below 1/255 is 0; only pixels of tiles within gsplat's 3-sigma tile range count.
    """
    x, y, z = xyz_world[0], -xyz_world[1], 1.5 - xyz_world[2]
    f = focal_from_fovy(cams.fovy_deg, height)
    jac = np.array([[f / z, 0, -f * x / z**2], [0, f / z, -f * y / z**2]])
    cov2 = sigma**2 * jac @ jac.T + blur * np.eye(2)
    mean = np.array([f * x / z + width / 2, f * y / z + height / 2])
    ys, xs = np.mgrid[0:height, 0:width]
    dd = np.stack([xs + 0.5, ys + 0.5], -1) - mean
    a = np.minimum(0.999, opacity * np.exp(-0.5 * np.einsum("hwi,ij,hwj->hw", dd, np.linalg.inv(cov2), dd)))
    a[a < 1 / 255] = 0
    lam = np.linalg.eigvalsh(cov2).max()
    r = math.ceil(3 * math.sqrt(lam))
    tx0, tx1 = math.floor((mean[0] - r) / 16), math.ceil((mean[0] + r) / 16)
    ty0, ty1 = math.floor((mean[1] - r) / 16), math.ceil((mean[1] + r) / 16)
    in_tiles = (xs // 16 >= tx0) & (xs // 16 < tx1) & (ys // 16 >= ty0) & (ys // 16 < ty1)
    return np.where(in_tiles, a, 0.0)


FRONT = Cameras.orbit([0.0])


@pytest.mark.parametrize("backend", BACKENDS_HERE)
def test_single_isotropic_gaussian_matches_analytic_footprint(backend):
    xyz, s, o, c = (0.06, -0.04, 0.2), 0.02, 0.8, (0.2, 0.4, 0.9)
    out = render(gaussian(xyz, s, o, c)[None], FRONT, 64, 48, background=(1.0, 1.0, 1.0), backend=backend)
    expect = analytic_alpha(xyz, s, o, FRONT, 64, 48)
    assert expect.max() > 0.5 and (expect > 0).sum() > 30  # a real footprint, several pixels wide
    got_alpha = out.alpha[0, ..., 0].numpy()
    np.testing.assert_allclose(got_alpha, expect, atol=2e-5)
    np.testing.assert_allclose(out.rgb[0].numpy(), expect[..., None] * np.array(c) + (1 - expect[..., None]), atol=2e-5)
    # the +0.3 px^2 low-pass is visible at this size: leaving it out would be caught
    assert np.abs(analytic_alpha(xyz, s, o, FRONT, 64, 48, blur=0.0) - expect).max() > 0.05
    # expected depth is the centre's view depth wherever anything was hit
    hit = got_alpha > 0
    np.testing.assert_allclose(out.depth[0, ..., 0].numpy()[hit], 1.5 - xyz[2], rtol=1e-5)
    assert (out.depth[0, ..., 0].numpy()[~hit] == 0).all()


@pytest.mark.parametrize("backend", BACKENDS_HERE)
def test_occlusion_composites_front_to_back(backend):
    front = gaussian((0.01, 0.0, 0.3), 0.05, 0.6, (1.0, 0.0, 0.0))
    back = gaussian((0.0, 0.01, -0.3), 0.15, 0.7, (0.0, 0.0, 1.0))
    bg = (0.0, 1.0, 0.0)
    a = render(torch.stack([front, back]), FRONT, 64, 64, background=bg, backend=backend)
    b = render(torch.stack([back, front]), FRONT, 64, 64, background=bg, backend=backend)
    torch.testing.assert_close(a.rgb, b.rgb)  # input order does not matter, depth does
    af = analytic_alpha((0.01, 0.0, 0.3), 0.05, 0.6, FRONT, 64, 64)
    ab = analytic_alpha((0.0, 0.01, -0.3), 0.15, 0.7, FRONT, 64, 64)
    for row, col in [(32, 32), (33, 35), (32, 41)]:  # centre, near centre, the back one's rim
        f_, b_ = af[row, col], ab[row, col]
        expect = f_ * np.array([1, 0, 0]) + (1 - f_) * b_ * np.array([0, 0, 1]) + (1 - f_) * (1 - b_) * np.array(bg)
        np.testing.assert_allclose(a.rgb[0, row, col].numpy(), expect, atol=3e-5)
        np.testing.assert_allclose(a.alpha[0, row, col, 0].item(), 1 - (1 - f_) * (1 - b_), atol=3e-5)
        z = (f_ * 1.2 + (1 - f_) * b_ * 1.8) / (1 - (1 - f_) * (1 - b_))
        np.testing.assert_allclose(a.depth[0, row, col, 0].item(), z, rtol=1e-4)
    assert af[32, 32] > 0.55 and ab[32, 41] > 0.05 and af[32, 41] < 0.05  # the probes mean something


@pytest.mark.parametrize("backend", BACKENDS_HERE)
def test_stop_rule_excludes_the_gaussian_that_saturates(backend):
    # Three opaque, wide Gaussians on the axis: alpha clamps at 0.999, so after the first T = 1e-3
    # and the second would take T to 1e-6 <= 1e-4: it and everything behind are excluded.
    layers = [gaussian((0.0, 0.0, z), 1.0, 1.0, c) for z, c in [(0.2, (1, 0, 0)), (0.0, (0, 1, 0)), (-0.2, (0, 0, 1))]]
    out = render(torch.stack(layers[::-1]), FRONT, 32, 32, background=(1.0, 1.0, 1.0), backend=backend)
    centre = out.rgb[0, 15:17, 15:17].reshape(-1, 3)
    np.testing.assert_allclose(out.alpha[0, 15:17, 15:17].numpy(), 0.999, atol=1e-6)
    np.testing.assert_allclose(centre.numpy(), np.array([[0.999 + 0.001, 0.001, 0.001]] * 4), atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS_HERE)
@pytest.mark.parametrize(
    "z_world, visible",
    [(1.5 - 0.45, False), (1.5 - 0.55, True), (1.5 - 2.45, True), (1.5 - 2.55, False)],
)
def test_near_far_culling(backend, z_world, visible):
    # view depth = 1.5 - z for the front camera; near 0.5, far 2.5
    g = gaussian((0.0, 0.0, z_world), 0.01, 0.9, (0.0, 0.0, 0.0))[None]
    out = render(g, FRONT, 32, 32, backend=backend)
    if visible:
        assert out.alpha.max().item() > 0.2
    else:
        assert out.alpha.max().item() == 0 and (out.rgb == 1).all()


@pytest.mark.parametrize("backend", BACKENDS_HERE)
def test_camera_near_far_are_honoured(backend):
    g = gaussian((0.0, 0.0, 0.0), 0.01, 0.9, (0.0, 0.0, 0.0))[None]  # at view depth 1.5
    c2w = FRONT.c2w
    assert render(g, Cameras(c2w, near=1.0, far=2.0), 32, 32, backend=backend).alpha.max() > 0.2
    assert render(g, Cameras(c2w, near=1.6, far=2.0), 32, 32, backend=backend).alpha.max() == 0
    assert render(g, Cameras(c2w, near=0.5, far=1.4), 32, 32, backend=backend).alpha.max() == 0


@pytest.mark.parametrize("backend", BACKENDS_HERE)
def test_background_per_view_and_empty_scenes(backend):
    cams = Cameras.orbit([0.0, 90.0])
    bg = torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.5, 1.0]])
    g = gaussian((0.0, 0.0, 0.0), 0.1, 0.9, (1.0, 1.0, 0.0))[None]
    out = render(g, cams, 40, 24, background=bg, backend=backend)
    assert out.rgb.shape == (2, 24, 40, 3) and out.alpha.shape == out.depth.shape == (2, 24, 40, 1)
    torch.testing.assert_close(out.rgb[:, 0, 0], bg)  # corners see only the background
    assert out.alpha[:, 12, 20, 0].min() > 0.8  # the centre sees the Gaussian in both views
    empty = render(torch.zeros(0, 14), cams, 16, 16, background=(0.1, 0.2, 0.3), backend=backend)
    torch.testing.assert_close(empty.rgb, torch.tensor([0.1, 0.2, 0.3]).expand(2, 16, 16, 3))
    assert (empty.alpha == 0).all() and (empty.depth == 0).all()
    culled = render(gaussian((0.0, 0.0, 5.0), 0.05, 0.9, (1.0, 0.0, 0.0))[None], cams, 16, 16,
                    background=(0.1, 0.2, 0.3), backend=backend)
    torch.testing.assert_close(culled.rgb, empty.rgb)


@pytest.mark.parametrize("backend", BACKENDS_HERE)
def test_matches_independent_per_pixel_reference(backend):
    data = random_scene(150, seed=3)
    cams = Cameras.orbit([20.0, 200.0], elevation_deg=25.0)
    bg = [[1.0, 1.0, 1.0], [0.0, 0.3, 0.6]]
    out = render(data, cams, 56, 40, background=torch.tensor(bg), backend=backend)
    ref_rgb, ref_alpha = naive_render(data, cams, 56, 40, bg)
    assert ref_alpha.mean() > 0.2  # the scene covers a good part of the image
    np.testing.assert_allclose(out.alpha[..., 0].numpy(), ref_alpha, atol=1e-4)
    np.testing.assert_allclose(out.rgb.numpy(), ref_rgb, atol=1e-4)


@pytest.mark.parametrize(
    "scene, keep, size",
    [("spot", None, (96, 80)), ("plant", 12000, (128, 128))],
)
def test_backends_agree_on_real_scenes(scene, keep, size):
    if len(BACKENDS_HERE) < 2:
        pytest.skip(f"only one backend available here: {BACKENDS_HERE}")
    g = load_splat(scene, keep)
    cams = Cameras.orbit([0.0, 135.0], elevation_deg=20.0)
    outs = {b: render(g, cams, *size, backend=b) for b in BACKENDS_HERE}
    ref = outs["torch"]
    assert ref.alpha.mean() > 0.1  # the object is in view
    for name, out in outs.items():
        assert (out.rgb - ref.rgb).abs().mean() <= 2e-3, name
        assert (out.alpha - ref.alpha).abs().mean() <= 2e-3, name
        solid = ref.alpha[..., 0] > 0.5
        assert ((out.depth - ref.depth)[..., 0][solid].abs() / ref.depth[..., 0][solid]).mean() <= 1e-3, name


def test_unknown_backend_is_a_user_error():
    g = gaussian((0, 0, 0), 0.05, 0.9, (1, 0, 0))[None]
    with pytest.raises(UserError, match="unknown render backend 'vulkan'.*torch"):
        render(g, FRONT, 16, 16, backend="vulkan")


@pytest.mark.parametrize("backend", ["gsplat", "dgr"])
def test_missing_or_cpu_only_gpu_backend_is_a_user_error(backend):
    g = gaussian((0, 0, 0), 0.05, 0.9, (1, 0, 0))[None]
    with pytest.raises(UserError) as err:
        render(g, FRONT, 16, 16, backend=backend, device="cpu")
    msg = str(err.value)
    assert backend in msg
    assert "installed: torch" in msg or "needs a CUDA device" in msg


def test_backend_names_and_availability():
    assert set(BACKENDS) == {"torch", "numba", "gsplat", "dgr"}
    assert BACKENDS_HERE[0] == "torch" and set(BACKENDS_HERE) <= set(BACKENDS)
    if not torch.cuda.is_available():
        assert "gsplat" not in BACKENDS_HERE and "dgr" not in BACKENDS_HERE


def test_auto_uses_numba_without_gradients_and_torch_with(monkeypatch):
    if "numba" not in BACKENDS_HERE:
        pytest.skip("numba is not installed")
    from video2gs.render import numba_backend, torch_backend

    calls = []
    for mod in (numba_backend, torch_backend):
        real = mod.rasterize
        monkeypatch.setattr(mod, "rasterize", lambda *a, _r=real, _m=mod.__name__, **k: calls.append(_m) or _r(*a, **k))
    data = gaussian((0, 0, 0), 0.05, 0.9, (1, 0, 0))[None]
    render(data, FRONT, 16, 16)
    render(data.clone().requires_grad_(), FRONT, 16, 16)
    with torch.no_grad():
        render(data.clone().requires_grad_(), FRONT, 16, 16)
    assert [c.rsplit(".", 1)[1] for c in calls] == ["numba_backend", "torch_backend", "numba_backend"]
