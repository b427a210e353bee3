"""Gaussian files: standard 3DGS PLY and antimatter15 .splat, chosen by extension.

Everything read comes back in the internal +Y-up frame; everything written goes out in the
frame ``up`` names (default '-y', what SuperSplat and gsplat.js show upright; for Spark see
:mod:`video2gs.formats.web`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from video2gs.errors import UserError
from video2gs.formats.common import EXPORT_UP, FOREIGN_UP, UP_CHOICES, GaussianFile, check_up
from video2gs.formats.ply import read_ply, write_ply
from video2gs.formats.splat import read_splat, write_splat
from video2gs.gaussians import PRUNE_OPACITY, Gaussians

SUFFIXES = (".ply", ".splat")

__all__ = [
    "EXPORT_UP",
    "FOREIGN_UP",
    "SUFFIXES",
    "UP_CHOICES",
    "GaussianFile",
    "check_up",
    "load_gaussians",
    "read_gaussians",
    "read_ply",
    "read_splat",
    "save_gaussians",
    "write_ply",
    "write_splat",
]


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"{path}: unsupported file type '{path.suffix}' (expected .ply or .splat)")
    return suffix


def read_gaussians(
    path: str | Path, *, up: str | None = None, default_up: str = FOREIGN_UP, sh: str = "drop"
) -> GaussianFile:
    """Read a .ply or .splat file; see :func:`read_ply` for ``up``, ``default_up`` and ``sh``."""
    path = Path(path)
    if _kind(path) == ".ply":
        return read_ply(path, up=up, default_up=default_up, sh=sh)
    return read_splat(path, up=up, default_up=default_up)


def load_gaussians(path: str | Path, *, up: str | None = None, default_up: str = FOREIGN_UP) -> Gaussians:
    """Gaussians [N,14] in the internal +Y-up frame from a .ply or .splat file (DC colour)."""
    return read_gaussians(path, up=up, default_up=default_up).gaussians


def save_gaussians(
    path: str | Path,
    gaussians: Gaussians,
    *,
    up: str = EXPORT_UP,
    min_opacity: float | None = PRUNE_OPACITY,
    sh_rest: torch.Tensor | None = None,
    normals: bool = False,
) -> int:
    """Write one frame [N,14] as .ply or .splat (by extension), atomically; returns the count written.

    ``sh_rest`` and ``normals`` apply to PLY only (.splat stores neither).
    """
    path = Path(path)
    if _kind(path) == ".ply":
        return write_ply(path, gaussians, up=up, min_opacity=min_opacity, sh_rest=sh_rest, normals=normals)
    if sh_rest is not None:
        raise UserError(f"{path}: .splat stores no higher SH bands; write a .ply to keep them")
    return write_splat(path, gaussians, up=up, min_opacity=min_opacity)
