"""Stage 2, views: the first frame seen from four sides — view sources and L4GM's azimuth alignment.

Three sources give views 1..3 (azimuth 90/180/270) of frame 0:
  * ``imagedream``: generate 4 views, reconstruct them statically (L4GM at T = 1), find the
    azimuth at which that object looks like the video frame, render the aligned views;
  * a folder of the user's own images;
  * ``none``: blank white views (for models trained that way, and for tests);
  * ``mirror``: for models trained with them (the bundled ``demo``): the frame itself at 90° and
    270°, its mirror image at 180° (:func:`video2gs.reconstructor.mirror_side_views`), made anew
    for every frame by the reconstruct stage; ``views/`` shows frame 0's.

Images here are float32 [H,W,3] on white in [0,1] unless stated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from video2gs.camera import INPUT_AZIMUTHS, Cameras
from video2gs.errors import UserError
from video2gs.gaussians import Gaussians
from video2gs.images import on_white, pad_square, read_image, resize_area, to_float
from video2gs.render import render

SIDE_AZIMUTHS = INPUT_AZIMUTHS[1:]  # views 1..3: azimuth 90/180/270
_SIDE_DEG = tuple(int(a) for a in SIDE_AZIMUTHS)  # as written in file names: 090, 180, 270
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
    target = torch.from_numpy(resize_area(frame0, size)).float()  # [S,S,3]
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
    return render_views(gaussians, [azimuth + a for a in INPUT_AZIMUTHS], size, **kwargs)


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
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--views {folder}: not a folder (expected 'imagedream', 'none' or a folder of 090/180/270 images)")
    found: dict[int, Path] = {}
    for p in sorted(folder.iterdir()):
        m = re.match(r"^(\d{1,3})(?:\D.*)?$", p.stem)
        if p.suffix.lower() in _IMAGE_SUFFIXES and m:
            found.setdefault(int(m.group(1)) % 360, p)
    missing = [a for a in _SIDE_DEG if a not in found]
    if missing:
        raise UserError(
            f"--views {folder}: missing view(s) at azimuth {', '.join(map(str, missing))} "
            "(name them 090.png, 180.png, 270.png; 000.png optional)"
        )
    views = []
    for a in _SIDE_DEG:
        try:
            img = read_image(found[a])
        except UserError as exc:
            raise UserError(f"cannot read view image {found[a]}") from exc
        views.append(resize_area(pad_square(on_white(to_float(img))), size))
    return np.stack(views), {a: found[a] for a in _SIDE_DEG}


# -- the stage ---------------------------------------------------------------------------------------
def resolve_views_source(views: str, imagedream_on_disk: bool) -> str:
    """``--views auto`` -> imagedream when its weights are on disk, else none; others unchanged."""
    if views == "auto":
        return "imagedream" if imagedream_on_disk else "none"
    return views


def make_views(source: str, frame0: np.ndarray, views_dir: Path, *, size: int, user_views=None,
               imagedream=None, rep=None) -> dict:
    """Write ``views/view_{090,180,270}.png`` (what conditions chunk 0); returns the manifest record.

    source: "none" | "folder" | "imagedream" | "mirror". frame0: [S,S,3] float on white (the cropped frame 0).
    user_views: (views [3,S,S,3], files) from :func:`load_user_views` for "folder".
    imagedream: a callable ``frame0 -> (views [3,S,S,3], record, extra images {name: [S,S,3]})``.
    """
    from video2gs.images import write_png

    record: dict = {"source": source}
    if source == "none":
        sides = blank_views(size)
    elif source == "mirror":
        from video2gs.reconstructor import mirror_side_views

        sides = mirror_side_views(torch.from_numpy(np.ascontiguousarray(frame0)).permute(2, 0, 1)[None])[0].permute(0, 2, 3, 1).numpy()
    elif source == "folder":
        sides, files = user_views
        record["files"] = {str(k): str(Path(v).resolve()) for k, v in files.items()}
    elif source == "imagedream":
        sides, extra_record, extra_images = imagedream(frame0)
        record.update(extra_record)
        for name, img in extra_images.items():
            write_png(views_dir / f"{name}.png", img)
    else:
        raise ValueError(f"unknown views source {source!r}")
    for az, img in zip(_SIDE_DEG, sides):
        write_png(views_dir / f"view_{az:03d}.png", img)
    return record


def imagedream_views(frame0: np.ndarray, *, pipe_loader, recon, opts, rep, size: int):
    """Generate 4 views, reconstruct them statically (T = 1), align the azimuth, render aligned views.

    Returns (views 1..3 [3,S,S,3], manifest record, images to keep: generated_* and aligned_*).
    """
    from video2gs.images import quantize, to_chw

    with rep.stage("imagedream", opts.steps) as st:
        pipe = pipe_loader()
        generated = pipe(
            frame0,
            prompt=opts.prompt,
            negative_prompt=opts.negative_prompt,
            guidance_scale=opts.guidance,
            num_inference_steps=opts.steps,
            elevation=opts.elevation,
            seed=opts.seed,
            progress=lambda done, total: st.update(completed=done, total=total),
        )  # [4,256,256,3], input view first
        del pipe
    with rep.stage("align", 1) as st:
        net_size = recon.config.input_size
        x = torch.stack([to_chw(quantize(v), net_size) for v in generated])[None]  # [1,4,3,S,S]
        static = Gaussians(recon(x)[0])  # [N,14]
        found = align_azimuth(static, frame0, step=opts.align_step, backend=opts.backend, device=None)
        aligned = aligned_views(static, found.azimuth, size, backend=opts.backend)
        st.advance()
    rep.info(f"azimuth alignment: {found.azimuth:+.1f} deg (MSE {found.error:.4f})")
    record = {
        "azimuth": found.azimuth,
        "alignment_mse": found.error,
        "align_step": opts.align_step,
        "prompt": opts.prompt,
        "guidance": opts.guidance,
        "steps": opts.steps,
        "elevation": opts.elevation,
        "seed": opts.seed,
    }
    images = {f"generated_{int(az):03d}": img for az, img in zip(INPUT_AZIMUTHS, generated)}
    images.update({f"aligned_{int(az):03d}": img for az, img in zip(INPUT_AZIMUTHS, aligned)})
    return aligned[1:], record, images
