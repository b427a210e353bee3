"""``video2gs render OUT``: turntable videos of a sequence of Gaussians.

* ``orbit.mp4`` — one 360° turn of the camera at 30 fps (``--orbit-seconds``, default 12 s = 360
  frames, 1° per frame, as L4GM's reference orbit) while the sequence plays at its own fps and
  loops; a single static file simply spins.
* ``fixed.mp4`` — the views at azimuth 0/90/180/270 side by side, one video frame per sequence
  frame, at the sequence fps.

Inputs: an output folder (``manifest.json`` + ``gaussians/``), a plain folder of PLYs, or one
``.ply``/``.splat`` file (see :mod:`video2gs.sequence`). Frames are loaded one at a time. Both
videos are written under temporary names and renamed together at the end, so a failed or
interrupted run leaves existing videos untouched.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import typer

from video2gs.camera import FOVY_DEG, RADIUS, ZFAR, ZNEAR, Cameras
from video2gs.errors import UserError
from video2gs.fileio import ensure_writable_dir
from video2gs.formats import check_up
from video2gs.gaussians import Gaussians
from video2gs.progress import Reporter
from video2gs.sequence import Sequence
from video2gs.video.encode import Mp4Writer

ORBIT_FPS = 30.0  # frame rate of orbit.mp4 (the reference's)
DEFAULT_ORBIT_SECONDS = 12.0  # 360 frames at 30 fps: 1° per frame
FIXED_AZIMUTHS = (0.0, 90.0, 180.0, 270.0)
MAX_VIEWS_PER_CALL = 8  # orbit frames that show the same sequence frame render together
_MIN_SIZE, _MAX_SIZE = 16, 4096
_NAMED_COLOURS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}


# -- options -----------------------------------------------------------------------------------------
def parse_background(text: str) -> tuple[float, float, float]:
    """'white' | 'black' | '#rrggbb' -> RGB in [0,1]."""
    value = text.strip().lower()
    if value in _NAMED_COLOURS:
        return _NAMED_COLOURS[value]
    m = re.fullmatch(r"#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})", value)
    if not m:
        raise UserError(f"--background must be white, black or #rrggbb, got {text!r}")
    r, g, b = (int(h, 16) / 255.0 for h in m.groups())
    return (r, g, b)


def check_device(device: str | None) -> str | None:
    """UserError for a device string torch cannot use here."""
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"--device {device!r} is not a valid device (e.g. cpu, cuda, cuda:1)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) present")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"--device {device}: MPS is not available on this machine")
    return device


def check_backend(backend: str) -> str:
    """UserError unless ``backend`` is 'auto' or a renderer backend that can run here."""
    from video2gs.render import BACKENDS, available_backends

    if backend == "auto":
        return backend
    available = ", ".join(["auto", *available_backends()])
    if backend not in BACKENDS:
        raise UserError(f"--backend {backend!r} is unknown (usable here: {available})")
    if backend not in available_backends():
        raise UserError(f"--backend {backend!r} is not installed or needs a CUDA GPU (usable here: {available})")
    return backend


def orbit_cameras_for(azimuths, elevation: float, radius: float) -> Cameras:
    """Orbit cameras with the user's elevation sign; near/far follow the radius (0.5/2.5 at 1.5)."""
    cams = Cameras.orbit(list(azimuths), elevation, radius)
    shift = radius - RADIUS
    return Cameras(cams.c2w, FOVY_DEG, max(ZNEAR + shift, 0.01), ZFAR + shift)


def orbit_plan(num_video_frames: int, num_frames: int, fps: float, video_fps: float = ORBIT_FPS) -> list[tuple[float, int]]:
    """(azimuth in degrees, sequence frame) for each orbit video frame.

    The camera turns 360° over the video (the last frame stops one step short of the first);
    the sequence advances ``fps / video_fps`` frames per video frame and loops.
    """
    return [
        (360.0 * k / num_video_frames, int(np.floor(k * fps / video_fps + 1e-9)) % num_frames)
        for k in range(num_video_frames)
    ]


