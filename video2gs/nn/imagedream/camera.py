"""ImageDream camera vectors: one flattened 4x4 "blender" camera-to-world matrix per view."""

from __future__ import annotations

import numpy as np
import torch

from video2gs.camera import opengl_to_mvdream_blender, user_orbit


def imagedream_cameras(elevation_deg: float = 0.0, num_views: int = 4, extra_view: bool = True) -> torch.Tensor:
    """Camera vectors [num_views (+1), 16] float32 for azimuths 0, 360/num_views, ... at radius 1.

    ``elevation_deg`` uses the user's sign (positive = camera above), which is ImageDream's own
    convention (bytedance ImageDream, ashawkey/mvdream_diffusers). ``extra_view`` appends the all-zero
    row of the reference (pixel-controller) slot.
    """
    azimuths = np.arange(num_views) * (360.0 / num_views)
    vecs = [opengl_to_mvdream_blender(user_orbit(elevation_deg, float(az), radius=1.0)).reshape(16) for az in azimuths]
    if extra_view:
        vecs.append(np.zeros(16, dtype=np.float32))
    return torch.from_numpy(np.stack(vecs).astype(np.float32))
