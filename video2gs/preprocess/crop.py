"""One square crop for the whole clip, the object on white, resized to the model's 256 x 256.

L4GM expects pre-cut, white, roughly centred square frames with **one fixed crop for the clip**
(imagedream.md §9.3): recentring every frame would erase the object's own motion. So:

1. every frame's binary mask gives a box (:func:`mask_box`, exact pixel edges -- kiui's
   ``recenter`` drops the last row/column, we do not);
2. :meth:`ClipCrop.from_boxes` takes the union of the boxes over the clip;
3. :meth:`ClipCrop.apply` cuts that union box from each frame, composites it on white with the
   binary mask as alpha, and scales it by one factor so the box's longer side is
   ``int(size * (1 - border_ratio))`` px (204 of 256 at the default 0.2, i.e. 80 %), pasted centred
   at ``((size - w) // 2, (size - h) // 2)`` on a white, transparent canvas.

Shrinking uses ``cv2.INTER_AREA`` (as the reference); enlarging a small object uses bilinear
(INTER_AREA degenerates to nearest-neighbour when upscaling). Only the union box is ever cut, so
the crop never reaches outside the frame; everything around it is white with alpha 0. The output
is RGBA uint8 ``[size, size, 4]``: RGB composited on white, A = the (area-resized) mask.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from video2gs.errors import UserError
from video2gs.images import on_white
from video2gs.preprocess.segment import NoObjectError

DEFAULT_SIZE = 256
DEFAULT_BORDER_RATIO = 0.2
# A mask with fewer pixels than this (or than 1e-4 of the frame) holds no object.
_MIN_PIXELS = 16
_MIN_FRACTION = 1e-4


@dataclass(frozen=True)
class Box:
    """Axis-aligned pixel box: columns ``x0 <= x < x1``, rows ``y0 <= y < y1``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0

    def union(self, other: Box) -> Box:
        return Box(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))

    def rescale(self, from_size: tuple[int, int], to_size: tuple[int, int]) -> Box:
        """Map a box found on a ``from_size`` (W, H) preview to ``to_size`` pixels, never shrinking it."""
        sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
        return Box(
            max(0, math.floor(self.x0 * sx)),
            max(0, math.floor(self.y0 * sy)),
            min(to_size[0], math.ceil(self.x1 * sx)),
            min(to_size[1], math.ceil(self.y1 * sy)),
        )

    def to_list(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]


def mask_box(mask: np.ndarray, min_pixels: int | None = None) -> Box | None:
    """Box of the object pixels of ``mask`` [H, W] (uint8 > 127, bool, or float > 0.5).

    None when the object has fewer than ``min_pixels`` pixels (default: max(16, 1e-4 of the frame)).
    """
    m = _as_bool(mask)
    if min_pixels is None:
        min_pixels = max(_MIN_PIXELS, int(_MIN_FRACTION * m.size))
    if int(m.sum()) < min_pixels:
        return None
    rows = np.flatnonzero(m.any(axis=1))
    cols = np.flatnonzero(m.any(axis=0))
    return Box(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def _as_bool(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.dtype == bool:
        return mask
    if mask.dtype == np.uint8:
        return mask > 127
    return mask > 0.5


@dataclass(frozen=True)
class ClipCrop:
    """The clip's crop: union ``box`` in frame pixels, mapped to ``scaled`` (w, h) at ``offset`` (x, y)
    on a ``size`` x ``size`` canvas. Build it with :meth:`from_boxes`."""

    frame_size: tuple[int, int]  # (W, H) of the frames it applies to
    box: Box
    size: int
    border_ratio: float
    scaled: tuple[int, int]
    offset: tuple[int, int]

    @classmethod
    def from_boxes(
        cls,
        boxes: Iterable[Box | None],
        frame_size: tuple[int, int],
        border_ratio: float = DEFAULT_BORDER_RATIO,
        size: int = DEFAULT_SIZE,
        method: str | None = None,
    ) -> ClipCrop:
        """Union of the per-frame ``boxes`` (None = no object in that frame) of ``frame_size`` (W, H)
        frames. Raises :class:`NoObjectError` (hint for ``method``) when no frame has an object."""
        if not (0.0 <= float(border_ratio) < 1.0) or not math.isfinite(float(border_ratio)):
            raise UserError(f"--border-ratio must be in [0, 1), got {border_ratio}")
        if int(size) < 8:
            raise UserError(f"crop size must be at least 8 px, got {size}")
        union: Box | None = None
        for b in boxes:
            if b is not None:
                union = b if union is None else union.union(b)
        if union is None:
            if method:
                raise NoObjectError.for_method(method)
            raise NoObjectError("no object found in any frame; try another --segment method")
        w, h = int(frame_size[0]), int(frame_size[1])
        union = Box(max(0, union.x0), max(0, union.y0), min(w, union.x1), min(h, union.y1))
        fill = max(1, int(size * (1.0 - border_ratio)))
        s = fill / max(union.width, union.height)
        sw = min(fill, max(1, round(union.width * s)))
        sh = min(fill, max(1, round(union.height * s)))
        return cls((w, h), union, int(size), float(border_ratio), (sw, sh), ((size - sw) // 2, (size - sh) // 2))

    @property
    def scale(self) -> float:
        """Canvas pixels per frame pixel."""
        return self.scaled[0] / self.box.width if self.box.width >= self.box.height else self.scaled[1] / self.box.height

    def apply(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Frame ``image`` [H, W, 3|4] uint8 and its ``mask`` [H, W] -> RGBA uint8 [size, size, 4].

        RGBA frames are first composited on white by their own alpha; then the binary ``mask`` is
        the alpha of the result and everything outside it is white.
        """
        image = np.asarray(image)
        w, h = self.frame_size
        if image.shape[:2] != (h, w):
            raise ValueError(f"frame is {image.shape[1]}x{image.shape[0]}, the crop was built for {w}x{h}")
        if np.shape(mask)[:2] != (h, w):
            raise ValueError(f"mask shape {np.shape(mask)} does not match the frame {w}x{h}")
        b = self.box
        rgb = on_white(image[b.y0 : b.y1, b.x0 : b.x1])
        m = _as_bool(mask)[b.y0 : b.y1, b.x0 : b.x1]
        rgb = np.where(m[..., None], rgb, np.uint8(255))
        alpha = m.astype(np.uint8) * 255
        sw, sh = self.scaled
        interp = cv2.INTER_AREA if sw <= b.width else cv2.INTER_LINEAR
        rgb = cv2.resize(rgb, (sw, sh), interpolation=interp)
        alpha = cv2.resize(alpha, (sw, sh), interpolation=interp)
        out = np.zeros((self.size, self.size, 4), np.uint8)
        out[..., :3] = 255
        ox, oy = self.offset
        out[oy : oy + sh, ox : ox + sw, :3] = rgb.reshape(sh, sw, 3)
        out[oy : oy + sh, ox : ox + sw, 3] = alpha.reshape(sh, sw)
        return out

    def to_dict(self) -> dict:
        """For the manifest: everything needed to redo or invert the crop."""
        return {
            "frame_size": list(self.frame_size),
            "box": self.box.to_list(),
            "size": self.size,
            "border_ratio": self.border_ratio,
            "scaled": list(self.scaled),
            "offset": list(self.offset),
        }
