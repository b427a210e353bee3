"""Background removal: one binary object mask per frame.

``make_segmenter(method, model, has_alpha)`` returns a :class:`Segmenter`; calling it on a frame
(uint8 ``[H, W, 3]`` RGB or ``[H, W, 4]`` RGBA) returns a mask uint8 ``[H, W]`` with values
{0, 255}. Masks are **binary**: every method's soft output is thresholded at 0.5 (127), so no faint
halo survives to inflate the object's box or tint the white background; the crop then composites
with this binary mask (area resizing to 256 anti-aliases the edge).

Methods (``--segment``):

* ``rembg``: the real ``rembg`` package with an explicit model, never rembg's own default (it
  became the non-commercial ``bria-rmbg`` in 2.0.80). ``--segment-model`` is ``u2net`` (default),
  ``u2netp``, ``isnet-general-use`` or a path to a U^2-Net-style ``.onnx`` (loaded through rembg's
  ``u2net_custom`` session with ``U2NET_HOME`` pointed at its folder). A named model is looked up
  where rembg keeps it (:func:`rembg_model_candidates`); when it is absent and we are offline
  (``VIDEO2GS_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``) or the download fails, one :class:`UserError`
  names the file and the ways out. rembg is imported lazily (its first import compiles numba code,
  about a minute, then it is cached). Frames are shrunk to at most 1024 px for the network and the
  mask is scaled back up; components smaller than 1 % of the largest are dropped.
* ``alpha``: the input's alpha channel, thresholded (authoritative: nothing else is cleaned).
* ``key``: classical border keying (imagedream.md §9.2): Lab distance to a 2nd-order polynomial
  background fitted to an 8-px frame border (when that keys nothing, refitted without the border
  pixels far off the fit: an object crossing part of the border), threshold ``max(8, 1.5 x p99 border
  residual)``, opening and closing, largest component, holes filled. Fast and offline; good on
  studio sweeps, plain walls and screens; fails when the object covers half the border or matches
  the backdrop.
  Runs at <= 512 px.
* ``none``: frames are already on white; the mask is the not-near-white pixels (255 - min(R, G, B)
  > 16), specks dropped, holes filled; it only serves the crop box and the alpha of the saved
  input, the colours are kept as they are.
* ``auto``: ``alpha`` if the source has a (non-opaque) alpha channel, else ``rembg`` if the package
  is installed and the model file is already present (auto never downloads), else ``key``;
  ``.description`` says which and why.

A frame whose pixels are all (nearly) the same colour has no object: its mask is empty whatever
the method (U^2-Net min-max normalises its output and would otherwise invent one). When no frame
of a clip has an object the crop raises :class:`NoObjectError`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from abc import ABC, abstractmethod
from pathlib import Path

import cv2
import numpy as np

from video2gs.errors import UserError
from video2gs.images import on_white

METHODS = ("auto", "rembg", "alpha", "key", "none")
REMBG_MODELS = ("u2net", "u2netp", "isnet-general-use")
DEFAULT_REMBG_MODEL = "u2net"

_REMBG_MAX_SIDE = 1024
_KEY_MAX_SIDE = 512
_KEY_BORDER = 8
_KEY_MIN_THRESHOLD = 8.0  # Lab distance
_KEY_REFITS = 4  # robust refits of the backdrop (an object crossing the border)
_KEY_OUTLIER_FACTOR = 3.0  # a ring pixel this many median residuals off the fit is not backdrop
_KEY_MIN_INLIERS = 0.5  # refits stop before they would keep less than this fraction of the border
_WHITE_TOL = 16
_SPECK_FRACTION = 0.01
_FLAT_STD = 1.5  # max per-channel std (0..255) of a frame with nothing in it

_HINTS = {
    "rembg": "try --segment key, or --segment none if the object is already on white",
    "key": "key needs a plain backdrop; try --segment rembg, or --segment none if the object is already on white",
    "alpha": "the alpha channel is fully transparent; try --segment rembg or --segment key",
    "none": "--segment none expects the object on a white background; try --segment rembg or --segment key",
}


class NoObjectError(UserError):
    """No frame of the clip contains an object under the chosen segmentation."""

    @classmethod
    def for_method(cls, method: str, detail: str = "in any frame") -> NoObjectError:
        return cls(f"no object found {detail} (--segment {method}); {_HINTS.get(method, 'try another --segment method')}")


# ----------------------------------------------------------------------------- mask helpers


def binarize(soft: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Soft mask [H, W] (float in [0, 1] or uint8) -> uint8 {0, 255}; ``> threshold`` is object."""
    if soft.dtype == np.uint8:
        return np.where(soft > round(threshold * 255), 255, 0).astype(np.uint8)
    if soft.dtype == bool:
        return soft.astype(np.uint8) * 255
    return np.where(soft > threshold, 255, 0).astype(np.uint8)


def shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale (area filter) so the longer side is at most ``max_side``; no upscaling."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    s = max_side / max(h, w)
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def upsize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """uint8 mask [h, w] -> binary uint8 [H, W] (bilinear, then thresholded at 127)."""
    if mask.shape[:2] == tuple(shape):
        return binarize(mask)
    up = cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return binarize(up)


def is_flat(image: np.ndarray) -> bool:
    """True if ``image`` [H, W, C] is one colour (up to noise): nothing to segment."""
    small = shrink(image, 256).reshape(-1, image.shape[2] if image.ndim == 3 else 1).astype(np.float32)
    return float(small.std(axis=0).max()) < _FLAT_STD


def drop_specks(mask: np.ndarray, min_fraction: float = _SPECK_FRACTION) -> np.ndarray:
    """Remove connected components smaller than ``min_fraction`` of the largest one."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, bool)
    keep[1:] = areas >= min_fraction * areas.max()
    return np.where(keep[labels], 255, 0).astype(np.uint8)


def largest_component(mask: np.ndarray) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return np.where(labels == best, 255, 0).astype(np.uint8)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions that do not touch the frame border."""
    inv = (mask == 0).astype(np.uint8)
    n, labels = cv2.connectedComponents(inv, connectivity=4)
    if n <= 1:
        return mask
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.isin(labels, border[border > 0])
    return np.where(outside, 0, 255).astype(np.uint8)


def key_mask(rgb: np.ndarray, border: int = _KEY_BORDER) -> np.ndarray:
    """Border keying of ``rgb`` [H, W, 3] uint8 -> binary uint8 [H, W] at the same size.

    The backdrop is modelled per Lab channel as a 2nd-order polynomial in (x, y) fitted to the
    ``border``-px frame border (if that keys nothing: refitted up to 4 times without the border
    pixels farther than ``max(8, 3 x median residual)`` from the last fit, the object where it
    crosses the border); pixels farther (Euclidean Lab) than ``max(8, 1.5 x p99 inlier residual)``
    from it are object, then opening/closing, largest component, hole fill.
    """
    h, w = rgb.shape[:2]
    b = max(1, min(border, h // 4, w // 4))
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)  # L 0..100, a/b ~ +-127
    ys = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None]
    xs = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :]
    # basis: 1, x, y, x^2, xy, y^2 -> [6, H, W] (broadcast views, materialised only on the border)
    basis = [np.ones((h, w), np.float32), np.broadcast_to(xs, (h, w)), np.broadcast_to(ys, (h, w)),
             np.broadcast_to(xs * xs, (h, w)), xs * ys, np.broadcast_to(ys * ys, (h, w))]
    ring = np.zeros((h, w), bool)
    ring[:b], ring[-b:], ring[:, :b], ring[:, -b:] = True, True, True, True
    a_ring = np.stack([p[ring] for p in basis], axis=1).astype(np.float64)  # [R, 6]
    lab_ring = lab[ring].astype(np.float64)  # [R, 3]
    k = 3 if max(h, w) <= 384 else 5
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))

    def key_with(inliers: np.ndarray) -> np.ndarray:  # the backdrop fitted to these ring pixels -> mask
        coef, *_ = np.linalg.lstsq(a_ring[inliers], lab_ring[inliers], rcond=None)  # [6, 3]
        coef = coef.astype(np.float32)
        background = sum(basis[i][..., None] * coef[i] for i in range(6))  # [H, W, 3]
        dist = np.linalg.norm(lab - background, axis=2)  # [H, W]
        threshold = max(_KEY_MIN_THRESHOLD, 1.5 * float(np.percentile(dist[ring][inliers], 99)))
        mask = np.where(dist > threshold, 255, 0).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
        return fill_holes(largest_component(mask))

    everything = np.ones(len(lab_ring), bool)
    mask = key_with(everything)
    if mask.any():
        return mask
    # Nothing keyed: where the object crosses the border, its pixels bend the backdrop and inflate the
    # threshold until nothing is object. Refit without the ring pixels far off the last fit. (Only
    # then: on a backdrop one quadratic does not fit, e.g. a wall and a table, the refit would key the
    # part it drops as object.)
    inliers = everything
    for _ in range(_KEY_REFITS):
        coef, *_ = np.linalg.lstsq(a_ring[inliers], lab_ring[inliers], rcond=None)  # [6, 3]
        residual = np.linalg.norm(lab_ring - a_ring @ coef, axis=1)  # [R]
        keep = residual < max(_KEY_MIN_THRESHOLD, _KEY_OUTLIER_FACTOR * float(np.median(residual[inliers])))
        if keep.sum() < _KEY_MIN_INLIERS * len(keep) or (keep == inliers).all():
            break
        inliers = keep
    return key_with(inliers)


