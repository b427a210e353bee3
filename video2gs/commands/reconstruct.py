"""``video2gs reconstruct INPUT -o OUT``: video (or images) in, a Gaussian sequence out.

The options are declared once, in :class:`video2gs.pipeline.options.ReconstructOptions`; the
Typer signature is built from it.
"""

from __future__ import annotations

from video2gs.pipeline.options import ReconstructOptions, command_from
from video2gs.pipeline.run import Summary, run_reconstruct
from video2gs.progress import Reporter, console


def _run(opts: ReconstructOptions, quiet: bool) -> None:
    with Reporter(quiet) as rep:
        summary = run_reconstruct(opts, rep)
    if not quiet:
        print_summary(summary)


def print_summary(s: Summary) -> None:
    if s.already_complete:
        console.print(f"[bold green]complete[/] {s.output} already holds this run ({s.frames_out} PLYs); nothing was redone")
        return
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in s.timings.items() if k != "total")
    console.print(
        f"[bold green]done[/] {s.frames_in} frames in -> {s.frames_out} PLYs at {s.fps:.4g} fps"
        + (f", {s.frames_x3} interpolated (x3)" if s.frames_x3 else "")
        + f" in {s.timings.get('total', 0):.1f}s ({stages}) -> {s.output}"
        + (f"; videos: {', '.join(p.name for p in s.videos)}" if s.videos else "")
    )


reconstruct = command_from(
    ReconstructOptions,
    _run,
    """Reconstruct a 4D Gaussian sequence from a video of an object.

    Writes OUT/gaussians/000000.ply ... (one standard 3DGS PLY per frame), OUT/input/ (what the
    model saw), OUT/views/, OUT/videos/ and OUT/manifest.json. The run is built beside what OUT
    already holds and swapped in only when it has finished; Ctrl-C keeps the finished steps for
    --resume.

    Example: video2gs reconstruct clip.mp4 -o out/ --views none --fps 15
    """,
)
