"""``video2gs reconstruct INPUT -o OUT``: video (or images) in, a Gaussian sequence out."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from video2gs.pipeline.job import ReconstructOptions, Summary, run_reconstruct
from video2gs.progress import Reporter, console

_IN = "Input"
_SEG = "Background removal and crop"
_VIEWS = "Views of the first frame"
_MODEL = "Models and compute"
_OUT = "Output"


def reconstruct(
    input: Path = typer.Argument(..., help="A video (mp4, mov, webm, avi, gif...), a folder of images (natural order), or one image.", show_default=False),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder (gaussians/*.ply, input/, views/, videos/, manifest.json).", rich_help_panel=_OUT),
    fps: float = typer.Option(15.0, help="Target frame rate of the output, frames/s. Constant-rate videos use L4GM's integer stride (30 -> 15, 25 -> 25, 60 -> 15).", rich_help_panel=_IN),
    start: Optional[float] = typer.Option(None, help="Start time in seconds.", rich_help_panel=_IN),
    end: Optional[float] = typer.Option(None, help="End time in seconds.", rich_help_panel=_IN),
    max_frames: Optional[int] = typer.Option(None, help="At most this many output frames.", rich_help_panel=_IN),
    segment: str = typer.Option("auto", help="Background removal: auto | rembg | alpha | key | none. auto = the input's alpha if any, else rembg when its model is available offline, else border keying.", rich_help_panel=_SEG),
    segment_model: Optional[str] = typer.Option(None, help="rembg model: u2net | u2netp | isnet-general-use | PATH.onnx (default u2net).", rich_help_panel=_SEG),
    border_ratio: float = typer.Option(0.2, help="Empty margin around the object: its longest side fills (1 - ratio) of the square crop.", rich_help_panel=_SEG),
    views: str = typer.Option("auto", help="imagedream | none | DIR with 090.png, 180.png, 270.png. auto = imagedream when its weights are available, else none.", rich_help_panel=_VIEWS),
    prompt: str = typer.Option("", help="ImageDream text prompt (optional).", rich_help_panel=_VIEWS),
    negative_prompt: str = typer.Option("", help="ImageDream negative prompt.", rich_help_panel=_VIEWS),
    guidance: float = typer.Option(5.0, help="ImageDream classifier-free guidance scale (<= 1 disables guidance).", rich_help_panel=_VIEWS),
    steps: int = typer.Option(30, help="ImageDream denoising steps.", rich_help_panel=_VIEWS),
    elevation: float = typer.Option(0.0, help="Camera elevation of the input video in degrees, positive = looking down on the object (ImageDream only).", rich_help_panel=_VIEWS),
    align_step: float = typer.Option(1.0, help="Azimuth search step in degrees over -180..180 for aligning generated views.", rich_help_panel=_VIEWS),
    chunk: int = typer.Option(16, help="Frames per network call; chunks overlap by one frame. Lower it to save memory.", rich_help_panel=_MODEL),
    model: str = typer.Option("l4gm-recon", help="Reconstruction model: a registry name (see `video2gs models`) or a .safetensors path.", rich_help_panel=_MODEL),
    interp_model: str = typer.Option("l4gm-interp", help="Interpolation model: registry name or path.", rich_help_panel=_MODEL),
    imagedream_model: str = typer.Option("imagedream", help="ImageDream model: registry name or a folder in the released layout.", rich_help_panel=_MODEL),
    interpolate: Optional[bool] = typer.Option(None, "--interpolate/--no-interpolate", help="x3 temporal interpolation (default: on when the interpolation model is on disk).", show_default=False, rich_help_panel=_MODEL),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N.", rich_help_panel=_MODEL),
    dtype: str = typer.Option("auto", help="auto | fp32 | fp16 | bf16 (auto: bf16 on CUDA, fp32 on CPU).", rich_help_panel=_MODEL),
    seed: int = typer.Option(0, help="Random seed (ImageDream sampling).", rich_help_panel=_MODEL),
    up: str = typer.Option("-y", help="Frame of the written PLYs: -y = OpenCV/COLMAP (upright in SuperSplat, Spark, gsplat.js), y = L4GM's +Y-up world.", rich_help_panel=_OUT),
    min_opacity: float = typer.Option(0.005, help="Drop Gaussians below this opacity when writing PLYs (LGM's rule; 0 keeps all).", rich_help_panel=_OUT),
    render: bool = typer.Option(True, "--render/--no-render", help="Write videos/orbit.mp4 and fixed.mp4.", rich_help_panel=_OUT),
    render_size: int = typer.Option(512, help="Video view size in pixels.", rich_help_panel=_OUT),
    backend: str = typer.Option("auto", help="Renderer: auto | numba | torch | gsplat | dgr.", rich_help_panel=_OUT),
    overwrite: bool = typer.Option(False, help="Replace a previous run in OUTPUT.", rich_help_panel=_OUT),
    resume: bool = typer.Option(False, help="Continue an interrupted run in OUTPUT from its last complete chunk.", rich_help_panel=_OUT),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress display or summary.", rich_help_panel=_OUT),
):
    """Reconstruct a 4D Gaussian sequence from a video of an object.

    Writes OUTPUT/gaussians/000000.ply ... (one standard 3DGS PLY per frame), OUTPUT/input/ (what
    the model saw), OUTPUT/views/, OUTPUT/videos/ and OUTPUT/manifest.json.
    """
    opts = ReconstructOptions(
        input=str(input), output=str(output), fps=fps, start=start, end=end, max_frames=max_frames, segment=segment,
        segment_model=segment_model, border_ratio=border_ratio, views=views, prompt=prompt,
        negative_prompt=negative_prompt, guidance=guidance, steps=steps, elevation=elevation, align_step=align_step,
        chunk=chunk, model=model, interp_model=interp_model, imagedream_model=imagedream_model,
        interpolate=interpolate, device=device, dtype=dtype, seed=seed, up=up, min_opacity=min_opacity,
        render=render, render_size=render_size, backend=backend, overwrite=overwrite, resume=resume,
    )
    with Reporter(quiet) as rep:
        summary = run_reconstruct(opts, rep)
    if not quiet:
        print_summary(summary)


def print_summary(s: Summary) -> None:
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in s.timings.items() if k != "total")
    console.print(
        f"[bold green]done[/] {s.frames_in} frames in -> {s.frames_out} PLYs at {s.fps:.3g} fps"
        + (f", {s.frames_x3} interpolated (x3)" if s.frames_x3 else "")
        + f" in {s.timings.get('total', 0):.1f}s ({stages}) -> {s.output}"
        + (f"; videos: {', '.join(p.name for p in s.videos)}" if s.videos else "")
    )
