"""Small clips in the dataset layout, rendered by our own renderer from known Gaussians: for the
tests and the benchmark of ``evaluate`` (``video2gs data make`` writes the real datasets)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from video2gs.camera import Cameras, user_orbit
from video2gs.data import layout
from video2gs.gaussians import Gaussians


def random_object(n: int = 3000, seed: int = 0) -> Gaussians:
    """An asymmetric coloured blob [n,14] inside [-0.5, 0.5]^3 (a body and an off-centre arm)."""
    g = torch.Generator().manual_seed(seed)
    body = torch.randn(n * 2 // 3, 3, generator=g) * torch.tensor([0.15, 0.22, 0.12])
    arm = torch.randn(n - len(body), 3, generator=g) * torch.tensor([0.18, 0.04, 0.04]) + torch.tensor([0.25, 0.12, 0.0])
    xyz = torch.cat([body, arm]).clamp(-0.5, 0.5)
    rgb = (0.5 + 0.5 * torch.sin(xyz * torch.tensor([9.0, 7.0, 11.0]) + torch.tensor([0.0, 2.0, 4.0]))).clamp(0, 1)
    scale = torch.full((n, 3), 0.02) * (0.6 + 0.8 * torch.rand(n, 3, generator=g))
    rot = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    opacity = 0.6 + 0.4 * torch.rand(n, 1, generator=g)
    return Gaussians(torch.cat([xyz, opacity, scale, rot, rgb], dim=-1))


def spin(g: Gaussians, degrees: float) -> Gaussians:
    """``g`` turned by ``degrees`` about +Y."""
    a = math.radians(degrees)
    r = torch.tensor([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])
    return g.transform(r)


def write_render_clip(root: str | Path, frames: list[Gaussians], *, views=None, size: int = 64, fps: float = 8.0,
                      input_view: int = 0, write_gt: bool = True, backend: str = "auto") -> Path:
    """Render ``frames`` (Gaussians per frame) at ``views`` ((elevation, azimuth) degrees, elevation
    positive = above; default 8 views) into a clip folder with clip.json (written last) and gt/."""
    from video2gs.render import render

    root = Path(root)
    views = list(views or [(0.0, 45.0 * k) for k in range(6)] + [(20.0, 30.0), (-5.0, 200.0)])
    T = len(frames)
    for v, (elev, azi) in enumerate(views):
        layout.write_cameras(root, v, [elev] * T, [azi] * T)
    c2w = torch.from_numpy(np.stack([user_orbit(e, a) for e, a in views]))
    for t, g in enumerate(frames):
        with torch.no_grad():
            out = render(g, Cameras(c2w), size, size, background=(1.0, 1.0, 1.0), backend=backend)
        for v in range(len(views)):
            layout.write_view_frame(root, v, t, out.rgb[v].numpy(), out.alpha[v, ..., 0].numpy())
        if write_gt:
            layout.write_gt(root, t, g)
    layout.write_clip_record(root, {"views": list(range(len(views))), "times": [t / fps for t in range(T)],
                                    "fps": fps, "input_view": input_view,
                                    "fixed_views": [v for v, (e, _) in enumerate(views) if e == 0.0],
                                    "random_views": [v for v, (e, _) in enumerate(views) if e != 0.0]})
    return root
