"""Standard 3DGS PLY: exact round trips, foreign files, SH bands, up axis, pruning, bad files."""

from __future__ import annotations

import math

import numpy as np
import plyfile
import pytest
import torch

from video2gs.errors import UserError
from video2gs.formats import load_gaussians, read_gaussians, save_gaussians
from video2gs.formats.ply import ply_is_complete, read_ply, write_ply
from video2gs.gaussians import SH_C0, Gaussians, quat_to_rotmat

FLIP = torch.diag(torch.tensor([1.0, -1.0, -1.0]))


def random_gaussians(n: int = 300, seed: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    u = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
    return Gaussians.from_fields(
        xyz=u(n, 3) * 2 - 1,
        opacity=0.01 + 0.98 * u(n),
        scale=torch.exp(math.log(1e-3) + u(n, 3) * math.log(100.0)),  # 1e-3 .. 0.1
        rotation=torch.randn(n, 4, generator=gen),
        rgb=u(n, 3),
    )


def assert_same_gaussians(a: Gaussians, b: Gaussians) -> None:
    """Equal to float32 precision of the file encodings (ln σ + 1e-8 adds up to 1e-8 to σ)."""
    assert len(a) == len(b)
    torch.testing.assert_close(b.xyz, a.xyz, rtol=0, atol=0)
    torch.testing.assert_close(b.rotation, a.rotation, rtol=0, atol=0)
    torch.testing.assert_close(b.rgb, a.rgb, rtol=0, atol=1.5e-7)
    torch.testing.assert_close(b.opacity, a.opacity, rtol=0, atol=2e-7)
    torch.testing.assert_close(b.scale, a.scale, rtol=1e-6, atol=1.1e-8)


def write_foreign_ply(path, columns: dict[str, np.ndarray], *, text=False, comments=(), dtype="<f4") -> None:
    """A PLY as another tool would write it: the given property order, no video2gs comment."""
    n = len(next(iter(columns.values())))
    rec = np.empty(n, dtype=[(k, dtype) for k in columns])
    for k, v in columns.items():
        rec[k] = v
    plyfile.PlyData([plyfile.PlyElement.describe(rec, "vertex")], text=text, comments=list(comments)).write(str(path))


def graphdeco_columns(g: Gaussians, rest: np.ndarray | None = None, normals: bool = True) -> dict[str, np.ndarray]:
    """Raw 3DGS columns for Gaussians ``g`` taken as already in the file's frame."""
    d = g.data.double().numpy()
    cols = {"x": d[:, 0], "y": d[:, 1], "z": d[:, 2]}
    if normals:
        cols |= {"nx": np.zeros(len(d)), "ny": np.zeros(len(d)), "nz": np.zeros(len(d))}
    cols |= {f"f_dc_{i}": (d[:, 11 + i] - 0.5) / SH_C0 for i in range(3)}
    if rest is not None:
        cols |= {f"f_rest_{i}": rest[:, i] for i in range(rest.shape[1])}
    cols["opacity"] = np.log(d[:, 3] / (1 - d[:, 3]))
    cols |= {f"scale_{i}": np.log(d[:, 4 + i]) for i in range(3)}
    cols |= {f"rot_{i}": d[:, 7 + i] for i in range(4)}
    return cols


# -- round trips ------------------------------------------------------------------------------------
@pytest.mark.parametrize("up", ["-y", "y"])
def test_round_trip_restores_internal_frame_exactly(tmp_path, up):
    g = random_gaussians()
    path = tmp_path / "f.ply"
    assert write_ply(path, g, up=up, min_opacity=None) == len(g)
    f = read_ply(path)
    assert (f.up, f.up_source) == (up, "header")
    assert_same_gaussians(g, f.gaussians)


def test_written_layout_is_lgm_compatible(tmp_path):
    g = random_gaussians(50)
    path = tmp_path / "f.ply"
    write_ply(path, g, up="y", min_opacity=None)
    ply = plyfile.PlyData.read(str(path))
    assert ply.header.splitlines()[1] == "format binary_little_endian 1.0"
    assert "video2gs up=y" in ply.comments
    names = [p.name for p in ply["vertex"].properties]
    assert names == "x y z f_dc_0 f_dc_1 f_dc_2 opacity scale_0 scale_1 scale_2 rot_0 rot_1 rot_2 rot_3".split()
    assert all(p.val_dtype == "f4" for p in ply["vertex"].properties)
    header_len = path.read_bytes().index(b"end_header\n") + len(b"end_header\n")
    assert path.stat().st_size == header_len + 56 * len(g)
    v, d = ply["vertex"], g.data.double()
    # Encodings of conventions §8, checked against the activated values.
    np.testing.assert_allclose(1 / (1 + np.exp(-v["opacity"])), d[:, 3], atol=1e-6)
    np.testing.assert_allclose(np.exp(v["scale_1"]), d[:, 5] + 1e-8, rtol=1e-6)
    np.testing.assert_allclose(v["f_dc_2"] * SH_C0 + 0.5, d[:, 13], atol=1e-6)


def test_normals_option_writes_zero_normals(tmp_path):
    g = random_gaussians(20)
    write_ply(tmp_path / "n.ply", g, normals=True, min_opacity=None)
    v = plyfile.PlyData.read(str(tmp_path / "n.ply"))["vertex"]
    assert [p.name for p in v.properties][3:6] == ["nx", "ny", "nz"]
    assert not np.any(v["nx"]) and not np.any(v["nz"])
    assert_same_gaussians(g, read_ply(tmp_path / "n.ply").gaussians)


def test_opacity_clamp_keeps_extremes_finite(tmp_path):
    g = random_gaussians(4)
    g.data[0, 3], g.data[1, 3] = 1.0, 0.0
    write_ply(tmp_path / "c.ply", g, min_opacity=None)
    op = plyfile.PlyData.read(str(tmp_path / "c.ply"))["vertex"]["opacity"]
    np.testing.assert_allclose(op[:2], [math.log((1 - 1e-6) / 1e-6), math.log(1e-6 / (1 - 1e-6))], rtol=1e-6)


# -- up axis ----------------------------------------------------------------------------------------
def test_minus_y_file_is_the_viewer_frame(tmp_path):
    g = random_gaussians(100)
    write_ply(tmp_path / "v.ply", g, up="-y", min_opacity=None)
    raw = read_ply(tmp_path / "v.ply", up="y").gaussians  # the file's numbers, unconverted
    torch.testing.assert_close(raw.xyz, g.xyz @ FLIP, rtol=0, atol=0)
    torch.testing.assert_close(quat_to_rotmat(raw.rotation), FLIP @ quat_to_rotmat(g.rotation), atol=1e-6, rtol=0)
    torch.testing.assert_close(raw.scale, g.scale, rtol=1e-6, atol=1.1e-8)


def test_files_without_comment_default_to_minus_y_with_override(tmp_path):
    g = random_gaussians(30)
    write_foreign_ply(tmp_path / "f.ply", graphdeco_columns(g))
    f = read_ply(tmp_path / "f.ply")
    assert (f.up, f.up_source) == ("-y", "default")
    torch.testing.assert_close(f.gaussians.xyz, g.xyz @ FLIP, rtol=0, atol=0)
    assert read_ply(tmp_path / "f.ply", default_up="y").up == "y"
    forced = read_ply(tmp_path / "f.ply", up="y")
    assert forced.up_source == "override"
    torch.testing.assert_close(forced.gaussians.xyz, g.xyz, rtol=0, atol=0)


def test_bad_up_value_is_a_user_error(tmp_path):
    g = random_gaussians(5)
    with pytest.raises(UserError, match="'y' or '-y'"):
        write_ply(tmp_path / "f.ply", g, up="z")
    write_foreign_ply(tmp_path / "c.ply", graphdeco_columns(g), comments=["video2gs up=x"])
    with pytest.raises(UserError, match="c.ply"):
        read_ply(tmp_path / "c.ply")


# -- foreign PLYs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [False, True], ids=["binary", "ascii"])
def test_foreign_ply_any_order_types_and_normals(tmp_path, text):
    g = random_gaussians(40)
    cols = graphdeco_columns(g)
    order = list(cols)
    np.random.default_rng(1).shuffle(order)
    write_foreign_ply(tmp_path / "f.ply", {k: cols[k] for k in order}, text=text, dtype="<f8")
    f = read_ply(tmp_path / "f.ply", up="y")
    tol = 1e-6 if text else 1e-7  # ascii keeps ~9 significant digits
    torch.testing.assert_close(f.gaussians.xyz, g.xyz, rtol=0, atol=tol)
    torch.testing.assert_close(f.gaussians.opacity, g.opacity, rtol=0, atol=tol)
    torch.testing.assert_close(f.gaussians.scale, g.scale, rtol=tol, atol=0)
    torch.testing.assert_close(f.gaussians.rgb, g.rgb, rtol=0, atol=tol)
    torch.testing.assert_close(f.gaussians.rotation, g.rotation, rtol=0, atol=tol)


def test_unnormalised_quaternions_are_normalised(tmp_path):
    g = random_gaussians(10)
    cols = graphdeco_columns(g)
    for i in range(4):
        cols[f"rot_{i}"] = cols[f"rot_{i}"] * 3.5
    write_foreign_ply(tmp_path / "q.ply", cols)
    q = read_ply(tmp_path / "q.ply", up="y").gaussians.rotation
    torch.testing.assert_close(q, g.rotation, atol=1e-6, rtol=0)


# -- spherical harmonics ----------------------------------------------------------------------------
def eval_sh_rest(rest: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Colour contribution of bands 1..3, rest [N,3,K-1] channel-major, dirs [M,3] -> [N,3,M].

    The real SH basis as graphdeco's ``eval_sh`` (written out independently here).
    """
    x, y, z = dirs.T
    basis = [
        -0.4886025119029199 * y, 0.4886025119029199 * z, -0.4886025119029199 * x,
        1.0925484305920792 * x * y, -1.0925484305920792 * y * z, 0.31539156525252005 * (2 * z * z - x * x - y * y),
        -1.0925484305920792 * x * z, 0.5462742152960396 * (x * x - y * y),
        -0.5900435899266435 * y * (3 * x * x - y * y), 2.890611442640554 * x * y * z,
        -0.4570457994644658 * y * (4 * z * z - x * x - y * y), 0.3731763325901154 * z * (2 * z * z - 3 * x * x - 3 * y * y),
        -0.4570457994644658 * x * (4 * z * z - x * x - y * y), 1.445305721320277 * z * (x * x - y * y),
        -0.5900435899266435 * x * (x * x - 3 * y * y),
    ]
    k = rest.shape[2]
    return np.einsum("nck,km->ncm", rest, np.stack(basis[:k]))


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_sh_keep_layout_and_flip(tmp_path, degree):
    n, k1 = 25, (degree + 1) ** 2 - 1
    g = random_gaussians(n)
    rest = np.random.default_rng(degree).normal(size=(n, 3 * k1))
    write_foreign_ply(tmp_path / "sh.ply", graphdeco_columns(g, rest))

    raw = read_ply(tmp_path / "sh.ply", up="y", sh="keep")
    assert raw.sh_degree == degree and raw.sh_rest.shape == (n, 3, k1)
    # channel-major: all R coefficients, then G, then B
    np.testing.assert_allclose(raw.sh_rest[:, 1, 0], rest[:, k1], rtol=1e-6)
    np.testing.assert_allclose(raw.sh_rest.numpy().reshape(n, -1), rest, rtol=1e-6)

    # Read in the internal frame: the colour seen along direction d in the file's frame must be
    # the colour seen along the flipped direction in the internal frame.
    internal = read_ply(tmp_path / "sh.ply", sh="keep")
    dirs = np.random.default_rng(7).normal(size=(50, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    file_colour = eval_sh_rest(raw.sh_rest.double().numpy(), dirs)
    internal_colour = eval_sh_rest(internal.sh_rest.double().numpy(), dirs * np.array([1.0, -1.0, -1.0]))
    np.testing.assert_allclose(internal_colour, file_colour, atol=1e-9)

    # Kept bands survive a write/read round trip in both frames.
    for up in ("-y", "y"):
        write_ply(tmp_path / "back.ply", internal.gaussians, sh_rest=internal.sh_rest, up=up, min_opacity=None)
        back = read_ply(tmp_path / "back.ply", sh="keep")
        torch.testing.assert_close(back.sh_rest, internal.sh_rest, rtol=0, atol=0)


def test_sh_drop_is_reported(tmp_path):
    g = random_gaussians(8)
    write_foreign_ply(tmp_path / "sh.ply", graphdeco_columns(g, np.ones((8, 45))))
    f = read_ply(tmp_path / "sh.ply")
    assert f.sh_dropped and f.sh_degree == 3 and f.sh_rest is None
    assert not read_ply(tmp_path / "sh.ply", sh="keep").sh_dropped


@pytest.mark.parametrize("count", [7, 12])
def test_bad_sh_count_is_rejected(tmp_path, count):
    write_foreign_ply(tmp_path / "sh.ply", graphdeco_columns(random_gaussians(4), np.ones((4, count))))
    with pytest.raises(UserError, match=f"{count} f_rest"):
        read_ply(tmp_path / "sh.ply")


def test_gapped_f_rest_numbering_is_rejected(tmp_path):
    cols = graphdeco_columns(random_gaussians(4), np.ones((4, 9)))
    cols["f_rest_20"] = cols.pop("f_rest_3")
    write_foreign_ply(tmp_path / "sh.ply", cols)
    with pytest.raises(UserError, match="not numbered"):
        read_ply(tmp_path / "sh.ply")


# -- pruning ----------------------------------------------------------------------------------------
def test_pruning_on_export(tmp_path):
    g = random_gaussians(100)
    g.data[:30, 3] = 0.004
    assert write_ply(tmp_path / "p.ply", g) == 70
    kept = read_ply(tmp_path / "p.ply").gaussians
    assert_same_gaussians(Gaussians(g.data[30:]), kept)
    assert save_gaussians(tmp_path / "all.ply", g, min_opacity=None) == 100
    assert save_gaussians(tmp_path / "hi.ply", g, min_opacity=0.5) == int((g.opacity >= 0.5).sum())
    g.data[:, 3] = 0.001
    with pytest.raises(UserError, match="nothing left"):
        write_ply(tmp_path / "none.ply", g)
    assert not (tmp_path / "none.ply").exists()


def test_pruning_keeps_sh_rest_aligned(tmp_path):
    g = random_gaussians(10)
    g.data[::2, 3] = 0.001
    rest = torch.arange(10 * 9, dtype=torch.float32).reshape(10, 3, 3)
    write_ply(tmp_path / "p.ply", g, sh_rest=rest, up="y")
    back = read_ply(tmp_path / "p.ply", sh="keep")
    torch.testing.assert_close(back.sh_rest, rest[1::2])


# -- dispatch ---------------------------------------------------------------------------------------
def test_dispatch_by_extension(tmp_path):
    g = random_gaussians(20)
    save_gaussians(tmp_path / "a.PLY", g, min_opacity=None)
    assert_same_gaussians(g, load_gaussians(tmp_path / "a.PLY"))
    with pytest.raises(UserError, match="unsupported file type"):
        save_gaussians(tmp_path / "a.obj", g)
    with pytest.raises(UserError, match="unsupported file type"):
        read_gaussians(tmp_path / "a.obj")


# -- bad files --------------------------------------------------------------------------------------
def good_file(tmp_path, n=10):
    path = tmp_path / "good.ply"
    write_ply(path, random_gaussians(n), min_opacity=None)
    return path


def test_missing_required_properties_are_named(tmp_path):
    cols = graphdeco_columns(random_gaussians(5))
    del cols["scale_2"], cols["opacity"]
    write_foreign_ply(tmp_path / "m.ply", cols)
    with pytest.raises(UserError, match=r"m.ply.*opacity, scale_2"):
        read_ply(tmp_path / "m.ply")


def test_point_cloud_ply_is_rejected(tmp_path):
    write_foreign_ply(tmp_path / "pc.ply", {"x": np.zeros(3), "y": np.zeros(3), "z": np.zeros(3)})
    with pytest.raises(UserError, match="lacks required"):
        read_ply(tmp_path / "pc.ply")


@pytest.mark.parametrize("field,value", [("x", np.nan), ("opacity", np.inf), ("scale_0", -np.inf), ("f_rest_3", np.nan)])
def test_non_finite_values_are_rejected(tmp_path, field, value):
    cols = graphdeco_columns(random_gaussians(6), np.zeros((6, 9)))
    cols[field][2] = value
    write_foreign_ply(tmp_path / "nan.ply", cols)
    with pytest.raises(UserError, match="NaN or Inf"):
        read_ply(tmp_path / "nan.ply", sh="keep")


def test_overflowing_scale_is_rejected(tmp_path):
    cols = graphdeco_columns(random_gaussians(6))
    cols["scale_0"][1] = 200.0  # exp overflows float32
    write_foreign_ply(tmp_path / "big.ply", cols)
    with pytest.raises(UserError, match="big.ply"):
        read_ply(tmp_path / "big.ply")


def test_zero_quaternion_is_rejected(tmp_path):
    cols = graphdeco_columns(random_gaussians(6))
    for i in range(4):
        cols[f"rot_{i}"][3] = 0.0
    write_foreign_ply(tmp_path / "q.ply", cols)
    with pytest.raises(UserError, match="zero rotation"):
        read_ply(tmp_path / "q.ply")


def test_zero_gaussians(tmp_path):
    write_foreign_ply(tmp_path / "empty.ply", graphdeco_columns(Gaussians(torch.zeros(0, 14))))
    with pytest.raises(UserError, match="zero Gaussians"):
        read_ply(tmp_path / "empty.ply")


@pytest.mark.parametrize("cut", [1, 56 * 3 + 5])
def test_truncated_file(tmp_path, cut):
    path = good_file(tmp_path)
    assert ply_is_complete(path)
    path.write_bytes(path.read_bytes()[:-cut])
    assert not ply_is_complete(path)
    with pytest.raises(UserError, match="truncated"):
        read_ply(path)


def test_not_a_ply_and_missing(tmp_path):
    (tmp_path / "x.ply").write_text("hello\n")
    with pytest.raises(UserError, match="not a valid PLY"):
        read_ply(tmp_path / "x.ply")
    (tmp_path / "e.ply").write_bytes(b"")
    with pytest.raises(UserError, match="e.ply"):
        read_ply(tmp_path / "e.ply")
    with pytest.raises(UserError, match="no such file"):
        read_ply(tmp_path / "missing.ply")
    with pytest.raises(UserError, match="is a folder"):
        read_ply(tmp_path)


def test_failed_write_keeps_existing_file(tmp_path):
    path = good_file(tmp_path)
    before = path.read_bytes()
    bad = random_gaussians(5)
    bad.data[0, 0] = float("nan")
    with pytest.raises(UserError, match="NaN"):
        write_ply(path, bad)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["good.ply"]
