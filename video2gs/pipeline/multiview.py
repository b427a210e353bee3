"""The first frame seen from four sides: view sources and L4GM's azimuth alignment.

Three sources give views 1..3 (azimuth 90/180/270) of frame 0:
  * ``imagedream``: generate 4 views, reconstruct them statically (L4GM at T = 1), find the
    azimuth at which that object looks like the video frame, render the aligned views;
  * a folder of the user's own images;
  * ``none``: blank white views (for models trained that way, and for tests).

Images here are float32 [H,W,3] on white in [0,1] unless stated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from video2gs.camera import Cameras
from video2gs.errors import UserError
from video2gs.gaussians import Gaussians
from video2gs.render import render

VIEW_AZIMUTHS = (0, 90, 180, 270)
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass
class Alignment:
    """Result of :func:`align_azimuth`: best azimuth (degrees), its MSE, and every candidate's."""

    azimuth: float
    error: float
    candidates: np.ndarray = field(repr=False)  # [C] degrees
    errors: np.ndarray = field(repr=False)  # [C] MSE


def align_azimuth(
    gaussians: Gaussians,
    frame0: np.ndarray,
    *,
    step: float = 1.0,
    start: float = -180.0,
    stop: float = 180.0,
    size: int = 256,
    batch: int = 180,
    backend: str = "auto",
    device=None,
) -> Alignment:
    """Find the azimuth at which ``gaussians`` (one static frame) best matches ``frame0``.

    frame0: [H,W,3] float in [0,1] on white, H = W (resized to ``size`` with area filtering).
    Candidates are ``start, start+step, ... < stop`` (default -180..179 in 1 degree steps), all at
    elevation 0 and the default radius; renders at ``size`` on white, scored by the mean squared
    error over all pixels and channels, background included; the first minimum wins (as the
    reference does). Views are rendered in batches of ``batch`` cameras, one renderer call each.
    """
    if step <= 0 or stop <= start:
        raise UserError("azimuth search needs step > 0 and a non-empty range")
    target = torch.from_numpy(_resize_area(frame0, size)).float()  # [S,S,3]
    candidates = np.arange(start, stop, step, dtype=np.float64)
    errors = np.empty(len(candidates))
    for i in range(0, len(candidates), batch):
        cams = Cameras.orbit(candidates[i : i + batch])
        rgb = render(gaussians, cams, size, size, background=(1.0, 1.0, 1.0), backend=backend, device=device).rgb
        errors[i : i + batch] = ((rgb.float().cpu() - target) ** 2).mean(dim=(1, 2, 3)).numpy()
    best = int(np.argmin(errors))
    return Alignment(float(candidates[best]), float(errors[best]), candidates, errors)


def render_views(
    gaussians: Gaussians,
    azimuths,
    size: int = 256,
    *,
    supersample: int = 2,
    backend: str = "auto",
    device=None,
) -> np.ndarray:
    """Render [V,size,size,3] float views at elevation 0 on white.

    The reference renders at 512 and reduces to 256; ``supersample`` = 2 does the same with area
    filtering (1 renders at ``size`` directly).
    """
    hi = size * supersample
    rgb = render(gaussians, Cameras.orbit(list(azimuths)), hi, hi, background=(1.0, 1.0, 1.0), backend=backend, device=device).rgb
    views = rgb.float().cpu().numpy()
    if supersample > 1:
        views = views.reshape(len(views), size, supersample, size, supersample, 3).mean(axis=(2, 4))
    return np.clip(views, 0.0, 1.0).astype(np.float32)


def aligned_views(gaussians: Gaussians, azimuth: float, size: int = 256, **kwargs) -> np.ndarray:
    """The 4 conditioning views [4,size,size,3] at ``azimuth + 0/90/180/270``."""
    return render_views(gaussians, [azimuth + a for a in VIEW_AZIMUTHS], size, **kwargs)


def blank_views(size: int = 256) -> np.ndarray:
    """Views 1..3 for ``--views none``: white [3,size,size,3]."""
    return np.ones((3, size, size, 3), dtype=np.float32)


def load_user_views(folder: Path, size: int = 256) -> tuple[np.ndarray, dict[int, Path]]:
    """Read the user's views of frame 0 from ``folder``.

    File names carry the azimuth in degrees as their stem's leading number: ``090.png``,
    ``180.png``, ``270.png`` are required; ``000.png`` (the input view) is optional and unused by
    the network (the video frame is always view 0). Any of png/jpg/webp/bmp. RGBA images are
    composited on white; other images must already be on white. Non-square images are padded
    with white to a square, then resized to ``size`` with area filtering. Returns views
    [3,size,size,3] for azimuths 90/180/270 and the files used.
    """
    import cv2

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--views {folder}: not a folder (expected 'imagedream', 'none' or a folder of 090/180/270 images)")
    found: dict[int, Path] = {}
    for p in sorted(folder.iterdir()):
        m = re.match(r"^(\d{1,3})(?:\D.*)?$", p.stem)
        if p.suffix.lower() in _IMAGE_SUFFIXES and m:
            found.setdefault(int(m.group(1)) % 360, p)
    missing = [a for a in (90, 180, 270) if a not in found]
    if missing:
        raise UserError(
            f"--views {folder}: missing view(s) at azimuth {', '.join(map(str, missing))} "
            "(name them 090.png, 180.png, 270.png; 000.png optional)"
        )
    views = []
    for a in (90, 180, 270):
        img = cv2.imread(str(found[a]), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise UserError(f"cannot read view image {found[a]}")
        views.append(_resize_area(_to_white_square(img), size))
    return np.stack(views), {a: found[a] for a in (90, 180, 270)}


def _to_white_square(img: np.ndarray) -> np.ndarray:
    """OpenCV image (gray, BGR or BGRA, 8 or 16 bit) -> RGB float [S,S,3] on white, padded square."""
    import cv2

    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    img = img.astype(np.float32) / scale
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.shape[-1] == 4:
        rgb = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
        a = img[..., 3:]
        img = rgb * a + (1.0 - a)
    else:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    s = max(h, w)
    canvas = np.ones((s, s, 3), np.float32)
    canvas[(s - h) // 2 : (s - h) // 2 + h, (s - w) // 2 : (s - w) // 2 + w] = img
    return canvas


def _resize_area(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    img = np.asarray(img, dtype=np.float32)
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
