"""The activated-Gaussian container in L4GM's layout.

One Gaussian is 14 floats (``conventions.md`` §8)::

    xyz (0:3) | opacity in (0,1) (3) | scale, linear std-dev > 0 (4:7) | quaternion w,x,y,z (7:11) | rgb in [0,1] (11:14)

A single frame is ``[N,14]``; a sequence of frames is ``[T,N,14]``. Everything here works on
either (the leading dimensions are kept) and never changes the layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from video2gs.errors import UserError

XYZ = slice(0, 3)
OPACITY = slice(3, 4)
SCALE = slice(4, 7)
ROTATION = slice(7, 11)
RGB = slice(11, 14)
NUM_CHANNELS = 14

SH_C0 = 0.28209479177387814  # degree-0 spherical-harmonic constant
PRUNE_OPACITY = 0.005  # LGM prunes Gaussians below this opacity when saving


def quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    """Unit-normalised quaternions [...,4] (w,x,y,z) -> rotation matrices [...,3,3]."""
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*q.shape[:-1], 3, 3)


def rotmat_to_quat(r: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [...,3,3] -> unit quaternions [...,4] (w,x,y,z), w >= 0."""
    r = r.to(torch.float64)
    m00, m11, m22 = r[..., 0, 0], r[..., 1, 1], r[..., 2, 2]
    # Four candidate forms; pick the numerically largest per element (Shepperd's method).
    qs = torch.stack(
        [
            torch.stack([1 + m00 + m11 + m22, r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], -1),
            torch.stack([r[..., 2, 1] - r[..., 1, 2], 1 + m00 - m11 - m22, r[..., 0, 1] + r[..., 1, 0], r[..., 0, 2] + r[..., 2, 0]], -1),
            torch.stack([r[..., 0, 2] - r[..., 2, 0], r[..., 0, 1] + r[..., 1, 0], 1 - m00 + m11 - m22, r[..., 1, 2] + r[..., 2, 1]], -1),
            torch.stack([r[..., 1, 0] - r[..., 0, 1], r[..., 0, 2] + r[..., 2, 0], r[..., 1, 2] + r[..., 2, 1], 1 - m00 - m11 + m22], -1),
        ],
        dim=-2,
    )  # [...,4 candidates,4]
    diag = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = diag.argmax(-1)
    q = torch.gather(qs, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    q = torch.where(q[..., :1] < 0, -q, q)
    return q.to(torch.float32)


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a*b of quaternions [...,4] (w,x,y,z); R(a*b) = R(a) R(b)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


@dataclass
class Gaussians:
    """Activated 3D Gaussians, ``data`` [...,N,14] (see module docstring for the layout)."""

    data: torch.Tensor

    def __post_init__(self):
        if self.data.ndim < 2 or self.data.shape[-1] != NUM_CHANNELS:
            raise ValueError(f"Gaussians need shape [...,N,14], got {tuple(self.data.shape)}")

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_fields(cls, xyz, opacity, scale, rotation, rgb) -> "Gaussians":
        """Build from fields: xyz [...,N,3], opacity [...,N] or [...,N,1], scale [...,N,3],
        rotation [...,N,4] (w,x,y,z; normalised here), rgb [...,N,3]."""
        opacity = opacity if opacity.shape[-1:] == (1,) and opacity.ndim == xyz.ndim else opacity[..., None]
        rotation = rotation / rotation.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return cls(torch.cat([xyz, opacity, scale, rotation, rgb], dim=-1).to(torch.float32))

    # -- fields ------------------------------------------------------------------------------
    @property
    def xyz(self) -> torch.Tensor:  # [...,N,3]
        return self.data[..., XYZ]

    @property
    def opacity(self) -> torch.Tensor:  # [...,N]
        return self.data[..., 3]

    @property
    def scale(self) -> torch.Tensor:  # [...,N,3]
        return self.data[..., SCALE]

    @property
    def rotation(self) -> torch.Tensor:  # [...,N,4]
        return self.data[..., ROTATION]

    @property
    def rgb(self) -> torch.Tensor:  # [...,N,3]
        return self.data[..., RGB]

    def __len__(self) -> int:
        """Number of Gaussians N (per frame)."""
        return self.data.shape[-2]

    @property
    def num_frames(self) -> int:
        return 1 if self.data.ndim == 2 else self.data.shape[0]

    def frame(self, t: int) -> "Gaussians":
        return Gaussians(self.data[t]) if self.data.ndim == 3 else self

    def to(self, *args, **kwargs) -> "Gaussians":
        return Gaussians(self.data.to(*args, **kwargs))

    # -- transforms -------------------------------------------------------------------------
    def transform(self, rotation: torch.Tensor, translation=None, scale: float = 1.0) -> "Gaussians":
        """Apply x -> scale * R x + t. R [3,3] must be a proper rotation; it turns both the
        positions and the orientations; the Gaussians' extents are multiplied by ``scale``."""
        R = torch.as_tensor(rotation, dtype=self.data.dtype, device=self.data.device)
        t = torch.zeros(3) if translation is None else torch.as_tensor(translation, dtype=self.data.dtype)
        t = t.to(self.data.device)
        if abs(float(torch.det(R.double())) - 1.0) > 1e-4:
            raise ValueError("rotation must be a proper rotation matrix (det = +1)")
        q_r = rotmat_to_quat(R).to(self.data)
        out = self.data.clone()
        out[..., XYZ] = scale * (self.xyz @ R.T) + t
        out[..., ROTATION] = quat_multiply(q_r.expand_as(self.rotation), self.rotation)
        out[..., SCALE] = self.scale * scale
        return Gaussians(out)

    def flip_up_axis(self, inverse: bool = False) -> "Gaussians":
        """Rotate 180 deg about X: (x,y,z) -> (x,-y,-z), i.e. +Y-up (L4GM) <-> -Y-up (OpenCV viewers).

        The quaternion is left-multiplied by (0,1,0,0): (w,x,y,z) -> (-x,w,-z,y), so
        R(q') = diag(1,-1,-1) R(q). Applying it twice gives -q (the same rotation, other sign);
        ``inverse=True`` multiplies by the conjugate instead, so ``g.flip_up_axis().flip_up_axis(inverse=True)``
        restores ``g`` bit for bit. Use ``inverse=True`` when reading back what was exported.
        """
        out = self.data.clone()
        out[..., 1] = -self.data[..., 1]
        out[..., 2] = -self.data[..., 2]
        w, x, y, z = self.rotation.unbind(-1)
        out[..., ROTATION] = torch.stack([x, -w, z, -y] if inverse else [-x, w, -z, y], dim=-1)
        return Gaussians(out)

    def prune(self, min_opacity: float = PRUNE_OPACITY) -> "Gaussians":
        """Drop Gaussians with opacity < ``min_opacity`` (single frame [N,14] only: frames of a
        sequence may keep different counts)."""
        if self.data.ndim != 2:
            raise ValueError("prune works on one frame [N,14]; prune each frame separately")
        return Gaussians(self.data[self.opacity >= min_opacity])

    # -- checks --------------------------------------------------------------------------------
    def validate(self, what: str = "Gaussians", quat_tol: float = 1e-3) -> "Gaussians":
        """Raise :class:`UserError` unless values are finite, scales positive, quaternions unit,
        opacity in [0,1] and there is at least one Gaussian. Returns self for chaining."""
        d = self.data
        if len(self) == 0:
            raise UserError(f"{what}: contains zero Gaussians")
        if not torch.isfinite(d).all():
            bad = int((~torch.isfinite(d)).any(-1).sum())
            raise UserError(f"{what}: {bad} Gaussian(s) have NaN or Inf values")
        if (self.scale <= 0).any():
            raise UserError(f"{what}: scales must be positive")
        if ((self.opacity < 0) | (self.opacity > 1)).any():
            raise UserError(f"{what}: opacities must lie in [0, 1]")
        if ((self.rotation.norm(dim=-1) - 1).abs() > quat_tol).any():
            raise UserError(f"{what}: rotation quaternions are not unit length")
        return self
