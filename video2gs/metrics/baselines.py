"""Baselines that make a number mean something (``video2gs evaluate --baseline``).

* ``billboard``: the input view's pixels at frame t as one flat layer of Gaussians facing the input
  camera -- one Gaussian per object pixel (mask >= 0.5), centred where the pixel's ray meets the
  plane through the origin perpendicular to the camera axis, as wide as the pixel's footprint on
  that plane and nearly flat along the axis, with the pixel's colour and the mask as opacity. It
  reproduces the input view almost exactly and is a cardboard cut-out from anywhere else: the gap
  between its input-view and novel-view numbers is the flattery input-view numbers carry.
* ``static``: frame 0 repeated (no motion at all): the prediction's frame 0 when a prediction is
  given, else the clip's ground-truth frame 0. Against it, a method's score shows what its motion adds.
"""

from __future__ import annotations

import numpy as np
import torch

from video2gs.camera import focal_from_fovy
from video2gs.gaussians import Gaussians, rotmat_to_quat

BASELINES = ("billboard", "static")
_FOOTPRINT_SIGMA = 0.3  # std-dev in pixels on the plane; the rasterizer adds its 0.3 px^2 low-pass
_FLATNESS = 1e-3  # thickness along the camera axis relative to the in-plane size


def billboard(rgb: np.ndarray, mask: np.ndarray, c2w: np.ndarray, fovy_deg: float,
              threshold: float = 0.5) -> Gaussians:
    """Gaussians [N,14] of one view: rgb [H,W,3] in [0,1], mask [H,W] in [0,1], c2w [4,4] (OpenGL)
    of the camera that saw them, looking at the origin. N = pixels with mask >= ``threshold``."""
    h, w = mask.shape
    c2w = np.asarray(c2w, dtype=np.float64)
    campos, rot = c2w[:3, 3], c2w[:3, :3]
    depth = float(np.linalg.norm(campos))  # distance to the plane through the origin
    f = focal_from_fovy(fovy_deg, h)
    ys, xs = np.nonzero(mask >= threshold)
    if len(ys) == 0:  # nothing seen: one invisible Gaussian keeps the renderers' inputs valid
        ys, xs = np.array([h // 2]), np.array([w // 2])
        opacity = np.zeros(1)
    else:
        opacity = mask[ys, xs].astype(np.float64)
    # Camera-space point at depth `depth` through the pixel centre (x right, y up, looking along -z).
    cam = np.stack([(xs + 0.5 - w / 2) / f * depth, -(ys + 0.5 - h / 2) / f * depth, -np.full(len(xs), depth)], -1)
    xyz = cam @ rot.T + campos
    size = depth / f * _FOOTPRINT_SIGMA
    scale = np.tile([size, size, size * _FLATNESS], (len(xs), 1))
    quat = rotmat_to_quat(torch.from_numpy(rot)).double().numpy()  # local z = camera axis
    data = np.concatenate(
        [xyz, opacity[:, None], scale, np.tile(quat, (len(xs), 1)), rgb[ys, xs].astype(np.float64)], axis=1
    )
    return Gaussians(torch.from_numpy(data).float())
