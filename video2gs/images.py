"""Images as the pipeline stores and feeds them: one home for compositing, PNG I/O and resizing.

Conventions: uint8 images are ``[H,W]`` (gray / mask), ``[H,W,3]`` RGB or ``[H,W,4]`` RGBA in
RGB order (OpenCV's BGR stays inside this module); float images are float32 in [0, 1].
"Composited on white" means ``rgb·a + 1·(1 − a)`` with ``a`` the image's own alpha.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from video2gs.errors import UserError
from video2gs.fileio import atomic_path


# -- compositing -------------------------------------------------------------------------------------
def on_white(image: np.ndarray) -> np.ndarray:
    """Gray, RGB or RGBA, uint8 or float -> RGB on white, same dtype as the input ([H,W,3]).

    uint8 results are rounded to nearest; RGB input is returned unchanged (it is already opaque).
    """
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        return np.repeat(image, 3, axis=-1)
    if image.shape[-1] == 3:
        return image
    if image.dtype == np.uint8:
        a = image[..., 3:4].astype(np.float32) / 255.0
        return np.rint(image[..., :3].astype(np.float32) * a + 255.0 * (1.0 - a)).astype(np.uint8)
    img = image.astype(np.float32)
    a = img[..., 3:4]
    return img[..., :3] * a + (1.0 - a)


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 / uint16 -> float32 in [0, 1] (float input is passed through as float32)."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    return image.astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 (rounded to nearest, clipped); uint8 passes through."""
    if image.dtype == np.uint8:
        return image
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def quantize(image: np.ndarray) -> np.ndarray:
    """float [0,1] -> the float that an 8-bit PNG round trip gives (views are used as saved)."""
    return to_uint8(image).astype(np.float32) / 255.0


def pad_square(image: np.ndarray, fill: float = 1.0) -> np.ndarray:
    """[H,W,C] float -> [S,S,C], S = max(H, W), centred on ``fill`` (white by default)."""
    h, w = image.shape[:2]
    s = max(h, w)
    canvas = np.full((s, s, image.shape[2]), fill, np.float32)
    canvas[(s - h) // 2 : (s - h) // 2 + h, (s - w) // 2 : (s - w) // 2 + w] = image
    return canvas


def resize_area(image: np.ndarray, size: int) -> np.ndarray:
    """Square float image -> [size,size,C] with area filtering (no-op at the right size)."""
    image = np.asarray(image, dtype=np.float32)
    if image.shape[0] == size and image.shape[1] == size:
        return image
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def to_chw(image: np.ndarray, size: int) -> torch.Tensor:
    """[H,W,3] float -> [3,size,size] float32 tensor (area resize when needed)."""
    return torch.from_numpy(np.ascontiguousarray(resize_area(image, size))).permute(2, 0, 1).float()


# -- files -------------------------------------------------------------------------------------------
def read_image(path: Path) -> np.ndarray:
    """Any image OpenCV reads -> uint8/uint16 gray [H,W], RGB [H,W,3] or RGBA [H,W,4] (RGB order)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise UserError(f"cannot read image {path}")
    if img.ndim == 3 and img.shape[-1] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    if img.ndim == 3:
        return cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
    return img


def read_rgba(path: Path) -> np.ndarray:
    """A colour PNG this package wrote -> uint8 RGBA [H,W,4] or RGB [H,W,3]."""
    img = read_image(path)
    if img.ndim != 3 or img.dtype != np.uint8:
        raise UserError(f"{path}: not an 8-bit colour image (was the output folder modified?)")
    return img


def read_mask(path: Path) -> np.ndarray:
    """A mask PNG -> uint8 [H,W]."""
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise UserError(f"cannot read mask {path}")
    return img


def write_png(path: Path, image: np.ndarray) -> Path:
    """uint8 gray [H,W], RGB(A) [H,W,3|4], or float in [0,1] -> PNG at ``path``, atomically."""
    image = to_uint8(image)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if image.shape[-1] == 4 else cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise UserError(f"cannot encode {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.tobytes())
    return Path(path)
