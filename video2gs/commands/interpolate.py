"""``video2gs interpolate OUT --factor 3``: temporal x3 upsampling of an existing reconstruction."""

from __future__ import annotations

from pathlib import Path

import typer

from video2gs.pipeline.job import run_interpolate
from video2gs.progress import Reporter, console


def interpolate(
    output: Path = typer.Argument(..., help="A folder written by `video2gs reconstruct`.", show_default=False),
    factor: int = typer.Option(3, help="Temporal upsampling factor; the released model supports exactly 3 ((N-1)*3+1 frames)."),
    model: str = typer.Option("l4gm-interp", help="Interpolation model: registry name or .safetensors path."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N."),
    dtype: str = typer.Option("auto", help="auto | fp32 | fp16 | bf16."),
    render: bool = typer.Option(True, "--render/--no-render", help="Write videos/orbit_x3.mp4 and fixed_x3.mp4."),
    render_size: int = typer.Option(512, help="Video view size in pixels."),
    backend: str = typer.Option("auto", help="Renderer: auto | numba | torch | gsplat | dgr."),
    overwrite: bool = typer.Option(False, help="Replace an existing gaussians_x3/."),
    resume: bool = typer.Option(False, help="Continue an interrupted interpolation."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress display or summary."),
):
    """Insert two frames between every pair of reconstructed frames (OUT/gaussians_x3/, 3x the fps)."""
    with Reporter(quiet) as rep:
        summary = run_interpolate(
            output, model=model, factor=factor, device=device, dtype=dtype, render=render, render_size=render_size,
            backend=backend, overwrite=overwrite, resume=resume, rep=rep,
        )
    if not quiet:
        console.print(
            f"[bold green]done[/] {summary.frames_in} key frames -> {summary.frames_x3} frames at {summary.fps:.3g} fps "
            f"in {summary.timings['total']:.1f}s -> {summary.output / 'gaussians_x3'}"
            + (f"; videos: {', '.join(p.name for p in summary.videos)}" if summary.videos else "")
        )
