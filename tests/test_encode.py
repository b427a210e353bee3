"""Mp4Writer: browser-playable H.264, exact frame count and size, atomic replacement."""

from __future__ import annotations

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from video2gs.errors import UserError
from video2gs.video.encode import Mp4Writer, pad_even, to_uint8_frame


def decode(path) -> tuple[dict, np.ndarray]:
    """(metadata, frames [T,H,W,3] uint8) of a video."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    frames = np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])
    return meta, frames


def gradient(h: int, w: int, t: int) -> np.ndarray:
    """A smooth float frame [H,W,3] in [0,1] that changes with t."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x / w, y / h, np.full((h, w), (t % 10) / 10)], axis=-1)


def test_writes_h264_yuv420p_with_exact_frames(tmp_path):
    path = tmp_path / "v.mp4"
    frames = [gradient(48, 64, t) for t in range(7)]
    with Mp4Writer(path, fps=15) as video:
        for f in frames:
            video.write(f)
    assert video.frames_written == 7
    meta, decoded = decode(path)
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert meta["fps"] == 15 and meta["size"] == (64, 48)
    assert decoded.shape == (7, 48, 64, 3)
    err = np.abs(decoded.astype(float) - np.stack(frames) * 255).mean()
    assert err < 3.0  # near-lossless at crf 18 for a smooth image
    # faststart: the moov atom precedes the media data, so browsers can start playing at once
    head = path.read_bytes()
    assert head.index(b"moov") < head.index(b"mdat")
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


def test_odd_sizes_are_padded_to_even(tmp_path):
    with Mp4Writer(tmp_path / "odd.mp4", fps=10) as video:
        for t in range(3):
            video.write((gradient(33, 65, t) * 255).astype(np.uint8))
    meta, decoded = decode(tmp_path / "odd.mp4")
    assert meta["size"] == (66, 34) and len(decoded) == 3
    frame = np.zeros((3, 5, 3), np.uint8)
    frame[:, -1] = 200
    padded = pad_even(frame)
    assert padded.shape == (4, 6, 3) and (padded[:, -1] == padded[:, -2]).all() and (padded[-1] == padded[-2]).all()


def test_frame_conversion():
    t = torch.tensor([[[0.0, 0.5, 1.2]]])
    np.testing.assert_array_equal(to_uint8_frame(t), [[[0, 128, 255]]])
    with pytest.raises(ValueError):
        to_uint8_frame(np.zeros((4, 4)))


def test_failure_keeps_existing_video_and_leaves_no_temp(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"the user's video")
    with pytest.raises(KeyError):
        with Mp4Writer(path, fps=10) as video:
            video.write(gradient(16, 16, 0))
            raise KeyError("renderer failed")
    assert path.read_bytes() == b"the user's video"
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]
    with pytest.raises(ValueError, match="differs"):
        with Mp4Writer(path, fps=10) as video:
            video.write(gradient(16, 16, 0))
            video.write(gradient(18, 16, 0))
    with pytest.raises(RuntimeError, match="no frames"):
        with Mp4Writer(path, fps=10):
            pass
    assert path.read_bytes() == b"the user's video"
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


def test_unwritable_destination(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        with Mp4Writer(tmp_path / "file" / "v.mp4", fps=10):
            pass
    with pytest.raises(UserError, match="fps"):
        Mp4Writer(tmp_path / "v.mp4", fps=0)