# -- rendering ---------------------------------------------------------------------------------------
class _Frames:
    """Loads sequence frames on demand, keeping only the latest one."""

    def __init__(self, seq: Sequence, up: str | None, reporter: Reporter):
        self.seq, self.up, self.reporter = seq, up, reporter
        self._index: int | None = None
        self._gaussians: Gaussians | None = None
        self._told_sh = False

    def __call__(self, index: int) -> Gaussians:
        if index != self._index:
            f = self.seq.read(index, up=self.up)
            if f.sh_dropped and not self._told_sh:
                self.reporter.info(f"note: {f.path.name} has SH degree {f.sh_degree}; rendering its base (DC) colour only")
                self._told_sh = True
            self._index, self._gaussians = index, f.gaussians
        return self._gaussians


@dataclass
class RenderSettings:
    size: int = 512
    elevation: float = 0.0
    radius: float = RADIUS
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    backend: str = "auto"
    device: str | None = None


def _render(g: Gaussians, cams: Cameras, s: RenderSettings) -> np.ndarray:
    """Rendered views [V,H,W,3] float32 in [0,1]."""
    from video2gs.render import render

    with torch.no_grad():
        out = render(g, cams, s.size, s.size, background=s.background, backend=s.backend, device=s.device)
    return out.rgb.detach().float().cpu().numpy()


def write_orbit(video: Mp4Writer, frames: _Frames, plan: list[tuple[float, int]], s: RenderSettings, stage) -> None:
    """Render the orbit, batching consecutive video frames that show the same sequence frame."""
    k = 0
    while k < len(plan):
        t = plan[k][1]
        end = k + 1
        while end < len(plan) and end - k < MAX_VIEWS_PER_CALL and plan[end][1] == t:
            end += 1
        cams = orbit_cameras_for([az for az, _ in plan[k:end]], s.elevation, s.radius)
        for view in _render(frames(t), cams, s):
            video.write(view)
        stage.advance(end - k)
        k = end


def write_fixed(video: Mp4Writer, frames: _Frames, count: int, s: RenderSettings, stage) -> None:
    """One video frame per sequence frame: azimuth 0/90/180/270 side by side."""
    cams = orbit_cameras_for(FIXED_AZIMUTHS, s.elevation, s.radius)
    for t in range(count):
        views = _render(frames(t), cams, s)  # [4,H,W,3]
        video.write(np.concatenate(list(views), axis=1))
        stage.advance()


def output_paths(seq: Sequence, output: Path | None) -> tuple[Path, str]:
    """(folder, name prefix) for the videos: OUT/videos/orbit.mp4, or FILE_orbit.mp4 next to a file."""
    if seq.kind == "file":
        return (output or seq.root.parent), f"{seq.root.stem}_"
    return (output or seq.root / "videos"), ""


def orbit_frame_count(orbit_seconds: float) -> int:
    return max(1, round(orbit_seconds * ORBIT_FPS))


def render_videos(
    seq: Sequence,
    folder: Path,
    *,
    orbit: bool = True,
    fixed: bool = True,
    size: int = 512,
    elevation: float = 0.0,
    radius: float = RADIUS,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    backend: str = "auto",
    device: str | None = None,
    orbit_seconds: float = DEFAULT_ORBIT_SECONDS,
    prefix: str = "",
    suffix: str = "",
    up: str | None = None,
    reporter: Reporter | None = None,
) -> list[Path]:
    """Render ``folder/{prefix}orbit{suffix}.mp4`` and/or ``…fixed{suffix}.mp4``; returns their paths.

    The sequence plays at ``seq.fps``; ``elevation`` is the user's sign (positive = above);
    ``up`` forces the input files' frame. Both videos are renamed into place together, only once
    both are complete.
    """
    settings = RenderSettings(size, elevation, radius, tuple(background), backend, device)
    ensure_writable_dir(folder, "video output folder")
    plan = orbit_plan(orbit_frame_count(orbit_seconds), len(seq), seq.fps) if orbit else []
    written: list[Path] = []
    # A reporter passed in is already running (the caller owns it); otherwise render silently.
    owned = contextlib.nullcontext(reporter) if reporter is not None else Reporter(quiet=True)
    with owned as rep, contextlib.ExitStack() as videos:
        frames = _Frames(seq, up, rep)
        if orbit:
            video = videos.enter_context(Mp4Writer(folder / f"{prefix}orbit{suffix}.mp4", ORBIT_FPS))
            with rep.stage(f"orbit{suffix}", len(plan)) as stage:
                write_orbit(video, frames, plan, settings, stage)
            written.append(video.path)
        if fixed:
            video = videos.enter_context(Mp4Writer(folder / f"{prefix}fixed{suffix}.mp4", seq.fps))
            with rep.stage(f"fixed{suffix}", len(seq)) as stage:
                write_fixed(video, frames, len(seq), settings, stage)
            written.append(video.path)
    return written


