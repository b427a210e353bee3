"""``video2gs example OUT``: a small 4D demo sequence from the bundled Spot object;
``video2gs example --video FILE.mp4``: the bundled example *input* video for ``reconstruct``.

Needs no download and no ../shared: the object ships in ``video2gs/examples/spot.splat``
(CC0, Keenan Crane). Frames are built in the internal +Y-up frame with
:meth:`Gaussians.transform` (Spot hops twice and turns once per loop, so the loop is seamless)
and written as a proper sequence folder, so ``video2gs render OUT`` works on it.
"""

from __future__ import annotations

import contextlib
import math
import time
from importlib import resources
from pathlib import Path

import torch
import typer

from video2gs.errors import UserError
from video2gs.fileio import ensure_writable_dir
from video2gs.formats import EXPORT_UP, check_up, load_gaussians
from video2gs.gaussians import Gaussians
from video2gs.progress import Reporter
from video2gs.sequence import DEFAULT_FPS, MANIFEST, frame_entries, read_manifest, write_frame, write_manifest

EXAMPLE_FILE = "spot.splat"
# The faerie (an MD2 character held out of the demo training data) running: the test clip
# faerie-run of `data make` (128², 16 frames at 8 fps; the command is in examples/README.md), unchanged.
EXAMPLE_VIDEO = "faerie-run.mp4"
EXAMPLE_SOURCE = "video2gs example"
_SIZE = 0.75  # Spot's longest side 1 -> 0.75, so hops stay inside the default camera's view
_BASE_Y = -0.12  # resting height of the centre
_HOP = 0.2  # hop height
_HOPS = 2  # hops per loop (one full turn per loop)


def example_object() -> Gaussians:
    """The bundled Spot, [10000,14], internal +Y-up frame (the file is −Y up)."""
    ref = resources.files("video2gs").joinpath("examples", EXAMPLE_FILE)
    with resources.as_file(ref) as path:
        return load_gaussians(path, up="-y")


def _rotation_y(degrees: float) -> torch.Tensor:
    """Rotation [3,3] about +Y (the internal up axis)."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def example_frame(obj: Gaussians, index: int, count: int) -> Gaussians:
    """Frame ``index`` of ``count``: turned by 360·index/count degrees, hopping |sin| arcs."""
    phase = index / count
    height = _BASE_Y + _HOP * abs(math.sin(math.pi * _HOPS * phase))
    return obj.transform(_rotation_y(360.0 * phase), translation=(0.0, height, 0.0), scale=_SIZE)


def _check_target(out: Path) -> None:
    """Refuse to write into a non-empty folder unless it holds an earlier example."""
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"{out} exists and is not a folder")
    if not any(out.iterdir()):
        return
    manifest = read_manifest(out) if (out / MANIFEST).is_file() else None
    if manifest is None or manifest.get("source", {}).get("kind") != "example":
        raise UserError(f"{out} is not empty; choose a new folder for the example")


def write_example(out: Path, *, frames: int = 24, fps: float = DEFAULT_FPS, up: str = EXPORT_UP, reporter=None) -> dict:
    """Write the demo sequence into ``out`` (frames, then the manifest); returns the manifest."""
    if frames < 1:
        raise UserError(f"--frames must be at least 1, got {frames}")
    if not fps > 0:
        raise UserError(f"--fps must be positive, got {fps}")
    up = check_up(up, what="--up")
    _check_target(out)
    ensure_writable_dir(out)
    obj = example_object()
    start = time.perf_counter()
    # A reporter passed in is already running (the caller owns it); otherwise work silently.
    owned = contextlib.nullcontext(reporter) if reporter is not None else Reporter(quiet=True)
    with owned as rep, rep.stage("example", frames) as stage:
        for i in range(frames):
            write_frame(out, i, example_frame(obj, i, frames), up=up)
            stage.advance()
    manifest = {
        "source": {"kind": "example", "object": EXAMPLE_FILE, "credit": "Spot by Keenan Crane, CC0"},
        "fps": float(fps),
        "up": up,
        "frames": frame_entries(frames, fps),
        "options": {"frames": frames, "fps": float(fps), "up": up},
        "timings": {"example": round(time.perf_counter() - start, 3)},
    }
    write_manifest(out, manifest)
    return manifest


def example_video_bytes() -> bytes:
    return resources.files("video2gs").joinpath("examples", EXAMPLE_VIDEO).read_bytes()


def write_example_video(out: Path) -> Path:
    """Copy the bundled example input video to ``out`` (refusing to replace another file)."""
    data = example_video_bytes()
    if out.is_dir():
        out = out / EXAMPLE_VIDEO
    if out.exists():
        if out.is_file() and out.read_bytes() == data:
            return out
        raise UserError(f"{out} exists; choose a new file name for the example video")
    if not out.parent.is_dir():
        raise UserError(f"folder {out.parent} does not exist")
    from video2gs.fileio import atomic_path

    with atomic_path(out) as tmp:
        Path(tmp).write_bytes(data)
    return out


def example(
    out: Path = typer.Argument(..., help="Folder to create the demo sequence in (must be new or empty); with "
                               "--video, the file (or folder) to copy the example video to."),
    video: bool = typer.Option(False, "--video", help="Instead write the bundled example input video (a held-out "
                               "character running, 16 frames, 128², 8 fps) for `video2gs reconstruct`."),
    frames: int = typer.Option(24, "--frames", help="Number of frames (one loop: two hops, one turn)."),
    fps: float = typer.Option(DEFAULT_FPS, "--fps", help="Frames per second recorded in the manifest."),
    up: str = typer.Option(EXPORT_UP, "--up", help="Frame of the PLY files: -y (what splat viewers show upright) or y (L4GM's +Y up)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Write a short 4D demo sequence (Spot the cow hopping and turning) to OUT; then try `video2gs render OUT`.

    With --video: write the example input video to OUT; then try `video2gs reconstruct OUT -o out/`.
    """
    start = time.perf_counter()
    if video:
        path = write_example_video(out)
        typer.echo(f"wrote {path} (the faerie running, 16 frames at 8 fps); next: video2gs reconstruct {path} -o out/")
        return
    with Reporter(quiet=quiet) as rep:
        manifest = write_example(out, frames=frames, fps=fps, up=up, reporter=rep)
    n = len(manifest["frames"])
    typer.echo(
        f"wrote {n} frames to {out / 'gaussians'} and {out / MANIFEST} in {time.perf_counter() - start:.1f} s; "
        f"next: video2gs render {out}"
    )
