"""Triangle meshes with colour, and their conversion to ground-truth Gaussians.

A :class:`TexturedMesh` holds per-frame vertex positions (one frame for a static mesh), faces and
the colour as either a texture with per-corner UVs or per-corner RGB. Static meshes load through
trimesh (OBJ, GLB/glTF, PLY, STL, OFF); MD2 models through :mod:`video2gs.data.md2`.

Ground truth (:func:`surface_gaussians`): N points are drawn once on the surface, faces chosen
with probability proportional to their area, uniform barycentric coordinates inside. The same
(face, barycentric) samples are followed through every frame, so Gaussian i is the same surface
point at every time. Each is a flat Gaussian in its face's plane (rotation from the face's tangent
frame; in-plane std-dev from the local sample spacing, scaled with the face's area change; a thin
normal std-dev) with the texture colour at the sample, bilinear like the GL sampler.

UV convention here: u = column / width, v = row / height with v = 0 the **top** row of the texture
image (trimesh's OpenGL UVs, v = 0 at the bottom, are flipped on load).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from video2gs.errors import UserError
from video2gs.gaussians import Gaussians, rotmat_to_quat

GAUSSIANS_PER_256PX = 50_000  # default sample count at 256² (scaled linearly with the image side)
SPACING_SIGMA = 0.6  # in-plane std-dev / mean sample spacing: covers the surface without holes
NORMAL_SIGMA = 0.05  # normal std-dev / in-plane std-dev ("flat")
OPACITY = 0.5  # overlapping samples make the surface opaque; lower opacity keeps silhouettes sharp
INSET_PIXELS = 1.0  # default inset, in pixels at the orbit centre (see surface_gaussians)


@dataclass
class TexturedMesh:
    """vertices [T,V,3] float64 (+Y up); faces [K,3] int64; texture [H,W,3] uint8 or None with
    face_uv [K,3,2] float32 (v = 0 top row); else corner_rgb [K,3,3] float32 in [0,1]."""

    vertices: np.ndarray
    faces: np.ndarray
    texture: np.ndarray | None = None
    face_uv: np.ndarray | None = None
    corner_rgb: np.ndarray | None = None

    def __post_init__(self):
        self.vertices = np.asarray(self.vertices, dtype=np.float64)
        if self.vertices.ndim == 2:
            self.vertices = self.vertices[None]
        self.faces = np.asarray(self.faces, dtype=np.int64)
        if self.texture is None and self.corner_rgb is None:
            self.corner_rgb = np.full((len(self.faces), 3, 3), 0.7, dtype=np.float32)  # plain grey

    @property
    def num_frames(self) -> int:
        return self.vertices.shape[0]

    def with_vertices(self, vertices: np.ndarray) -> "TexturedMesh":
        return TexturedMesh(vertices, self.faces, self.texture, self.face_uv, self.corner_rgb)


def _area_vectors(v: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Cross products (v1 - v0) x (v2 - v0) [..., K, 3] (length = 2 area)."""
    tri = v[..., faces, :]  # [..., K, 3, 3]
    return np.cross(tri[..., 1, :] - tri[..., 0, :], tri[..., 2, :] - tri[..., 0, :])


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear texture lookup with wrap-around, as GL_LINEAR + GL_REPEAT: uv [N,2] -> rgb [N,3] in [0,1]."""
    h, w = texture.shape[:2]
    tex = texture.astype(np.float32) / 255.0
    x = uv[:, 0] * w - 0.5
    y = uv[:, 1] * h - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0 = x0.astype(np.int64)
    y0 = y0.astype(np.int64)
    x1, y1 = (x0 + 1) % w, (y0 + 1) % h
    x0, y0 = x0 % w, y0 % h
    return ((1 - fx) * (1 - fy) * tex[y0, x0] + fx * (1 - fy) * tex[y0, x1]
            + (1 - fx) * fy * tex[y1, x0] + fx * fy * tex[y1, x1])


def surface_samples(mesh: TexturedMesh, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(face index [N] int64, barycentric [N,3] float64): area-weighted on frame 0, uniform in each face."""
    area = 0.5 * np.linalg.norm(_area_vectors(mesh.vertices[0], mesh.faces), axis=-1)
    total = float(area.sum())
    if not total > 0:
        raise UserError("the mesh has zero surface area")
    face = rng.choice(len(area), size=count, p=area / total)
    r1, r2 = rng.random(count), rng.random(count)
    s = np.sqrt(r1)
    bary = np.stack([1 - s, s * (1 - r2), s * r2], axis=-1)
    return face, bary


