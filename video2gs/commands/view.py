"""``video2gs view OUT``: play a sequence in the browser (a local viser server) until Ctrl-C."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from video2gs.commands.render import parse_background
from video2gs.errors import UserError
from video2gs.viewer.source import Source


def view(
    path: Path = typer.Argument(..., help="Output folder, folder of PLYs, or a single .ply/.splat file."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on. The default is this machine only; 0.0.0.0 opens it to the network."),
    port: int | None = typer.Option(None, "--port", help="TCP port. Default 8080, or the next free port above it when 8080 is taken; an explicit port that is taken is an error; 0 lets the system choose."),
    fps: float | None = typer.Option(None, "--fps", help="Playback rate in frames per second (default: the sequence's own, else 15)."),
    background: str = typer.Option("white", "--background", help="Initial background: white, black or #rrggbb (also a control in the page)."),
    x3: bool = typer.Option(True, "--x3/--no-x3", help="Offer OUT/gaussians_x3/ next to the key frames when it exists."),
    cache_frames: int = typer.Option(32, "--cache-frames", help="Frames kept in memory (least recently shown are dropped)."),
    seconds: float | None = typer.Option(None, "--seconds", hidden=True, help="Serve for this long, then stop (for scripts and tests)."),
) -> None:
    """Open an interactive viewer of a sequence: play/pause, frame slider, speed, orbit/pan/zoom.

    Example: video2gs view out/   then open the printed URL (http://127.0.0.1:8080).
    """
    from video2gs.viewer.viser_app import DEFAULT_PORT, SequenceViewer

    if port is not None and not 0 <= port <= 65535:
        raise UserError(f"--port must lie in 0..65535, got {port}")
    if cache_frames < 1:
        raise UserError(f"--cache-frames must be at least 1, got {cache_frames}")
    rgb = tuple(int(round(255 * c)) for c in parse_background(background))
    source = Source.open(path, fps=fps, x3=x3)
    viewer = SequenceViewer(source, host=host, port=port, background=rgb, cache_frames=cache_frames)
    viewer.start()
    try:
        seqs = ", ".join(f"{name} ({len(s)} frames at {s.fps:g} fps)" for name, s in source.sequences.items())
        if port is None and viewer.port != DEFAULT_PORT:
            typer.echo(f"port {DEFAULT_PORT} is in use; using {viewer.port}")
        typer.echo(f"viewing {path}: {seqs}")
        typer.echo(f"open {viewer.url}  (Ctrl-C to stop)", err=False)
        end = None if seconds is None else time.monotonic() + seconds
        while end is None or time.monotonic() < end:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        viewer.stop()
    typer.echo(f"stopped; showed {viewer.shown} frame{'s' if viewer.shown != 1 else ''}")
