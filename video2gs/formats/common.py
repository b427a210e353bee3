"""What the PLY and .splat readers/writers share: the up-axis choice, the result of a read,
and the sign table that carries higher SH bands through the up-axis flip.

Frames (``conventions.md`` §12): video2gs works internally in L4GM's **+Y-up** world. Files
are written by default in the OpenCV/COLMAP **−Y-up** frame that SuperSplat and gsplat.js
show upright (a bare Spark ``SplatMesh`` shows it upside down: Spark's +Y-up world needs the 180°
turn about X its examples apply to COLMAP captures; ``formats/web.py`` writes Spark's frames).
``up="y"`` means "this file is in the internal frame", ``up="-y"`` means "rotated 180° about X". The conversions below are exact inverses of each other, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from video2gs.errors import UserError
from video2gs.gaussians import ROTATION, Gaussians

UP_CHOICES = ("y", "-y")
EXPORT_UP = "-y"  # what splat viewers show upright; the default for every file we write
FOREIGN_UP = "-y"  # files that do not say otherwise follow the 3DGS/COLMAP convention
SH_REST_COUNTS = {0: 0, 1: 9, 2: 24, 3: 45}  # f_rest count 3·((d+1)²−1) per SH degree d

# Real SH basis (graphdeco order, bands 1..3) under (x,y,z) -> (x,−y,−z): each basis
# function is odd or even in (y,z) jointly, so the flip multiplies each coefficient by ±1.
# band 1: y, z, x | band 2: xy, yz, 3z²−1, xz, x²−y² | band 3: y(3x²−y²), xyz, y(5z²−1),
# z(5z²−3), x(5z²−1), z(x²−y²), x(x²−3y²)
_SH_FLIP_SIGNS = (-1, -1, 1) + (-1, 1, 1, -1, 1) + (-1, 1, -1, -1, 1, -1, 1)


def check_up(up: str, what: str = "up") -> str:
    """Normalise an up-axis choice ('y', '+y', '-y') to 'y' or '-y'; UserError otherwise."""
    value = str(up).strip().lower()
    value = "y" if value == "+y" else value
    if value not in UP_CHOICES:
        raise UserError(f"{what} must be 'y' or '-y', got {up!r}")
    return value


def from_file_frame(g: Gaussians, up: str) -> Gaussians:
    """Gaussians [N,14] stored in frame ``up`` -> the internal +Y-up frame."""
    return g if check_up(up) == "y" else g.flip_up_axis()


def to_file_frame(g: Gaussians, up: str) -> Gaussians:
    """Internal Gaussians [N,14] -> frame ``up``; the exact inverse of :func:`from_file_frame`.

    ``flip_up_axis`` applied twice returns −q for each quaternion (the same rotation); negating
    here makes write-then-read return the very same numbers, so re-encoding a file we read
    reproduces its bytes.
    """
    if check_up(up) == "y":
        return g
    out = g.flip_up_axis().data
    out[..., ROTATION] = -out[..., ROTATION]
    return Gaussians(out)


def flip_sh_rest(sh_rest: torch.Tensor) -> torch.Tensor:
    """Higher SH coefficients [N,3,K−1] (channel-major) rotated 180° about X (its own inverse)."""
    k = sh_rest.shape[-1]
    signs = torch.tensor(_SH_FLIP_SIGNS[:k], dtype=sh_rest.dtype, device=sh_rest.device)
    return sh_rest * signs


def sh_degree_for_rest(count: int, what: str) -> int:
    """SH degree from the number of f_rest values per Gaussian (0/9/24/45); UserError otherwise."""
    for degree, n in SH_REST_COUNTS.items():
        if n == count:
            return degree
    raise UserError(f"{what}: has {count} f_rest properties; expected 0, 9, 24 or 45 (SH degree 0-3)")


@dataclass
class GaussianFile:
    """One file's content after reading.

    gaussians: [N,14] in the internal +Y-up frame, validated.
    up: the frame the file was stored in; up_source: 'header' (the file says so), 'override'
      (the caller forced it) or 'default' (assumed).
    sh_degree: the file's SH degree; sh_rest: [N,3,K−1] channel-major higher-band coefficients
      (internal frame) when read with ``sh="keep"``, else None; sh_dropped: True when the file
      had higher bands and they were dropped (colour is then the DC term only).
    """

    path: Path
    gaussians: Gaussians
    up: str
    up_source: str
    sh_degree: int = 0
    sh_rest: torch.Tensor | None = None
    sh_dropped: bool = False
    comments: list[str] = field(default_factory=list)


def resolve_up(header_up: str | None, up: str | None, default_up: str) -> tuple[str, str]:
    """(frame, source): a forced ``up`` wins, then what the file records, then ``default_up``."""
    if up is not None:
        return check_up(up), "override"
    if header_up is not None:
        return header_up, "header"
    return check_up(default_up), "default"


def assemble(xyz, opacity, scale, quat, rgb) -> Gaussians:
    """Decoded float64 numpy fields -> Gaussians [N,14] float32: xyz [N,3], opacity [N],
    scale [N,3], quat [N,4] (w first; must be non-zero), rgb [N,3].

    Quaternions already unit to float32 precision are kept bit for bit (so a file we wrote reads
    back exactly); the others are normalised, as every 3DGS reader does.
    """
    norm = np.linalg.norm(quat, axis=1, keepdims=True)
    quat = np.where(np.abs(norm - 1.0) > 1e-6, quat / norm, quat)
    with np.errstate(over="ignore"):  # values beyond float32 become Inf, which validate() reports
        data = np.concatenate([xyz, opacity[:, None], scale, quat, rgb], axis=1).astype(np.float32)
    return Gaussians(torch.from_numpy(data))


def check_readable_file(path: Path, kind: str) -> Path:
    """UserError unless ``path`` is an existing, readable file."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a {kind} file")
    return path