def white_mask(rgb: np.ndarray, tol: int = _WHITE_TOL) -> np.ndarray:
    """Not-near-white pixels of ``rgb`` [H, W, 3] -> binary uint8 [H, W] (specks dropped, holes filled)."""
    mask = np.where(255 - rgb.min(axis=2).astype(np.int16) > tol, 255, 0).astype(np.uint8)
    return fill_holes(drop_specks(mask))


# ----------------------------------------------------------------------------- segmenters


class Segmenter(ABC):
    """``seg(image [H, W, 3|4] uint8) -> mask [H, W] uint8 in {0, 255}``.

    ``name``: the method that runs (rembg, alpha, key, none). ``description``: one line for the
    user and the manifest (for auto: what was picked and why).
    """

    name: str = ""
    description: str = ""

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
            raise ValueError(f"expected a uint8 [H, W, 3|4] image, got {image.dtype} {image.shape}")
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[..., 0]
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if self.name != "alpha" and is_flat(on_white(image)):
            return np.zeros(image.shape[:2], np.uint8)
        return self._mask(image)

    @abstractmethod
    def _mask(self, image: np.ndarray) -> np.ndarray: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class AlphaSegmenter(Segmenter):
    name = "alpha"

    def __init__(self, description: str = "alpha: the input's alpha channel"):
        self.description = description

    def _mask(self, image: np.ndarray) -> np.ndarray:
        if image.shape[2] != 4:
            raise UserError("--segment alpha needs frames with an alpha channel; this input has none")
        return binarize(image[..., 3])


class KeySegmenter(Segmenter):
    name = "key"

    def __init__(self, description: str = "key: border keying against a fitted backdrop"):
        self.description = description

    def _mask(self, image: np.ndarray) -> np.ndarray:
        rgb = on_white(image)
        return upsize_mask(key_mask(shrink(rgb, _KEY_MAX_SIDE)), rgb.shape[:2])


class WhiteSegmenter(Segmenter):
    name = "none"

    def __init__(self, description: str = "none: frames are taken as already on white"):
        self.description = description

    def _mask(self, image: np.ndarray) -> np.ndarray:
        return white_mask(on_white(image))


class RembgSegmenter(Segmenter):
    """rembg with an explicit model; the session is created once, on construction."""

    name = "rembg"

    def __init__(self, model: str | os.PathLike | None = None, description: str | None = None):
        self.model = str(model) if model is not None else DEFAULT_REMBG_MODEL
        self._rembg, self.session, self.model_file = _rembg_session(self.model)
        self.description = description or f"rembg {Path(self.model).name if _is_path(self.model) else self.model} ({self.model_file})"

    def _mask(self, image: np.ndarray) -> np.ndarray:
        rgb = on_white(image)
        small = shrink(rgb, _REMBG_MAX_SIDE)
        soft = np.asarray(self._rembg.remove(small, session=self.session, only_mask=True))  # uint8 [h, w]
        if soft.ndim == 3:
            soft = soft[..., 0]
        mask = upsize_mask(soft, rgb.shape[:2])
        return drop_specks(mask)


# ----------------------------------------------------------------------------- rembg plumbing


def _is_path(model: str) -> bool:
    return model.lower().endswith(".onnx") or os.sep in model or "/" in model


def offline() -> bool:
    """True when downloads are off (``VIDEO2GS_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``)."""
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on") for k in ("VIDEO2GS_OFFLINE", "HF_HUB_OFFLINE"))


def rembg_installed() -> bool:
    return importlib.util.find_spec("rembg") is not None


def rembg_model_candidates(name: str) -> list[Path]:
    """Where rembg looks for ``<name>.onnx``, in its order (2.0.80+ layout first, then the flat
    legacy ``~/.u2net`` layout that older versions use; ``U2NET_HOME`` wins when set)."""
    fname = f"{name}.onnx"
    xdg = os.environ.get("XDG_DATA_HOME")
    u2net_home = os.environ.get("U2NET_HOME")
    legacy = Path(u2net_home or os.path.join(xdg or "~", ".u2net")).expanduser()
    if u2net_home:
        home = legacy
    else:
        home = Path(os.environ.get("REMBG_HOME") or (os.path.join(xdg, "rembg") if xdg else "~/.rembg")).expanduser()
    return [home / "models" / name / fname, legacy / fname]


