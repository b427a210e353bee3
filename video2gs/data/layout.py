"""The on-disk layout of one multi-view 4D clip and of a dataset of clips (L4GM's per-view layout).

One clip (``docs/l4gm.md`` §6; the same per-view folders the reference's Blender script writes)::

    <clip>/
      clip.json                     this clip's record (written LAST: its presence marks the clip complete)
      input.mp4                     the monocular input video (view ``input_view``), for ``reconstruct``
      gt/<t:03d>.ply                the exact ground-truth Gaussians of frame t (3DGS PLY, up recorded in the header)
      <view:03d>/img/<t:03d>.png    RGB on white (or .jpg, as the reference stores them)
      <view:03d>/mask/<t:03d>.png   alpha, 8-bit single channel
      <view:03d>/camera/elevation.npy  [T] degrees, **positive = camera above** (the reference's Blender sign)
      <view:03d>/camera/rotation.npy   [T] degrees, azimuth (0 = front camera on +Z, 90 = on +X)

A dataset is a folder of clips plus ``dataset.json`` (the clip list, sources with licence and
attribution, motions and their parameters, the train/val/test split, seed, tool version).

Cameras: the files hold the reference's Blender numbers; the pose of view v at frame t is
``camera.user_orbit(elevation[t], rotation[t], radius)`` (OpenGL c2w, the convention of
:mod:`video2gs.camera`), exactly what the reference loader computes with
``orbit_camera(-elevation, rotation)``. Nothing else here knows about camera axes.

Reading API (small and stable; used by ``evaluate`` and the training reader)::

    clip = open_clip(path)              # validates: UserError naming what is missing
    clip.views                          # [V] view ids (ints), sorted
    clip.num_frames                     # T
    clip.times                          # [T] float64 seconds, or None for a bare folder without clip.json
    clip.input_view                     # the monocular input view's id (None when unknown)
    clip.fixed_views, clip.random_views # id lists (from clip.json; empty when unknown)
    clip.elevation(v), clip.azimuth(v)  # [T] float64 degrees (file sign: positive elevation = above)
    clip.c2w(v)                         # [T,4,4] float32 OpenGL camera-to-world
    clip.cameras(t, views=None)         # Cameras with c2w [V,4,4] for frame t
    clip.image(v, t)                    # [H,W,3] float32 in [0,1], on white (clip.image_file(v, t): its path)
    clip.mask(v, t)                     # [H,W] float32 in [0,1]
    clip.radius                         # camera distance (1.5)
    clip.has_gt                         # True when gt/ exists
    clip.gt_path(t) / clip.load_gt(t)   # exact Gaussians of frame t (Path / Gaussians [N,14]); None/UserError without gt/
    clip.meta                           # the clip.json dict ({} when absent)

Writing (used by ``data make``): :func:`write_cameras`, :func:`write_view_frame`,
:func:`write_gt`, :func:`write_clip_record` (last), :func:`write_dataset_index`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from video2gs import __version__
from video2gs.camera import RADIUS, Cameras, user_orbit
from video2gs.errors import UserError
from video2gs.fileio import atomic_path, write_json_atomic
from video2gs.gaussians import Gaussians

CLIP_FILE = "clip.json"
DATASET_FILE = "dataset.json"
SCHEMA_VERSION = 1
GT_DIR = "gt"
INPUT_VIDEO = "input.mp4"
IMAGE_FORMATS = ("png", "jpg")
_VIEW_DIR = re.compile(r"^\d{3}$")


# -- names ---------------------------------------------------------------------------------------
def view_dir(clip_dir: Path, view: int) -> Path:
    return Path(clip_dir) / f"{int(view):03d}"


def image_path(clip_dir: Path, view: int, t: int, fmt: str = "png") -> Path:
    return view_dir(clip_dir, view) / "img" / f"{int(t):03d}.{fmt}"


def mask_path(clip_dir: Path, view: int, t: int) -> Path:
    return view_dir(clip_dir, view) / "mask" / f"{int(t):03d}.png"


def gt_file(clip_dir: Path, t: int) -> Path:
    return Path(clip_dir) / GT_DIR / f"{int(t):03d}.ply"


def camera_files(clip_dir: Path, view: int) -> tuple[Path, Path]:
    cam = view_dir(clip_dir, view) / "camera"
    return cam / "elevation.npy", cam / "rotation.npy"


# -- images ----------------------------------------------------------------------------------------
def decode_image(data: bytes, what: str) -> np.ndarray:
    """Encoded PNG/JPEG bytes -> float32 RGB [H,W,3] in [0,1]; an RGBA image is composited on white."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise UserError(f"{what}: cannot decode the image")
    arr = arr.astype(np.float32) / (65535.0 if arr.dtype == np.uint16 else 255.0)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.shape[-1] == 4:
        a = arr[..., 3:4]
        arr = arr[..., :3] * a + (1.0 - a)
    return np.ascontiguousarray(arr[..., [2, 1, 0]])  # BGR -> RGB


