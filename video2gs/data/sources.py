"""Source objects of a synthetic dataset: Gaussian files, static meshes and MD2 models.

:func:`identify` decides what a path is (``.splat`` and Gaussian PLYs -> "gaussians"; ``.md2``
-> "md2"; OBJ/GLB/glTF/STL/OFF and PLYs with faces -> "mesh") and finds its licence and
attribution: from an ``inventory.json`` next to the file (the format of ../shared/data/splats:
``objects[].file``, ``license``, ``attribution``, ``sha256``), else from a ``*-source.txt`` next
to an MD2 model, else "unknown" with a warning. Loading returns the rest shape normalised the
way L4GM's renderer normalises (largest bounding-box side 1, centred at the origin).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from video2gs.errors import UserError
from video2gs.gaussians import Gaussians

GAUSSIAN_SUFFIXES = (".splat",)
MESH_ONLY_SUFFIXES = (".obj", ".glb", ".gltf", ".stl", ".off")
UNKNOWN = "unknown"


@dataclass
class Source:
    """One object file with its provenance. ``kind``: 'gaussians' | 'mesh' | 'md2'."""

    path: Path
    kind: str
    name: str
    sha256: str
    licence: str = UNKNOWN
    attribution: str = UNKNOWN
    title: str | None = None
    licence_url: str | None = None
    texture: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def record(self) -> dict:
        """The JSON record stored in dataset.json / clip.json."""
        out = {"file": self.path.name, "path": str(self.path), "kind": self.kind, "sha256": self.sha256,
               "title": self.title or self.name, "licence": self.licence, "licence_url": self.licence_url,
               "attribution": self.attribution}
        if self.texture is not None:
            out["texture"] = str(self.texture)
        return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _ply_header(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    end = head.find(b"end_header")
    if not head.startswith(b"ply") or end < 0:
        raise UserError(f"{path}: not a PLY file")
    return head[:end].decode("ascii", "replace")


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in GAUSSIAN_SUFFIXES:
        return "gaussians"
    if suffix == ".md2":
        return "md2"
    if suffix in MESH_ONLY_SUFFIXES:
        return "mesh"
    if suffix == ".ply":
        header = _ply_header(path)
        if "property float f_dc_0" in header or "property float opacity" in header:
            return "gaussians"
        if "element face" in header:
            return "mesh"
        raise UserError(f"{path}: PLY holds neither Gaussians (f_dc_*, opacity) nor faces")
    raise UserError(f"{path}: unsupported object type '{path.suffix}' (.ply, .splat, .md2, .obj, .glb, .gltf, .stl, .off)")


def _inventory_entry(path: Path, sha: str) -> tuple[dict | None, str | None]:
    inventory = path.parent / "inventory.json"
    if not inventory.is_file():
        return None, None
    try:
        objects = json.loads(inventory.read_text(encoding="utf-8")).get("objects", [])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None, f"{inventory}: unreadable, licence of {path.name} unknown"
    for entry in objects:
        if isinstance(entry, dict) and entry.get("file") == path.name:
            if entry.get("sha256") and entry["sha256"] != sha:
                return None, f"{path.name}: content differs from {inventory} (sha256), licence unknown"
            return entry, None
    return None, None


def identify(path: str | Path, texture: str | Path | None = None) -> Source:
    """A :class:`Source` for ``path`` (UserError naming the file when it is unusable)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such object file")
    kind = _kind(path)
    sha = _sha256(path)
    src = Source(path=path.resolve(), kind=kind, name=path.stem, sha256=sha)
    entry, problem = _inventory_entry(path, sha)
    if problem:
        src.warnings.append(problem)
    if entry is not None:
        src.licence = str(entry.get("license") or UNKNOWN)
        src.attribution = str(entry.get("attribution") or UNKNOWN)
        src.title = entry.get("title")
        src.licence_url = entry.get("license_url")
    elif kind == "md2":
        notes = sorted(path.parent.glob(f"{path.stem}*-source.txt")) or sorted(path.parent.glob("*source*.txt"))
        if notes:
            text = notes[0].read_text(encoding="utf-8", errors="replace")
            first = next((line.strip() for line in text.splitlines() if "Licen" in line or "License" in line), None)
            src.licence = first or f"see {notes[0].name}"
            credit = next((line.strip() for line in text.splitlines() if "Copyright" in line), None)
            src.attribution = f"{credit} (see {notes[0].name})" if credit else f"see {notes[0].name}"
    if src.licence == UNKNOWN and not problem:
        src.warnings.append(f"{path.name}: no licence/attribution found (no inventory.json entry); recorded as 'unknown'")
    if texture is not None:
        src.texture = Path(texture)
    return src


# -- normalisation ------------------------------------------------------------------------------------
def normalisation(points: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre [3], scale) so that (points - centre) * scale has largest bbox side 1, centred.
    points [..., 3] (all frames together)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    lo, hi = p.min(0), p.max(0)
    side = float((hi - lo).max())
    if not side > 0:
        raise UserError("the object has zero extent")
    return (lo + hi) / 2, 1.0 / side


def normalise_gaussians(g: Gaussians, centre: np.ndarray, scale: float) -> Gaussians:
    """Translate by -centre, then scale positions and extents by ``scale`` ([..., N, 14])."""
    out = g.data.clone()
    out[..., 0:3] = (out[..., 0:3] - torch.as_tensor(centre, dtype=out.dtype)) * scale
    out[..., 4:7] = out[..., 4:7] * scale
    return Gaussians(out)


def load_gaussian_source(src: Source) -> Gaussians:
    """The Gaussians [N,14] of a Gaussian source, internal +Y-up frame, normalised."""
    from video2gs.formats import load_gaussians

    g = load_gaussians(src.path)
    centre, scale = normalisation(g.xyz.numpy())
    return normalise_gaussians(g, centre, scale)
