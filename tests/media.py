"""Small media the suite makes itself, so tests that need a video run everywhere (no ../shared)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_video(path: Path, frames: list[np.ndarray], fps: float = 10) -> Path:
    """Encode RGB uint8 frames [H,W,3] as h264 (yuv444 for odd sizes)."""
    h, w = frames[0].shape[:2]
    proc = subprocess.Popen(
        [ffmpeg(), "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps),
         "-i", "-", "-pix_fmt", "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p", "-c:v", "libx264", str(path)],
        stdin=subprocess.PIPE,
    )
    for f in frames:
        proc.stdin.write(np.ascontiguousarray(f).tobytes())
    proc.stdin.close()
    assert proc.wait() == 0
    return Path(path)


def object_frames(n: int, w: int = 96, h: int = 64, gray: bool = False) -> list[np.ndarray]:
    """A blue box sliding right over a plain light backdrop (border keying finds it)."""
    frames = []
    for i in range(n):
        f = np.full((h, w, 3), 240, np.uint8)
        x = w // 4 + i * max(1, w // 64)
        f[h // 3 : 2 * h // 3, x : x + w // 4] = (30, 60, 200)
        frames.append(np.repeat(f.mean(-1, keepdims=True).astype(np.uint8), 3, -1) if gray else f)
    return frames


def object_video(path: Path, n: int = 6, w: int = 96, h: int = 64, fps: float = 10) -> Path:
    return make_video(path, object_frames(n, w, h), fps)
