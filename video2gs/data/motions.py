"""Procedural motions with seeded random parameters, applied to points or to Gaussians.

A motion is a deformation ``phi(x, u)`` of 3-D points x [N,3] at normalised time u in [0, 1]
(u = t / (T - 1) over a clip), with ``phi(x, 0)`` close to the rest shape. Applied to Gaussians,
means move by ``phi`` and covariances follow the local Jacobian ``J = d phi / d x``:
``Sigma' = J Sigma J^T`` (then re-factorised into rotation and scales), so a Gaussian bends, twists
and stretches with the surface around it. J is exact (forward-mode autodiff of the same torch code
that moves the points), never a finite difference. Mesh sources move their vertices with ``phi``.

Motions (parameters drawn by :func:`sample_motion` from a seeded generator; all in units of the
normalised object, largest side 1, centred):

========== ======================================================================================
spin       rotation about a slightly tilted vertical axis, 0.5 to 1.5 turns
tumble     rotation about a random axis through the centre, 0.25 to 0.75 turns
translate  the object moves along a cubic Bezier path from the centre (reach up to 0.25)
squash     volume-preserving squash and stretch along the vertical, 1 to 2 cycles, 15-35 %
bend       the longest extent curves onto an arc toward a random side, 70 to 140 deg end to end
twist      rotation about the vertical axis growing linearly with height, 120 to 240 deg per unit
articulate a plane cuts off a part, which rotates about a hinge line in that plane, 30-90 deg
wave       a travelling sine wave displaces points across its direction of travel
========== ======================================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from video2gs.errors import UserError
from video2gs.gaussians import Gaussians, quat_to_rotmat, rotmat_to_quat

MOTIONS = ("spin", "tumble", "translate", "squash", "bend", "twist", "articulate", "wave")


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _random_unit(rng: np.random.Generator) -> np.ndarray:
    return _unit(rng.normal(size=3))


def _perpendicular(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random unit vector perpendicular to the unit vector a."""
    v = rng.normal(size=3)
    v -= v.dot(a) * a
    return _unit(v)


