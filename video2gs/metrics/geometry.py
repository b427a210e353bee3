"""Geometry metrics on Gaussian centres: opacity-weighted Chamfer distance and temporal stability.

Definitions (distances in world units; our datasets normalise the object so that the largest
bounding-box side over all frames is 1, so 0.01 = 1 % of the object's size):

* ``chamfer(P, G)`` = ½ (Σ_i o_i d(p_i, G) / Σ_i o_i + Σ_j o_j d(g_j, P) / Σ_j o_j), where d(x, S)
  is the Euclidean distance from x to the nearest centre of S and o the opacities: a Gaussian counts
  as much as it is opaque, so near-transparent floaters barely matter. Gaussians below
  ``min_opacity`` (0.005, what LGM prunes when saving) are dropped first.
* ``motion(S, t)`` = chamfer(S_t, S_{t+1}): how much a sequence changes from one frame to the next.
* temporal error = mean over t of |motion(pred, t) - motion(gt, t)|: 0 when the prediction changes
  from frame to frame exactly as much as the ground truth does; a jittering prediction of a still
  object and a frozen prediction of a moving one both score high. (Chamfer is blind to sliding
  along the surface, so this measures changes of shape and position, not tangential motion.)
"""

from __future__ import annotations

import numpy as np

from video2gs.gaussians import PRUNE_OPACITY, Gaussians


def _points(g: Gaussians, min_opacity: float) -> tuple[np.ndarray, np.ndarray]:
    data = g.data.detach().cpu().double().numpy()
    keep = data[:, 3] >= min_opacity
    return data[keep, 0:3], data[keep, 3]


def chamfer(pred: Gaussians, gt: Gaussians, min_opacity: float = PRUNE_OPACITY) -> dict[str, float]:
    """Opacity-weighted symmetric Chamfer distance of two frames' centres (see module docstring).

    Returns ``{"chamfer", "pred_to_gt", "gt_to_pred"}`` (floats, world units); NaN when either side
    has no Gaussian at or above ``min_opacity``.
    """
    from scipy.spatial import cKDTree

    p, wp = _points(pred, min_opacity)
    q, wq = _points(gt, min_opacity)
    if len(p) == 0 or len(q) == 0:
        nan = float("nan")
        return {"chamfer": nan, "pred_to_gt": nan, "gt_to_pred": nan}
    d_pq, _ = cKDTree(q).query(p, k=1)
    d_qp, _ = cKDTree(p).query(q, k=1)
    a = float(np.sum(wp * d_pq) / np.sum(wp))
    b = float(np.sum(wq * d_qp) / np.sum(wq))
    return {"chamfer": 0.5 * (a + b), "pred_to_gt": a, "gt_to_pred": b}


def temporal_stability(pred_motion: list[float], gt_motion: list[float]) -> dict[str, float]:
    """Summary of frame-to-frame changes: ``pred_motion[k]`` / ``gt_motion[k]`` are
    chamfer(frame k, frame k+1) of the prediction / ground truth (consecutive evaluated frames).

    Returns ``{"temporal_error", "pred_motion", "gt_motion"}``: mean |pred - gt| and the two means
    (NaN with fewer than two frames).
    """
    if len(pred_motion) != len(gt_motion):
        raise ValueError("temporal_stability: the two motion lists differ in length")
    if not pred_motion:
        nan = float("nan")
        return {"temporal_error": nan, "pred_motion": nan, "gt_motion": nan}
    p, g = np.asarray(pred_motion, dtype=np.float64), np.asarray(gt_motion, dtype=np.float64)
    return {"temporal_error": float(np.mean(np.abs(p - g))), "pred_motion": float(p.mean()), "gt_motion": float(g.mean())}
