"""The standard 3DGS PLY (graphdeco ``save_ply`` / LGM ``compatible=True``), ``conventions.md`` §10.

Written: binary little-endian float32, properties in the canonical order
``x y z [nx ny nz] f_dc_0..2 [f_rest_0..M−1] opacity scale_0..2 rot_0..3`` with the encodings of
§8 — opacity as a logit (α clamped to [1e-6, 1−1e-6]), scale as ln(σ + 1e-8), f_dc = (rgb − 0.5)/C0,
quaternion w first — and a header line ``comment video2gs up=-y`` recording the frame.

Read: any PLY with a ``vertex`` element holding the required properties, ascii or binary, any
property order or numeric type, with or without normals. Higher SH bands (f_rest) are either
dropped (default, reported in the result) or kept, never silently misread.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import plyfile
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
    flip_sh_rest,
    from_file_frame,
    resolve_up,
    sh_degree_for_rest,
    to_file_frame,
)
from video2gs.gaussians import OPACITY, PRUNE_OPACITY, RGB, ROTATION, SCALE, SH_C0, Gaussians

log = logging.getLogger(__name__)

OPACITY_CLAMP = 1e-6  # logit(α) with α in [1e-6, 1 − 1e-6] (LGM)
SCALE_EPS = 1e-8  # ln(σ + 1e-8) (LGM)
COMMENT_TAG = "video2gs"  # header: "comment video2gs up=-y"

POSITION = ("x", "y", "z")
NORMALS = ("nx", "ny", "nz")
F_DC = ("f_dc_0", "f_dc_1", "f_dc_2")
SCALES = ("scale_0", "scale_1", "scale_2")
ROTS = ("rot_0", "rot_1", "rot_2", "rot_3")
REQUIRED = POSITION + F_DC + ("opacity",) + SCALES + ROTS
_F_REST = re.compile(r"f_rest_(\d+)$")


# -- encodings (float64 in, float64 out; the file holds float32) ------------------------------
def encode_opacity(alpha: np.ndarray) -> np.ndarray:
    a = np.clip(alpha, OPACITY_CLAMP, 1 - OPACITY_CLAMP)
    return np.log(a / (1 - a))


def decode_opacity(logit: np.ndarray) -> np.ndarray:
    # exp of the negated absolute value never overflows
    e = np.exp(-np.abs(logit))
    return np.where(logit >= 0, 1 / (1 + e), e / (1 + e))


def encode_scale(sigma: np.ndarray) -> np.ndarray:
    return np.log(sigma + SCALE_EPS)


def decode_scale(log_sigma: np.ndarray) -> np.ndarray:
    return np.exp(log_sigma)


def encode_rgb(rgb: np.ndarray) -> np.ndarray:
    return (rgb - 0.5) / SH_C0


def decode_rgb(f_dc: np.ndarray) -> np.ndarray:
    return f_dc * SH_C0 + 0.5


# -- header comment ------------------------------------------------------------------------------
def _header_up(comments: list[str], path: Path) -> str | None:
    """The frame recorded by ``comment video2gs up=...``, or None if the file does not say."""
    for comment in comments:
        words = comment.split()
        if not words or words[0] != COMMENT_TAG:
            continue
        for word in words[1:]:
            if word.startswith("up="):
                return check_up(word[3:], what=f"{path}: header comment up")
    return None


# -- writing ---------------------------------------------------------------------------------------
def write_ply(
    path: str | Path,
    gaussians: Gaussians,
    *,
    up: str = EXPORT_UP,
    min_opacity: float | None = PRUNE_OPACITY,
    sh_rest: torch.Tensor | None = None,
    normals: bool = False,
    comments: tuple[str, ...] = (),
) -> int:
    """Write one frame [N,14] (internal +Y-up frame) as a standard 3DGS PLY; returns the count written.

    up: the file's frame, '-y' (default: viewers show it upright) or 'y' (raw L4GM frame).
    min_opacity: prune Gaussians with opacity below it first, as LGM does (None or 0: keep all).
    sh_rest: optional [N,3,K−1] higher SH coefficients (channel-major, internal frame), K−1 in 3/8/15.
    normals: also write nx ny nz as zeros (graphdeco's layout); default omits them like LGM.
    The file is written to a temporary name and renamed, so an existing file survives a failure.
    """
    path = Path(path)
    up = check_up(up)
    if gaussians.data.ndim != 2:
        raise ValueError("write_ply writes one frame [N,14]; write each frame of a sequence separately")
    gaussians = gaussians.to(device="cpu", dtype=torch.float32).validate(f"cannot write {path}")
    if sh_rest is not None:
        sh_rest = sh_rest.detach().to(device="cpu", dtype=torch.float32)
        if sh_rest.ndim != 3 or sh_rest.shape[:2] != (len(gaussians), 3):
            raise ValueError(f"sh_rest must be [N,3,K-1] with N={len(gaussians)}, got {tuple(sh_rest.shape)}")
        sh_degree_for_rest(3 * sh_rest.shape[2], f"cannot write {path}")
    if min_opacity:
        keep = gaussians.opacity >= min_opacity
        gaussians = Gaussians(gaussians.data[keep])
        sh_rest = None if sh_rest is None else sh_rest[keep]
        if len(gaussians) == 0:
            raise UserError(f"cannot write {path}: every Gaussian has opacity below {min_opacity} (nothing left after pruning)")

    g = to_file_frame(gaussians, up)
    d = g.data.double().numpy()  # [N,14]
    columns: list[tuple[str, np.ndarray]] = [(n, d[:, i]) for i, n in enumerate(POSITION)]
    if normals:
        columns += [(n, np.zeros(len(d))) for n in NORMALS]
    f_dc = encode_rgb(d[:, RGB])
    columns += [(n, f_dc[:, i]) for i, n in enumerate(F_DC)]
    if sh_rest is not None:
        rest = (flip_sh_rest(sh_rest) if up == "-y" else sh_rest).reshape(len(d), -1).double().numpy()
        columns += [(f"f_rest_{i}", rest[:, i]) for i in range(rest.shape[1])]
    columns.append(("opacity", encode_opacity(d[:, OPACITY][:, 0])))
    log_scale = encode_scale(d[:, SCALE])
    columns += [(n, log_scale[:, i]) for i, n in enumerate(SCALES)]
    columns += [(n, d[:, ROTATION][:, i]) for i, n in enumerate(ROTS)]

    records = np.empty(len(d), dtype=[(name, "<f4") for name, _ in columns])
    for name, values in columns:
        records[name] = values
    ply = plyfile.PlyData(
        [plyfile.PlyElement.describe(records, "vertex")],
        text=False,
        byte_order="<",
        comments=[f"{COMMENT_TAG} up={up}", *comments],
    )
    with atomic_path(path) as tmp:
        ply.write(str(tmp))
    return len(d)


# -- reading ---------------------------------------------------------------------------------------
def _parse(path: Path) -> plyfile.PlyData:
    try:
        # A read-only memory map is ~1000x faster than plyfile's row-by-row reader for binary
        # files; the columns are copied out at once, so the map does not outlive the call.
        return plyfile.PlyData.read(str(path), mmap="r")
    except plyfile.PlyHeaderParseError as exc:
        raise UserError(f"{path}: not a valid PLY file ({exc})") from exc
    except plyfile.PlyElementParseError as exc:
        raise UserError(f"{path}: truncated or corrupt PLY ({exc})") from exc
    except plyfile.PlyParseError as exc:
        raise UserError(f"{path}: cannot parse PLY ({exc})") from exc
    except (ValueError, UnicodeDecodeError, EOFError) as exc:
        raise UserError(f"{path}: truncated or corrupt PLY ({exc})") from exc
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def read_ply(
    path: str | Path,
    *,
    up: str | None = None,
    default_up: str = FOREIGN_UP,
    sh: str = "drop",
) -> GaussianFile:
    """Read a 3DGS PLY into the internal +Y-up frame.

    up: force the file's frame ('y' or '-y'); by default the header comment decides, and files
      without one are taken to be in ``default_up`` (−Y up, the 3DGS/COLMAP convention).
    sh: 'drop' keeps the DC colour only (``sh_dropped`` says when bands were discarded);
      'keep' also returns the higher bands as ``sh_rest`` [N,3,K−1] (channel-major).
    Any malformed file raises :class:`UserError` naming the path.
    """
    if sh not in ("drop", "keep"):
        raise ValueError(f"sh must be 'drop' or 'keep', got {sh!r}")
    path = check_readable_file(Path(path), "PLY")
    ply = _parse(path)
    try:
        vertex = ply["vertex"]
    except KeyError:
        raise UserError(f"{path}: PLY has no 'vertex' element") from None
    names = [p.name for p in vertex.properties]
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        raise UserError(f"{path}: PLY lacks required Gaussian properties: {', '.join(missing)}")
    rest_index = sorted(int(m.group(1)) for n in names if (m := _F_REST.match(n)))
    degree = sh_degree_for_rest(len(rest_index), str(path))
    if rest_index != list(range(len(rest_index))):
        raise UserError(f"{path}: f_rest properties are not numbered 0..{len(rest_index) - 1}")
    n = vertex.count
    if n == 0:
        raise UserError(f"{path}: contains zero Gaussians")

    data = vertex.data
    raw = np.stack([np.asarray(data[name], dtype=np.float64) for name in REQUIRED], axis=1)  # [N,14]
    rest = None
    if degree and sh == "keep":
        rest = np.stack([np.asarray(data[f"f_rest_{i}"], dtype=np.float64) for i in rest_index], axis=1)
    # Check the stored values: decoding would hide an Inf (sigmoid(inf) = 1).
    finite = np.isfinite(raw).all(1) if rest is None else np.isfinite(raw).all(1) & np.isfinite(rest).all(1)
    if not finite.all():
        raise UserError(f"{path}: {int((~finite).sum())} Gaussian(s) have NaN or Inf values")
    quat = raw[:, 10:14]
    zero_quat = np.linalg.norm(quat, axis=1) == 0
    if zero_quat.any():
        raise UserError(f"{path}: {int(zero_quat.sum())} Gaussian(s) have an all-zero rotation quaternion")

    g = assemble(raw[:, 0:3], decode_opacity(raw[:, 6]), decode_scale(raw[:, 7:10]), quat, decode_rgb(raw[:, 3:6]))
    file_up, source = resolve_up(_header_up(ply.comments, path), up, default_up)
    g = from_file_frame(g, file_up).validate(str(path))
    sh_rest = None
    if rest is not None:
        sh_rest = torch.from_numpy(rest.reshape(n, 3, -1)).to(torch.float32)
        sh_rest = flip_sh_rest(sh_rest) if file_up == "-y" else sh_rest
    dropped = degree > 0 and sh == "drop"
    if dropped:
        log.info("%s: SH degree %d; higher bands dropped, using the DC colour only", path, degree)
    return GaussianFile(
        path=path,
        gaussians=g,
        up=file_up,
        up_source=source,
        sh_degree=degree,
        sh_rest=sh_rest,
        sh_dropped=dropped,
        comments=list(ply.comments),
    )


_PLY_TYPE_SIZES = {
    "char": 1, "int8": 1, "uchar": 1, "uint8": 1, "short": 2, "int16": 2, "ushort": 2, "uint16": 2,
    "int": 4, "int32": 4, "uint": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8,
}


def ply_is_complete(path: str | Path) -> bool:
    """True if ``path`` is a binary PLY whose size matches its header exactly (header-only read).

    A cheap check for --resume: a frame left short by a crash or a partial copy fails it. Files
    with list properties or in ascii cannot be sized from the header and count as complete if
    their header parses.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
        end = head.find(b"end_header")
        if not head.startswith(b"ply") or end < 0:
            return False
        header_len = head.index(b"\n", end) + 1
        lines = head[:header_len].decode("latin-1").splitlines()
        fmt = next(line.split()[1] for line in lines if line.startswith("format "))
        if fmt == "ascii":
            return True
        total, count, sizable = 0, 0, True
        for line in lines:
            words = line.split()
            if words[:1] == ["element"]:
                count = int(words[2])
            elif words[:1] == ["property"]:
                if words[1] == "list":
                    sizable = False
                else:
                    total += count * _PLY_TYPE_SIZES[words[1]]
        return not sizable or Path(path).stat().st_size == header_len + total
    except (OSError, ValueError, KeyError, IndexError, StopIteration, UnicodeDecodeError):
        return False
