"""The clip layout: what is written reads back, cameras follow the reference's sign, and a
clip with a missing view, frame or camera is one clear error."""

import numpy as np
import pytest
import torch

from video2gs.camera import orbit_camera
from video2gs.data import layout
from video2gs.errors import UserError
from video2gs.gaussians import Gaussians


def _write_clip(root, views=((0.0, 0.0), (20.0, 90.0)), T=3, size=16, fmt="png", record=True):
    rng = np.random.default_rng(0)
    images = {}
    for v, (elev, azi) in enumerate(views):
        layout.write_cameras(root, v, [elev] * T, [azi] * T)
        for t in range(T):
            rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            mask = rng.integers(0, 256, (size, size), dtype=np.uint8)
            layout.write_view_frame(root, v, t, rgb, mask, fmt=fmt)
            images[v, t] = (rgb, mask)
    if record:
        layout.write_clip_record(root, {"views": list(range(len(views))), "times": [t / 8 for t in range(T)],
                                        "input_view": 0, "fixed_views": [0], "random_views": [1]})
    return images


def test_round_trip_png(tmp_path):
    images = _write_clip(tmp_path)
    clip = layout.open_clip(tmp_path)
    assert clip.views == [0, 1] and clip.num_frames == 3 and clip.input_view == 0
    np.testing.assert_allclose(clip.times, [0, 0.125, 0.25])
    rgb, mask = images[1, 2]
    np.testing.assert_array_equal(np.rint(clip.image(1, 2) * 255).astype(np.uint8), rgb)
    np.testing.assert_array_equal(np.rint(clip.mask(1, 2) * 255).astype(np.uint8), mask)


def test_cameras_use_the_blender_sign(tmp_path):
    """elevation.npy = +20 (Blender: camera above) -> c2w = orbit_camera(-20, azimuth): camera y > 0."""
    _write_clip(tmp_path)
    clip = layout.open_clip(tmp_path)
    c2w = clip.c2w(1)
    assert c2w.shape == (3, 4, 4) and c2w.dtype == np.float32
    np.testing.assert_allclose(c2w[0], orbit_camera(-20.0, 90.0), atol=1e-6)
    assert c2w[0, 1, 3] > 0.5  # above the object
    cams = clip.cameras(0)
    assert cams.c2w.shape == (2, 4, 4)
    np.testing.assert_allclose(cams.c2w[0].numpy(), orbit_camera(0, 0), atol=1e-6)


def test_reference_random_view_shape(tmp_path):
    """The reference's random views store angles as [T,1]; they read as [T]."""
    _write_clip(tmp_path, record=False)
    for name in ("elevation", "rotation"):
        np.save(tmp_path / "001" / "camera" / f"{name}.npy", np.full((3, 1), 10.0))
    clip = layout.open_clip(tmp_path, fps=8)
    assert clip.elevation(1).shape == (3,) and clip.elevation(1)[0] == 10.0
    np.testing.assert_allclose(clip.times, np.arange(3) / 8)


def test_jpg_reads(tmp_path):
    _write_clip(tmp_path, fmt="jpg")
    clip = layout.open_clip(tmp_path)
    assert clip.image_file(0, 0).suffix == ".jpg" and clip.image(0, 0).shape == (16, 16, 3)


def test_gt_round_trip(tmp_path):
    _write_clip(tmp_path)
    g = Gaussians.from_fields(torch.rand(10, 3) - 0.5, torch.rand(10) * 0.9 + 0.05, torch.rand(10, 3) * 0.05 + 0.01,
                              torch.randn(10, 4), torch.rand(10, 3))
    for t in range(3):
        layout.write_gt(tmp_path, t, g)
    clip = layout.open_clip(tmp_path)
    back = clip.load_gt(1)
    torch.testing.assert_close(back.xyz, g.xyz, atol=1e-6, rtol=0)
    assert clip.gt_path(2).name == "002.ply"


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: (root / "001" / "img" / "002.png").unlink(), "001/img/002.png: missing image"),
        (lambda root: (root / "000" / "mask" / "001.png").unlink(), "000/mask/001.png: missing mask"),
        (lambda root: (root / "001" / "camera" / "rotation.npy").unlink(), "rotation.npy: missing camera file"),
        (lambda root: np.save(root / "001" / "camera" / "elevation.npy", np.zeros(2)), "elevation has 2 frames, rotation 3"),
        (lambda root: (root / "001" / "img" / "000.png").write_bytes(b"junk"), "cannot decode"),
    ],
)
def test_damaged_clip_is_one_clear_error(tmp_path, damage, message):
    _write_clip(tmp_path)
    damage(tmp_path)
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        clip = layout.open_clip(tmp_path)
        clip.image(1, 0)


def test_missing_listed_view(tmp_path):
    _write_clip(tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "001")
    with pytest.raises(UserError, match="001: missing view folder"):
        layout.open_clip(tmp_path)


def test_no_views(tmp_path):
    with pytest.raises(UserError, match="no view folders"):
        layout.open_clip(tmp_path)
