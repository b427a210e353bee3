"""``video2gs render PATH``: turntable videos (orbit.mp4, fixed.mp4) of any sequence of Gaussians.

The rendering itself is :mod:`video2gs.render.turntable`; this module parses options, decides
where the videos go and prints the summary.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import typer

from video2gs.camera import RADIUS
from video2gs.compute import resolve_device
from video2gs.errors import UserError
from video2gs.formats import check_up
from video2gs.pipeline.options import about
from video2gs.progress import Reporter
from video2gs.render import check_backend
from video2gs.render.turntable import DEFAULT_ORBIT_SECONDS, orbit_frame_count, render_videos
from video2gs.sequence import GAUSSIANS_DIR, MANIFEST, Sequence

_MIN_SIZE, _MAX_SIZE = 16, 4096
_NAMED_COLOURS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}


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


def output_paths(seq: Sequence, output: Path | None) -> tuple[Path, str, str]:
    """(folder, name prefix, name suffix) for the videos when ``-o`` is not given.

    * an output folder -> OUT/videos/orbit.mp4; its gaussians_x3/ -> OUT/videos/orbit_x3.mp4;
    * a plain folder of PLYs -> FOLDER/videos/orbit.mp4;
    * one file -> STEM_orbit.mp4 in OUT/videos when the file is a frame of an output folder,
      else in the current folder (never inside a folder of frames).
    """
    if seq.kind == "file":
        frames_dir = seq.root.parent
        run = frames_dir.parent
        default = run / "videos" if (run / MANIFEST).is_file() else Path.cwd()
        return (output or default), f"{seq.root.stem}_", ""
    if seq.kind == "output":
        suffix = "" if seq.subdir in (None, GAUSSIANS_DIR) else "_" + seq.subdir.removeprefix("gaussians_")
        return (output or seq.root / "videos"), "", suffix
    return (output or seq.root / "videos"), "", ""


def render(
    path: Path = typer.Argument(..., metavar="PATH", help="Output folder (or its gaussians_x3/), folder of PLYs, or a single .ply/.splat file."),
    orbit: bool = typer.Option(False, "--orbit", help="Write orbit.mp4 (360° turn while the sequence loops)."),
    fixed: bool = typer.Option(False, "--fixed", help="Write fixed.mp4 (azimuth 0/90/180/270 side by side). Default: both videos."),
    elevation: float = typer.Option(0.0, "--elevation", help="Camera elevation in degrees; positive = camera above the object."),
    size: int = typer.Option(512, "--size", help="Side of each rendered view in pixels."),
    fps: float | None = typer.Option(None, "--fps", help="Playback rate of the sequence (default: the sequence's own, else 15)."),
    radius: float = typer.Option(RADIUS, "--radius", help="Camera distance from the centre (the model's cameras use 1.5)."),
    background: str = typer.Option("white", "--background", help="white, black or #rrggbb."),
    backend: str = typer.Option("auto", "--backend", help="Renderer backend: auto, torch, numba, gsplat, dgr."),
    device: str | None = typer.Option(None, "--device", help="Torch device for rendering, e.g. cpu or cuda (default: the backend's choice)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Folder for the videos (default: OUT/videos; for one file outside an output folder, the current folder)."),
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
    with about("device"):
        device = str(resolve_device(device)) if device is not None else None
    up = check_up(input_up, what="--input-up") if input_up is not None else None
    with about("backend"):
        check_backend(backend)

    seq = Sequence.open(path, fps=fps)
    folder, prefix, suffix = output_paths(seq, output)
    with Reporter(quiet=quiet) as rep:
        paths = render_videos(
            seq, folder, orbit=orbit, fixed=fixed, size=size, elevation=elevation, radius=radius, background=colour,
            backend=backend, device=device, orbit_seconds=orbit_seconds, prefix=prefix, suffix=suffix, up=up, reporter=rep,
        )
    counts = ([orbit_frame_count(orbit_seconds)] if orbit else []) + ([len(seq)] if fixed else [])
    listing = ", ".join(f"{p} ({n} frames)" for p, n in zip(paths, counts))
    n = len(seq)
    typer.echo(f"rendered {n} frame{'s' if n != 1 else ''} at {seq.fps:g} fps -> {listing} in {time.perf_counter() - start:.1f} s")