def decode_mask(data: bytes, what: str) -> np.ndarray:
    """Encoded mask PNG bytes -> float32 [H,W] in [0,1] (the alpha channel of an RGBA file)."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise UserError(f"{what}: cannot decode the mask")
    scale = 65535.0 if arr.dtype == np.uint16 else 255.0
    if arr.ndim == 3:
        arr = arr[..., 3] if arr.shape[-1] == 4 else arr[..., 0]
    return arr.astype(np.float32) / scale


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: missing {what}") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from exc


def _to_uint8(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x)
    if x.dtype == np.uint8:
        return x
    return np.clip(np.rint(x.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def _write_encoded(path: Path, image: np.ndarray) -> None:
    ext = path.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise UserError(f"{path}: cannot encode the image")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())


# -- writing ---------------------------------------------------------------------------------------
def write_cameras(clip_dir: Path, view: int, elevation_deg, azimuth_deg) -> None:
    """Write ``camera/elevation.npy`` and ``rotation.npy`` of one view: [T] float64 degrees each
    (elevation positive = camera above, the reference's Blender sign)."""
    elev_path, rot_path = camera_files(clip_dir, view)
    for path, values in ((elev_path, elevation_deg), (rot_path, azimuth_deg)):
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, arr)


def write_view_frame(clip_dir: Path, view: int, t: int, rgb, mask, fmt: str = "png") -> None:
    """Write the image (rgb [H,W,3], on white; uint8 or float in [0,1]) and mask ([H,W]) of view/frame."""
    if fmt not in IMAGE_FORMATS:
        raise UserError(f"image format must be one of {', '.join(IMAGE_FORMATS)}, got {fmt!r}")
    rgb8 = _to_uint8(rgb)
    mask8 = _to_uint8(mask)
    if mask8.ndim == 3:
        mask8 = mask8[..., 0]
    _write_encoded(image_path(clip_dir, view, t, fmt), np.ascontiguousarray(rgb8[..., ::-1]))  # RGB -> BGR
    _write_encoded(mask_path(clip_dir, view, t), mask8)


def write_gt(clip_dir: Path, t: int, gaussians: Gaussians) -> Path:
    """Write the exact Gaussians of frame t (nothing pruned) to ``gt/<t:03d>.ply``."""
    from video2gs.formats import save_gaussians

    path = gt_file(clip_dir, t)
    save_gaussians(path, gaussians, min_opacity=None)
    return path


def _write_stamped_json(path: Path, content: dict) -> Path:
    """Write ``content`` with schema_version and tool version first, atomically."""
    out = {"schema_version": SCHEMA_VERSION, "tool": {"name": "video2gs", "version": __version__}}
    out.update({k: v for k, v in content.items() if k not in out})
    write_json_atomic(path, out)
    return path


def write_clip_record(clip_dir: Path, record: dict) -> Path:
    """Write ``clip.json`` atomically. Call it LAST: it marks the clip complete."""
    return _write_stamped_json(Path(clip_dir) / CLIP_FILE, record)


def write_dataset_index(root: Path, index: dict) -> Path:
    """Write ``dataset.json`` atomically (schema and tool version stamped)."""
    return _write_stamped_json(Path(root) / DATASET_FILE, index)


# -- reading ---------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read ({exc})") from exc
    if not isinstance(obj, dict):
        raise UserError(f"{path}: not a JSON object")
    version = obj.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise UserError(f"{path}: schema_version {version!r} is newer than this video2gs reads ({SCHEMA_VERSION})")
    return obj


def read_clip_record(clip_dir: Path) -> dict | None:
    """``clip.json`` as a dict, or None when the clip has none (incomplete, or a foreign folder)."""
    path = Path(clip_dir) / CLIP_FILE
    return _read_json(path) if path.is_file() else None


