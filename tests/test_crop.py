"""The clip's square crop: union of boxes, 80 % fill, white, 256^2, motion kept."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA

from video2gs.errors import UserError
from video2gs.preprocess.crop import Box, ClipCrop, mask_box
from video2gs.preprocess.segment import NoObjectError, make_segmenter, rembg_installed
from video2gs.video.decode import open_source

BBB = DATA / "videos" / "bigbuckbunny.mp4"
U2NETP = DATA / "u2netp" / "u2netp.onnx"


def alpha_box(rgba: np.ndarray) -> Box:
    return mask_box(rgba[..., 3] > 127, min_pixels=1)


def moving_square_clip(n: int = 4, w: int = 200, h: int = 120, side: int = 20, step: int = 30):
    """Black frames with a red square moving right by ``step`` px per frame; (frames, masks)."""
    frames, masks = [], []
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        mask = np.zeros((h, w), np.uint8)
        x0, y0 = 10 + i * step, 50
        img[y0 : y0 + side, x0 : x0 + side] = (220, 30, 30)
        mask[y0 : y0 + side, x0 : x0 + side] = 255
        frames.append(img)
        masks.append(mask)
    return frames, masks


def test_mask_box_has_exact_edges():
    m = np.zeros((40, 50), np.uint8)
    m[10:20, 5:25] = 255
    box = mask_box(m)
    assert box == Box(5, 10, 25, 20) and (box.width, box.height) == (20, 10)
    assert mask_box(m > 0) == box and mask_box(m.astype(np.float32) / 255) == box
    tiny = np.zeros((40, 50), np.uint8)
    tiny[3, 3] = 255
    assert mask_box(tiny) is None and mask_box(np.zeros((4, 4), np.uint8)) is None


def test_longest_side_fills_80_percent_centred_on_white():
    frames, masks = moving_square_clip(n=1, side=40)
    crop = ClipCrop.from_boxes([mask_box(masks[0])], (200, 120))
    out = crop.apply(frames[0], masks[0])
    assert out.shape == (256, 256, 4) and out.dtype == np.uint8
    box = alpha_box(out)
    assert max(box.width, box.height) == int(256 * 0.8) == 204
    assert abs(box.center[0] - 128) <= 1 and abs(box.center[1] - 128) <= 1
    outside = out[..., 3] == 0
    assert outside.any() and np.all(out[outside][:, :3] == 255)  # black backdrop became white
    inside = out[..., 3] == 255
    assert np.allclose(out[inside][:, :3].mean(axis=0), (220, 30, 30), atol=2)


def test_one_crop_for_the_clip_keeps_the_motion():
    frames, masks = moving_square_clip()
    boxes = [mask_box(m) for m in masks]
    crop = ClipCrop.from_boxes(boxes, (200, 120))
    assert crop.box == Box(10, 50, 10 + 3 * 30 + 20, 70)  # the union, not any single box
    assert crop.scaled[0] == 204
    centers = [alpha_box(crop.apply(f, m)).center[0] for f, m in zip(frames, masks)]
    steps = np.diff(centers)
    assert np.all(steps > 0)  # the square still moves right in the crops
    assert np.allclose(steps, 30 * crop.scale, atol=1.5)
    sizes = {alpha_box(crop.apply(f, m)).width for f, m in zip(frames, masks)}
    assert max(sizes) - min(sizes) <= 1  # same scale for every frame


def test_border_ratio_size_and_small_objects_are_enlarged():
    frames, masks = moving_square_clip(n=1, side=10)
    crop = ClipCrop.from_boxes([mask_box(masks[0])], (200, 120), border_ratio=0.5, size=128)
    out = crop.apply(frames[0], masks[0])
    assert out.shape == (128, 128, 4) and alpha_box(out).width == 64
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(UserError, match="--border-ratio"):
            ClipCrop.from_boxes([Box(0, 0, 5, 5)], (10, 10), border_ratio=bad)


def test_rgba_frames_are_composited_by_their_own_alpha_first():
    img = np.zeros((50, 60, 4), np.uint8)
    img[10:40, 10:50] = (0, 0, 0, 0)  # transparent black inside the box
    img[20:30, 20:40] = (10, 200, 10, 255)
    mask = np.zeros((50, 60), np.uint8)
    mask[10:40, 10:50] = 255  # a mask wider than the opaque part
    out = ClipCrop.from_boxes([mask_box(mask)], (60, 50)).apply(img, mask)
    visible = out[..., 3] > 0
    rgb = out[visible][:, :3].astype(int)
    assert np.all((rgb.sum(axis=1) >= 3 * 250) | (rgb[:, 1] > 150))  # white or the green object, never black


def test_odd_sized_grayscale_and_4k_frames():
    gray = np.full((479, 641), 255, np.uint8)
    gray[100:300, 200:500] = 40
    mask = np.where(gray < 128, 255, 0).astype(np.uint8)
    out = ClipCrop.from_boxes([mask_box(mask)], (641, 479)).apply(gray, mask)
    assert out.shape == (256, 256, 4) and alpha_box(out).width == 204

    big = np.full((2160, 3840, 3), 255, np.uint8)
    mask = np.zeros((2160, 3840), np.uint8)
    mask[500:1700, 1000:3400] = 255
    big[mask > 0] = (0, 0, 255)
    out = ClipCrop.from_boxes([mask_box(mask)], (3840, 2160)).apply(big, mask)
    box = alpha_box(out)
    assert (box.width, box.height) == (204, 102)
    with pytest.raises(ValueError, match="built for"):
        ClipCrop.from_boxes([mask_box(mask)], (3840, 2160)).apply(gray, mask)


def test_no_object_in_any_frame():
    with pytest.raises(NoObjectError, match="--segment key"):
        ClipCrop.from_boxes([None, None], (10, 10), method="key")


def test_box_from_a_preview_is_rescaled_conservatively():
    b = Box(3, 5, 10, 11).rescale((32, 18), (1280, 720))
    assert b == Box(120, 200, 400, 440)
    assert Box(1, 1, 2, 2).rescale((3, 3), (10, 10)) == Box(3, 3, 7, 7)  # floor / ceil, never smaller


@pytest.mark.skipif(not (BBB.is_file() and U2NETP.is_file()), reason=f"shared data not found: {BBB}, {U2NETP}")
@pytest.mark.skipif(not rembg_installed(), reason='rembg is not installed (pip install "rembg[cpu]")')
def test_bigbuckbunny_1280x720_two_pass_crop():
    # a busy scene: border keying finds nothing useful here, the salient-object model does
    src = open_source(BBB, fps=2, max_frames=2)
    seg = make_segmenter("rembg", model=U2NETP)
    boxes = [mask_box(seg(f.image)) for f in src]  # pass 1: boxes only
    assert all(b is not None for b in boxes)
    crop = ClipCrop.from_boxes(boxes, (src.info.width, src.info.height), method="rembg")
    assert crop.frame_size == (1280, 720)
    for f in src:  # pass 2: crop
        mask = seg(f.image)
        out = crop.apply(f.image, mask)
        assert out.shape == (256, 256, 4)
        box = alpha_box(out)
        # every frame's object lies inside the 204-px square around the centre
        assert box.x0 >= crop.offset[0] - 1 and box.x1 <= crop.offset[0] + crop.scaled[0] + 1
        assert box.y0 >= crop.offset[1] - 1 and box.y1 <= crop.offset[1] + crop.scaled[1] + 1
    assert max(crop.scaled) == 204
    assert crop.to_dict()["box"] == crop.box.to_list()
