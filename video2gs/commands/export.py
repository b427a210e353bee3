"""``video2gs export OUT --web DIR`` (a static page that plays the sequence) and
``video2gs export OUT --format splat|ply -o DIR`` (the frames in that format for other viewers)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from video2gs.commands.render import parse_background
from video2gs.errors import UserError
from video2gs.formats import save_gaussians
from video2gs.formats.web import DEFAULT_WEB_MIN_OPACITY
from video2gs.progress import Reporter
from video2gs.sequence import GAUSSIANS_DIR, MANIFEST, frame_entries, read_manifest, write_manifest
from video2gs.viewer.source import Source
from video2gs.viewer.web_export import MB, export_web, staged_dir

FORMATS = ("splat", "ply")
EXPORT_KIND = "export"  # manifest source.kind of a --format export (lets a later export replace it)


def _is_file_export(folder: Path) -> bool:
    try:
        manifest = read_manifest(folder)
    except UserError:
        return False
    return bool(manifest) and (manifest.get("source") or {}).get("kind") == EXPORT_KIND


def export_files(source: Source, out: Path, fmt: str, reporter: Reporter) -> tuple[int, str]:
    """Write every sequence of ``source`` as ``out/<sequence>/000000.<fmt>`` plus a manifest, in the
    frame the input was recorded in (that of its first file); returns (frames written, up axis)."""
    written, up, mixed = 0, None, False
    with staged_dir(out, _is_file_export, "export folder") as tmp:
        manifest = {"source": {"kind": EXPORT_KIND, "path": str(source.path), "format": fmt}}
        for name, seq in source.sequences.items():
            with reporter.stage(name, len(seq)) as stage:
                for i in range(len(seq)):
                    f = seq.read(i)
                    if up is None:
                        up = f.up
                    elif f.up != up and not mixed:
                        mixed = True
                        reporter.warn(f"{f.path} is stored with up {f.up}; every frame is written with up {up}, like the first")
                    # Keep every Gaussian the file had: this changes the container, not the content.
                    save_gaussians(tmp / name / f"{i:06d}.{fmt}", f.gaussians, up=up, min_opacity=None)
                    written += 1
                    stage.advance()
            entries = [dict(e, file=f"{name}/{e['index']:06d}.{fmt}") for e in frame_entries(len(seq), seq.fps, name)]
            if name == GAUSSIANS_DIR:
                manifest.update(fps=seq.fps, frames=entries)
            else:  # gaussians_x3 -> "x3", where reconstruct records it
                manifest[name.removeprefix("gaussians_")] = {"fps": seq.fps, "frames": entries}
        manifest["up"] = up
        write_manifest(tmp, manifest)
    return written, up


def export(
    path: Path = typer.Argument(..., help="Output folder, folder of PLYs, or a single .ply/.splat file."),
    web: Path | None = typer.Option(None, "--web", help="Write a static web page that plays the sequence into this folder."),
    fmt: str | None = typer.Option(None, "--format", help="Write the frames as 'splat' or 'ply' files instead (with --output)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Folder for --format (default: PATH/export_FORMAT, or FILE_FORMAT/ beside a single file)."),
    max_size: float = typer.Option(100.0, "--max-size", help="--web: refuse to write more than this many megabytes (10^6 B) in all."),
    min_opacity: float = typer.Option(DEFAULT_WEB_MIN_OPACITY, "--min-opacity", help="--web: drop Gaussians below this opacity in every frame."),
    max_splats: int | None = typer.Option(None, "--max-splats", help="--web: keep at most this many Gaussians per frame (the largest, most opaque)."),
    background: str = typer.Option("white", "--background", help="--web: initial background, white, black or #rrggbb (also a control in the page)."),
    fps: float | None = typer.Option(None, "--fps", help="Playback rate (default: the sequence's own, else 15)."),
    x3: bool = typer.Option(True, "--x3/--no-x3", help="Include OUT/gaussians_x3/ when it exists."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Export a sequence: a web page (--web DIR) or a folder of .splat/.ply frames (--format).

    Example: video2gs export out/ --web site/ and then python -m http.server -d site/ 8000

    Example: video2gs export out/ --format splat -o out_splat/
    """
    start = time.perf_counter()
    if (web is None) == (fmt is None):
        raise UserError("choose one of --web DIR or --format splat|ply")
    if not max_size > 0:
        raise UserError(f"--max-size must be positive, got {max_size}")
    if not 0 <= min_opacity < 1:
        raise UserError(f"--min-opacity must lie in [0, 1), got {min_opacity}")
    if max_splats is not None and max_splats < 1:
        raise UserError(f"--max-splats must be at least 1, got {max_splats}")
    if fmt is not None and fmt.lower() not in FORMATS:
        raise UserError(f"--format must be splat or ply, got {fmt!r}")
    rgb = parse_background(background)
    source = Source.open(path, fps=fps, x3=x3)
    frames = sum(len(s) for s in source.sequences.values())
    with Reporter(quiet=quiet) as rep:
        if web is not None:
            hexcolour = "#" + "".join(f"{round(255 * c):02x}" for c in rgb)
            result = export_web(
                source, web, max_mb=max_size, min_opacity=min_opacity, max_splats=max_splats, background=hexcolour, stage=rep.stage
            )
            splats = sum(sum(s["splats"]) for s in result["sequences"].values())
            summary = (
                f"exported {frames} frame{'s' if frames != 1 else ''} ({splats / frames:,.0f} Gaussians per frame on average) -> {web} "
                f"({result['bytes'] / MB:.1f} MB); serve it with: python -m http.server -d {web}"
            )
        else:
            fmt = fmt.lower()
            if output is None:
                output = path.parent / f"{path.stem}_{fmt}" if path.is_file() else path / f"export_{fmt}"
            written, up = export_files(source, output, fmt, rep)
            summary = f"exported {written} frame{'s' if written != 1 else ''} as .{fmt} (up {up}) -> {output} ({output / MANIFEST})"
    typer.echo(f"{summary} in {time.perf_counter() - start:.1f} s")