def render(
    path: Path = typer.Argument(..., help="Output folder, folder of PLYs, or a single .ply/.splat file."),
    orbit: bool = typer.Option(False, "--orbit", help="Write orbit.mp4 (360° turn while the sequence loops)."),
    fixed: bool = typer.Option(False, "--fixed", help="Write fixed.mp4 (azimuth 0/90/180/270 side by side). Default: both videos."),
    elevation: float = typer.Option(0.0, "--elevation", help="Camera elevation in degrees; positive = camera above the object."),
    size: int = typer.Option(512, "--size", help="Side of each rendered view in pixels."),
    fps: float | None = typer.Option(None, "--fps", help="Playback rate of the sequence (default: the sequence's own, else 15)."),
    radius: float = typer.Option(RADIUS, "--radius", help="Camera distance from the centre (the model's cameras use 1.5)."),
    background: str = typer.Option("white", "--background", help="white, black or #rrggbb."),
    backend: str = typer.Option("auto", "--backend", help="Renderer backend: auto, torch, numba, gsplat, dgr."),
    device: str | None = typer.Option(None, "--device", help="Torch device for rendering, e.g. cpu or cuda (default: the backend's choice)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Folder for the videos (default: OUT/videos, or next to a single file)."),
    orbit_seconds: float = typer.Option(DEFAULT_ORBIT_SECONDS, "--orbit-seconds", help="Length of the orbit video (30 fps; 12 s = 1° per frame)."),
    input_up: str | None = typer.Option(None, "--input-up", help="Treat every input file as stored with this up axis (y or -y), overriding what it records."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Render a sequence of Gaussians into orbit.mp4 and/or fixed.mp4."""
    start = time.perf_counter()
    if not orbit and not fixed:
        orbit = fixed = True
    if not _MIN_SIZE <= size <= _MAX_SIZE:
        raise UserError(f"--size must be between {_MIN_SIZE} and {_MAX_SIZE}, got {size}")
    if not radius > 0:
        raise UserError(f"--radius must be positive, got {radius}")
    if not orbit_seconds > 0:
        raise UserError(f"--orbit-seconds must be positive, got {orbit_seconds}")
    if not -89.9 <= elevation <= 89.9:
        raise UserError(f"--elevation must lie in [-89.9, 89.9], got {elevation}")
    colour = parse_background(background)
    device = check_device(device)
    up = check_up(input_up, what="--input-up") if input_up is not None else None
    check_backend(backend)

    seq = Sequence.open(path, fps=fps)
    folder, prefix = output_paths(seq, output)
    with Reporter(quiet=quiet) as rep:
        paths = render_videos(
            seq, folder, orbit=orbit, fixed=fixed, size=size, elevation=elevation, radius=radius, background=colour,
            backend=backend, device=device, orbit_seconds=orbit_seconds, prefix=prefix, up=up, reporter=rep,
        )
    counts = ([orbit_frame_count(orbit_seconds)] if orbit else []) + ([len(seq)] if fixed else [])
    listing = ", ".join(f"{p} ({n} frames)" for p, n in zip(paths, counts))
    n = len(seq)
    typer.echo(f"rendered {n} frame{'s' if n != 1 else ''} at {seq.fps:g} fps -> {listing} in {time.perf_counter() - start:.1f} s")
