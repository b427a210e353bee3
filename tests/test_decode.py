"""Streaming decode: real videos from ../shared, synthetic media made with the bundled ffmpeg."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import DATA
from PIL import Image

from video2gs.errors import UserError
from video2gs.video.decode import (
    Frame,
    ffmpeg_exe,
    is_constant_rate,
    measured_fps,
    natural_key,
    open_source,
    resampled_count,
    select_frames,
    stride_for,
)

VIDEOS = DATA / "videos"
needs_videos = pytest.mark.skipif(not (VIDEOS / "box.mp4").is_file(), reason=f"shared test videos not found in {VIDEOS}")

X264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10, codec=X264, pre_input=()) -> Path:
    """Encode uint8 frames [H, W, 3|4] with the bundled ffmpeg."""
    h, w = frames[0].shape[:2]
    fmt = {3: "rgb24", 4: "rgba"}[frames[0].shape[2]]
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *pre_input, "-f", "rawvideo", "-pix_fmt", fmt,
           "-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:0", *codec, str(path)]
    subprocess.run(cmd, input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames), check=True)
    return path


def ramp_frames(n: int, w: int = 64, h: int = 48) -> list[np.ndarray]:
    """Frames whose mean brightness encodes their index (robust to lossy coding)."""
    return [np.full((h, w, 3), 10 + (200 * i) // max(1, n - 1), np.uint8) for i in range(n)]


def ffmpeg_children() -> list[int]:
    pids = []
    for task in Path("/proc/self/task").glob("*/children"):
        pids += [int(p) for p in task.read_text().split()]
    return [p for p in pids if "ffmpeg" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")] if pids else []


# ----------------------------------------------------------------------------- resampling rules


def test_stride_rule_matches_l4gm_and_treats_ntsc_as_nominal():
    assert [stride_for(f, 15) for f in (30, 25, 24, 60, 15, 10, 120)] == [2, 1, 1, 4, 1, 1, 8]
    assert stride_for(30000 / 1001, 15) == 2 and stride_for(60000 / 1001, 15) == 4
    assert stride_for(30, 10) == 3 and stride_for(30, 7.5) == 4
    assert resampled_count(455, 29.97, 15) == 228  # every other frame, the last one included
    assert resampled_count(300, 30, 15) == 150 and resampled_count(1, 30, 15) == 1 and resampled_count(0, 30, 15) == 0


@pytest.mark.parametrize("fps", [0, -1, float("nan"), float("inf"), "abc"])
def test_bad_fps_is_a_user_error(fps):
    with pytest.raises(UserError, match="--fps"):
        stride_for(30, fps)


def test_constant_rate_detection_tolerates_glitches_not_vfr():
    t = np.arange(100) / 30.0
    assert is_constant_rate(t)
    glitch = np.delete(t, [1, 2])  # box.mp4 starts with such a gap
    assert is_constant_rate(glitch)
    assert not is_constant_rate(np.cumsum([0.4, 0.73, 0.4, 0.47, 0.67, 0.4] * 10))
    assert measured_fps([0.0, 0.5, 1.0]) == pytest.approx(2.0) and measured_fps([1.0]) is None


def test_vfr_selection_is_uniform_grid_without_duplicates():
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.uniform(0.01, 0.2, 300))
    times -= times[0]
    sel = select_frames(times, 15, source_fps=measured_fps(times), constant_rate=False)
    idx = np.array(sel.source_indices)
    assert len(set(sel.source_indices)) == len(idx) and np.all(np.diff(idx) > 0)
    assert sel.output_fps == pytest.approx(min(15, measured_fps(times)))
    grid = np.array(sel.times)
    slots = grid * sel.output_fps  # grid times are whole multiples of the output period
    assert np.allclose(slots, np.round(slots), atol=1e-6) and np.all(np.diff(np.round(slots)) >= 1)
    # each chosen frame is the latest at or before its grid time
    assert np.all(times[idx] <= grid + 1e-6)
    nxt = np.append(times, np.inf)[idx + 1]
    assert np.all(nxt > grid)


def test_selection_cuts_by_time_and_caps():
    t = np.arange(90) / 30.0
    sel = select_frames(t, 15, source_fps=30, constant_rate=True, start=1.0, end=2.0)
    assert sel.source_indices == tuple(range(30, 60, 2)) and sel.stride == 2
    assert sel.times[0] == pytest.approx(1.0) and sel.output_fps == 15
    assert len(select_frames(t, 15, source_fps=30, constant_rate=True, max_frames=4)) == 4
    assert len(select_frames(t, 15, source_fps=30, constant_rate=True, start=5.0)) == 0


def test_natural_sort():
    names = ["img10.png", "img2.png", "img1.png", "Img3.png", "a.png"]
    assert sorted(names, key=natural_key) == ["a.png", "img1.png", "img2.png", "Img3.png", "img10.png"]


# ----------------------------------------------------------------------------- real videos


@needs_videos
def test_box_mp4_resamples_to_the_predicted_count():
    src = open_source(VIDEOS / "box.mp4")
    info = src.info
    assert (info.kind, info.width, info.height, info.has_alpha) == ("video", 640, 480, False)
    assert info.frame_count == 455  # the header claims 456
    assert info.source_fps == pytest.approx(29.97) and not info.variable_rate
    assert src.output_fps == pytest.approx(29.97 / 2)
    assert len(src) == resampled_count(info.frame_count, info.source_fps, 15) == 228
    frames = list(src)
    assert len(frames) == 228
    assert [f.index for f in frames] == list(range(228))
    assert [f.source_index for f in frames] == list(range(0, 455, 2))
    assert all(f.image.shape == (480, 640, 3) and f.image.dtype == np.uint8 for f in frames)
    assert np.allclose(np.diff([f.time for f in frames]), 2 / 29.97)


@needs_videos
def test_tree_avi_is_variable_rate_and_resampled_by_timestamps():
    src = open_source(VIDEOS / "tree.avi")
    info = src.info
    assert info.variable_rate and info.frame_count == 68  # header: 444 frames at 15 fps
    assert info.source_fps == pytest.approx(67 / (443 / 15), rel=1e-3)
    assert src.output_fps == pytest.approx(info.source_fps)
    frames = list(src)
    assert len(frames) == len(src) == len(src.selection) > 50
    src_idx = [f.source_index for f in frames]
    assert src_idx == sorted(set(src_idx))
    assert frames[1].source_time == pytest.approx(11 / 15, abs=2e-3)  # pts 0, 11, 17, ... in 1/15 s
    assert all(f.source_time <= f.time + 1e-6 for f in frames)
    again = select_frames(src._source_times, 15, source_fps=info.source_fps, constant_rate=False)
    assert again == src.selection


@needs_videos
def test_bigbuckbunny_fps_start_end_and_seek_match_a_full_decode():
    src = open_source(VIDEOS / "bigbuckbunny.mp4")
    assert (src.info.width, src.info.height, src.info.frame_count, len(src)) == (1280, 720, 132, 132)
    assert len(open_source(VIDEOS / "bigbuckbunny.mp4", fps=10)) == 66  # stride 2
    # start >= 2 s seeks in ffmpeg first; the cut itself is made on timestamps
    cut = open_source(VIDEOS / "bigbuckbunny.mp4", fps=25, start=2.4, end=4.0, max_frames=30)
    frames = list(cut)
    assert len(frames) == len(cut) == 30
    assert frames[0].source_time == pytest.approx(2.4) and frames[0].time == pytest.approx(2.4)
    assert frames[-1].source_time == pytest.approx(2.4 + 29 * 0.04)
    assert len(open_source(VIDEOS / "bigbuckbunny.mp4", fps=25, start=2.4, end=4.0)) == 40  # end exclusive
    full = list(open_source(VIDEOS / "bigbuckbunny.mp4", fps=25, max_frames=61))
    assert full[60].source_time == pytest.approx(2.4)
    assert np.array_equal(frames[0].image, full[60].image)


@needs_videos
def test_frames_can_be_downscaled_for_a_cheap_pass():
    src = open_source(VIDEOS / "bigbuckbunny.mp4", max_frames=2)
    small = list(src.frames(max_side=320))
    assert [f.image.shape for f in small] == [(180, 320, 3)] * 2
    assert src.scaled_size(320) == (320, 180) and src.scaled_size(4000) is None


@needs_videos
def test_truncated_mp4_decodes_its_first_part_with_a_warning(tmp_path):
    data = (VIDEOS / "box.mp4").read_bytes()
    bad = tmp_path / "half.mp4"
    bad.write_bytes(data[: len(data) // 2])
    src = open_source(bad)
    frames = list(src)
    assert 0 < len(frames) < 228 and len(frames) == len(src)
    assert any("truncated" in w or "damaged" in w for w in src.warnings)


# ----------------------------------------------------------------------------- synthetic videos


def test_iterating_twice_gives_the_same_frames(tmp_path):
    path = write_video(tmp_path / "ramp.mp4", ramp_frames(12), fps=10)
    src = open_source(path, fps=10)
    a = [f.image for f in src]
    b = [f.image for f in src]
    assert len(a) == len(b) == 12 and all(np.array_equal(x, y) for x, y in zip(a, b))
    means = [float(x.mean()) for x in a]
    assert means == sorted(means)  # frames come in order


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to see child processes")
def test_decoding_is_lazy_and_closing_kills_ffmpeg(tmp_path):
    path = write_video(tmp_path / "long.mp4", ramp_frames(150, 96, 64), fps=30)
    with open_source(path, fps=30) as src:
        it = iter(src)
        first = next(it)
        assert isinstance(first, Frame) and first.index == 0
        assert ffmpeg_children(), "the decoder should still be running after the first frame"
        it.close()
        assert not ffmpeg_children()
        it2 = iter(src)
        next(it2)
        assert ffmpeg_children()
    assert not ffmpeg_children()  # leaving the context closes live iterations


def test_rotation_metadata_is_honoured(tmp_path):
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:16, :16] = (255, 0, 0)  # red top-left corner
    plain = write_video(tmp_path / "plain.mp4", [frame] * 3, fps=10)
    rotated = tmp_path / "rot.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-display_rotation", "90", "-i", str(plain),
                    "-c", "copy", "-y", str(rotated)], check=True)
    src = open_source(rotated, fps=10)
    assert (src.info.width, src.info.height) == (48, 64) and abs(src.info.rotation) == 90
    img = next(iter(src)).image
    assert img.shape == (64, 48, 3)
    ref = next(iter(open_source(plain, fps=10))).image
    assert np.array_equal(img, np.rot90(ref, 1))  # 90 degrees counter-clockwise, as players show it


def test_rgba_video_keeps_its_alpha(tmp_path):
    frames = []
    for i in range(4):
        f = np.zeros((40, 50, 4), np.uint8)
        f[..., :3] = (0, 200, 0)
        f[10:30, 10 + i : 30 + i] = (200, 30, 30, 255)
        frames.append(f)
    path = write_video(tmp_path / "alpha.mov", frames, fps=10, codec=("-c:v", "png"))
    src = open_source(path, fps=10)
    assert src.info.has_alpha
    out = [f.image for f in src]
    assert all(o.shape == (40, 50, 4) for o in out)
    assert all(np.array_equal(o, f) for o, f in zip(out, frames))  # png in mov is lossless


def test_opaque_gif_is_rgb_and_odd_grayscale_and_4k_frames_decode(tmp_path):
    gif = write_video(tmp_path / "a.gif", ramp_frames(3), fps=5, codec=())
    src = open_source(gif, fps=5)
    assert not src.info.has_alpha and next(iter(src)).image.shape == (48, 64, 3)

    odd = np.random.default_rng(0).integers(0, 255, (479, 641, 3), dtype=np.uint8)
    path = write_video(tmp_path / "odd.mkv", [odd] * 2, codec=("-c:v", "ffv1"))
    img = next(iter(open_source(path))).image
    assert np.array_equal(img, odd)

    gray = write_video(tmp_path / "gray.mkv", ramp_frames(2), codec=("-c:v", "ffv1", "-pix_fmt", "gray"))
    img = next(iter(open_source(gray))).image
    assert img.shape == (48, 64, 3) and np.all(img[..., 0] == img[..., 1])

    big = write_video(tmp_path / "4k.mp4", [np.full((2160, 3840, 3), 90, np.uint8)], codec=X264)
    src = open_source(big)
    assert (src.info.width, src.info.height, len(src)) == (3840, 2160, 1)  # a one-frame video is a sequence
    assert next(src.frames(max_side=512)).image.shape == (288, 512, 3)


# ----------------------------------------------------------------------------- images


def test_image_folder_natural_order_fps_and_cut(tmp_path):
    for i in (1, 2, 10, 3):
        Image.fromarray(np.full((8, 12, 3), i * 20, np.uint8)).save(tmp_path / f"img{i}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    src = open_source(tmp_path, fps=4)
    assert (src.info.kind, src.info.width, src.info.height, src.output_fps, len(src)) == ("images", 12, 8, 4, 4)
    frames = list(src)
    assert [int(f.image[0, 0, 0]) for f in frames] == [20, 40, 60, 200]
    assert [f.time for f in frames] == [0, 0.25, 0.5, 0.75]
    cut = open_source(tmp_path, fps=4, start=0.25, end=0.75)
    assert [int(f.image[0, 0, 0]) for f in cut] == [40, 60]


def test_image_formats_become_8bit_rgb_or_rgba(tmp_path):
    g16 = (np.arange(12 * 8, dtype=np.uint16).reshape(8, 12) * 600)
    cv2.imwrite(str(tmp_path / "g16.png"), g16)
    img = next(iter(open_source(tmp_path / "g16.png"))).image
    assert img.shape == (8, 12, 3) and img.dtype == np.uint8
    assert int(img[-1, -1, 0]) == round(int(g16[-1, -1]) / 257)

    pal = Image.new("P", (6, 4))
    pal.putpalette([255, 0, 0, 0, 0, 255])
    pal.paste(1, (0, 0, 3, 4))
    pal.save(tmp_path / "pal.png", transparency=0)
    src = open_source(tmp_path / "pal.png")
    assert src.info.has_alpha and src.info.kind == "image" and len(src) == 1
    img = next(iter(src)).image
    assert img.shape == (4, 6, 4) and img[0, 0, 3] == 255 and img[0, 5, 3] == 0

    gray = tmp_path / "gray.jpg"
    Image.fromarray(np.full((5, 7), 128, np.uint8)).save(gray)
    assert next(iter(open_source(gray))).image.shape == (5, 7, 3)

    # EXIF orientation 6: stored landscape, shown portrait
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(tmp_path / "rot.jpg", exif=exif)
    src = open_source(tmp_path / "rot.jpg")
    assert (src.info.width, src.info.height) == (10, 20) and next(iter(src)).image.shape == (20, 10, 3)


def test_folder_with_mixed_rgb_and_rgba_follows_the_first_image(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 0  # fully transparent: composited on white when the clip is RGB
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "0.png")
    Image.fromarray(rgba).save(tmp_path / "1.png")
    frames = list(open_source(tmp_path))
    assert frames[1].image.shape == (4, 4, 3) and np.all(frames[1].image == 255)


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_are_one_line_user_errors(tmp_path):
    cases = {}
    cases["missing"] = tmp_path / "nope.mp4"
    (tmp_path / "text.mp4").write_text("not a video at all\n")
    cases["text"] = tmp_path / "text.mp4"
    (tmp_path / "empty.mov").write_bytes(b"")
    cases["empty"] = tmp_path / "empty.mov"
    audio = tmp_path / "audio.m4a"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=0.5", "-y", str(audio)], check=True)
    cases["audio"] = audio
    (tmp_path / "emptydir").mkdir()
    cases["empty folder"] = tmp_path / "emptydir"
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    cases["corrupt png"] = tmp_path / "bad.png"
    expected = {"missing": "not found", "text": "cannot read", "empty": "cannot read", "audio": "no video stream",
                "empty folder": "no images", "corrupt png": "cannot read image"}
    for name, path in cases.items():
        with pytest.raises(UserError) as exc:
            open_source(path)
        msg = str(exc.value)
        assert "\n" not in msg and expected[name] in msg, (name, msg)


@needs_videos
def test_a_video_with_no_decodable_frame(tmp_path):
    stub = tmp_path / "stub.mp4"
    stub.write_bytes((VIDEOS / "box.mp4").read_bytes()[:20000])  # the index, hardly any data
    with pytest.raises(UserError, match="no decodable video frame"):
        open_source(stub)


def test_odd_file_names_are_not_read_as_protocols(tmp_path, monkeypatch):
    write_video(tmp_path / "http:odd name.mp4", ramp_frames(3), fps=10)
    monkeypatch.chdir(tmp_path)
    assert len(open_source("http:odd name.mp4", fps=10)) == 3  # relative: ffmpeg alone would see a URL


def test_mixed_sizes_in_a_folder(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a1.png")
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / "a2.png")
    with pytest.raises(UserError, match="differ in size"):
        open_source(tmp_path)


def test_bad_options(tmp_path):
    path = write_video(tmp_path / "v.mp4", ramp_frames(10), fps=10)
    for kwargs, pattern in [
        ({"fps": 0}, "--fps"),
        ({"fps": -3}, "--fps"),
        ({"start": 2, "end": 1}, "before --end"),
        ({"start": 1, "end": 1}, "before --end"),
        ({"start": -1}, "--start"),
        ({"start": 5}, "beyond the end"),
        ({"max_frames": 0}, "--max-frames"),
    ]:
        with pytest.raises(UserError, match=pattern):
            open_source(path, **kwargs)
    assert math.isclose(open_source(path, fps=10, start=0.5).times[0], 0.5)
