"""Turntable videos of a sequence of Gaussians (``video2gs render`` and the pipeline's render stage).

* ``orbit.mp4`` — one 360° turn of the camera at 30 fps (default 12 s = 360 frames, 1° per frame,
  as L4GM's reference orbit) while the sequence plays at its own fps and loops; a single static
  file simply spins.
* ``fixed.mp4`` — the views at azimuth 0/90/180/270 side by side, one video frame per sequence
  frame, at the sequence fps.

Frames are loaded one at a time. Both videos are written under temporary names and renamed
together at the end, so a failed or interrupted run leaves existing videos untouched.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from video2gs.camera import FOVY_DEG, INPUT_AZIMUTHS, RADIUS, ZFAR, ZNEAR, Cameras
from video2gs.fileio import ensure_writable_dir
from video2gs.gaussians import Gaussians
from video2gs.progress import Reporter
from video2gs.sequence import Sequence
from video2gs.video.encode import Mp4Writer

ORBIT_FPS = 30.0  # frame rate of orbit.mp4 (the reference's)
DEFAULT_ORBIT_SECONDS = 12.0  # 360 frames at 30 fps: 1° per frame
MAX_VIEWS_PER_CALL = 8  # orbit frames that show the same sequence frame render together


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
    cams = orbit_cameras_for(INPUT_AZIMUTHS, s.elevation, s.radius)
    for t in range(count):
        views = _render(frames(t), cams, s)  # [4,H,W,3]
        video.write(np.concatenate(list(views), axis=1))
        stage.advance()


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
