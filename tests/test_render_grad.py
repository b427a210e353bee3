"""Torch renderer gradients: finite differences in float64 for every parameter group, and the
tile batching (memory bound) does not change values or gradients."""

from __future__ import annotations

import pytest
import torch

from video2gs.camera import Cameras
from video2gs.render import render, torch_backend

GROUPS = {"xyz": slice(0, 3), "opacity": slice(3, 4), "scale": slice(4, 7), "quat": slice(7, 11), "rgb": slice(11, 14)}
CAMS = Cameras.orbit([15.0, 110.0], elevation_deg=20.0)
W, H = 40, 32


def scene() -> torch.Tensor:
    """Eight overlapping Gaussians, float64, opacity < 0.35.

    The renderer is piecewise smooth: a Gaussian only reaches the tiles of its 3-sigma square, so
    one with o >= 0.35 (alpha >= 1/255 beyond 3 sigma) jumps when its tile range changes. Below
    that nothing jumps except alpha crossing 1/255, which a 1e-6 step practically never hits.
    """
    g = torch.Generator().manual_seed(1)
    n = 8
    xyz = (torch.rand(n, 3, generator=g, dtype=torch.float64) - 0.5) * 0.3
    opacity = torch.empty(n, 1, dtype=torch.float64).uniform_(0.1, 0.34, generator=g)
    scale = torch.empty(n, 3, dtype=torch.float64).uniform_(0.05, 0.12, generator=g)
    quat = torch.nn.functional.normalize(torch.randn(n, 4, generator=g, dtype=torch.float64), dim=-1)
    rgb = torch.rand(n, 3, generator=g, dtype=torch.float64) * 0.8 + 0.1
    return torch.cat([xyz, opacity, scale, quat, rgb], dim=-1)


def weights(seed: int = 2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, H, W, c, generator=g, dtype=torch.float64) for c in (3, 1, 1)]


def loss(data: torch.Tensor, bg: torch.Tensor, w) -> torch.Tensor:
    out = render(data, CAMS, W, H, background=bg, backend="torch")
    return (out.rgb * w[0]).sum() + (out.alpha * w[1]).sum() + 0.1 * (out.depth * w[2]).sum()


@pytest.mark.parametrize("group", list(GROUPS))
def test_gradients_match_finite_differences(group):
    base = scene()
    bg = torch.tensor([0.3, 0.5, 0.7], dtype=torch.float64)
    w = weights()
    cols = GROUPS[group]

    def f(part):
        data = torch.cat([base[:, : cols.start], part, base[:, cols.stop :]], dim=-1)
        return loss(data, bg, w)

    part = base[:, cols].clone().requires_grad_()
    (grad,) = torch.autograd.grad(f(part), part)
    assert grad.abs().max() > 1e-3  # the check below compares something real
    assert torch.autograd.gradcheck(f, (part,), eps=1e-6, atol=1e-5, rtol=1e-3)


def test_background_gradient_matches_finite_differences():
    data, w = scene(), weights(5)
    bg = torch.tensor([[0.3, 0.5, 0.7], [0.6, 0.2, 0.4]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda b: loss(data, b, w), (bg,), eps=1e-6, atol=1e-6)


def test_output_is_float64_for_float64_input():
    out = render(scene(), CAMS, W, H, backend="torch")
    assert out.rgb.dtype == out.alpha.dtype == out.depth.dtype == torch.float64


def test_tile_batching_does_not_change_values_or_gradients(monkeypatch):
    data = scene().float().requires_grad_()
    w = [x.float() for x in weights(7)]

    def run():
        data.grad = None
        out = render(data, CAMS, W, H, background=(1.0, 1.0, 1.0), backend="torch")
        ((out.rgb * w[0]).sum() + (out.alpha * w[1]).sum() + (out.depth * w[2]).sum()).backward()
        return out, data.grad.clone()

    out_a, grad_a = run()
    batches = []
    real_plan = torch_backend.plan_tiles

    def tiny_plan(*args, **kwargs):
        plan = real_plan(*args, **{**kwargs, "batch_elements": 256})  # one tile per batch
        batches.append(len(plan.batches))
        return plan

    monkeypatch.setattr(torch_backend, "plan_tiles", tiny_plan)
    out_b, grad_b = run()
    assert batches[0] >= 6  # vs a single batch by default
    for a, b in zip(out_a, out_b):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # float32 sums in another order
    torch.testing.assert_close(grad_a, grad_b, rtol=1e-4, atol=1e-5)


def test_view_groups_do_not_change_values(monkeypatch):
    data = scene().float()
    whole = render(data, CAMS, W, H, backend="torch")
    monkeypatch.setattr(torch_backend, "VIEW_GROUP_PAIRS", data.shape[0])  # one view per group
    parts = render(data, CAMS, W, H, backend="torch")
    for a, b in zip(whole, parts):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
