"""Streaming input: videos (anything ffmpeg decodes), image folders and single images.

``open_source(path, fps=15, start=None, end=None, max_frames=None)`` returns a :class:`FrameSource`.
Iterating it yields :class:`Frame` objects one at a time; the whole clip is never held in memory,
and the source can be iterated any number of times (each iteration re-opens the decoder), which
the pipeline needs: a first pass finds the object's boxes, a second pass crops.

Decoding (videos)
-----------------
The ffmpeg binary shipped by ``imageio-ffmpeg`` is driven directly (``imageio_ffmpeg.read_frames``
does not report per-frame timestamps). Opening a video runs two cheap ffmpeg commands:

1. *probe*: decode one frame with ``-vf showinfo``. stderr gives the header (codec, nominal fps,
   duration, rotation) and the first frame's pts, pixel format and size *after* rotation (ffmpeg
   autorotates by the display matrix, so the reported width/height are the rotated ones).
2. *scan*: decode the clip once to ``-f null`` with ``-fps_mode passthrough -vf showinfo`` (no
   colour conversion, no pixels copied out) and record every decoded frame's pts. Headers lie
   (box.mp4 declares 456 frames and decodes 455; tree.avi declares 444 frames at 15 fps and holds
   68 irregular ones), so frames are counted and timed by decoding. This also rejects corrupt files
   before any expensive work and makes the output frame count known up front.

Each iteration then runs ``ffmpeg ... -fps_mode passthrough -f rawvideo -pix_fmt rgb24|rgba pipe:``
and reads fixed-size frames from the pipe. Passthrough means ffmpeg neither duplicates nor drops
frames, so the k-th frame on the pipe is the k-th scanned frame. The subprocess is killed when the
iterator is closed, garbage-collected, or the source is closed (``with open_source(...) as src``).
Times are seconds from the first decoded frame of the file (``-copyts``: with ``--start`` ffmpeg
seeks to the key frame at or before the start and the exact cut is made on timestamps here).

Frame-rate resampling (``--fps`` is a target, default 15 as in L4GM)
--------------------------------------------------------------------
* Constant-rate input (at least 90 % of frame intervals within 15 % of the median interval): keep
  every ``stride``-th decoded frame, ``stride = max(1, floor(source_fps / fps))`` -- L4GM's rule
  ``int(fps) // 15`` (30 -> 2, 25 -> 1, 60 -> 4), except that NTSC rates count as their nominal
  rate (29.97 -> 2, where L4GM's ``int()`` gives 1). Output fps = ``source_fps / stride``; no frame
  is ever duplicated or unevenly dropped. The count is ``ceil(n / stride)`` (:func:`resampled_count`):
  unlike L4GM's ``n // stride``, the final partial stride keeps its first frame.
* Variable-rate input: output times lie on a uniform grid at ``min(fps, measured mean fps)`` from
  the first frame; each grid time takes the latest decoded frame at or before it, and a grid time
  whose frame was already emitted is skipped (never the same source frame twice).
* Image folders: every image is a frame, at ``fps`` frames per second.
``--start``/``--end`` (seconds, end exclusive) cut by timestamps before resampling and
``--max-frames`` caps the output. :func:`select_frames` computes the selection exactly from the
decoded timestamps.

Pixels
------
Frames are uint8 ``[H, W, 3]`` RGB, or ``[H, W, 4]`` RGBA when the source carries a real alpha
channel: a pixel format with alpha (yuva*, rgba, bgra, gbrap, GIF's bgra, PNG RGBA/LA, palettes
with transparency) **and** a first frame that is not fully opaque (GIFs always decode to bgra; an
opaque one is treated as RGB). When the source is RGB, an image that does carry alpha is
composited on white. Images: EXIF orientation is applied, grayscale becomes RGB, 16-bit becomes
8-bit, palettes with transparency become RGBA. Colour conversion of YUV video uses ffmpeg's
defaults.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import subprocess
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from video2gs.errors import UserError
from video2gs.images import on_white

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
DEFAULT_FPS = 15.0

# Constant-rate test: this share of frame intervals must lie within this relative distance of the
# median interval. Tolerates rounded timestamps and the odd missing frame (box.mp4), not real VFR.
_CFR_SHARE = 0.9
_CFR_TOL = 0.15
# NTSC rates are 1000/1001 of their nominal rate; treat them as nominal when taking the stride.
_STRIDE_SLACK = 1.002
_EPS = 1e-6
# Seek only when it saves real work; land a little early and cut on timestamps.
_SEEK_MIN_START = 2.0
_SEEK_MARGIN = 1.0

# ffmpeg error lines that mean damaged data (others, e.g. muxer timestamp notes, are harmless).
_DAMAGE_WORDS = (
    "decoding error", "invalid data", "invalid nal", "missing picture", "corrupt", "truncat", "error while decoding", "concealing",
)

Kind = Literal["video", "images", "image"]


# ----------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class Frame:
    """One output frame.

    ``image``: uint8 ``[H, W, 3]`` (RGB) or ``[H, W, 4]`` (RGBA, when ``info.has_alpha``).
    ``index``: 0..N-1 in the output. ``time``: seconds on the output timeline (uniform at the output
    fps, except where a variable-rate source skipped a grid time). ``source_index``: index among
    the decoded frames of the (start-cut) clip. ``source_time``: the frame's own timestamp.
    """

    index: int
    time: float
    image: np.ndarray
    source_index: int
    source_time: float


@dataclass(frozen=True)
class SourceInfo:
    """What was learned about the input when it was opened.

    ``width``/``height``: of the frames yielded (after rotation). ``source_fps``: nominal fps of a
    constant-rate video, measured mean fps of a variable-rate one, the ``fps`` option for images.
    ``frame_count``: decoded frames in the whole file (None when the scan stopped at ``end`` or
    started after a seek). ``duration``: seconds (container header, else measured).
    """

    path: Path
    kind: Kind
    width: int
    height: int
    source_fps: float
    duration: float | None
    has_alpha: bool
    frame_count: int | None
    variable_rate: bool = False
    rotation: float = 0.0
    codec: str | None = None
    pix_fmt: str | None = None


@dataclass(frozen=True)
class Selection:
    """Which decoded frames become output frames.

    ``source_indices``/``times``: one entry per output frame (times on the output timeline).
    ``stride``: the constant-rate stride, None for timestamp-based (variable-rate) selection.
    """

    source_indices: tuple[int, ...]
    times: tuple[float, ...]
    output_fps: float
    stride: int | None

    def __len__(self) -> int:
        return len(self.source_indices)


# ----------------------------------------------------------------------------- resampling rules


def check_fps(fps: float) -> float:
    """Validate the ``--fps`` option."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise UserError(f"--fps must be a number, got {fps!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise UserError(f"--fps must be a positive number of frames per second, got {fps}")
    return value


def stride_for(source_fps: float, target_fps: float, cap: bool = False) -> int:
    """Constant-rate stride: ``max(1, floor(source_fps / target_fps))``, NTSC rates as nominal.

    ``cap``: ``ceil`` instead, so the output rate never exceeds ``target_fps`` (26.8 -> 13.4 at 15).
    """
    ratio = source_fps / check_fps(target_fps)
    if cap:
        return max(1, int(math.ceil(ratio / _STRIDE_SLACK - _EPS)))
    return max(1, int(math.floor(ratio * _STRIDE_SLACK + _EPS)))


def resampled_count(n_frames: int, source_fps: float, target_fps: float) -> int:
    """Output frames of a constant-rate clip of ``n_frames`` decoded frames: ``ceil(n / stride)``."""
    return -(-max(0, n_frames) // stride_for(source_fps, target_fps))


def monotonic_times(times: Sequence[float]) -> np.ndarray:
    """Running maximum of ``times`` [N]: a timestamp that goes back counts as its predecessor's."""
    return np.maximum.accumulate(np.asarray(times, dtype=np.float64)) if len(times) else np.zeros(0)


def is_constant_rate(times: Sequence[float]) -> bool:
    """True if nearly all intervals of ``times`` [N] are close to the median interval."""
    if len(times) < 3:
        return True
    d = np.diff(monotonic_times(times))
    med = float(np.median(d))
    if med <= 0:
        return False
    return float(np.mean(np.abs(d - med) <= _CFR_TOL * med)) >= _CFR_SHARE


def measured_fps(times: Sequence[float]) -> float | None:
    """Mean frame rate of ``times`` [N], (N-1)/span; None with fewer than 2 distinct times."""
    t = monotonic_times(times)
    if len(t) < 2 or t[-1] - t[0] <= 0:
        return None
    return (len(t) - 1) / float(t[-1] - t[0])


def select_frames(
    times: Sequence[float],
    target_fps: float,
    *,
    source_fps: float,
    constant_rate: bool,
    start: float | None = None,
    end: float | None = None,
    max_frames: int | None = None,
    cap: bool = False,
) -> Selection:
    """Pick the output frames from the decoded frames' timestamps (see the module docstring).

    ``times`` [N]: seconds of every decoded frame, in decode order. ``source_fps``: the nominal
    rate (constant-rate) or the measured mean rate (variable-rate). Returns indices into ``times``.
    """
    target = check_fps(target_fps)
    t = monotonic_times(times)
    lo = 0.0 if start is None else float(start)
    hi = math.inf if end is None else float(end)
    in_range = np.nonzero((t >= lo - _EPS) & (t < hi - _EPS))[0]
    if len(in_range) == 0:
        return Selection((), (), target, None)
    first, last = int(in_range[0]), int(in_range[-1])
    if constant_rate:
        stride = stride_for(source_fps, target, cap)
        out_fps = source_fps / stride
        idx = list(range(first, last + 1, stride))
        sel_times = [float(t[first]) + k / out_fps for k in range(len(idx))]
    else:
        stride = None
        out_fps = min(target, source_fps) if source_fps > 0 else target
        t_in = t[first : last + 1]
        idx, sel_times = [], []
        emitted = -1
        slot = 0
        while True:
            grid = float(t_in[0]) + slot / out_fps
            if grid > t_in[-1] + _EPS:
                break
            # latest frame at or before the grid time
            j = int(np.searchsorted(t_in, grid + _EPS, side="right")) - 1
            if j > emitted:
                idx.append(first + j)
                sel_times.append(grid)
                emitted = j
            slot += 1
    if max_frames is not None:
        idx, sel_times = idx[:max_frames], sel_times[:max_frames]
    return Selection(tuple(idx), tuple(sel_times), float(out_fps), stride)


# ----------------------------------------------------------------------------- ffmpeg helpers


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The ffmpeg binary (imageio-ffmpeg's, or ``IMAGEIO_FFMPEG_EXE``)."""
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - a hard dependency
        raise UserError("imageio-ffmpeg is not installed (pip install imageio-ffmpeg)") from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise UserError(f"no ffmpeg binary found: {exc}") from None


@lru_cache(maxsize=1)
def _fps_mode_args() -> tuple[str, ...]:
    """``-fps_mode passthrough`` (ffmpeg >= 5.1), else the older ``-vsync passthrough``."""
    try:
        out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ("-fps_mode", "passthrough")
    m = re.search(r"ffmpeg version n?(\d+)\.(\d+)", out)
    if m and (int(m.group(1)), int(m.group(2))) < (5, 1):
        return ("-vsync", "passthrough")
    return ("-fps_mode", "passthrough")


def _has_alpha_format(pix_fmt: str) -> bool:
    pix_fmt = pix_fmt.lower()
    return pix_fmt.startswith(("yuva", "gbrap", "rgba", "bgra", "argb", "abgr", "ya")) or pix_fmt in (
        "pal8",
        "vuya",
        "ayuv",
        "ayuv64le",
        "ayuv64be",
    )


_LEVEL_RE = re.compile(r"\[(error|fatal|panic)\] (.*)$")
_SHOWINFO_RE = re.compile(r"\bn:\s*(\d+)\s+pts:\s*(\S+)\s+pts_time:(\S+)")
_FMT_RE = re.compile(r"\bfmt:(\S+)")
_SIZE_RE = re.compile(r"\bs:(\d+)x(\d+)")


def _error_lines(lines: Sequence[str]) -> list[str]:
    out = []
    for line in lines:
        m = _LEVEL_RE.search(line)
        if m:
            out.append(m.group(2).strip())
    return out


def _ffmpeg_reason(lines: Sequence[str]) -> str:
    """The most telling ffmpeg error line, for one-line messages."""
    errors = _error_lines(lines)
    for needle in ("Invalid data found", "moov atom not found", "No such file", "Permission denied", "End of file"):
        for e in errors:
            if needle in e:
                return needle if needle != "Invalid data found" else "invalid data found when processing input"
    return errors[-1] if errors else "no details"


def _parse_duration(text: str) -> float | None:
    m = re.search(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)", text)
    if not m:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


@dataclass
class _Probe:
    codec: str | None
    nominal_fps: float | None
    duration: float | None
    rotation: float
    pix_fmt: str
    width: int
    height: int
    first_pts: float
    first_rgba: np.ndarray  # [H, W, 4]


class _Video:
    """The ffmpeg side of a video source: probe, timestamp scan, frame reader."""

    def __init__(self, path: Path):
        self.path = path
        self.probe = self._probe()
        self.seek: float | None = None

    # -- probe --------------------------------------------------------------------------
    def _base(self, loglevel: str, seek: float | None = None) -> list[str]:
        args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", loglevel]
        if seek is not None:
            args += ["-ss", f"{seek:.6f}", "-noaccurate_seek"]
        # "file:" so that names such as "x:y.mp4" or "-a.mp4" are never read as protocols or options
        return args + ["-copyts", "-i", f"file:{self.path.resolve()}", "-map", "0:V:0", "-an", "-sn", "-dn", *_fps_mode_args()]

    def _probe(self) -> _Probe:
        cmd = self._base("level+info") + ["-frames:v", "1", "-vf", "showinfo", "-f", "rawvideo", "-pix_fmt", "rgba", "pipe:1"]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise UserError(f"ffmpeg took too long to read the start of {self.path}") from None
        except OSError as exc:
            raise UserError(f"cannot run ffmpeg ({ffmpeg_exe()}): {exc.strerror or exc}") from None
        text = proc.stderr.decode("utf-8", "replace")
        lines = text.splitlines()
        info = next((ln for ln in lines if "Parsed_showinfo" in ln and _SHOWINFO_RE.search(ln)), None)
        if info is None:
            joined = "\n".join(lines)
            if "matches no streams" in joined or (" Video: " not in joined and "Input #0" in joined):
                raise UserError(f"{self.path} has no video stream")
            if "Input #0" not in joined:
                raise UserError(f"cannot read {self.path} as a video or image ({_ffmpeg_reason(lines)})")
            raise UserError(f"no decodable video frame in {self.path} ({_ffmpeg_reason(lines)})")
        m_fmt, m_size = _FMT_RE.search(info), _SIZE_RE.search(info)
        if not (m_fmt and m_size):  # pragma: no cover - showinfo always prints both
            raise UserError(f"cannot read frame format of {self.path}")
        width, height = int(m_size.group(1)), int(m_size.group(2))
        first_pts = _parse_pts(_SHOWINFO_RE.search(info).group(3)) or 0.0
        if len(proc.stdout) < width * height * 4:
            raise UserError(f"no decodable video frame in {self.path} ({_ffmpeg_reason(lines)})")
        rgba = np.frombuffer(proc.stdout[: width * height * 4], np.uint8).reshape(height, width, 4)
        stream = next((ln for ln in lines if re.search(r"Stream #0:\d+.*: Video: ", ln) and "attached pic" not in ln), "")
        m_codec = re.search(r"Video: (\w+)", stream)
        m_fps = re.search(r"([\d.]+)(k?) fps", stream) or re.search(r"([\d.]+)(k?) tbr", stream)
        fps = float(m_fps.group(1)) * (1000 if m_fps.group(2) else 1) if m_fps else None
        m_rot = re.search(r"rotation of (-?[\d.]+) degrees", text)
        return _Probe(
            codec=m_codec.group(1) if m_codec else None,
            nominal_fps=fps if fps and fps > 0 else None,
            duration=_parse_duration(text),
            rotation=float(m_rot.group(1)) if m_rot else 0.0,
            pix_fmt=m_fmt.group(1),
            width=width,
            height=height,
            first_pts=first_pts,
            first_rgba=rgba,
        )

    # -- timestamp scan -----------------------------------------------------------------
    def scan(self, start: float | None, end: float | None) -> tuple[list[float], bool, list[str]]:
        """Decode the clip once without pixels; returns (times [N] in s from the first frame,
        reached_eof, ffmpeg error lines). With a large ``start`` the decoder seeks first."""
        seek = None
        if start is not None and start >= _SEEK_MIN_START:
            seek = max(0.0, start - _SEEK_MARGIN)  # ffmpeg's -ss counts from the file's start time
        times, eof, errors = self._scan(seek, end)
        if seek is not None and (not times or times[0] > start + _EPS):
            # The demuxer landed after the start (a bad index): read from the beginning instead.
            seek = None
            times, eof, errors = self._scan(None, end)
        self.seek = seek
        return times, eof, errors

    def _scan(self, seek: float | None, end: float | None) -> tuple[list[float], bool, list[str]]:
        cmd = self._base("level+info", seek) + ["-vf", "showinfo", "-f", "null", "-"]
        period = 1.0 / (self.probe.nominal_fps or 25.0)
        times: list[float] = []
        errors: list[str] = []
        stopped = False
        with _popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
            assert proc.stderr is not None
            for raw in proc.stderr:
                line = raw.decode("utf-8", "replace")
                m = _SHOWINFO_RE.search(line) if "pts_time:" in line else None
                if m is None:
                    lm = _LEVEL_RE.search(line)
                    if lm and len(errors) < 50:
                        errors.append(lm.group(2).strip())
                    continue
                pts = _parse_pts(m.group(3))
                t = (pts - self.probe.first_pts) if pts is not None else ((times[-1] + period) if times else 0.0)
                times.append(t)
                if end is not None and t >= end + _SEEK_MARGIN:
                    stopped = True
                    break
        return times, not stopped, errors

    # -- frames -------------------------------------------------------------------------
    def read(self, wanted: Sequence[int], rgba: bool, size: tuple[int, int] | None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (scan index, image [H, W, C]) for the scan indices in ``wanted`` (ascending)."""
        if not wanted:
            return
        width, height = size or (self.probe.width, self.probe.height)
        channels = 4 if rgba else 3
        vf = ["-vf", f"scale={width}:{height}:flags=area"] if size else []
        cmd = self._base("error", self.seek) + [*vf, "-f", "rawvideo", "-pix_fmt", "rgba" if rgba else "rgb24", "pipe:1"]
        frame_bytes = width * height * channels
        wanted_set = set(wanted)
        last = max(wanted)
        scratch = np.empty(frame_bytes, np.uint8)
        with tempfile.TemporaryFile() as err, _popen(cmd, stdout=subprocess.PIPE, stderr=err, bufsize=1 << 20) as proc:
            assert proc.stdout is not None
            i = 0
            while i <= last:
                keep = i in wanted_set
                out = np.empty((height, width, channels), np.uint8) if keep else scratch
                if not _read_exact(proc.stdout, out):
                    proc.wait()
                    err.seek(0)
                    lines = err.read().decode("utf-8", "replace").splitlines()
                    reason = lines[-1].strip() if lines else "it ended early"
                    raise UserError(
                        f"{self.path} yielded fewer frames than when it was opened ({i}, expected {last + 1}): "
                        f"was it changed or truncated meanwhile? ({reason})"
                    )
                if keep:
                    yield i, out
                i += 1


def _parse_pts(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None  # NOPTS
    return v if math.isfinite(v) else None


def _read_exact(stream, out: np.ndarray) -> bool:
    view = memoryview(out.reshape(-1))
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:])
        if not n:
            return False
        got += n
    return True


_LIVE: weakref.WeakSet = weakref.WeakSet()


@contextlib.contextmanager
def _popen(cmd: list[str], **kw) -> Iterator[subprocess.Popen]:
    """A subprocess that is killed (not waited for) when the block exits early."""
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, **kw)
    except OSError as exc:
        raise UserError(f"cannot run ffmpeg ({cmd[0]}): {exc.strerror or exc}") from None
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        for s in (proc.stdout, proc.stderr):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
        proc.wait()


# ----------------------------------------------------------------------------- images


def natural_key(name: str) -> list:
    """Sort key with numbers compared as numbers: img2 < img10."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in re.split(r"(\d+)", name) if p != ""]


def _pil():
    from PIL import Image, ImageOps

    return Image, ImageOps


def _image_header(path: Path) -> tuple[int, int]:
    """(width, height) after EXIF orientation, reading only the header."""
    Image, _ = _pil()
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except FileNotFoundError:
        raise UserError(f"input not found: {path}") from None
    except (OSError, ValueError, SyntaxError) as exc:  # PIL raises UnidentifiedImageError (an OSError)
        raise UserError(f"cannot read image {path}: {exc.__class__.__name__}") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def read_image(path: Path) -> np.ndarray:
    """Decode one image file to uint8 [H, W, 3] RGB or [H, W, 4] RGBA (see the module docstring)."""
    Image, ImageOps = _pil()
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            mode = im.mode
            if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info) or (
                mode in ("L", "RGB") and "transparency" in im.info
            ):
                arr = np.asarray(im.convert("RGBA"))
            elif mode.startswith("I") or mode == "F":
                arr = _gray_to_u8(np.asarray(im), mode)
                arr = np.repeat(arr[..., None], 3, axis=2)
            else:
                arr = np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise UserError(f"input not found: {path}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"cannot read image {path}: {exc}") from None
    return np.ascontiguousarray(arr, dtype=np.uint8)


def _gray_to_u8(a: np.ndarray, mode: str) -> np.ndarray:
    a = a.astype(np.float64)
    if mode == "F":
        scale = 255.0 if a.max(initial=0) <= 1.0 else 1.0
    else:  # 16-bit (or 32-bit integer holding 16-bit) grayscale
        scale = 255.0 / 65535.0 if a.max(initial=0) > 255 or "16" in mode else 1.0
    return np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)


def _match_channels(img: np.ndarray, rgba: bool) -> np.ndarray:
    """Make ``img`` [H, W, 3|4] RGBA (opaque alpha added) or RGB (alpha composited on white)."""
    if rgba and img.shape[2] == 3:
        return np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=2)
    if not rgba and img.shape[2] == 4:
        return on_white(img)
    return img


def _alpha_is_used(rgba: np.ndarray) -> bool:
    return rgba.ndim == 3 and rgba.shape[2] == 4 and int(rgba[..., 3].min()) < 255


# ----------------------------------------------------------------------------- the source


@dataclass(eq=False)
class FrameSource:
    """A re-iterable stream of :class:`Frame` (see the module docstring). Use :func:`open_source`."""

    info: SourceInfo
    selection: Selection
    _video: _Video | None = None
    _images: tuple[Path, ...] = ()
    _iterators: weakref.WeakSet = field(default_factory=weakref.WeakSet)
    warnings: list[str] = field(default_factory=list)
    _source_times: tuple[float, ...] = ()  # [N scanned] seconds of every decoded frame

    @property
    def output_fps(self) -> float:
        return self.selection.output_fps

    @property
    def times(self) -> tuple[float, ...]:
        """Output times [N] in seconds."""
        return self.selection.times

    def __len__(self) -> int:
        return len(self.selection)

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def frames(self, max_side: int | None = None) -> Iterator[Frame]:
        """A fresh generator over the output frames; ``max_side`` downscales (area filter) so the
        longer side is at most that many pixels (cheap previews, e.g. a segmentation pass)."""
        size = self.scaled_size(max_side)
        gen = self._generate(size)
        self._iterators.add(gen)
        return gen

    def scaled_size(self, max_side: int | None) -> tuple[int, int] | None:
        """(width, height) of frames from ``frames(max_side)``; None when no downscale applies."""
        w, h = self.info.width, self.info.height
        if max_side is None or max(w, h) <= max_side:
            return None
        s = max_side / max(w, h)
        return max(1, round(w * s)), max(1, round(h * s))

    def _generate(self, size: tuple[int, int] | None) -> Iterator[Frame]:
        sel = self.selection
        if self._video is not None:
            times = self._source_times
            frames = self._video.read(sel.source_indices, self.info.has_alpha, size)
            for k, (src, img) in enumerate(frames):
                yield Frame(k, sel.times[k], img, src, times[src])
        else:
            import cv2

            for k, src in enumerate(sel.source_indices):
                img = _match_channels(read_image(self._images[src]), self.info.has_alpha)
                h, w = img.shape[:2]
                if (w, h) != (self.info.width, self.info.height):
                    raise UserError(
                        f"{self._images[src]} is {w}x{h} but the first image is {self.info.width}x{self.info.height}"
                    )
                if size is not None:
                    img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
                yield Frame(k, sel.times[k], img, src, src / self.info.source_fps)

    def close(self) -> None:
        """Stop every running iteration (their ffmpeg processes are killed)."""
        for gen in list(self._iterators):
            gen.close()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_source(
    path: str | os.PathLike,
    fps: float = DEFAULT_FPS,
    start: float | None = None,
    end: float | None = None,
    max_frames: int | None = None,
    cap: bool = False,
) -> FrameSource:
    """Open a video, an image folder or a single image as a resampled :class:`FrameSource`.

    Raises :class:`UserError` with one line for anything the user can fix: a missing or unreadable
    file, no decodable frame, bad options (``fps <= 0``, ``start >= end``, ``start`` past the end).
    ``cap``: constant-rate strides round up, so the output never exceeds ``fps`` (see :func:`stride_for`).
    """
    fps = check_fps(fps)
    start, end = _check_range(start, end)
    if max_frames is not None and int(max_frames) < 1:
        raise UserError(f"--max-frames must be at least 1, got {max_frames}")
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"input not found: {path}")
    if path.is_dir():
        return _open_images(path, _list_images(path), "images", fps, start, end, max_frames)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return _open_images(path, [path], "image", fps, start, end, max_frames)
    if not os.access(path, os.R_OK):
        raise UserError(f"cannot read {path}: permission denied")
    return _open_video(path, fps, start, end, max_frames, cap)


def _check_range(start, end) -> tuple[float | None, float | None]:
    vals = []
    for name, v in (("--start", start), ("--end", end)):
        if v is None:
            vals.append(None)
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise UserError(f"{name} must be a number of seconds, got {v!r}") from None
        if not math.isfinite(f) or f < 0:
            raise UserError(f"{name} must be a non-negative number of seconds, got {v}")
        vals.append(f)
    s, e = vals
    if s is not None and e is not None and s >= e:
        raise UserError(f"--start ({s:g} s) must be before --end ({e:g} s)")
    if s == 0.0:
        s = None
    return s, e


def _list_images(folder: Path) -> list[Path]:
    try:
        files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()]
    except OSError as exc:
        raise UserError(f"cannot list {folder}: {exc.strerror or exc}") from None
    if not files:
        exts = ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
        raise UserError(f"no images ({exts}) in folder {folder}")
    return sorted(files, key=lambda p: natural_key(p.name))


