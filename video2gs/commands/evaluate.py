"""``video2gs evaluate PRED --gt CLIP``: render a reconstruction at every ground-truth view and frame of a
dataset clip and measure it (the method is :mod:`video2gs.metrics.evaluate`)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from video2gs.errors import UserError

_EPILOG = (
    "[bold]Frames[/]: an output folder of `video2gs reconstruct` is matched by time: each clip frame takes the "
    "prediction frame nearest in time (manifest times vs the clip's frame times) within half a frame interval, "
    "else it is skipped. A plain folder of PLYs is matched by position: file i (natural order) = clip frame i, "
    "and the counts must agree.\n\n"
    "[bold]Views[/]: the clip's input view (the camera of its input video, from clip.json) is reported apart from "
    "the novel views. The prediction is taken to be in L4GM's frame (input camera = front camera: azimuth 0, "
    "elevation 0, radius 1.5); the clip's cameras are rotated so that its input view is that camera.\n\n"
    "[bold]Crop[/]: reconstruct sees the video through one square crop (the object at 80 % of it); an output "
    "folder whose manifest records that crop is first scaled and shifted back to the uncropped input camera "
    "(weak perspective), so that it is judged in the clip's cameras; --keep-crop skips this.\n\n"
    "[bold]Baselines[/]: billboard = the input view's pixels as one flat layer of Gaussians facing the input "
    "camera; static = frame 0 repeated (the prediction's, or the clip's ground truth without PRED). With "
    "--baseline, PRED may be omitted (then give --out).\n\n"
    "[bold]Examples[/]:\n\n"
    "video2gs evaluate out/ --gt data/cat-spin --baseline billboard --baseline static --csv frames.csv\n\n"
    "video2gs evaluate data/cat-spin/gt --gt data/cat-spin --out /tmp/self   (ground truth against itself)\n\n"
    "video2gs evaluate out/ --gt data/cat-spin --protocol consistent4d"
)


def _parse_views(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        views = [int(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise UserError(f"--views must be comma-separated view ids such as 0,4,8; got {text!r}") from None
    if not views:
        raise UserError("--views lists no view")
    return list(dict.fromkeys(views))


def _parse_nets(text: str) -> tuple[str, ...]:
    from video2gs.metrics.lpips import NETS

    if text.strip().lower() == "none":
        return ()
    nets = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    bad = [n for n in nets if n not in NETS]
    if not nets or bad:
        raise UserError(f"--lpips must list networks from {', '.join(NETS)} (comma-separated), or none; got {text!r}")
    return nets


def evaluate(
    pred: Path | None = typer.Argument(None, help="Output folder of `video2gs reconstruct`, a folder of PLYs, or one .ply/.splat; optional with --baseline."),
    gt: Path = typer.Option(..., "--gt", help="Ground-truth clip folder (dataset layout: <view>/img, mask, camera; clip.json; gt/*.ply)."),
    baseline: list[str] = typer.Option([], "--baseline", help="Also evaluate a baseline: billboard or static (repeatable)."),
    protocol: str = typer.Option("full", "--protocol", help="full (all views, LPIPS VGG+Alex) or consistent4d (4 held-out views at elevation 0, 512², LPIPS-VGG, CLIP similarity)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder for metrics.json and comparison.png (default: PRED)."),
    csv_file: Path | None = typer.Option(None, "--csv", help="Also write per-frame metrics (input and novel views) to this CSV file."),
    size: int | None = typer.Option(None, "--size", help="Compare at this many pixels square (default: the clip's image size; 512 for consistent4d)."),
    views: str | None = typer.Option(None, "--views", help="Only these clip views, e.g. 0,4,8 (default: all; the protocol's 4 for consistent4d)."),
    input_view: int | None = typer.Option(None, "--input-view", help="The clip's input view (default: from clip.json, else the view at elevation 0, azimuth 0)."),
    gt_fps: float | None = typer.Option(None, "--gt-fps", help="Frame rate of a clip without clip.json (for matching by time)."),
    lpips: str = typer.Option("vgg,alex", "--lpips", help="LPIPS networks for the full protocol: vgg, alex, vgg,alex or none (faster)."),
    clip_model: Path | None = typer.Option(None, "--clip-model", help="ImageDream model folder whose image_encoder gives CLIP similarity (default: the registry's imagedream, if on disk)."),
    backend: str = typer.Option("auto", "--backend", help="Renderer backend: auto, torch, numba, gsplat, dgr."),
    device: str | None = typer.Option(None, "--device", help="Torch device for rendering and metrics, e.g. cpu or cuda."),
    keep_crop: bool = typer.Option(False, "--keep-crop", help="Compare a reconstruct output as reconstructed, without "
                                   "undoing its input crop (default: mapped back to the clip's cameras, see below)."),
    details: bool = typer.Option(False, "--details", help="Also print per-view tables."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or tables; only the summary line."),
) -> None:
    """Measure a 4D reconstruction against a clip with ground truth: PSNR, SSIM, LPIPS, mask IoU per frame and
    view (input view and novel views apart), opacity-weighted Chamfer and temporal error with gt/*.ply.

    Writes metrics.json and comparison.png (ground truth above, prediction below) to --out (default PRED)."""
    from rich.console import Console

    from video2gs.compute import resolve_device
    from video2gs.pipeline.options import about
    from video2gs.render import check_backend
    from video2gs.data.layout import open_clip
    from video2gs.fileio import ensure_writable_dir
    from video2gs.metrics import report
    from video2gs.metrics.evaluate import PROTOCOLS, Settings, baseline_methods, evaluate as run_evaluation
    from video2gs.metrics.evaluate import input_view_of, prediction_method
    from video2gs.progress import Reporter
    from video2gs.sequence import Sequence

    start = time.perf_counter()
    if protocol not in PROTOCOLS:
        raise UserError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if pred is None and not baseline:
        raise UserError("give PRED (a reconstruction to evaluate) or at least one --baseline")
    if pred is None and out is None:
        raise UserError("without PRED, give --out FOLDER for metrics.json")
    if size is not None and not 16 <= size <= 4096:
        raise UserError(f"--size must be between 16 and 4096, got {size}")
    if gt_fps is not None and not gt_fps > 0:
        raise UserError(f"--gt-fps must be positive, got {gt_fps}")
    nets = _parse_nets(lpips)
    view_list = _parse_views(views)
    with about("device"):
        device = str(resolve_device(device)) if device is not None else None
    with about("backend"):
        check_backend(backend)

    clip = open_clip(gt, fps=gt_fps)
    seq = Sequence.open(pred) if pred is not None else None
    methods = [prediction_method(seq, clip, keep_crop=keep_crop)] if seq is not None else []
    chosen_input = input_view_of(clip, input_view)
    methods += baseline_methods(baseline, clip, methods[0] if methods else None, chosen_input)
    folder = out if out is not None else (seq.root if seq.kind != "file" else seq.root.parent)
    ensure_writable_dir(folder)
    settings = Settings(protocol=protocol, size=size, views=view_list, lpips_nets=nets,
                        clip_encoder=str(clip_model) if clip_model else None, input_view=chosen_input,
                        backend=backend, device=device)
    with Reporter(quiet=quiet) as rep:
        ev = run_evaluation(clip, methods, settings, reporter=rep)
    inputs = {"pred": str(pred) if pred is not None else None, "gt": str(gt), "baselines": list(dict.fromkeys(baseline))}
    metrics_path = report.write_metrics(folder / report.METRICS_FILE, ev, inputs)
    grid_path = report.write_grid(folder / report.GRID_FILE, ev)
    csv_path = report.write_csv(csv_file, ev) if csv_file is not None else None

    if not quiet:
        console = Console(highlight=False)
        console.print(report.summary_table(ev))
        geometry = report.geometry_table(ev)
        if geometry is not None:
            console.print(geometry)
        if details:
            for m in ev.methods:
                console.print(report.per_view_table(ev, m))
        for note in ev.notes:
            console.print(f"[dim]note:[/] {note}", soft_wrap=True)
    main = ev.methods[0]
    novel = ev.summary(main)["novel"]
    net = "vgg" if protocol == "consistent4d" else (nets[0] if nets else None)
    headline = f"novel views: PSNR {novel['psnr']:.2f} dB" if novel["images"] else "no novel views"
    if novel["images"] and net:
        headline += f", LPIPS-{net} {novel['lpips_' + net]:.4f}"
    written = ", ".join(str(p) for p in (metrics_path, grid_path, csv_path) if p is not None)
    frames = len(ev.settings["frames"])
    typer.echo(f"evaluated {', '.join(ev.methods)} on {frames} frame{'s' if frames != 1 else ''} x "
               f"{len(ev.settings['views'])} views of {gt}: {main} {headline} -> {written} "
               f"in {time.perf_counter() - start:.1f} s")