def read_dataset_index(root: Path) -> dict:
    """``dataset.json`` of a dataset folder (UserError when absent or unreadable)."""
    path = Path(root) / DATASET_FILE
    if not path.is_file():
        raise UserError(f"{root}: not a video2gs dataset (no {DATASET_FILE})")
    return _read_json(path)


def is_clip_complete(clip_dir: Path) -> bool:
    """True when ``clip.json`` exists (it is written after every other file of the clip)."""
    return (Path(clip_dir) / CLIP_FILE).is_file()


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"{path}: missing camera file")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read the camera file ({exc})") from exc
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 0:
        raise UserError(f"{path}: expected one angle per frame, got a scalar")
    # The reference's random views store [T,1] (np.random.rand(1) per frame); fixed views [T].
    return arr.reshape(arr.shape[0], -1)[:, 0]


@dataclass
class Clip:
    """One clip on disk; see the module docstring for the API. Build it with :func:`open_clip`."""

    root: Path
    views: list[int]
    num_frames: int
    times: np.ndarray | None
    input_view: int | None
    fixed_views: list[int]
    random_views: list[int]
    radius: float = RADIUS
    meta: dict = field(default_factory=dict, repr=False)
    _elevation: dict = field(default_factory=dict, repr=False)
    _azimuth: dict = field(default_factory=dict, repr=False)
    _formats: dict = field(default_factory=dict, repr=False)

    def _check(self, view: int, t: int | None = None) -> None:
        if view not in self._elevation:
            raise UserError(f"{self.root}: no view {view} (views: {self.views[0]}..{self.views[-1]})")
        if t is not None and not 0 <= t < self.num_frames:
            raise UserError(f"{self.root}: no frame {t} (frames 0..{self.num_frames - 1})")

    def elevation(self, view: int) -> np.ndarray:
        """[T] float64 degrees, positive = camera above."""
        self._check(view)
        return self._elevation[view]

    def azimuth(self, view: int) -> np.ndarray:
        """[T] float64 degrees (0 = front, +Z; 90 = +X)."""
        self._check(view)
        return self._azimuth[view]

    def c2w(self, view: int) -> np.ndarray:
        """[T,4,4] float32 OpenGL camera-to-world of ``view`` at every frame."""
        self._check(view)
        return np.stack([user_orbit(e, a, self.radius) for e, a in zip(self._elevation[view], self._azimuth[view])])

    def cameras(self, t: int, views=None) -> Cameras:
        """Cameras (c2w [V,4,4]) of frame ``t`` for ``views`` (default: all, in :attr:`views` order)."""
        views = self.views if views is None else list(views)
        for v in views:
            self._check(v, t)
        c2w = np.stack([user_orbit(self._elevation[v][t], self._azimuth[v][t], self.radius) for v in views])
        return Cameras(torch.from_numpy(c2w))

    def image_file(self, view: int, t: int) -> Path:
        self._check(view, t)
        return image_path(self.root, view, t, self._formats[view])

    def image(self, view: int, t: int) -> np.ndarray:
        """[H,W,3] float32 RGB in [0,1], object on white."""
        path = self.image_file(view, t)
        return decode_image(_read_bytes(path, "image"), str(path))

    def mask(self, view: int, t: int) -> np.ndarray:
        """[H,W] float32 in [0,1] (1 = object)."""
        self._check(view, t)
        path = mask_path(self.root, view, t)
        return decode_mask(_read_bytes(path, "mask"), str(path))

    @property
    def has_gt(self) -> bool:
        return (self.root / GT_DIR).is_dir()

    def gt_path(self, t: int) -> Path | None:
        """Path of frame t's exact Gaussians, or None when the clip has no ``gt/``."""
        if not self.has_gt:
            return None
        if not 0 <= t < self.num_frames:
            raise UserError(f"{self.root}: no frame {t} (frames 0..{self.num_frames - 1})")
        return gt_file(self.root, t)

    def load_gt(self, t: int) -> Gaussians:
        """Frame t's exact Gaussians [N,14] in the internal +Y-up frame (UserError without gt/)."""
        from video2gs.formats import load_gaussians

        path = self.gt_path(t)
        if path is None:
            raise UserError(f"{self.root}: no ground-truth Gaussians ({GT_DIR}/ is absent)")
        if not path.is_file():
            raise UserError(f"{path}: missing ground-truth frame")
        return load_gaussians(path)


