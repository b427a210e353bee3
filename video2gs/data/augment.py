"""Image augmentation: the reference's grid distortion of input views, and a colour change per clip.

**Grid distortion** (the reference's recipe).

The input views 1..3 of a real multi-view generator are not perfectly 3-D consistent; the
reference simulates that by warping them with a random, smooth, monotone piecewise-linear map
per image axis (``docs/l4gm.md`` §6: strength 0.5, applied with probability 0.5 in reconstruction
training). Here each axis is cut into n - 1 segments (n uniform in [8, 16]) whose boundaries are
jittered by up to ``strength / 2`` of a segment; the image content at the regular boundaries
moves to the jittered ones (strength 0 is the identity).

**Recolouring** (ours, for small training sets whose objects share one palette, such as the
mesh2splat objects, all baked in the same red): one random linear colour map per sample, applied to
every image of it, a hue rotation about the grey axis followed by a saturation change. Both maps fix
white, so an image composited on white stays exactly the composite of the recoloured object
(``M(a·c + (1 - a)·1) = a·Mc + (1 - a)·1``) and the masks stay true.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _warp_axis(size: int, steps: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Source coordinate in [-1, 1] (grid_sample's normalised units) for each of ``size`` pixels."""
    knots = np.linspace(0.0, 1.0, steps)
    jittered = np.clip(knots + strength * (rng.random(steps) - 0.5) / (steps - 1), 0.0, 1.0)
    jittered[0], jittered[-1] = 0.0, 1.0
    jittered = np.maximum.accumulate(jittered)  # keep the map monotone
    centres = (np.arange(size) + 0.5) / size  # output pixel centres in [0, 1]
    return np.interp(centres, jittered, knots) * 2.0 - 1.0


def grid_distortion(images: torch.Tensor, rng: np.random.Generator, strength: float = 0.5) -> torch.Tensor:
    """images [B, C, H, W] -> warped [B, C, H, W] (bilinear, a new random warp per image)."""
    b, _, h, w = images.shape
    steps = int(rng.integers(8, 17))
    grids = []
    for _ in range(b):
        xs = torch.from_numpy(_warp_axis(w, steps, strength, rng)).float()
        ys = torch.from_numpy(_warp_axis(h, steps, strength, rng)).float()
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grids.append(torch.stack([gx, gy], dim=-1))  # [H, W, 2] as (x, y)
    grid = torch.stack(grids).to(images)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def recolour_matrix(rng: np.random.Generator, saturation: tuple[float, float] = (0.4, 1.4)) -> torch.Tensor:
    """A random 3x3 colour map fixing white: hue rotation (uniform angle) then saturation scale."""
    angle = rng.uniform(0.0, 2.0 * np.pi)
    k = np.ones(3) / np.sqrt(3.0)  # the grey axis
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    rot = np.eye(3) + np.sin(angle) * kx + (1.0 - np.cos(angle)) * (kx @ kx)  # Rodrigues
    s = rng.uniform(*saturation)
    grey = np.full((3, 3), 1.0 / 3.0)
    sat = s * np.eye(3) + (1.0 - s) * grey
    return torch.from_numpy(sat @ rot).float()


def recolour(images: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """images [N, 3, H, W] in [0, 1] -> the same images through ``matrix`` [3, 3], clipped to [0, 1]."""
    return torch.einsum("ij,njhw->nihw", matrix.to(images), images).clamp_(0.0, 1.0)