def find_rembg_model(name: str) -> Path | None:
    """The local file of rembg model ``name``, or None."""
    return next((p for p in rembg_model_candidates(name) if p.is_file()), None)


def _missing_model_error(name: str, reason: str) -> UserError:
    where = rembg_model_candidates(name)
    return UserError(
        f"rembg model {name!r} is not available ({reason}); ways out: place {name}.onnx at {where[1]} "
        f"(or {where[0]}), pass --segment-model PATH.onnx, use --segment key, or run once online"
    )


@contextlib.contextmanager
def _env(**values: str):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _is_request_error(exc: BaseException) -> bool:
    try:
        import requests
    except ImportError:
        return False
    return isinstance(exc, requests.RequestException)


def _import_rembg():
    if not rembg_installed():
        raise UserError('rembg is not installed: pip install "video2gs[segment]" (or use --segment key)')
    try:
        import rembg
    except ImportError as exc:
        raise UserError(f'rembg failed to import ({exc}); reinstall with pip install "video2gs[segment]" or use --segment key') from None
    return rembg


def _rembg_session(model: str):
    """(rembg module, session, model file) for a model name or an .onnx path."""
    if _is_path(model):
        path = Path(model).expanduser().resolve()
        if not path.is_file():
            raise UserError(f"segmentation model file not found: {model}")
        rembg = _import_rembg()
        # rembg only loads custom models from inside its home: point the home at the file's folder.
        try:
            with _env(U2NET_HOME=str(path.parent)):
                session = rembg.new_session("u2net_custom", model_path=str(path))
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for a bad file
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise UserError(f"cannot load {path} as a U^2-Net ONNX model: {reason}") from None
        return rembg, session, path
    if model not in REMBG_MODELS:
        raise UserError(f"unknown --segment-model {model!r}; choose one of {', '.join(REMBG_MODELS)} or a path to an .onnx file")
    local = find_rembg_model(model)
    if local is None and offline():
        raise _missing_model_error(model, "not downloaded and offline")
    rembg = _import_rembg()
    try:
        session = rembg.new_session(model)
    except Exception as exc:  # noqa: BLE001 - pooch/requests raise a variety of errors
        if isinstance(exc, OSError) or _is_request_error(exc):  # requests' ConnectionError is an OSError too
            raise _missing_model_error(model, f"download failed: {type(exc).__name__}") from None
        raise
    return rembg, session, find_rembg_model(model) or local


# ----------------------------------------------------------------------------- factory


def make_segmenter(method: str = "auto", model: str | os.PathLike | None = None, has_alpha: bool = False) -> Segmenter:
    """Build the segmenter for ``--segment method`` (see the module docstring).

    ``model``: ``--segment-model`` (rembg model name or .onnx path; None = u2net). ``has_alpha``:
    whether the source carries a real alpha channel (``SourceInfo.has_alpha``).
    """
    method = (method or "auto").lower()
    if method not in METHODS:
        raise UserError(f"unknown --segment {method!r}; choose one of {', '.join(METHODS)}")
    if model is not None and method not in ("auto", "rembg"):
        raise UserError(f"--segment-model only applies to --segment rembg (or auto), not {method}")
    if method == "alpha":
        if not has_alpha:
            raise UserError("--segment alpha needs an input with an alpha channel; this one has none (try --segment auto)")
        return AlphaSegmenter()
    if method == "key":
        return KeySegmenter()
    if method == "none":
        return WhiteSegmenter()
    if method == "rembg":
        return RembgSegmenter(model)
    # auto
    if has_alpha:
        return AlphaSegmenter("auto -> alpha: the input has an alpha channel")
    name = str(model) if model is not None else DEFAULT_REMBG_MODEL
    if not rembg_installed():
        return KeySegmenter('auto -> key: rembg is not installed (pip install "video2gs[segment]" for better masks)')
    if _is_path(name):
        seg = RembgSegmenter(name)
        seg.description = f"auto -> {seg.description}"
        return seg
    if name not in REMBG_MODELS:
        raise UserError(f"unknown --segment-model {name!r}; choose one of {', '.join(REMBG_MODELS)} or a path to an .onnx file")
    if find_rembg_model(name) is None:
        return KeySegmenter(
            f"auto -> key: rembg model {name} is not downloaded (place {name}.onnx at "
            f"{rembg_model_candidates(name)[1]} or run --segment rembg once online for better masks)"
        )
    seg = RembgSegmenter(name)
    seg.description = f"auto -> {seg.description}"
    return seg
