"""Backend plumbing: gsplat and diff-gaussian-rasterization adapters (against stand-in modules that
check every argument and render with the torch reference, since CI has no CUDA), the numba
kernel's work split, and the input forms render() accepts."""

from __future__ import annotations

import importlib.machinery
import math
import sys
import types
from typing import NamedTuple

import pytest
import torch

import video2gs.render as render_pkg
from video2gs.camera import Cameras, dgr_matrices, projection_matrix
from video2gs.errors import UserError
from video2gs.gaussians import Gaussians
from video2gs.render import available_backends, render

CAMS = Cameras.orbit([10.0, 100.0, 250.0], elevation_deg=15.0)


def scene(n: int = 300, seed: int = 4) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xyz = (torch.rand(n, 3, generator=g) - 0.5) * 0.7
    opacity = torch.rand(n, 1, generator=g) * 0.9 + 0.05
    scale = torch.rand(n, 3, generator=g) * 0.05 + 0.005
    quat = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    return torch.cat([xyz, opacity, scale, quat, torch.rand(n, 3, generator=g)], dim=-1)


def independent_rasterize(*args):
    """The stand-ins draw with the numba kernel, a separate implementation from the torch reference they
    are compared with, so a wrong argument from an adapter shows up as a different picture."""
    if "numba" not in available_backends():
        pytest.skip("the stand-ins draw with the numba backend, which is not installed")
    from video2gs.render import numba_backend

    return numba_backend.rasterize(*args)


def install(monkeypatch, name: str, module: types.ModuleType) -> None:
    """Make ``module`` importable as ``name`` and let the CUDA-only backends run on the CPU."""
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(render_pkg, "_NEEDS_CUDA", ())


def test_gsplat_adapter_passes_l4gm_settings(monkeypatch):
    calls = []

    def rasterization(means, quats, scales, opacities, colors, viewmats, Ks, width, height, **kw):
        calls.append(dict(kw, viewmats=viewmats, Ks=Ks, shapes=(means.shape, quats.shape, scales.shape, opacities.shape, colors.shape)))
        out = independent_rasterize(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                                    kw["near_plane"], kw["far_plane"], kw["backgrounds"])
        return torch.cat([out.rgb, out.depth], dim=-1), out.alpha, {}

    install(monkeypatch, "gsplat", types.SimpleNamespace(rasterization=rasterization))
    cams = Cameras(CAMS.c2w, near=0.6, far=2.2)
    bg = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.2, 0.4, 0.6]])
    data = scene()
    got = render(data, cams, 48, 40, background=bg, backend="gsplat")
    want = render(data, cams, 48, 40, background=bg, backend="torch")
    assert want.alpha.mean() > 0.1  # something is drawn
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=2e-3)
    (kw,) = calls
    n = data.shape[0]
    assert kw["shapes"] == ((n, 3), (n, 4), (n, 3), (n,), (n, 3))
    assert kw["packed"] is False and kw["sh_degree"] is None and kw["radius_clip"] == 0.0
    assert kw["eps2d"] == 0.3 and kw["tile_size"] == 16 and kw["rasterize_mode"] == "classic"
    assert kw["render_mode"] == "RGB+ED"
    assert (kw["near_plane"], kw["far_plane"]) == (0.6, 2.2)
    torch.testing.assert_close(kw["viewmats"], cams.viewmats())
    torch.testing.assert_close(kw["Ks"], cams.Ks(48, 40))
    torch.testing.assert_close(kw["backgrounds"], bg)


class _Settings(NamedTuple):  # the fields of diff_gaussian_rasterization.GaussianRasterizationSettings
    image_height: int
    image_width: int
    tanfovx: float
    tanfovy: float
    bg: torch.Tensor
    scale_modifier: float
    viewmatrix: torch.Tensor
    projmatrix: torch.Tensor
    sh_degree: int
    campos: torch.Tensor
    prefiltered: bool
    debug: bool


