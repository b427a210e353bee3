"""antimatter15 ``.splat``: headerless 32-byte little-endian records (``conventions.md`` §11).

    0:12  position, 3 × float32        12:24 scale σ, 3 × float32 (linear)
    24:28 R G B A, 4 × uint8 (A = α)   28:32 quaternion w x y z, 4 × uint8, q·128 + 128

DC colour only. The format has nowhere to record the frame, so readers assume ``default_up``
(−Y up, like antimatter15's own files and ../shared/data/splats) unless told otherwise.

Writing follows antimatter15's ``convert.py`` (records sorted largest-and-most-opaque first by
−σx·σy·σz·α; RGBA truncated to integers) with two refinements that make decode → encode the
identity, so a file we read is re-encoded byte for byte: the truncation tolerates float
round-off, and each quaternion is quantised to the byte quadruple whose direction is closest
to it (readers renormalise, so only the direction matters) rather than by plain truncation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from video2gs.errors import UserError
from video2gs.fileio import atomic_path
from video2gs.formats.common import (
    EXPORT_UP,
    FOREIGN_UP,
    GaussianFile,
    assemble,
    check_readable_file,
    check_up,
    from_file_frame,
    resolve_up,
    to_file_frame,
)
from video2gs.gaussians import OPACITY, PRUNE_OPACITY, RGB, ROTATION, SCALE, XYZ, Gaussians

RECORD = np.dtype([("position", "<f4", (3,)), ("scale", "<f4", (3,)), ("rgba", "u1", (4,)), ("rotation", "u1", (4,))])
assert RECORD.itemsize == 32

_ROUNDOFF = 1e-3  # byte steps: covers float32 round-off (< 2e-5) and the PLY opacity clamp (2.6e-4)
# Quaternion quantisation: candidate magnitudes s·128 around 128, nearest to 1 first. Step 0.002
# keeps round(s·128·q) within reach of every quadruple whose norm is within 2 % of 128.
_QUAT_GAINS = 1.0 + np.array(sorted(np.arange(-10, 11) * 0.002, key=abs))


def encode_unit(values: np.ndarray) -> np.ndarray:
    """Values in [0,1] -> uint8, truncated like antimatter15 (robust to float round-off)."""
    return np.clip(np.floor(values * 255.0 + _ROUNDOFF), 0, 255).astype(np.uint8)


def encode_rotation(q: np.ndarray) -> np.ndarray:
    """Quaternions [N,4] (any norm, w first) -> uint8 [N,4] whose decoded direction is closest to q.

    Candidates are antimatter15's truncation and rounding at gains near 1; among equally good
    (parallel) quadruples the earliest wins, so antimatter15's own bytes are kept when optimal.
    """
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    best = np.full(len(q), -np.inf)
    out = np.zeros((len(q), 4), dtype=np.uint8)
    for gain in _QUAT_GAINS:
        for quantise in (np.floor, np.rint):
            b = np.clip(quantise(128.0 + 128.0 * gain * q), 0, 255)
            v = b - 128.0
            cos = (v * q).sum(1) / np.maximum(np.linalg.norm(v, axis=1), 1e-12)
            better = cos > best + 1e-12  # exact ties keep the earlier candidate
            out[better] = b[better]
            best[better] = cos[better]
    return out


def decode_rotation(b: np.ndarray) -> np.ndarray:
    """uint8 [N,4] -> float64 [N,4] quaternion (not normalised): (b − 128)/128."""
    return (b.astype(np.float64) - 128.0) / 128.0


def write_splat(
    path: str | Path,
    gaussians: Gaussians,
    *,
    up: str = EXPORT_UP,
    min_opacity: float | None = PRUNE_OPACITY,
    sort: bool = True,
) -> int:
    """Write one frame [N,14] (internal frame) as .splat; returns the record count.

    up: the file's frame ('-y' default, what viewers expect). min_opacity: prune below it first
    (None or 0 keeps all). sort: antimatter15's order (stable); False keeps the given order.
    """
    path = Path(path)
    up = check_up(up)
    if gaussians.data.ndim != 2:
        raise ValueError("write_splat writes one frame [N,14]")
    g = gaussians.to(device="cpu", dtype=torch.float32).validate(f"cannot write {path}")
    if min_opacity:
        g = Gaussians(g.data[g.opacity >= min_opacity])
        if len(g) == 0:
            raise UserError(f"cannot write {path}: every Gaussian has opacity below {min_opacity} (nothing left after pruning)")
    d = to_file_frame(g, up).data.numpy()  # [N,14] float32
    if sort:
        size = np.prod(d[:, SCALE].astype(np.float64), axis=1) * d[:, OPACITY][:, 0]
        d = d[np.argsort(-size, kind="stable")]
    records = np.empty(len(d), dtype=RECORD)
    records["position"] = d[:, XYZ]
    records["scale"] = d[:, SCALE]
    records["rgba"][:, :3] = encode_unit(d[:, RGB].astype(np.float64))
    records["rgba"][:, 3] = encode_unit(d[:, OPACITY][:, 0].astype(np.float64))
    records["rotation"] = encode_rotation(d[:, ROTATION])
    with atomic_path(path) as tmp:
        records.tofile(tmp)
    return len(records)


def read_splat(path: str | Path, *, up: str | None = None, default_up: str = FOREIGN_UP) -> GaussianFile:
    """Read a .splat file into the internal +Y-up frame (``up`` forces the file's frame)."""
    path = check_readable_file(Path(path), ".splat")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if len(raw) == 0:
        raise UserError(f"{path}: contains zero Gaussians (empty file)")
    if len(raw) % RECORD.itemsize:
        raise UserError(
            f"{path}: truncated or not a .splat file (size {len(raw)} B is not a multiple of {RECORD.itemsize})"
        )
    records = np.frombuffer(raw, dtype=RECORD)
    position = records["position"].astype(np.float64)
    scale = records["scale"].astype(np.float64)
    finite = np.isfinite(position).all(1) & np.isfinite(scale).all(1)
    if not finite.all():
        raise UserError(f"{path}: {int((~finite).sum())} Gaussian(s) have NaN or Inf values")
    quat = decode_rotation(records["rotation"])
    zero_quat = (records["rotation"] == 128).all(1)
    if zero_quat.any():
        raise UserError(f"{path}: {int(zero_quat.sum())} Gaussian(s) have an all-zero rotation quaternion")
    rgba = records["rgba"].astype(np.float64) / 255.0
    g = assemble(position, rgba[:, 3], scale, quat, rgba[:, :3])
    file_up, source = resolve_up(None, up, default_up)
    g = from_file_frame(g, file_up).validate(str(path))
    return GaussianFile(path=path, gaussians=g, up=file_up, up_source=source)
