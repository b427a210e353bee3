"""Where a training sample's views come from: our clip folders and the reference's render tars.

A store is one animation seen from many views; it answers ``read(view_id, t)`` with
``(rgb [H,W,3] float32 on white, mask [H,W] float32, elevation deg, azimuth deg)`` and lists its
view ids by role: ``fixed_ids`` (elevation 0, evenly spaced: the input-view candidates) and
``random_ids`` (the extra supervision views).

* :class:`ClipStore` -- a clip of :mod:`video2gs.data.layout` (ids as its folders: fixed 0..15, random after).
* :class:`TarStore` -- the reference's Objaverse-4D renders (``docs/l4gm.md`` §6): two tars per
  animation, ``fixed_16_clip/<uid>`` (16 views, elevation 0, azimuth k·22.5°) and ``random_clip/<uid>``
  (32 random views); interpolation data ``fixed_16_24fps/`` and ``random_24fps/``. Inside each tar:
  ``./<vid:03d>/img/<t:03d>.jpg`` (white-composited, BGR as cv2 writes), ``./<vid:03d>/mask/<t:03d>.png``
  (alpha), ``./<vid:03d>/camera/elevation.npy`` and ``rotation.npy`` ([T] or [T,1], degrees, Blender
  sign: positive = above). The reference numbers views 0..31 for the random tar and 32..47 for the
  fixed one (``vid % 32`` inside it); :class:`TarStore` uses the same ids.

Stores open their files lazily and re-open them after a fork (DataLoader workers), so they pickle
as paths only.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import numpy as np

from video2gs.data import layout
from video2gs.errors import UserError

REFERENCE_FIXED = "fixed_16_clip"
REFERENCE_RANDOM = "random_clip"
REFERENCE_FIXED_INTERP = "fixed_16_24fps"
REFERENCE_RANDOM_INTERP = "random_24fps"
FIXED_ID_OFFSET = 32  # reference view ids 32..47 are the fixed tar's 0..15


class ClipStore:
    """Views of one clip folder of our layout."""

    def __init__(self, clip_dir):
        self.path = Path(clip_dir)
        self._clip = None
        clip = self.clip
        self.name = clip.meta.get("name", self.path.name)
        self.num_frames = clip.num_frames
        # A clip without clip.json (a bare folder in the layout) offers every view as an input candidate.
        self.fixed_ids = list(clip.fixed_views) or list(clip.views)
        self.random_ids = list(clip.random_views)

    @property
    def clip(self) -> layout.Clip:
        if self._clip is None:
            self._clip = layout.open_clip(self.path)
        return self._clip

    def __getstate__(self):
        return {"path": self.path, "name": self.name, "num_frames": self.num_frames,
                "fixed_ids": self.fixed_ids, "random_ids": self.random_ids, "_clip": None}

    def read(self, view_id: int, t: int):
        clip = self.clip
        return clip.image(view_id, t), clip.mask(view_id, t), float(clip.elevation(view_id)[t]), float(clip.azimuth(view_id)[t])


def _member_key(name: str) -> str:
    return name[2:] if name.startswith("./") else name.lstrip("/")


class _Tar:
    """One tar opened lazily per process, with its members indexed by normalised name."""

    def __init__(self, path: Path):
        self.path = path
        self._pid = None
        self._tar = None
        self._members = {}

    def _open(self):
        if self._pid != os.getpid():
            try:
                self._tar = tarfile.open(self.path)
                self._members = {_member_key(m.name): m for m in self._tar.getmembers() if m.isfile()}
            except (OSError, tarfile.TarError) as exc:
                raise UserError(f"{self.path}: cannot read the tar ({exc})") from exc
            self._pid = os.getpid()
        return self._tar

    def names(self) -> list[str]:
        self._open()
        return list(self._members)

    def has(self, name: str) -> bool:
        self._open()
        return name in self._members

    def read(self, name: str) -> bytes:
        tar = self._open()
        member = self._members.get(name)
        if member is None:
            raise UserError(f"{self.path}: missing {name}")
        return tar.extractfile(member).read()

    def __getstate__(self):
        return {"path": self.path, "_pid": None, "_tar": None, "_members": {}}


def _views_in(names: list[str]) -> list[int]:
    out = set()
    for n in names:
        head = n.split("/", 1)[0]
        if head.isdigit() and n.endswith("/camera/rotation.npy"):
            out.add(int(head))
    return sorted(out)


def _resolve(root: Path, prefix: str, uid: str) -> Path:
    """The reference's tar of ``prefix/uid``: ``root/prefix/uid[.tar]`` or its flattened form
    ``root/prefix-uid`` (the reference reads ``DATA_HOME + name.replace('/', '-')``)."""
    flat = (prefix + "/" + uid).replace("/", "-")
    for candidate in (root / prefix / uid, root / prefix / f"{uid}.tar", root / flat, root / f"{flat}.tar"):
        if candidate.is_file():
            return candidate
    raise UserError(f"{root}: no tar for {prefix}/{uid} (looked for {prefix}/{uid}[.tar] and {flat}[.tar])")


class TarStore:
    """Views of one animation from the reference's two render tars (ids: random 0..31, fixed 32..47)."""

    def __init__(self, fixed_tar, random_tar, name: str | None = None):
        self.fixed = _Tar(Path(fixed_tar))
        self.random = _Tar(Path(random_tar))
        self.name = name or Path(fixed_tar).name
        fixed_views, random_views = _views_in(self.fixed.names()), _views_in(self.random.names())
        if not fixed_views:
            raise UserError(f"{fixed_tar}: no views (expected ./000/camera/rotation.npy ...)")
        self.fixed_ids = [FIXED_ID_OFFSET + v for v in fixed_views]
        self.random_ids = random_views
        self.num_frames = len(self._angles(self.fixed, fixed_views[0], "rotation"))

    @classmethod
    def from_reference(cls, root, uid: str, interp: bool = False) -> "TarStore":
        """The pair of tars of ``uid`` under ``root`` (the reference's DATA_HOME)."""
        root = Path(root)
        fixed = _resolve(root, REFERENCE_FIXED_INTERP if interp else REFERENCE_FIXED, uid)
        rand = _resolve(root, REFERENCE_RANDOM_INTERP if interp else REFERENCE_RANDOM, uid)
        return cls(fixed, rand, name=uid)

    def _tar_and_vid(self, view_id: int):
        if view_id >= FIXED_ID_OFFSET:
            return self.fixed, view_id % FIXED_ID_OFFSET
        return self.random, view_id

    def _angles(self, tar: _Tar, vid: int, what: str) -> np.ndarray:
        key = (str(tar.path), vid, what)
        cache = self.__dict__.setdefault("_angle_cache", {})
        if key not in cache:
            cache[key] = self._load_angles(tar, vid, what)
        return cache[key]

    def _load_angles(self, tar: _Tar, vid: int, what: str) -> np.ndarray:
        name = f"{vid:03d}/camera/{what}.npy"
        try:
            arr = np.load(io.BytesIO(tar.read(name)), allow_pickle=False)
        except ValueError as exc:
            raise UserError(f"{tar.path}: cannot read {name} ({exc})") from exc
        arr = np.asarray(arr, dtype=np.float64)
        return arr.reshape(arr.shape[0], -1)[:, 0]  # random views store [T,1]

    def read(self, view_id: int, t: int):
        tar, vid = self._tar_and_vid(view_id)
        img_name, mask_name = f"{vid:03d}/img/{t:03d}.jpg", f"{vid:03d}/mask/{t:03d}.png"
        if not tar.has(img_name):
            img_name = f"{vid:03d}/img/{t:03d}.png"
        rgb = layout.decode_image(tar.read(img_name), f"{tar.path}:{img_name}")
        mask = layout.decode_mask(tar.read(mask_name), f"{tar.path}:{mask_name}")
        if mask.shape != rgb.shape[:2]:
            raise UserError(f"{tar.path}: {mask_name} is {mask.shape}, its image {rgb.shape[:2]}")
        rgb = rgb * mask[..., None] + (1.0 - mask[..., None])  # as the reference: composite on white with the mask
        elevation = self._angles(tar, vid, "elevation")
        azimuth = self._angles(tar, vid, "rotation")
        if t >= len(azimuth):
            raise UserError(f"{tar.path}: view {vid} has {len(azimuth)} frames, asked for frame {t}")
        return rgb.astype(np.float32), mask, float(elevation[t]), float(azimuth[t])