def test_dgr_adapter_passes_lgm_settings(monkeypatch):
    seen = []

    class Rasterizer:
        def __init__(self, raster_settings):
            self.s = raster_settings

        def __call__(self, means3D, means2D, shs, colors_precomp, opacities, scales, rotations, cov3D_precomp):
            s = self.s
            assert shs is None and cov3D_precomp is None and means2D.shape == means3D.shape
            assert opacities.shape == (means3D.shape[0], 1) and s.sh_degree == 0 and s.scale_modifier == 1.0
            assert s.prefiltered is False and s.debug is False
            seen.append(s)
            # the 3DGS kernel's camera: viewmatrix is the transposed w2c, K from tan(fov/2)
            f = s.image_height / (2 * s.tanfovy)
            K = torch.tensor([[f, 0, s.image_width / 2], [0, f, s.image_height / 2], [0, 0, 1]])
            # composite unclamped (the kernel does not clamp): scale colours into [0,1] and back
            k = max(1.0, float(colors_precomp.max()))
            out = independent_rasterize(means3D, rotations, scales, opacities[:, 0], colors_precomp / k,
                                        s.viewmatrix.T[None], K[None], s.image_width, s.image_height, 0.2, 1e10,
                                        s.bg[None] / k)
            return (out.rgb[0] * k).permute(2, 0, 1), torch.zeros(means3D.shape[0], dtype=torch.int32)

    install(monkeypatch, "diff_gaussian_rasterization",
            types.SimpleNamespace(GaussianRasterizationSettings=_Settings, GaussianRasterizer=Rasterizer))
    bg = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.2, 0.4, 0.6]])
    data = scene()
    got = render(data, CAMS, 32, 32, background=bg, backend="dgr")
    want = render(data, CAMS, 32, 32, background=bg, backend="torch")
    # two implementations (numba in the stand-in, torch here) agree to ~1e-3
    assert want.alpha.mean() > 0.1
    torch.testing.assert_close(got.rgb, want.rgb, rtol=0, atol=2e-3)
    torch.testing.assert_close(got.alpha, want.alpha, rtol=0, atol=2e-3)
    torch.testing.assert_close(got.depth, want.depth, rtol=2e-3, atol=2e-3)
    assert len(seen) == 2 * len(CAMS)  # colour pass + depth/alpha pass per view
    cam_view, cam_view_proj, campos = dgr_matrices(CAMS.c2w)
    for v in range(len(CAMS)):
        colour = seen[2 * v]
        torch.testing.assert_close(colour.viewmatrix, cam_view[v])
        torch.testing.assert_close(colour.projmatrix, cam_view[v] @ projection_matrix(CAMS.fovy_deg, CAMS.near, CAMS.far))
        torch.testing.assert_close(colour.projmatrix, cam_view_proj[v])
        torch.testing.assert_close(colour.campos, campos[v])
        torch.testing.assert_close(colour.bg, bg[v])
        assert colour.tanfovx == colour.tanfovy == pytest.approx(math.tan(math.radians(49.1) / 2))
        assert (seen[2 * v + 1].bg == 0).all()


@pytest.mark.skipif("numba" not in available_backends(), reason="numba is not installed")
def test_numba_work_split_does_not_change_pixels():
    from video2gs.render import numba_backend

    data = scene(2000)
    args = [*render_pkg.split_fields(data), CAMS.viewmats(), CAMS.Ks(72, 56), 72, 56, CAMS.near, CAMS.far,
            torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])]
    outs = [numba_backend.rasterize(*args, n_bands=b) for b in (1, 2, 3)]
    assert outs[0].alpha.mean() > 0.2
    for out in outs[1:]:
        for a, b in zip(out, outs[0]):
            assert torch.equal(a, b)
    # one call for many views == one call per view
    single = [numba_backend.rasterize(*args[:5], CAMS.viewmats()[v : v + 1], CAMS.Ks(72, 56)[v : v + 1], 72, 56,
                                      CAMS.near, CAMS.far, args[-1][v : v + 1]) for v in range(len(CAMS))]
    for i, field in enumerate(outs[0]):
        assert torch.equal(field, torch.cat([s[i] for s in single]))
    assert outs[0].rgb.dtype == torch.float32 and outs[0].rgb.device.type == "cpu"


def test_input_forms():
    data = scene(50)
    a = render(data, CAMS, 16, 16, backend="torch")
    b = render(Gaussians(data), CAMS, 16, 16, backend="torch")
    c = render(data[None], CAMS, 16, 16, backend="torch")
    for x, y, z in zip(a, b, c):
        assert torch.equal(x, y) and torch.equal(x, z)
    with pytest.raises(ValueError, match=r"one frame"):
        render(torch.stack([data, data]), CAMS, 16, 16)
    with pytest.raises(ValueError, match=r"background"):
        render(data, CAMS, 16, 16, background=torch.ones(2, 3))
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            render(data, CAMS, 16, 16, device="cuda")
