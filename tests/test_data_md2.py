"""MD2 reader: a model written here byte by byte decodes exactly (scale/translate, axes, UVs,
animations), the faerie from ../shared has its documented counts, and bad files are one clear error."""

import struct

import numpy as np
import pytest

from video2gs.data.md2 import animation_groups, read_md2
from video2gs.data.mesh import boundary_edges, surface_gaussians
from video2gs.errors import UserError


def _md2(frames, names, skin=(64, 32)):
    """frames: list of uint8 vertex arrays [V,3] (with scale 0.5, translate (1, 2, 3)); one triangle."""
    n_verts = frames[0].shape[0]
    st = np.array([[0, 0], [32, 0], [0, 16]], np.int16)
    tris = np.array([[0, 1, 2, 0, 1, 2]], np.uint16)
    frame_size = 40 + 4 * n_verts
    ofs_st = 68
    ofs_tris = ofs_st + st.nbytes
    ofs_frames = ofs_tris + tris.nbytes
    ofs_end = ofs_frames + frame_size * len(frames)
    header = struct.pack("<4s16i", b"IDP2", 8, skin[0], skin[1], frame_size, 0, n_verts, 3, 1, 0, len(frames),
                         68, ofs_st, ofs_tris, ofs_frames, ofs_end, ofs_end)
    body = b""
    for verts, name in zip(frames, names):
        body += struct.pack("<3f3f16s", 0.5, 0.5, 0.5, 1.0, 2.0, 3.0, name.encode())
        body += np.concatenate([verts, np.zeros((n_verts, 1), np.uint8)], axis=1).astype(np.uint8).tobytes()
    return header + st.tobytes() + tris.tobytes() + body


def test_synthetic_md2(tmp_path):
    f0 = np.array([[0, 0, 0], [10, 0, 0], [0, 20, 0]], np.uint8)
    f1 = np.array([[2, 0, 0], [10, 4, 0], [0, 20, 6]], np.uint8)
    path = tmp_path / "tri.md2"
    path.write_bytes(_md2([f0, f1, f0], ["run1", "run2", "stand01"]))
    m = read_md2(path)
    assert m.vertices.shape == (3, 3, 3) and m.faces.tolist() == [[0, 1, 2]]
    assert m.animations == {"run": [0, 1], "stand": [2]} and m.skin_size == (64, 32)
    # Quake (x fwd, y left, z up) = 0.5 * byte + (1, 2, 3) -> video2gs (left, up, fwd)
    q = 0.5 * f1.astype(np.float32) + np.array([1.0, 2.0, 3.0], np.float32)
    np.testing.assert_allclose(m.vertices[1], q[:, [1, 2, 0]])
    np.testing.assert_allclose(m.face_uv[0], [[0, 0], [0.5, 0], [0, 0.5]])
    # Looping playback with linear interpolation at 10 key frames per second.
    v = m.clip_vertices("run", 3, fps=20.0)
    np.testing.assert_allclose(v[1], 0.5 * (m.vertices[0] + m.vertices[1]), atol=1e-6)
    np.testing.assert_allclose(v[2], m.vertices[1], atol=1e-6)


def test_animation_groups_split_repeats():
    assert animation_groups(["a1", "a2", "b1", "a3"]) == {"a": [0, 1], "b": [2], "a_3": [3]}


@pytest.mark.parametrize("damage", ["magic", "truncated", "index"])
def test_bad_md2_is_one_clear_error(tmp_path, damage):
    f0 = np.array([[0, 0, 0], [10, 0, 0], [0, 20, 0]], np.uint8)
    data = bytearray(_md2([f0], ["x1"]))
    if damage == "magic":
        data[:4] = b"IDP3"
    elif damage == "truncated":
        data = data[:100]
    else:
        data[68 + 12: 68 + 14] = struct.pack("<H", 9)  # triangle vertex index out of range
    path = tmp_path / "bad.md2"
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="bad.md2"):
        read_md2(path)


