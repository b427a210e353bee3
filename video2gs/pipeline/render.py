"""Stage 5, render: the turntable videos of the run (``videos/orbit.mp4``, ``fixed.mp4`` and ``_x3``)."""

from __future__ import annotations

from pathlib import Path

from video2gs.pipeline.run_folder import VIDEOS_DIR
from video2gs.progress import Reporter
from video2gs.render.turntable import render_videos
from video2gs.sequence import X3_DIR, Sequence


def render_stage(run, rep: Reporter, *, size: int, backend: str, device, keys: bool = True, x3: bool) -> list[Path]:
    """Videos of ``gaussians/`` (``keys``, read from ``run.source``) and/or ``gaussians_x3/`` (``x3``,
    from the staging folder) into the staging folder's ``videos/``."""
    sequences = [("", Sequence.open(run.source))] if keys else []
    if x3:
        sequences.append(("_x3", Sequence.open(run.staging / X3_DIR, fps=run.manifest["x3"]["fps"])))
    written = []
    for suffix, seq in sequences:
        written += render_videos(
            seq, run.staging / VIDEOS_DIR, orbit=True, fixed=True, size=size, backend=backend, device=device,
            suffix=suffix, reporter=rep,
        )
    return written