def _open_images(path: Path, files: list[Path], kind: Kind, fps, start, end, max_frames) -> FrameSource:
    w, h = _image_header(files[0])
    for f in files[1:]:
        if _image_header(f) != (w, h):
            fw, fh = _image_header(f)
            raise UserError(f"images in {path} differ in size: {files[0].name} is {w}x{h}, {f.name} is {fw}x{fh}")
    first = read_image(files[0])
    times = [i / fps for i in range(len(files))]
    sel = select_frames(times, fps, source_fps=fps, constant_rate=True, start=start, end=end, max_frames=max_frames)
    _check_selection(sel, path, start, end, len(files) / fps)
    info = SourceInfo(
        path=path,
        kind=kind,
        width=w,
        height=h,
        source_fps=fps,
        duration=len(files) / fps,
        has_alpha=_alpha_is_used(first),
        frame_count=len(files),
    )
    return FrameSource(info=info, selection=sel, _images=tuple(files))


def _check_selection(sel: Selection, path: Path, start, end, duration: float | None) -> None:
    if len(sel):
        return
    if start is not None and duration is not None and start >= duration - _EPS:
        raise UserError(f"--start {start:g} s is beyond the end of {path.name} ({duration:.3f} s)")
    raise UserError(f"no frames of {path.name} lie between --start {start or 0:g} s and --end {end:g} s" if end else f"no frames in {path}")


