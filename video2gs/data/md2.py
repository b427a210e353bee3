"""Quake-2 MD2 models: per-frame vertex animation with one texture.

File layout (little-endian): a 68-byte header (``IDP2``, version 8, skin width/height, frame size,
counts, offsets), 64-byte skin names, texture coordinates as int16 (s, t) in skin pixels,
triangles as uint16 vertex and texture-coordinate indices, and frames, each a float32 scale [3],
float32 translate [3], a 16-byte name and one (uint8 x, y, z, normal index) per vertex: the
vertex is ``scale * byte + translate``. Frames are grouped into animations by name, the trailing
digits removed ("run1".."run6" -> "run"); consecutive frames of one name form one clip.

Axes: MD2 is Quake's Z-up world (x forward, y left). :func:`read_md2` returns vertices in
video2gs' +Y-up world with the model's forward direction toward +Z (it faces the azimuth-0
camera): (x, y, z)_quake -> (y, z, x).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video2gs.errors import UserError

MAGIC = b"IDP2"
VERSION = 8
QUAKE_FPS = 10.0  # Quake 2 steps vertex animations at 10 frames per second
_HEADER = struct.Struct("<4s16i")
_TRAILING_DIGITS = re.compile(r"\d+$")


@dataclass
class MD2Model:
    """An MD2 model in video2gs' world frame.

    vertices: [F, V, 3] float32 per-frame positions (+Y up, facing +Z);
    faces: [K, 3] int64 vertex indices; face_uv: [K, 3, 2] float32 texture coordinates per corner
    (u = s / width, v = t / height, v = 0 the top row of the texture image);
    frame_names: [F] names; animations: name -> list of frame indices (in file order);
    skin_size: (width, height) in pixels.
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_uv: np.ndarray
    frame_names: list[str]
    animations: dict[str, list[int]]
    skin_size: tuple[int, int]

    def clip_vertices(self, animation: str, num_frames: int, fps: float, rate: float = QUAKE_FPS) -> np.ndarray:
        """Positions [num_frames, V, 3] of ``animation`` sampled at ``fps``, playing at ``rate`` key
        frames per second, looping, with linear interpolation between key frames (as the engine)."""
        if animation not in self.animations:
            raise UserError(f"MD2 animation {animation!r} not found (have: {', '.join(self.animations)})")
        keys = self.vertices[self.animations[animation]]  # [K, V, 3]
        out = np.empty((num_frames, *keys.shape[1:]), dtype=np.float64)
        for t in range(num_frames):
            pos = t / fps * rate
            k0 = int(np.floor(pos)) % len(keys)
            k1 = (k0 + 1) % len(keys)
            w = pos - np.floor(pos)
            out[t] = (1 - w) * keys[k0] + w * keys[k1]
        return out


def animation_groups(names: list[str]) -> dict[str, list[int]]:
    """Frame indices per animation: names without trailing digits, consecutive runs."""
    groups: dict[str, list[int]] = {}
    previous = None
    for i, name in enumerate(names):
        base = _TRAILING_DIGITS.sub("", name) or name
        if base != previous and base in groups:
            base = f"{base}_{i}"  # the same name again later: keep it a separate clip
        groups.setdefault(base, []).append(i)
        previous = _TRAILING_DIGITS.sub("", name) or name
    return groups


def read_md2(path: str | Path) -> MD2Model:
    """Parse an MD2 file; any inconsistency is a UserError naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if len(data) < _HEADER.size:
        raise UserError(f"{path}: not an MD2 file (too short)")
    (magic, version, skin_w, skin_h, frame_size, n_skins, n_verts, n_st, n_tris, _n_gl, n_frames,
     ofs_skins, ofs_st, ofs_tris, ofs_frames, _ofs_gl, ofs_end) = _HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise UserError(f"{path}: not an MD2 file (magic {magic!r}, version {version})")
    if min(skin_w, skin_h, n_verts, n_st, n_tris, n_frames) <= 0 or ofs_end > len(data):
        raise UserError(f"{path}: corrupt MD2 header (counts or sizes out of range)")
    if frame_size != 40 + 4 * n_verts:
        raise UserError(f"{path}: corrupt MD2 header (frame size {frame_size} for {n_verts} vertices)")
    for ofs, size, what in ((ofs_st, 4 * n_st, "texture coordinates"), (ofs_tris, 12 * n_tris, "triangles"),
                            (ofs_frames, frame_size * n_frames, "frames"), (ofs_skins, 64 * n_skins, "skins")):
        if ofs < _HEADER.size or ofs + size > len(data):
            raise UserError(f"{path}: corrupt MD2 file ({what} run past the end)")

    st = np.frombuffer(data, "<i2", 2 * n_st, ofs_st).reshape(n_st, 2).astype(np.float32)
    tris = np.frombuffer(data, "<u2", 6 * n_tris, ofs_tris).reshape(n_tris, 6).astype(np.int64)
    faces, st_idx = tris[:, :3], tris[:, 3:]
    if faces.max() >= n_verts or st_idx.max() >= n_st:
        raise UserError(f"{path}: corrupt MD2 file (triangle indices out of range)")

    frame_dtype = np.dtype([("scale", "<f4", 3), ("translate", "<f4", 3), ("name", "S16"), ("verts", "u1", (n_verts, 4))])
    frames = np.frombuffer(data, frame_dtype, n_frames, ofs_frames)
    quake = frames["verts"][..., :3].astype(np.float32) * frames["scale"][:, None, :] + frames["translate"][:, None, :]
    vertices = quake[..., [1, 2, 0]]  # (x fwd, y left, z up) -> (X = left, Y = up, Z = fwd): right-handed
    names = [n.split(b"\0")[0].decode("ascii", "replace") for n in frames["name"]]
    uv = st[st_idx] / np.array([skin_w, skin_h], dtype=np.float32)  # [K, 3, 2]
    return MD2Model(
        vertices=np.ascontiguousarray(vertices, dtype=np.float32),
        faces=faces,
        face_uv=uv.astype(np.float32),
        frame_names=names,
        animations=animation_groups(names),
        skin_size=(int(skin_w), int(skin_h)),
    )
