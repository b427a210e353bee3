"""Background removal: rembg (real, offline, with ../shared's u2netp.onnx), alpha, key, none, auto."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from conftest import DATA

from video2gs.errors import UserError
from video2gs.preprocess import segment
from video2gs.preprocess.crop import ClipCrop, mask_box
from video2gs.preprocess.segment import NoObjectError, binarize, make_segmenter
from video2gs.video.decode import ffmpeg_exe, open_source

U2NETP = DATA / "u2netp" / "u2netp.onnx"
BOX = DATA / "videos" / "box.mp4"
needs_u2netp = pytest.mark.skipif(not U2NETP.is_file(), reason=f"offline rembg model not found at {U2NETP}")
needs_rembg = pytest.mark.skipif(not segment.rembg_installed(), reason='rembg is not installed (pip install "rembg[cpu]")')

H, W = 240, 320


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return float((a & b).sum() / max(1, (a | b).sum()))


def scene(background: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An ellipse + rectangle object (reddish, with a colour ramp) on a chosen backdrop, with noise.
    Returns (image uint8 [H, W, 3], truth bool [H, W])."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    truth = ((xx - 170) / 70) ** 2 + ((yy - 110) / 50) ** 2 < 1
    truth |= (np.abs(xx - 120) < 25) & (np.abs(yy - 160) < 30)
    obj = np.stack([np.full_like(xx, 200), 60 + 0.3 * xx, np.full_like(xx, 40)], -1)
    if background == "gradient":
        bg = np.stack([20 + 0.15 * xx, 120 + 0.2 * yy, 40 + 0.1 * xx], -1)
    elif background == "vignette":
        r2 = ((xx - W / 2) / W) ** 2 + ((yy - H / 2) / H) ** 2
        bg = np.repeat((200 - 180 * r2)[..., None], 3, -1)
    else:
        bg = np.full((H, W, 3), 255.0, np.float32)
    noise = np.random.default_rng(seed).normal(0, 3, (H, W, 3)) if background != "white" else 0
    img = np.clip(np.where(truth[..., None], obj, bg) + noise, 0, 255).astype(np.uint8)
    return img, truth


def assert_binary(mask: np.ndarray, shape) -> None:
    assert mask.shape == tuple(shape) and mask.dtype == np.uint8
    assert set(np.unique(mask).tolist()) <= {0, 255}


@pytest.fixture
def empty_rembg_home(tmp_path, monkeypatch):
    home = tmp_path / "u2net_home"
    home.mkdir()
    monkeypatch.setenv("U2NET_HOME", str(home))
    monkeypatch.setenv("VIDEO2GS_OFFLINE", "1")
    return home


# ----------------------------------------------------------------------------- classical


@pytest.mark.parametrize("background", ["gradient", "vignette", "white"])
def test_key_finds_an_object_on_a_plain_backdrop(background):
    img, truth = scene(background)
    seg = make_segmenter("key")
    mask = seg(img)
    assert_binary(mask, (H, W))
    assert iou(mask, truth) > 0.9
    assert seg.name == "key"


@pytest.mark.parametrize("background", ["gradient", "white"])
def test_key_finds_an_object_that_crosses_the_border(background):
    # The spot-spin clip of the synthetic data: the cow's legs run through the bottom rows of the
    # last frames. The border pixels it covers must not count as backdrop, or the threshold rises
    # until nothing is object.
    img, truth = scene(background)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    leg = (np.abs(xx - 120) < 25) & (yy > 160)  # from the rectangle down through the bottom edge
    img[leg] = np.clip(np.array([200.0, 96.0, 40.0]) + np.random.default_rng(1).normal(0, 3, (int(leg.sum()), 3)),
                       0, 255).astype(np.uint8)
    mask = make_segmenter("key")(img)
    assert iou(mask, truth | leg) > 0.9


def test_key_works_on_4k_and_grayscale_frames():
    img, truth = scene("gradient")
    big = np.repeat(np.repeat(img, 12, axis=0), 12, axis=1)  # 2880 x 3840
    mask = make_segmenter("key")(big)
    assert_binary(mask, big.shape[:2])
    assert iou(mask[::12, ::12], truth) > 0.85
    gray = make_segmenter("key")(img.mean(axis=2).astype(np.uint8))
    assert gray.shape == (H, W) and iou(gray, truth) > 0.5


def test_none_takes_frames_as_already_on_white():
    img, truth = scene("white")
    img = np.clip(img.astype(int) - np.random.default_rng(1).integers(0, 6, img.shape), 0, 255).astype(np.uint8)
    mask = make_segmenter("none")(img)
    assert_binary(mask, (H, W))
    assert iou(mask, truth) > 0.98


def test_alpha_is_thresholded_so_no_halo_survives():
    img = np.zeros((20, 30, 4), np.uint8)
    img[..., 3] = 60  # faint halo everywhere
    img[5:15, 10:20, 3] = 200
    seg = make_segmenter("alpha", has_alpha=True)
    mask = seg(img)
    assert_binary(mask, (20, 30))
    assert mask_box(mask, min_pixels=1).to_list() == [10, 5, 20, 15]
    with pytest.raises(UserError, match="alpha channel"):
        make_segmenter("alpha", has_alpha=False)
    assert binarize(np.array([[0.49, 0.51]])).tolist() == [[0, 255]]


def test_uniform_video_has_no_object_and_says_what_to_try(tmp_path):
    path = tmp_path / "uniform.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=0x4080c0:s=96x64:r=10",
                    "-t", "1", "-pix_fmt", "yuv420p", "-y", str(path)], check=True)
    src = open_source(path, fps=10)
    for method in ("key", "none"):
        seg = make_segmenter(method)
        boxes = [mask_box(seg(f.image)) for f in src]
        assert boxes == [None] * len(src)
        with pytest.raises(NoObjectError, match=f"no object found.*--segment {method}.*try") as exc:
            ClipCrop.from_boxes(boxes, (96, 64), method=method)
        assert "\n" not in str(exc.value)


# ----------------------------------------------------------------------------- rembg (real, offline)


@needs_rembg
@needs_u2netp
def test_rembg_custom_onnx_finds_the_box_in_box_mp4():
    seg = make_segmenter("rembg", model=U2NETP)
    assert seg.name == "rembg" and "u2netp.onnx" in seg.description
    frame = next(iter(open_source(BOX, max_frames=1))).image
    mask = seg(frame)
    assert_binary(mask, frame.shape[:2])
    box = mask_box(mask)
    assert box is not None and 0.05 < (mask > 0).mean() < 0.4
    # the textured yellow box sits in the upper right of frame 0
    assert box.center[0] > 320 and box.center[1] < 240
    inside = frame[mask > 0].astype(float).mean(axis=0)
    assert inside[0] > inside[2] + 40  # yellow-orange, not the grey-white table
    # rembg does not invent an object in a flat frame (its output is min-max normalised)
    assert not seg(np.full((64, 64, 3), 90, np.uint8)).any()


@needs_rembg
@needs_u2netp
def test_rembg_named_model_resolves_from_its_home_offline(empty_rembg_home):
    (empty_rembg_home / "u2netp.onnx").symlink_to(U2NETP)
    seg = make_segmenter("rembg", model="u2netp")
    assert seg.model_file == empty_rembg_home / "u2netp.onnx"
    img, truth = scene("white")
    assert iou(seg(img), truth) > 0.9
    auto = make_segmenter("auto", model="u2netp")
    assert auto.name == "rembg" and auto.description.startswith("auto -> rembg u2netp")


def test_rembg_model_absent_offline_names_the_ways_out(empty_rembg_home):
    with pytest.raises(UserError) as exc:
        make_segmenter("rembg", model="isnet-general-use")
    msg = str(exc.value)
    for needle in ("isnet-general-use.onnx", str(empty_rembg_home), "--segment-model PATH.onnx", "--segment key", "online"):
        assert needle in msg
    assert "\n" not in msg
    with pytest.raises(UserError, match="u2net.onnx"):
        make_segmenter("rembg")  # the default is u2net, never rembg's own default


@needs_rembg
def test_rembg_download_failure_online_is_one_clear_line(empty_rembg_home, monkeypatch):
    import rembg
    import requests

    monkeypatch.setenv("VIDEO2GS_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")

    def no_network(*args, **kwargs):
        raise requests.exceptions.ConnectionError("Failed to resolve 'github.com'")

    monkeypatch.setattr(rembg, "new_session", no_network)
    with pytest.raises(UserError, match=r"u2netp.*download failed: ConnectionError.*--segment key") as exc:
        make_segmenter("rembg", model="u2netp")
    assert "\n" not in str(exc.value)


def test_auto_picks_alpha_then_rembg_then_key(empty_rembg_home, monkeypatch, tmp_path):
    assert make_segmenter("auto", has_alpha=True).name == "alpha"
    monkeypatch.setattr(segment, "rembg_installed", lambda: True)  # installed, but no model file
    seg = make_segmenter("auto")
    assert seg.name == "key" and "u2net" in seg.description and "not downloaded" in seg.description
    monkeypatch.setattr(segment, "rembg_installed", lambda: False)
    seg = make_segmenter("auto")
    assert seg.name == "key" and "not installed" in seg.description
    model = tmp_path / "model.onnx"
    model.write_bytes(b"never loaded")
    with pytest.raises(UserError, match=r'pip install "video2gs\[segment\]"'):
        make_segmenter("rembg", model=model)


def test_bad_segment_options(tmp_path):
    with pytest.raises(UserError, match="unknown --segment"):
        make_segmenter("magic")
    with pytest.raises(UserError, match="unknown --segment-model"):
        make_segmenter("rembg", model="bria-rmbg")
    with pytest.raises(UserError, match="not found"):
        make_segmenter("rembg", model=tmp_path / "missing.onnx")
    with pytest.raises(UserError, match="only applies"):
        make_segmenter("key", model="u2netp")


@needs_rembg
def test_a_broken_onnx_file_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(UserError, match="cannot load"):
        make_segmenter("rembg", model=bad)
