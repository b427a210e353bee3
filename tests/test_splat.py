"""antimatter15 .splat: byte-exact re-encoding of real files, decoding, sort order, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import DATA
from video2gs.errors import UserError
from video2gs.formats import load_gaussians, read_gaussians, save_gaussians
from video2gs.formats.splat import RECORD, decode_rotation, encode_rotation, read_splat, write_splat
from video2gs.gaussians import Gaussians

SPLATS = DATA / "splats"
needs_splats = pytest.mark.skipif(not (SPLATS / "spot.splat").is_file(), reason=f"shared splat data not found in {SPLATS}")


def raw_records(path) -> np.ndarray:
    return np.fromfile(path, dtype=RECORD)


@needs_splats
@pytest.mark.parametrize("name", ["spot", "teapot", "torus"])
def test_reencode_is_byte_exact_with_default_options(tmp_path, name):
    src = SPLATS / f"{name}.splat"
    g = load_gaussians(src)
    assert write_splat(tmp_path / "out.splat", g) == src.stat().st_size // 32
    assert (tmp_path / "out.splat").read_bytes() == src.read_bytes()


@needs_splats
def test_reencode_of_a_real_capture_is_byte_exact(tmp_path):
    # plant: 113,648 real splats with varied opacity and rotations; keep its order and every splat.
    src = SPLATS / "plant.splat"
    write_splat(tmp_path / "out.splat", load_gaussians(src), sort=False, min_opacity=None)
    assert (tmp_path / "out.splat").read_bytes() == src.read_bytes()


@needs_splats
def test_decoded_values_follow_the_format(tmp_path):
    src = SPLATS / "spot.splat"
    rec = raw_records(src)
    raw = read_splat(src, up="y").gaussians  # the file's own frame
    np.testing.assert_array_equal(raw.xyz.numpy(), rec["position"])
    np.testing.assert_array_equal(raw.scale.numpy(), rec["scale"])
    np.testing.assert_allclose(raw.rgb.numpy(), rec["rgba"][:, :3] / 255.0, atol=1e-7)
    np.testing.assert_allclose(raw.opacity.numpy(), rec["rgba"][:, 3] / 255.0, atol=1e-7)
    q = (rec["rotation"].astype(np.float64) - 128) / 128
    np.testing.assert_allclose(raw.rotation.numpy(), q / np.linalg.norm(q, axis=1, keepdims=True), atol=1e-6)
    # Default: the file is -Y up; the internal frame is +Y up (180 deg about X).
    internal = read_splat(src)
    assert (internal.up, internal.up_source) == ("-y", "default")
    np.testing.assert_array_equal(internal.gaussians.xyz.numpy(), rec["position"] * np.array([1, -1, -1], np.float32))


@needs_splats
def test_ply_and_splat_conversions_agree(tmp_path):
    src = SPLATS / "spot.splat"
    save_gaussians(tmp_path / "spot.ply", load_gaussians(src))
    save_gaussians(tmp_path / "again.splat", load_gaussians(tmp_path / "spot.ply"))
    a, b = raw_records(tmp_path / "again.splat"), raw_records(src)
    # A PLY stores ln(σ + 1e-8) as float32 (LGM's encoding), so scales come back within float32
    # precision plus that 1e-8, not bit for bit; everything else survives unchanged.
    for name in ("position", "rgba", "rotation"):
        np.testing.assert_array_equal(a[name], b[name])
    np.testing.assert_allclose(a["scale"], b["scale"], rtol=1e-6, atol=1.1e-8)


def random_gaussians(n: int, seed: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    return Gaussians.from_fields(
        torch.rand(n, 3, generator=gen) - 0.5,
        torch.rand(n, generator=gen),
        torch.rand(n, 3, generator=gen) * 0.05 + 1e-3,
        torch.randn(n, 4, generator=gen),
        torch.rand(n, 3, generator=gen),
    )


def test_sort_order_and_pruning(tmp_path):
    g = random_gaussians(500)
    g.data[:, 3] = torch.randint(0, 256, (500,)) / 255.0  # opacities the bytes hold exactly
    n = write_splat(tmp_path / "s.splat", g)
    rec = raw_records(tmp_path / "s.splat")
    assert n == len(rec) == int((g.opacity >= 0.005).sum())
    key = np.prod(rec["scale"].astype(np.float64), axis=1) * rec["rgba"][:, 3]
    assert np.all(np.diff(key) <= 1e-12)  # largest, most opaque first
    assert write_splat(tmp_path / "all.splat", g, min_opacity=None) == 500


def test_round_trip_within_quantisation(tmp_path):
    g = random_gaussians(400)
    for up in ("-y", "y"):
        write_splat(tmp_path / "r.splat", g, up=up, sort=False, min_opacity=None)
        back = read_splat(tmp_path / "r.splat", up=up).gaussians
        torch.testing.assert_close(back.xyz, g.xyz, rtol=0, atol=0)
        torch.testing.assert_close(back.scale, g.scale, rtol=0, atol=0)
        lost = g.rgb - back.rgb  # truncation: the byte never exceeds the value (up to round-off)
        assert lost.min() > -1e-5 and lost.max() < 1 / 255 + 1e-6
        cos = (back.rotation * g.rotation).sum(-1).abs()
        assert cos.min() > 0.9998


def test_rotation_quantisation_beats_plain_truncation():
    q = np.random.default_rng(3).normal(size=(5000, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)

    def angle(b):
        d = decode_rotation(b)
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        return np.arccos(np.clip(np.abs((d * q).sum(1)), 0, 1))

    ours = angle(encode_rotation(q))
    truncated = angle(np.clip(q * 128 + 128, 0, 255).astype(np.uint8))
    assert np.all(ours <= truncated + 1e-12)
    assert ours.mean() < 0.7 * truncated.mean()
    # Bytes as antimatter15's converter truncates them are reproduced by decode -> encode.
    b = np.clip(q * 128 + 128, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(encode_rotation(decode_rotation(b)), b)


def test_bad_files(tmp_path):
    write_splat(tmp_path / "ok.splat", random_gaussians(10), min_opacity=None)
    data = (tmp_path / "ok.splat").read_bytes()
    (tmp_path / "cut.splat").write_bytes(data[:-5])
    with pytest.raises(UserError, match="not a multiple of 32"):
        read_splat(tmp_path / "cut.splat")
    (tmp_path / "empty.splat").write_bytes(b"")
    with pytest.raises(UserError, match="zero Gaussians"):
        read_gaussians(tmp_path / "empty.splat")
    rec = np.frombuffer(data, dtype=RECORD).copy()
    rec["position"][3, 1] = np.nan
    rec.tofile(tmp_path / "nan.splat")
    with pytest.raises(UserError, match="NaN or Inf"):
        read_splat(tmp_path / "nan.splat")
    rec = np.frombuffer(data, dtype=RECORD).copy()
    rec["rotation"][2] = 128
    rec.tofile(tmp_path / "q.splat")
    with pytest.raises(UserError, match="zero rotation"):
        read_splat(tmp_path / "q.splat")
    rec = np.frombuffer(data, dtype=RECORD).copy()
    rec["scale"][0, 0] = 0.0
    rec.tofile(tmp_path / "s.splat")
    with pytest.raises(UserError, match="s.splat.*scales must be positive"):
        read_splat(tmp_path / "s.splat")
    with pytest.raises(UserError, match="no such file"):
        read_splat(tmp_path / "missing.splat")


def test_splat_cannot_store_sh(tmp_path):
    with pytest.raises(UserError, match="no higher SH"):
        save_gaussians(tmp_path / "x.splat", random_gaussians(3), sh_rest=torch.zeros(3, 3, 3))