def _open_video(path: Path, fps, start, end, max_frames, cap: bool = False) -> FrameSource:
    video = _Video(path)
    pr = video.probe
    times, eof, errors = video.scan(start, end)
    if not times:
        raise UserError(f"no decodable video frame in {path} ({errors[-1] if errors else 'empty stream'})")
    warnings = []
    damage = [e for e in errors if any(k in e.lower() for k in _DAMAGE_WORDS)]
    if eof and damage:
        warnings.append(f"{path.name}: ffmpeg reported decoding errors ({damage[-1]}); the video may be damaged")
    if eof and video.seek is None and pr.duration and times[-1] < 0.9 * pr.duration - 1.0:
        warnings.append(
            f"{path.name}: only {times[-1]:.1f} s of its {pr.duration:.1f} s decode; the file may be truncated"
        )
    measured = measured_fps(times)
    constant = is_constant_rate(times)
    if constant:
        src_fps = pr.nominal_fps
        d = np.diff(monotonic_times(times))
        median_fps = 1.0 / float(np.median(d)) if len(d) and np.median(d) > 0 else None
        # Trust the header's rate only when the timestamps agree with it.
        if median_fps is not None and (src_fps is None or abs(src_fps / median_fps - 1) > 0.05):
            src_fps = median_fps
        src_fps = src_fps or measured or fps
    else:
        src_fps = measured or pr.nominal_fps or fps
    duration = pr.duration if pr.duration else (times[-1] + 1.0 / src_fps)
    sel = select_frames(times, fps, source_fps=src_fps, constant_rate=constant, start=start, end=end,
                        max_frames=max_frames, cap=cap)
    _check_selection(sel, path, start, end, duration)
    has_alpha = _has_alpha_format(pr.pix_fmt) and _alpha_is_used(pr.first_rgba)
    info = SourceInfo(
        path=path,
        kind="video",
        width=pr.width,
        height=pr.height,
        source_fps=float(src_fps),
        duration=duration,
        has_alpha=has_alpha,
        frame_count=len(times) if (eof and video.seek is None) else None,
        variable_rate=not constant,
        rotation=pr.rotation,
        codec=pr.codec,
        pix_fmt=pr.pix_fmt,
    )
    for w in warnings:
        log.warning(w)
    return FrameSource(info=info, selection=sel, _video=video, warnings=warnings, _source_times=tuple(times))