def _rotate(x: torch.Tensor, axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues rotation of points x [N,3] about unit axis [3] (or [N,3]) by angle [N] or scalar (radians)."""
    angle = torch.as_tensor(angle, dtype=x.dtype)
    if angle.ndim == 0:
        angle = angle.expand(x.shape[0])
    axis = axis.expand_as(x)
    c, s = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
    return x * c + torch.cross(axis, x, dim=-1) * s + axis * (axis * x).sum(-1, keepdim=True) * (1 - c)


@dataclass
class Motion:
    """A named deformation with its parameters (JSON-ready: floats and lists)."""

    name: str
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.name not in MOTIONS:
            raise UserError(f"unknown motion {self.name!r} (choose from: {', '.join(MOTIONS)})")

    def _p(self, key, dtype=torch.float64) -> torch.Tensor:
        return torch.as_tensor(self.params[key], dtype=dtype)

    # -- the deformation --------------------------------------------------------------------------
    def apply(self, x: torch.Tensor, u: float) -> torch.Tensor:
        """phi(x, u): points x [N,3] float64 at normalised time u in [0,1] -> [N,3]."""
        name, p = self.name, self.params
        if name in ("spin", "tumble"):
            return _rotate(x, self._p("axis"), torch.tensor(2 * math.pi * p["turns"] * u))
        if name == "translate":
            c = torch.as_tensor(np.asarray(p["control"]), dtype=x.dtype)  # [4,3] Bezier control points
            b = (1 - u) ** 3 * c[0] + 3 * (1 - u) ** 2 * u * c[1] + 3 * (1 - u) * u**2 * c[2] + u**3 * c[3]
            return x + b
        if name == "squash":
            s = 1 + p["amount"] * math.sin(2 * math.pi * p["cycles"] * u)
            axis = self._p("axis")
            along = (x * axis).sum(-1, keepdim=True) * axis
            return along * s + (x - along) / math.sqrt(s)  # volume preserving
        if name == "twist":
            axis = self._p("axis")
            h = (x * axis).sum(-1)
            angle = math.radians(p["degrees_per_unit"]) * u * h
            return _rotate(x, axis, angle)
        if name == "bend":
            return self._bend(x, u)
        if name == "articulate":
            return self._articulate(x, u)
        if name == "wave":
            k = self._p("direction")
            d = self._p("displacement")
            phase = 2 * math.pi * ((x * k).sum(-1) / p["wavelength"] - p["cycles"] * u)
            ramp = min(1.0, 4 * u)  # start from the rest shape
            return x + ramp * p["amplitude"] * torch.sin(phase)[:, None] * d
        raise AssertionError(name)

    def _bend(self, x: torch.Tensor, u: float) -> torch.Tensor:
        # Points are bent in the plane spanned by `along` (the bending direction of the length) and
        # `normal`: coordinate s along `along` maps onto an arc of curvature k, offset r along
        # `normal` keeps its distance from the arc's centre line (a beam bending about `hinge`).
        along, normal = self._p("along"), self._p("normal")
        k = math.radians(self.params["degrees"]) * u / max(self.params["length"], 1e-9)
        s = (x * along).sum(-1)
        r = (x * normal).sum(-1)
        rest = x - s[:, None] * along - r[:, None] * normal
        if abs(k) < 1e-9:
            return x
        theta = k * s
        radius = 1.0 / k
        new_s = (radius - r) * torch.sin(theta)
        new_r = radius - (radius - r) * torch.cos(theta)
        return rest + new_s[:, None] * along + new_r[:, None] * normal

    def _articulate(self, x: torch.Tensor, u: float) -> torch.Tensor:
        n = self._p("plane_normal")
        offset = self.params["plane_offset"]
        hinge_axis = self._p("hinge_axis")
        hinge_point = self._p("hinge_point")
        angle = math.radians(self.params["degrees"]) * math.sin(0.5 * math.pi * min(1.0, 1.5 * u)) ** 2
        # A clean cut: the part beyond the plane turns rigidly (J = R there, I elsewhere). A smooth
        # blend across the plane would stretch the Gaussians in it into streaks across the gap.
        side = ((x * n).sum(-1) > offset).to(x.dtype)
        moved = _rotate(x - hinge_point, hinge_axis, torch.tensor(angle)) + hinge_point
        return x + side[:, None] * (moved - x)

    # -- Jacobians and Gaussians ------------------------------------------------------------------
    def apply_with_jacobian(self, x: torch.Tensor, u: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(phi(x, u) [N,3], J [N,3,3] with J[n, i, j] = d phi_i / d x_j), by forward-mode autodiff."""
        x = x.to(torch.float64)
        cols = []
        y = None
        for j in range(3):
            tangent = torch.zeros_like(x)
            tangent[:, j] = 1.0
            y, dy = torch.func.jvp(lambda p: self.apply(p, u), (x,), (tangent,))
            cols.append(dy)
        return y, torch.stack(cols, dim=-1)

    def apply_to_gaussians(self, g: Gaussians, u: float) -> Gaussians:
        """Move means by phi and covariances by J: Sigma' = J Sigma J^T (one frame [N,14])."""
        data = g.data.to(torch.float64)
        xyz, J = self.apply_with_jacobian(data[:, 0:3], u)
        R = quat_to_rotmat(data[:, 7:11])
        S = data[:, 4:7]
        M = J @ R * S[:, None, :]  # J R diag(s): Sigma' = M M^T
        cov = M @ M.transpose(1, 2)
        evals, evecs = torch.linalg.eigh(cov)
        evecs = torch.where(torch.linalg.det(evecs)[:, None, None] < 0, evecs * torch.tensor([1.0, 1.0, -1.0], dtype=evecs.dtype), evecs)
        scales = torch.sqrt(evals.clamp_min(1e-20))
        out = data.clone()
        out[:, 0:3] = xyz
        out[:, 4:7] = scales
        out[:, 7:11] = rotmat_to_quat(evecs).to(torch.float64)
        return Gaussians(out.to(torch.float32))


# -- parameters --------------------------------------------------------------------------------------
def sample_motion(name: str, rng: np.random.Generator, extent: np.ndarray | None = None) -> Motion:
    """Draw the parameters of motion ``name`` from ``rng``. ``extent`` [3]: the object's bounding
    box side lengths (normalised, largest 1), used to place cut planes and the bending length."""
    extent = np.ones(3) if extent is None else np.asarray(extent, dtype=np.float64)
    up = np.array([0.0, 1.0, 0.0])
    if name == "spin":
        axis = _unit(up + 0.15 * rng.normal(size=3))
        params = {"axis": axis.tolist(), "turns": float(rng.uniform(0.5, 1.5)) * float(rng.choice([-1, 1]))}
    elif name == "tumble":
        params = {"axis": _random_unit(rng).tolist(), "turns": float(rng.uniform(0.25, 0.75)) * float(rng.choice([-1, 1]))}
    elif name == "translate":
        control = np.zeros((4, 3))
        for i in range(1, 4):
            control[i] = rng.uniform(-0.25, 0.25, size=3) * np.array([1.0, 0.6, 1.0])
        params = {"control": control.tolist()}
    elif name == "squash":
        params = {"axis": up.tolist(), "amount": float(rng.uniform(0.15, 0.35)), "cycles": float(rng.integers(1, 3))}
    elif name == "twist":
        params = {"axis": up.tolist(), "degrees_per_unit": float(rng.uniform(120, 240)) * float(rng.choice([-1, 1]))}
    elif name == "bend":
        # Bend the longest horizontal-or-vertical extent toward a random perpendicular direction.
        longest = int(np.argmax(extent))
        along = np.eye(3)[longest]
        normal = _perpendicular(along, rng)
        params = {"along": along.tolist(), "normal": normal.tolist(), "length": float(extent[longest]),
                  "degrees": float(rng.uniform(70, 140)) * float(rng.choice([-1, 1]))}
    elif name == "articulate":
        n = _random_unit(rng)
        half = 0.5 * float(np.abs(n * extent).sum())  # half the object's extent along n
        offset = float(rng.uniform(0.2, 0.5)) * half
        hinge_axis = _perpendicular(n, rng)
        params = {"plane_normal": n.tolist(), "plane_offset": offset, "hinge_axis": hinge_axis.tolist(),
                  "hinge_point": (n * offset).tolist(), "degrees": float(rng.uniform(30, 90)) * float(rng.choice([-1, 1]))}
    elif name == "wave":
        k = _random_unit(rng)
        params = {"direction": k.tolist(), "displacement": _perpendicular(k, rng).tolist(),
                  "wavelength": float(rng.uniform(0.5, 1.0)), "amplitude": float(rng.uniform(0.03, 0.07)),
                  "cycles": float(rng.integers(1, 3))}
    else:
        raise UserError(f"unknown motion {name!r} (choose from: {', '.join(MOTIONS)})")
    return Motion(name, params)


def parse_motions(names) -> list[str]:
    """Validate motion names ('all' expands to every motion); UserError for unknown ones."""
    out = []
    for item in names:
        for name in str(item).split(","):
            name = name.strip()
            if not name:
                continue
            if name == "all":
                out.extend(m for m in MOTIONS if m not in out)
                continue
            if name not in MOTIONS:
                raise UserError(f"unknown motion {name!r} (choose from: {', '.join(MOTIONS)}, all)")
            if name not in out:
                out.append(name)
    return out
