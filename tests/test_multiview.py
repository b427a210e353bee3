"""Views of the first frame: azimuth alignment with the real renderer, and `--views imagedream`
end to end with a tiny random ImageDream and a micro L4GM saved in the released layouts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from media import object_video
from video2gs.camera import Cameras
from video2gs.formats import load_gaussians
from video2gs.pipeline.views import align_azimuth, aligned_views
from video2gs.render import render


@pytest.fixture(scope="module")
def cow():
    # the bundled example (Spot, CC0) is everywhere the package is; load_gaussians returns +Y up
    from importlib import resources

    with resources.as_file(resources.files("video2gs") / "examples" / "spot.splat") as path:
        return load_gaussians(path)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return object_video(tmp_path_factory.mktemp("media") / "clip.mp4", n=3)


@pytest.mark.parametrize("yaw", [37.0, -120.0, 171.0])
def test_alignment_recovers_a_known_yaw(cow, yaw):
    frame0 = render(cow, Cameras.orbit([yaw]), 256, 256).rgb[0].numpy()
    found = align_azimuth(cow, frame0, step=1.0)
    assert len(found.candidates) == 360 and found.candidates[0] == -180.0 and found.candidates[-1] == 179.0
    assert abs(found.azimuth - yaw) <= 1.0
    assert found.error == pytest.approx(found.errors.min()) and found.error < 1e-4


def test_alignment_step_and_range_are_options(cow):
    frame0 = render(cow, Cameras.orbit([40.0]), 256, 256).rgb[0].numpy()
    found = align_azimuth(cow, frame0, step=10.0, start=0.0, stop=90.0)
    assert list(found.candidates) == [0, 10, 20, 30, 40, 50, 60, 70, 80]
    assert found.azimuth == 40.0


def test_aligned_views_are_renders_at_the_offsets(cow):
    views = aligned_views(cow, 30.0, 64, supersample=1)
    assert views.shape == (4, 64, 64, 3)
    direct = render(cow, Cameras.orbit([30.0, 120.0, 210.0, 300.0]), 64, 64).rgb.numpy()
    np.testing.assert_allclose(views, direct, atol=1e-6)


def test_reconstruct_with_imagedream_views(clip, tmp_path):
    from video2gs.cli import main
    from video2gs.testing import write_random_imagedream, write_random_l4gm

    recon = write_random_l4gm(tmp_path / "recon.safetensors")
    dream = write_random_imagedream(tmp_path / "imagedream")
    out = tmp_path / "out"
    main([
        "reconstruct", str(clip), "-o", str(out), "--max-frames", "3",
        "--model", str(recon), "--imagedream-model", str(dream), "--views", "imagedream", "--steps", "2",
        "--align-step", "30", "--segment", "key", "--no-interpolate", "--no-render", "--quiet",
    ])
    for kind in ("generated", "aligned"):
        assert sorted(p.name for p in (out / "views").glob(f"{kind}_*.png")) == [
            f"{kind}_{a:03d}.png" for a in (0, 90, 180, 270)
        ]
    manifest = json.loads((out / "manifest.json").read_text())
    views = manifest["views"]
    assert views["source"] == "imagedream" and views["steps"] == 2
    assert views["azimuth"] in list(range(-180, 180, 30))
    # the recorded error is the one of the chosen azimuth: the aligned front view against frame 0
    # (the aligned views are rendered 2x supersampled and saved as 8-bit PNGs, hence the tolerance)
    import cv2

    frame0 = cv2.imread(str(out / "input" / "000000.png"))[..., :3].astype(np.float32) / 255
    front = cv2.imread(str(out / "views" / "aligned_000.png")).astype(np.float32) / 255
    assert views["alignment_mse"] == pytest.approx(float(((front - frame0) ** 2).mean()), abs=2e-3)
    dream = [m for m in manifest["models"] if m["role"] == "imagedream"]
    assert len(dream) == 1 and len(dream[0]["sha256"]) == 64
    assert len(list((out / "gaussians").glob("*.ply"))) == 3


def test_missing_imagedream_offline_is_clear(clip, tmp_path, capsys, monkeypatch):
    from video2gs.cli import main
    from video2gs.testing import write_random_l4gm

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    recon = write_random_l4gm(tmp_path / "recon.safetensors")
    with pytest.raises(SystemExit) as exc:
        main([
            "reconstruct", str(clip), "-o", str(tmp_path / "out"), "--max-frames", "2",
            "--model", str(recon), "--views", "imagedream", "--segment", "key", "--no-render", "--quiet",
        ])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "imagedream" in err and "video2gs download imagedream" in err
