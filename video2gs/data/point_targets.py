"""Pixel-aligned surface targets: where the Gaussians of each input cell should sit, from the exact
ground-truth Gaussians of a ``data make`` clip (``gt/<t>.ply``).

L4GM predicts one Gaussian per cell of an S x S grid over each input view (``docs/l4gm.md`` §2), and a
trained network puts it on the object's surface seen through that cell. From scratch, the photometric
loss alone teaches this slowly: the Gaussians start as one blob at the origin, whose renders barely
move when a position changes. A CPU-sized training run (issue 12) therefore adds a direct target
(``loss.points``, ours, not the reference's): for the cell (row, col) of input camera k, the mean of
the ground-truth points that project into the cell and lie within ``band`` of the nearest of them
(the front surface), over points with opacity >= ``min_opacity``; cells no point reaches have no
target for position and colour, and the target opacity 0 (a cell with a target: 1).

    target, valid, colour = surface_targets(xyz, opacity, c2w, size=32, rgb=rgb)
    # xyz [M,3] world, opacity [M], c2w [K,4,4] OpenGL, rgb [M,3] ->
    # target [K,S,S,3], valid [K,S,S] bool, colour [K,S,S,3] (the same mean over the front points)
"""

from __future__ import annotations

import torch

from video2gs.camera import FOVY_DEG, ZNEAR, project_to_grid

MIN_OPACITY = 0.1  # the splat scans' median opacity is about 0.2; fainter points are haze
BAND = 0.03  # world units (objects fill [-0.5, 0.5]³): the front surface's thickness in a cell


def surface_targets(xyz: torch.Tensor, opacity: torch.Tensor, c2w: torch.Tensor, size: int, *,
                    rgb: torch.Tensor | None = None, fovy_deg: float = FOVY_DEG, min_opacity: float = MIN_OPACITY,
                    band: float = BAND):
    """Front-surface point (and colour) of every grid cell of every camera (see the module docstring).

    xyz [M,3], opacity [M], c2w [K,4,4], rgb [M,3] or None -> ``(target [K,size,size,3] float32,
    valid [K,size,size] bool, colour [K,size,size,3] or None)``.
    """
    keep = opacity >= min_opacity
    pts = xyz[keep].float()
    cols = rgb[keep].float() if rgb is not None else None
    cells = size * size
    targets, valids, colours = [], [], []
    for pose in torch.as_tensor(c2w, dtype=torch.float32).reshape(-1, 4, 4):
        row, col, depth = project_to_grid(pts, pose, size, fovy_deg)
        inside = (depth > ZNEAR) & (row >= 0) & (row < size) & (col >= 0) & (col < size)
        idx, d, p = row[inside] * size + col[inside], depth[inside], pts[inside]
        nearest = torch.full((cells,), float("inf")).scatter_reduce(0, idx, d, "amin")
        front = d <= nearest[idx] + band
        idx, p = idx[front], p[front]
        hits = torch.zeros(cells).index_add_(0, idx, torch.ones(len(idx)))
        count = hits.clamp_min(1)[:, None]
        valids.append((hits > 0).reshape(size, size))
        targets.append((torch.zeros(cells, 3).index_add_(0, idx, p) / count).reshape(size, size, 3))
        if cols is not None:
            c = cols[inside][front]
            colours.append((torch.zeros(cells, 3).index_add_(0, idx, c) / count).reshape(size, size, 3))
    return torch.stack(targets), torch.stack(valids), (torch.stack(colours) if cols is not None else None)
