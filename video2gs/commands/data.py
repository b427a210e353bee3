"""``video2gs data make OUT --objects ... --motions ...``: synthetic multi-view 4D datasets with exact
ground truth (the library is :mod:`video2gs.data.make`; the layout :mod:`video2gs.data.layout`), and
``video2gs data preview CLIP``: a contact sheet of a clip.

``--objects`` and ``--motions`` take several values after one flag (``--objects a.splat b.splat``),
as well as the flag repeated; put OUT first.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from video2gs.commands.multi_value import multi_value_command
from video2gs.data.motions import MOTIONS, parse_motions
from video2gs.errors import UserError
from video2gs.progress import Reporter

app = typer.Typer(
    name="data",
    help="Synthetic 4D datasets with exact ground truth (and readers for training).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)

_MakeCommand = multi_value_command("--objects", "--motions", "--animations")
_PreviewCommand = multi_value_command("--views", "--frames")


def _split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise UserError(f"--split needs three fractions train,val,test (e.g. 0.8,0.1,0.1), got {text!r}")
    return parts  # type: ignore[return-value]


@app.command("make", cls=_MakeCommand)
def make(
    out: Path = typer.Argument(..., help="Dataset folder to create (or to resume: re-run the same command)."),
    objects: list[Path] = typer.Option(..., "--objects", help="Object files: .ply/.splat Gaussians, .md2 (animated, texture next to it), OBJ/GLB/glTF/PLY/STL/OFF meshes."),
    motions: list[str] = typer.Option([], "--motions", help=f"Procedural motions for static objects: {', '.join(MOTIONS)}, or all (comma or space separated)."),
    animations: list[str] = typer.Option([], "--animations", help="MD2 animations to use (default: all of the model's, e.g. run stand wave)."),
    texture: Path | None = typer.Option(None, "--texture", help="Texture image for an MD2 model (default: <model stem>*.bmp/.png next to it)."),
    frames: int = typer.Option(16, "--frames", help="Frames per clip."),
    fps: float = typer.Option(8.0, "--fps", help="Frames per second of the clips (the reference's training renders use 8)."),
    resolution: int = typer.Option(256, "--resolution", help="Image side in pixels (the reference renders 512)."),
    fixed_views: int = typer.Option(16, "--fixed-views", help="Views at elevation 0, azimuth k·360/n degrees (view 0 = front = the input video)."),
    random_views: int = typer.Option(16, "--random-views", help="Views at random elevation U[-5, 30] deg (positive = above) and azimuth U[0, 360)."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random choice (motion parameters, cameras, surface samples, split)."),
    split: str = typer.Option("0.8,0.1,0.1", "--split", help="Fractions of objects in train,val,test."),
    image_format: str = typer.Option("png", "--image-format", help="png (lossless) or jpg (as the reference stores them)."),
    mesh_gaussians: int | None = typer.Option(None, "--mesh-gaussians", help="Ground-truth Gaussians sampled on a mesh surface per frame (default 50,000 at 256², scaled with the resolution)."),
    backend: str = typer.Option("auto", "--backend", help="Splat renderer backend for Gaussian objects: auto, numba, torch, gsplat."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Write a multi-view 4D dataset: per clip 16 fixed + N random views of every frame (images on
    white, masks, cameras), the exact ground-truth Gaussians per frame (gt/*.ply), the monocular
    input video (input.mp4) and clip.json; dataset.json lists clips, sources (licence, attribution),
    motions, the train/val/test split and every option.

    Example: video2gs data make ds/ --objects ../shared/data/splats/*.splat ../shared/data/md2/faerie.md2 --motions spin bend --animations run wave
    """
    from video2gs.data.make import MakeOptions, make_dataset

    start = time.perf_counter()
    options = MakeOptions(
        frames=frames, fps=fps, resolution=resolution, fixed_views=fixed_views, random_views=random_views, seed=seed,
        image_format=image_format.lower().lstrip("."), split=_split(split),
        mesh_gaussians=mesh_gaussians, backend=backend,
    )
    if backend != "auto":
        from video2gs.pipeline.options import about
        from video2gs.render import check_backend

        with about("backend"):
            check_backend(backend)
    motion_names = parse_motions(motions)
    with Reporter(quiet=quiet) as rep:
        result = make_dataset(out, objects, motion_names, options, animations=[a for x in animations for a in x.split(",") if a] or None,
                              texture=texture, reporter=rep)
    counts = ", ".join(f"{s} {len(result.splits[s])}" for s in ("train", "val", "test"))
    resumed = f" ({len(result.skipped)} already complete)" if result.skipped else ""
    typer.echo(
        f"made {len(result.made)} clip{'s' if len(result.made) != 1 else ''}{resumed} in {result.out} "
        f"(objects by split: {counts}) in {time.perf_counter() - start:.1f} s"
    )


@app.command("preview", cls=_PreviewCommand)
def preview(
    clip: Path = typer.Argument(..., help="A clip folder of a dataset (DATASET/<object>-<motion>)."),
    output: Path = typer.Option(None, "--output", "-o", help="PNG to write (default: <clip name>-preview.png in the current folder)."),
    views: list[int] = typer.Option([], "--views", help="View ids, one row each (default: front, quarter turns, two random views)."),
    frames: list[int] = typer.Option([], "--frames", help="Frame indices, one column each (default: up to 6 spread over the clip)."),
    tile: int = typer.Option(128, "--tile", help="Side of each image in the sheet, pixels."),
) -> None:
    """A contact sheet of a clip: views x frames, each row of images above its masks."""
    from video2gs.data.preview import contact_sheet, write_png

    if not 16 <= tile <= 1024:
        raise UserError(f"--tile must be in 16..1024, got {tile}")
    sheet = contact_sheet(clip, views=views or None, frames=frames or None, tile=tile)
    path = write_png(output or Path(f"{Path(clip).resolve().name}-preview.png"), sheet)
    typer.echo(f"wrote {path} ({sheet.shape[1]}x{sheet.shape[0]})")