def surface_colours(mesh: TexturedMesh, face: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Colour [N,3] float32 of each sample: texture at the interpolated UV, else interpolated corner RGB."""
    if mesh.texture is not None:
        uv = np.einsum("nk,nkc->nc", bary, mesh.face_uv[face].astype(np.float64))
        return sample_texture(mesh.texture, uv).astype(np.float32)
    return np.einsum("nk,nkc->nc", bary, mesh.corner_rgb[face].astype(np.float64)).astype(np.float32)


def boundary_edges(faces: np.ndarray) -> np.ndarray:
    """[K,3] bool: edge i of face k (opposite corner i) is used by no other face (an open boundary)."""
    edges = np.stack([faces[:, [1, 2]], faces[:, [2, 0]], faces[:, [0, 1]]], axis=1)  # [K,3,2], opposite corner i
    key = np.sort(edges, axis=-1).reshape(-1, 2)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    return (counts[inverse.reshape(-1)] == 1).reshape(len(faces), 3)


def vertex_normals(v: np.ndarray, faces: np.ndarray, orientation: np.ndarray) -> np.ndarray:
    """Unit area-weighted vertex normals [V,3]; ``orientation`` [K] (+1/-1) flips faces to point outward."""
    fn = _area_vectors(v, faces) * orientation[:, None]
    vn = np.zeros_like(v)
    for i in range(3):
        np.add.at(vn, faces[:, i], fn)
    return vn / np.maximum(np.linalg.norm(vn, axis=-1, keepdims=True), 1e-12)


def outward_orientation(v: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[K] +1/-1 per face: -1 for faces of connected parts whose signed volume is negative (inward winding)."""
    n = len(v)
    parent = np.arange(n)

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for f in faces:
        ra, rb, rc = find(f[0]), find(f[1]), find(f[2])
        parent[rb] = ra
        parent[find(rc)] = ra
    comp = np.array([find(f[0]) for f in faces])
    tri = v[faces]
    vol = np.einsum("kc,kc->k", tri[:, 0], np.cross(tri[:, 1], tri[:, 2]))
    sign = {c: (1.0 if vol[comp == c].sum() >= 0 else -1.0) for c in np.unique(comp)}
    return np.array([sign[c] for c in comp])


def _inset_corners(tri: np.ndarray, boundary: np.ndarray, inset: float) -> np.ndarray:
    """Triangles [N,3,3] with their open-boundary edges moved inward (in plane) by ``inset``."""
    e = np.stack([tri[:, 2] - tri[:, 1], tri[:, 0] - tri[:, 2], tri[:, 1] - tri[:, 0]], axis=1)  # edge opposite i
    twice_area = np.linalg.norm(np.cross(e[:, 2], -e[:, 1]), axis=-1)
    height = twice_area[:, None] / np.maximum(np.linalg.norm(e, axis=-1), 1e-12)  # altitude onto edge i
    s = np.where(boundary, inset / np.maximum(height, 1e-12), 0.0)  # barycentric offset per edge
    total = s.sum(-1, keepdims=True)
    s = np.where(total > 0.6, s * 0.6 / np.maximum(total, 1e-12), s)  # tiny faces shrink, never vanish
    # Inner corner i keeps weight 1 - (s_j + s_k) on itself and s_j, s_k on the other two corners.
    w = np.repeat(s[:, None, :], 3, axis=1)  # w[n, i, j] = s_j for j != i
    idx = np.arange(3)
    w[:, idx, idx] = 1.0 - (s.sum(-1, keepdims=True) - s)
    return np.einsum("nij,njc->nic", w, tri)


def default_gaussian_count(resolution: int) -> int:
    """Surface samples per frame for images of ``resolution``² pixels."""
    return int(round(GAUSSIANS_PER_256PX * resolution / 256))


def surface_gaussians(mesh: TexturedMesh, count: int, seed: int = 0, inset: float = 0.0) -> Gaussians:
    """Flat Gaussians on the surface of every frame: [T, N, 14] (layout of :mod:`video2gs.gaussians`).

    Deterministic for ``seed``. Gaussian i follows the same surface point in every frame.
    ``inset`` (world units) moves the samples inward: along the outward vertex normal, and away
    from open boundary edges within their face. The splat renderer's 2-D low-pass (+0.3 px²)
    makes every Gaussian at least ~0.55 px wide, so untreated surface Gaussians render a silhouette
    about a pixel fatter than the mesh; an inset of about one pixel (:data:`INSET_PIXELS`, measured
    on a sphere and on the faerie) cancels that. It moves the surface by 0.2 % of the object's size
    at 512² and is recorded in clip.json.
    """
    rng = np.random.default_rng(seed)
    face, bary = surface_samples(mesh, count, rng)
    rgb = torch.from_numpy(surface_colours(mesh, face, bary))
    area0 = 0.5 * np.linalg.norm(_area_vectors(mesh.vertices[0], mesh.faces), axis=-1)
    spacing0 = np.sqrt(area0.sum() / count)
    if inset > 0:
        boundary = boundary_edges(mesh.faces)[face]  # [N,3]
        orientation = outward_orientation(mesh.vertices[0], mesh.faces)
    frames = []
    for v in mesh.vertices:  # [V,3] per frame
        tri = v[mesh.faces[face]]  # [N,3,3]
        if inset > 0:
            normals = vertex_normals(v, mesh.faces, orientation)[mesh.faces[face]]  # [N,3,3]
            n = np.einsum("nk,nkc->nc", bary, normals)
            n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
            xyz = np.einsum("nk,nkc->nc", bary, _inset_corners(tri, boundary, inset)) - inset * n
        else:
            xyz = np.einsum("nk,nkc->nc", bary, tri)
        e1 = tri[:, 1] - tri[:, 0]
        e2 = tri[:, 2] - tri[:, 0]
        normal = np.cross(e1, e2)
        twice_area = np.linalg.norm(normal, axis=-1, keepdims=True)
        # Degenerate (zero-area) faces in a frame keep a valid frame: fall back to any perpendicular.
        u = e1 / np.maximum(np.linalg.norm(e1, axis=-1, keepdims=True), 1e-12)
        n = normal / np.maximum(twice_area, 1e-12)
        w = np.cross(n, u)
        rot = np.stack([u, w, n], axis=-1)  # columns: tangent, bitangent, normal
        bad = (twice_area[:, 0] < 1e-14) | (np.abs(np.linalg.det(rot) - 1) > 1e-3)
        rot[bad] = np.eye(3)
        growth = np.sqrt(np.maximum(twice_area[:, 0], 1e-14) / np.maximum(2 * area0[face], 1e-14))
        sigma = SPACING_SIGMA * spacing0 * np.clip(growth, 0.2, 5.0)
        scale = np.stack([sigma, sigma, NORMAL_SIGMA * sigma], axis=-1)
        quat = rotmat_to_quat(torch.from_numpy(rot))
        frames.append(
            Gaussians.from_fields(
                torch.from_numpy(xyz).float(), torch.full((count,), OPACITY), torch.from_numpy(scale).float(), quat, rgb
            ).data
        )
    return Gaussians(torch.stack(frames))


# -- loading static meshes -------------------------------------------------------------------------
def _texture_image(material) -> np.ndarray | None:
    image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
    if image is None:
        return None
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def load_mesh(path: str | Path) -> TexturedMesh:
    """A static mesh through trimesh (scenes are concatenated); UserError naming the file if unreadable."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        loaded = trimesh.load(path, force="mesh", process=False)
    except Exception as exc:  # noqa: BLE001 - trimesh raises many types for bad files
        raise UserError(f"{path}: cannot read the mesh ({type(exc).__name__}: {exc})") from exc
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise UserError(f"{path}: no triangles in this file")
    faces = np.asarray(loaded.faces, dtype=np.int64)
    vertices = np.asarray(loaded.vertices, dtype=np.float64)
    if not np.isfinite(vertices).all():
        raise UserError(f"{path}: the mesh has non-finite vertex positions")
    visual = loaded.visual
    if visual.kind == "texture" and getattr(visual, "uv", None) is not None:
        texture = _texture_image(visual.material)
        if texture is not None:
            uv = np.asarray(visual.uv, dtype=np.float32)[faces]  # [K,3,2]
            uv = np.stack([uv[..., 0], 1.0 - uv[..., 1]], axis=-1)  # GL v (0 = bottom) -> v = 0 top row
            return TexturedMesh(vertices, faces, texture=texture, face_uv=uv)
        colour = getattr(visual.material, "main_color", None)
        if colour is not None:
            rgb = np.broadcast_to(np.asarray(colour[:3], np.float32) / 255.0, (len(faces), 3, 3)).copy()
            return TexturedMesh(vertices, faces, corner_rgb=rgb)
    if visual.kind == "vertex":
        vc = np.asarray(visual.vertex_colors, dtype=np.float32)[:, :3] / 255.0
        return TexturedMesh(vertices, faces, corner_rgb=vc[faces])
    if visual.kind == "face":
        fc = np.asarray(visual.face_colors, dtype=np.float32)[:, :3] / 255.0
        return TexturedMesh(vertices, faces, corner_rgb=np.repeat(fc[:, None], 3, axis=1))
    return TexturedMesh(vertices, faces)


def load_md2_mesh(path: str | Path, texture: str | Path | None = None):
    """(MD2Model, TexturedMesh of its first frame with the skin texture). The texture defaults to
    the one image next to the model whose name starts with the model's stem (faerie.md2 -> faerie2.bmp)."""
    import cv2

    from video2gs.data.md2 import read_md2

    path = Path(path)
    model = read_md2(path)
    if texture is None:
        candidates = sorted(
            p for p in path.parent.iterdir()
            if p.is_file() and p.name.lower().startswith(path.stem.lower())
            and p.suffix.lower() in (".bmp", ".png", ".jpg", ".jpeg", ".tga", ".pcx")
        )
        if not candidates:
            raise UserError(f"{path}: no texture found next to the model (expected {path.stem}*.bmp/.png)")
        texture = candidates[0]
    texture = Path(texture)
    image = cv2.imread(str(texture), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"{texture}: cannot read the texture image")
    mesh = TexturedMesh(model.vertices[:1], model.faces, texture=image[..., ::-1].copy(), face_uv=model.face_uv)
    return model, mesh
