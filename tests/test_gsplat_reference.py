"""Our differentiable torch rasterizer against gsplat's own pure-PyTorch reference, on the CPU.

gsplat keeps plain-PyTorch versions of its CUDA stages (``gsplat.cuda._torch_impl``) for its tests.
Of those, the projection (world -> camera -> EWA 2D covariance with the +0.3 px² low-pass -> conic)
runs without CUDA; its compositing reference calls a CUDA kernel and nerfacc, so on this CPU the
compositing is checked elsewhere (the numba kernel and the literal per-pixel reference in
test_render.py, and the golden fixtures). Here: values and gradients of the projection stage, the
part of the training loss gsplat computes on CUDA, stage by stage with the same inputs.
"""

from __future__ import annotations

import pytest
import torch

from video2gs.camera import Cameras
from video2gs.render import torch_backend

gsplat_ref = pytest.importorskip(
    "gsplat.cuda._torch_impl", reason="gsplat is not installed (pip install -e '.[dev]' brings it; CPU is enough)"
)

W, H = 96, 80  # not square: catches a swapped width/height
CAMS = Cameras.orbit([15.0, 130.0, 260.0], elevation_deg=20.0)


def gaussians(n: int = 400, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    means = ((torch.rand(n, 3, generator=g) - 0.5) * 0.8).double().requires_grad_()
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1).double().requires_grad_()
    scales = (torch.rand(n, 3, generator=g) * 0.06 + 0.004).double().requires_grad_()
    return means, quats, scales


def ours(means, quats, scales):
    p = torch_backend.project(means, quats, scales, CAMS.viewmats().double(), CAMS.Ks(W, H).double(), W, H,
                              CAMS.near, CAMS.far)
    return p.means2d, p.conics, p.depths, p.cov_diag, p.radii > 0


def theirs(means, quats, scales):
    covars, _ = gsplat_ref._quat_scale_to_covar_preci(quats, scales, compute_covar=True, compute_preci=False)
    radii, means2d, depths, conics, _ = gsplat_ref._fully_fused_projection(
        means, covars, CAMS.viewmats().double(), CAMS.Ks(W, H).double(), W, H, eps2d=0.3,
        near_plane=CAMS.near, far_plane=CAMS.far)
    # gsplat's projection keeps the low-passed 2D covariance only through its conic: invert it back.
    a, b, c = conics.unbind(-1)
    det = a * c - b * b
    return means2d, conics, depths, torch.stack([c / det, a / det], dim=-1), (radii > 0).all(-1)


def test_projection_matches_gsplat_reference():
    """Means, conics, depths and the low-passed variances of every (view, Gaussian) that both keep
    agree to float64 rounding; the two keep the same pairs here (gsplat 1.5 crops per axis, 1.4 and
    we by the larger eigenvalue: they differ only for pairs at the image border)."""
    args = gaussians()
    m1, c1, d1, v1, keep1 = ours(*args)
    m2, c2, d2, v2, keep2 = theirs(*args)
    both = keep1 & keep2
    assert int(both.sum()) > 0.8 * both.numel()
    assert float((keep1 != keep2).float().mean()) < 0.02
    for name, x, y in (("means2d", m1, m2), ("conics", c1, c2), ("depths", d1, d2), ("variances", v1, v2)):
        err = ((x[both] - y[both]).abs().max() / y[both].abs().max()).detach()
        assert float(err) < 1e-10, (name, float(err))


def test_projection_gradients_match_gsplat_reference():
    """The gradient of a loss on the projected quantities (as the compositing would send back)
    w.r.t. the Gaussians' means, rotations and scales is the same through both projections."""
    with torch.no_grad():
        keep = ours(*gaussians())[4] & theirs(*gaussians())[4]
    grads = []
    for fn in (ours, theirs):
        means, quats, scales = gaussians()
        m, c, d, _, _ = fn(means, quats, scales)
        # The same random linear functional of the outputs for both, over the pairs both keep.
        w = torch.Generator().manual_seed(2)
        loss = ((m * torch.randn(m.shape, generator=w, dtype=m.dtype)).sum(-1)
                + (c * torch.randn(c.shape, generator=w, dtype=c.dtype)).sum(-1)
                + d * torch.randn(d.shape, generator=w, dtype=d.dtype))
        (loss * keep).sum().backward()
        grads.append((means.grad, quats.grad, scales.grad))
    for name, a, b in zip(("means", "quats", "scales"), *grads):
        err = (a - b).abs().max() / b.abs().max()
        assert float(err) < 1e-8, (name, float(err))
        assert float(b.abs().max()) > 0