def _frame_format(clip_dir: Path, view: int, num_frames: int) -> str:
    img = view_dir(clip_dir, view) / "img"
    for fmt in IMAGE_FORMATS:
        if (img / f"000.{fmt}").is_file():
            break
    else:
        raise UserError(f"{img}: missing image 000.png/000.jpg")
    for t in range(num_frames):
        if not image_path(clip_dir, view, t, fmt).is_file():
            raise UserError(f"{image_path(clip_dir, view, t, fmt)}: missing image (the cameras list {num_frames} frames)")
        if not mask_path(clip_dir, view, t).is_file():
            raise UserError(f"{mask_path(clip_dir, view, t)}: missing mask (the cameras list {num_frames} frames)")
    return fmt


def open_clip(path, *, fps: float | None = None, radius: float = RADIUS) -> Clip:
    """Open and validate a clip folder.

    Every ``<view:03d>/`` folder needs both camera files with the same frame count T (across views
    too) and an image and mask for each frame 0..T-1; anything missing is one UserError naming the
    file. ``clip.json`` (ours) supplies times, the input view and the fixed/random view ids; a folder
    without one (e.g. an extracted reference render) gets ``times = arange(T) / fps`` when ``fps`` is
    given, else None. ``radius``: camera distance (1.5, the reference's) unless clip.json says otherwise.
    """
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"{root}: no such clip folder")
    meta = read_clip_record(root) or {}
    if not meta and (root / GT_DIR).is_dir():
        raise UserError(f"{root}: the clip is incomplete (no {CLIP_FILE}); re-run `video2gs data make` to finish it")
    views = sorted(int(p.name) for p in root.iterdir() if p.is_dir() and _VIEW_DIR.match(p.name))
    if not views:
        raise UserError(f"{root}: no view folders (000/, 001/, ...) in this clip")
    listed = [int(v) for v in meta.get("views", [])]
    missing_views = sorted(set(listed) - set(views))
    if missing_views:
        raise UserError(f"{view_dir(root, missing_views[0])}: missing view folder ({CLIP_FILE} lists {len(listed)} views)")
    elevation, azimuth, formats = {}, {}, {}
    num_frames = None
    for v in views:
        elev_path, rot_path = camera_files(root, v)
        elev, azi = _load_npy(elev_path), _load_npy(rot_path)
        if len(elev) != len(azi):
            raise UserError(f"{view_dir(root, v) / 'camera'}: elevation has {len(elev)} frames, rotation {len(azi)}")
        if num_frames is None:
            num_frames = len(elev)
        elif len(elev) != num_frames:
            raise UserError(f"{view_dir(root, v) / 'camera'}: {len(elev)} frames, but view {views[0]} has {num_frames}")
        if not (np.isfinite(elev).all() and np.isfinite(azi).all()):
            raise UserError(f"{view_dir(root, v) / 'camera'}: non-finite camera angles")
        elevation[v], azimuth[v] = elev, azi
        formats[v] = _frame_format(root, v, num_frames)
    if num_frames == 0:
        raise UserError(f"{root}: the cameras list zero frames")
    times = None
    if "times" in meta:
        times = np.asarray(meta["times"], dtype=np.float64)
        if times.shape != (num_frames,):
            raise UserError(f"{root / CLIP_FILE}: {times.size} frame times for {num_frames} frames")
    elif fps is not None or meta.get("fps"):
        times = np.arange(num_frames, dtype=np.float64) / float(fps or meta["fps"])
    input_view = meta.get("input_view")
    return Clip(
        root=root,
        views=views,
        num_frames=int(num_frames),
        times=times,
        input_view=None if input_view is None else int(input_view),
        fixed_views=[int(v) for v in meta.get("fixed_views", [])],
        random_views=[int(v) for v in meta.get("random_views", [])],
        radius=float(meta.get("radius", radius)),
        meta=meta,
        _elevation=elevation,
        _azimuth=azimuth,
        _formats=formats,
    )


def list_clips(root, split: str | None = None) -> list[Path]:
    """Complete clip folders of a dataset (``dataset.json`` order), optionally of one split."""
    root = Path(root)
    index = read_dataset_index(root)
    out = []
    for entry in index.get("clips", []):
        if split is not None and entry.get("split") != split:
            continue
        clip_dir = root / entry["name"]
        if is_clip_complete(clip_dir):
            out.append(clip_dir)
    return out
