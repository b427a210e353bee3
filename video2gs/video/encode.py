"""mp4 writing that browsers play: H.264 (libx264), yuv420p, even dimensions, moov atom first.

:class:`Mp4Writer` streams frames to ffmpeg (imageio-ffmpeg's bundled binary) into a temporary
file next to the destination and renames it into place only when the video is complete; on any
failure the temporary file is deleted and an existing video of that name is left untouched.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from video2gs.errors import UserError
from video2gs.fileio import atomic_path

DEFAULT_CRF = 18  # visually near-lossless for renders; 23 is x264's default
DEFAULT_PRESET = "medium"


def to_uint8_frame(frame) -> np.ndarray:
    """A frame [H,W,3] (uint8, or float in [0,1]; numpy or torch) -> contiguous uint8 [H,W,3]."""
    if isinstance(frame, torch.Tensor):
        frame = frame.detach().cpu().numpy()
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frames must be [H,W,3], got {frame.shape}")
    if frame.dtype != np.uint8:
        frame = np.clip(np.rint(frame.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(frame)


def pad_even(frame: np.ndarray) -> np.ndarray:
    """yuv420p needs even width and height: repeat the last row/column where one is odd."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class Mp4Writer:
    """Context manager writing an H.264 mp4 atomically.

    >>> with Mp4Writer("out/orbit.mp4", fps=30) as video:
    ...     for frame in frames:          # [H,W,3] uint8 or float in [0,1]
    ...         video.write(frame)

    All frames must share one size (odd sizes are padded by one pixel). ``crf``: x264 quality
    (lower is better, 18 default); ``preset``: x264 speed/size trade-off.
    """

    def __init__(self, path: str | Path, fps: float, *, crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET):
        if not fps > 0:
            raise UserError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.fps = float(fps)
        self.crf = int(crf)
        self.preset = preset
        self.frames_written = 0
        self._size: tuple[int, int] | None = None  # (H, W) of incoming frames
        self._gen = None
        self._stack: contextlib.ExitStack | None = None
        self._tmp: Path | None = None

    def __enter__(self) -> "Mp4Writer":
        self._stack = contextlib.ExitStack()
        try:
            self._tmp = self._stack.enter_context(atomic_path(self.path))
        except BaseException:
            self._stack.close()
            raise
        return self

    def _start(self, height: int, width: int) -> None:
        import imageio_ffmpeg

        self._gen = imageio_ffmpeg.write_frames(
            str(self._tmp),
            (width + width % 2, height + height % 2),
            fps=self.fps,
            codec="libx264",
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            quality=None,  # quality flags are passed explicitly below
            macro_block_size=1,  # sizes are made even here; imageio would rescale otherwise
            ffmpeg_log_level="error",
            output_params=["-crf", str(self.crf), "-preset", self.preset, "-movflags", "+faststart"],
        )
        self._gen.send(None)

    def write(self, frame) -> None:
        """Append one frame [H,W,3] (uint8, or float in [0,1])."""
        frame = to_uint8_frame(frame)
        size = frame.shape[:2]
        if self._gen is None:
            self._size = size
            self._start(*size)
        elif size != self._size:
            raise ValueError(f"frame size {size} differs from the first frame's {self._size}")
        try:
            self._gen.send(pad_even(frame))
        except OSError as exc:
            raise UserError(f"ffmpeg failed while writing {self.path} (is the disk full?)") from exc
        self.frames_written += 1

    def _finish(self) -> None:
        if self._gen is not None:
            gen, self._gen = self._gen, None
            gen.close()  # ffmpeg finishes the file and exits before this returns

    def __exit__(self, exc_type, exc, tb) -> bool:
        stack, self._stack = self._stack, None
        try:
            self._finish()
            if exc_type is None:
                if self.frames_written == 0:
                    raise RuntimeError(f"no frames were written to {self.path}")
                if not self._tmp.is_file() or self._tmp.stat().st_size == 0:
                    raise UserError(f"ffmpeg produced no output for {self.path}")
        except BaseException as err:
            if exc_type is None:
                stack.__exit__(type(err), err, err.__traceback__)  # deletes the temporary file
                raise
            # Already failing: the original error is the one to report.
        # Success renames the temporary file into place; failure deletes it.
        return bool(stack.__exit__(exc_type, exc, tb))
