"""Contact sheets of a clip: chosen views (rows) x frames (columns), each image above its mask."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from video2gs.data.layout import Clip, open_clip
from video2gs.fileio import atomic_path


def contact_sheet(clip: Clip | str | Path, views=None, frames=None, masks: bool = True, tile: int = 128) -> np.ndarray:
    """uint8 RGB [rows·tile, cols·tile, 3]: for each view a row of frames (and a row of its masks).

    views: ids (default: the input view, a quarter turn of the fixed views and two random ones);
    frames: indices (default: up to 6 spread over the clip).
    """
    clip = clip if isinstance(clip, Clip) else open_clip(clip)
    if views is None:
        fixed = clip.fixed_views or clip.views
        views = list(dict.fromkeys([fixed[0], fixed[len(fixed) // 4], fixed[len(fixed) // 2], *clip.random_views[:2]]))
    if frames is None:
        frames = sorted(set(np.linspace(0, clip.num_frames - 1, min(6, clip.num_frames)).round().astype(int).tolist()))
    rows = []
    for v in views:
        imgs = [cv2.resize(clip.image(v, t), (tile, tile), interpolation=cv2.INTER_AREA) for t in frames]
        rows.append(np.concatenate(imgs, axis=1))
        if masks:
            ms = [cv2.resize(clip.mask(v, t), (tile, tile), interpolation=cv2.INTER_AREA) for t in frames]
            rows.append(np.repeat(np.concatenate(ms, axis=1)[..., None], 3, axis=-1))
    sheet = np.concatenate(rows, axis=0)
    return np.clip(np.rint(sheet * 255), 0, 255).astype(np.uint8)


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 image as PNG atomically."""
    path = Path(path)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ValueError("PNG encoding failed")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())
    return path