def test_faerie(shared_dir):
    m = read_md2(shared_dir / "data" / "md2" / "faerie.md2")
    assert m.vertices.shape == (198, 366, 3) and m.faces.shape == (654, 3)
    assert len(m.animations) == 16 and len(m.animations["run"]) == 6 and len(m.animations["stand"]) == 40
    lo, hi = m.vertices[0].min(0), m.vertices[0].max(0)
    assert np.argmax(hi - lo) == 1  # standing: tallest along +Y after the axis change
    assert 0 <= m.face_uv.min() and m.face_uv.max() <= 1


def test_surface_gaussians_follow_the_surface():
    """Samples stay on their faces as the mesh moves; inset moves them off open edges."""
    from video2gs.data.mesh import TexturedMesh

    v0 = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], float)
    v1 = v0 + np.array([0.0, 0.0, 0.5])  # translated along z
    mesh = TexturedMesh(np.stack([v0, v1]), np.array([[0, 1, 2]]))
    g = surface_gaussians(mesh, 500, seed=0)
    assert g.data.shape == (2, 500, 14)
    np.testing.assert_allclose(g.data[1, :, 2].numpy(), 0.5, atol=1e-6)
    np.testing.assert_allclose(g.data[1, :, :2].numpy(), g.data[0, :, :2].numpy(), atol=1e-6)
    assert boundary_edges(mesh.faces).all()
    gi = surface_gaussians(mesh, 500, seed=0, inset=0.05)
    x, y = gi.data[0, :, 0].numpy(), gi.data[0, :, 1].numpy()
    assert x.min() >= 0.05 - 1e-6 and y.min() >= 0.05 - 1e-6 and (x + y).max() <= 1 - 0.05 * np.sqrt(2) + 1e-6


def test_textured_mesh_uv_convention(tmp_path):
    """A GLB quad whose texture is red on top, blue below: the GL rasterizer and the surface
    Gaussians both put red at the top (trimesh's GL UVs are flipped to v = 0 = top row on load)."""
    trimesh = pytest.importorskip("trimesh")
    from PIL import Image

    from video2gs.camera import Cameras
    from video2gs.data.mesh import load_mesh
    from video2gs.errors import UserError as _UserError

    tex = np.zeros((8, 8, 3), np.uint8)
    tex[:4] = (255, 0, 0)
    tex[4:] = (0, 0, 255)
    verts = np.array([[-0.3, -0.3, 0], [0.3, -0.3, 0], [0.3, 0.3, 0], [-0.3, 0.3, 0]], float)
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)  # GL: v = 1 is the top of the image
    quad = trimesh.Trimesh(verts, [[0, 1, 2], [0, 2, 3]], process=False,
                           visual=trimesh.visual.TextureVisuals(uv=uv, image=Image.fromarray(tex)))
    path = tmp_path / "quad.glb"
    quad.export(path)
    mesh = load_mesh(path)
    assert mesh.texture is not None and mesh.texture.shape[:2] == (8, 8)
    g = surface_gaussians(mesh, 2000, seed=0)
    y = g.data[0, :, 1]
    top, bottom = (y > 0.1) & (y < 0.25), (y < -0.1) & (y > -0.25)  # away from the wrapped edge rows
    assert (g.data[0, top, 11] > 0.99).all() and (g.data[0, top, 13] < 0.01).all()
    assert (g.data[0, bottom, 13] > 0.99).all() and (g.data[0, bottom, 11] < 0.01).all()
    from video2gs.data.raster import MeshRasterizer

    try:
        r = MeshRasterizer(64)
    except _UserError as exc:
        pytest.skip(f"no headless OpenGL here: {exc}")
    with r:
        rgb, alpha = r.render(mesh, 0, Cameras.orbit([0]))
    assert rgb[0, 20, 32, 0] > 0.9 and rgb[0, 20, 32, 2] < 0.1  # upper half red
    assert rgb[0, 44, 32, 2] > 0.9 and rgb[0, 44, 32, 0] < 0.1  # lower half blue
    assert alpha[0, 32, 32] == 1.0 and alpha[0, 2, 2] == 0.0
