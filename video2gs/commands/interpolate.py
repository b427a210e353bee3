"""``video2gs interpolate OUT --factor 3``: temporal x3 upsampling of an existing reconstruction."""

from __future__ import annotations

from video2gs.pipeline.options import InterpolateOptions, command_from
from video2gs.pipeline.run import run_interpolate
from video2gs.progress import Reporter, console


def _run(opts: InterpolateOptions, quiet: bool) -> None:
    with Reporter(quiet) as rep:
        s = run_interpolate(opts, rep)
    if quiet:
        return
    if s.already_complete:
        console.print(f"[bold green]complete[/] {s.output / 'gaussians_x3'} already holds {s.frames_x3} frames; nothing was redone")
        return
    console.print(
        f"[bold green]done[/] {s.frames_in} key frames -> {s.frames_x3} frames at {s.fps:.4g} fps "
        f"in {s.timings['total']:.1f}s -> {s.output / 'gaussians_x3'}"
        + (f"; videos: {', '.join(p.name for p in s.videos)}" if s.videos else "")
    )


interpolate = command_from(
    InterpolateOptions,
    _run,
    """Insert two frames between every pair of reconstructed frames (OUT/gaussians_x3/, 3x the fps).

    The new frames are built beside OUT's results and swapped in when complete.

    Example: video2gs interpolate out/ --factor 3
    """,
)
