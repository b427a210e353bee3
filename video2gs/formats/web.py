"""The frames of a web export (``video2gs export --web``): what the static page loads.

Layout of the export folder (written by :mod:`video2gs.viewer.web_export`)::

    index.html, viewer.js, vendor/          the page and the pinned Spark / three.js files
    sequence.json                           WEB_SCHEMA, see :func:`web_manifest`
    frames/gaussians/000000.splat …         one antimatter15 .splat per frame
    frames/gaussians_x3/000000.splat …      the interpolated sequence, when there is one

Frame convention: the files are written in the **internal +Y-up frame** (``WEB_UP = "y"``),
because the page draws them with three.js / Spark, whose world is +Y up (camera.VIEWER_UP). Our
ordinary files are −Y up (``EXPORT_UP``), which a bare Spark ``SplatMesh`` shows upside down
(Spark's own examples rotate such COLMAP-frame captures 180° about X); doing the rotation here
keeps the page free of conventions. Each frame is pruned by opacity and optionally capped to the
``max_splats`` largest, most opaque Gaussians (antimatter15's own ordering key), so a long
sequence stays small. ``.splat`` costs 32 B per Gaussian.
"""

from __future__ import annotations

from pathlib import Path

import torch

from video2gs.camera import viewer_camera
from video2gs.formats.splat import RECORD, write_splat
from video2gs.gaussians import Gaussians

WEB_SCHEMA = "video2gs-web/1"
WEB_UP = "y"  # three.js / Spark world: +Y up, the internal frame
FRAME_SUFFIX = ".splat"
BYTES_PER_SPLAT = RECORD.itemsize  # 32
DEFAULT_WEB_MIN_OPACITY = 0.02  # drops the faint haze of L4GM frames; visually lossless at 0.02


def reduce_frame(g: Gaussians, min_opacity: float = DEFAULT_WEB_MIN_OPACITY, max_splats: int | None = None) -> Gaussians:
    """One frame [N,14] -> [M,14], M <= N: opacity >= ``min_opacity``, then at most ``max_splats`` kept,
    largest σx·σy·σz·α first (the order .splat files are written in). May return zero Gaussians."""
    keep = g.data[g.opacity >= min_opacity] if min_opacity > 0 else g.data
    if max_splats is not None and len(keep) > max_splats:
        size = keep[:, 4:7].double().prod(dim=1) * keep[:, 3].double()
        keep = keep[torch.argsort(-size, stable=True)[:max_splats]]
    return Gaussians(keep)


def frame_path(sequence: str, index: int) -> str:
    """Relative path of frame ``index`` of ``sequence`` inside the export: frames/gaussians/000000.splat."""
    return f"frames/{sequence}/{index:06d}{FRAME_SUFFIX}"


def write_web_frame(path: str | Path, g: Gaussians) -> int:
    """Write a reduced frame [M,14] (internal frame) as +Y-up .splat; returns the bytes written."""
    count = write_splat(path, g, up=WEB_UP, min_opacity=None)
    return count * BYTES_PER_SPLAT


def web_manifest(sequences: dict[str, dict], *, title: str, background: str) -> dict:
    """The page's ``sequence.json``.

    sequences: name -> {"fps": float, "frames": [relative .splat paths], "splats": [count per frame]},
    in the order the page offers them (the first is shown first). The camera is :func:`viewer_camera`
    (the front view of ``video2gs render``); ``up`` says the frames' frame for other readers.
    """
    return {
        "schema": WEB_SCHEMA,
        "title": title,
        "up": WEB_UP,
        "camera": viewer_camera(),
        "background": background,
        "sequences": sequences,
    }
