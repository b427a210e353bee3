"""Image and geometry metrics against hand-computed values; the billboard baseline's defining property."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from video2gs.camera import Cameras, orbit_camera
from video2gs.gaussians import Gaussians
from video2gs.metrics import baselines
from video2gs.metrics.geometry import chamfer, temporal_stability
from video2gs.metrics.image import MAX_PSNR, mask_iou, psnr, ssim


def test_psnr_known_values():
    a = torch.full((2, 3, 8, 8), 0.5)
    b = a.clone()
    b[0] += 0.1  # MSE 0.01 -> 20 dB
    b[1, :, :4] += 0.2  # half the pixels off by 0.2: MSE 0.02 -> 16.99 dB
    np.testing.assert_allclose(psnr(b, a).numpy(), [20.0, -10 * math.log10(0.02)], rtol=1e-5)
    assert psnr(a, a)[0].item() == pytest.approx(MAX_PSNR)
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(a, a[:, :, :4])


def test_ssim_is_the_standard_index():
    """pytorch-msssim's SSIM equals scikit-image's Gaussian-window SSIM (Wang et al. settings)."""
    skimage = pytest.importorskip("skimage.metrics", reason="scikit-image is not installed (cross-check only)")
    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, 48, 48, generator=g)
    b = (a + 0.1 * torch.randn(1, 3, 48, 48, generator=g)).clamp(0, 1)
    ours = ssim(b, a).item()
    ref = skimage.structural_similarity(a[0].permute(1, 2, 0).numpy(), b[0].permute(1, 2, 0).numpy(), channel_axis=2,
                                        data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert ours == pytest.approx(ref, abs=0.01)
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-6)
    worse = (a + 0.3 * torch.randn(1, 3, 48, 48, generator=g)).clamp(0, 1)
    assert ssim(worse, a).item() < ours < 1.0


def test_mask_iou():
    a = torch.zeros(3, 4, 4)
    b = torch.zeros(3, 4, 4)
    a[0, :2] = 1  # 8 pixels
    b[0, 1:3] = 1  # 8 pixels, 4 shared -> 4 / 12
    a[1] = 0.6
    b[1] = 0.4  # thresholded at 0.5: a full, b empty -> 0
    # [2]: both empty -> 1
    np.testing.assert_allclose(mask_iou(a, b).numpy(), [1 / 3, 0.0, 1.0])


def _points(xyz, opacity=None) -> Gaussians:
    xyz = torch.as_tensor(xyz, dtype=torch.float32)
    n = len(xyz)
    op = torch.ones(n, 1) if opacity is None else torch.as_tensor(opacity, dtype=torch.float32)[:, None]
    return Gaussians(torch.cat([xyz, op, torch.full((n, 3), 0.01), torch.tensor([[1.0, 0, 0, 0]]).expand(n, 4),
                                torch.full((n, 3), 0.5)], dim=1))


def test_chamfer_shift_and_opacity_weighting():
    grid = torch.stack(torch.meshgrid(*[torch.arange(3.0)] * 3, indexing="ij"), -1).reshape(-1, 3)  # spacing 1
    a, b = _points(grid), _points(grid + torch.tensor([0.1, 0.0, 0.0]))
    c = chamfer(a, b)
    assert c["chamfer"] == pytest.approx(0.1, rel=1e-6) and c["pred_to_gt"] == pytest.approx(0.1, rel=1e-6)
    assert chamfer(a, a)["chamfer"] == 0.0
    # a floater 10 away with opacity 0.01 among 27 opaque points moves pred->gt by 0.01 * 10 / 27.01
    floater = torch.cat([grid, torch.tensor([[12.0, 0.0, 0.0]])])
    weighted = chamfer(_points(floater, [1.0] * 27 + [0.01]), a)
    assert weighted["pred_to_gt"] == pytest.approx(0.01 * 10 / 27.01, rel=1e-5)
    assert weighted["gt_to_pred"] == 0.0
    # below min_opacity it is dropped entirely
    assert chamfer(_points(floater, [1.0] * 27 + [0.001]), a)["chamfer"] == 0.0
    assert math.isnan(chamfer(_points(grid, [0.0] * 27), a)["chamfer"])


def test_temporal_stability():
    s = temporal_stability([0.0, 0.0], [0.02, 0.04])  # a frozen prediction of a moving object
    assert s == pytest.approx({"temporal_error": 0.03, "pred_motion": 0.0, "gt_motion": 0.03})
    assert temporal_stability([0.01], [0.01])["temporal_error"] == 0.0
    assert math.isnan(temporal_stability([], [])["temporal_error"])


def test_billboard_reproduces_its_view_and_is_flat():
    from video2gs.render import render

    size = 48
    yy, xx = np.mgrid[:size, :size]
    mask = (((yy - 24) ** 2 + (xx - 20) ** 2) < 14 ** 2).astype(np.float32)  # an off-centre disc
    rgb = np.ones((size, size, 3), np.float32)
    rgb[mask > 0] = [0.8, 0.2, 0.1]
    c2w = orbit_camera(0.0, 0.0)
    g = baselines.billboard(rgb, mask, c2w, 49.1)
    assert len(g) == int(mask.sum())
    assert torch.allclose(g.xyz[:, 2], torch.zeros(len(g)), atol=1e-5)  # on the plane through the origin
    out = render(g, Cameras(torch.from_numpy(np.stack([c2w, orbit_camera(0.0, 90.0)]))), size, size)
    front_alpha = out.alpha[0, ..., 0].numpy()
    assert mask_iou(out.alpha[:1, ..., 0], torch.from_numpy(mask)[None]).item() > 0.95
    inside = mask > 0
    assert np.abs(out.rgb[0].numpy()[inside] - rgb[inside]).mean() < 0.02
    # edge-on from azimuth 90 it is a sliver a few pixels wide (the rasterizer's low-pass), as tall as the disc
    side = out.alpha[1, ..., 0].numpy() > 0.5
    assert side.any(axis=0).sum() <= 4 and side.sum() < 0.2 * (front_alpha > 0.5).sum()
    assert abs(int(side.any(axis=1).sum()) - int(inside.any(axis=1).sum())) <= 2
