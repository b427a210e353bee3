"""Render activated 3D Gaussians: one entry point, several backends.

>>> from video2gs.camera import Cameras
>>> from video2gs.render import render
>>> out = render(gaussians, Cameras.orbit([0, 90, 180, 270]), 256, 256)   # doctest: +SKIP
>>> out.rgb.shape, out.alpha.shape, out.depth.shape                         # doctest: +SKIP
(torch.Size([4, 256, 256, 3]), torch.Size([4, 256, 256, 1]), torch.Size([4, 256, 256, 1]))

Every backend implements gsplat 1.4's "classic" rasterizer as L4GM uses it (``conventions.md``
§5, §7; constants in :mod:`video2gs.render._common`): EWA projection with +0.3 px^2 low-pass,
centres outside [near, far] culled, alpha = min(0.999, o exp(-1/2 d^T S^-1 d)), alpha < 1/255
skipped, front to back by view depth in 16x16 tiles with a 3-sigma radius, a pixel stops before
the Gaussian that would take T to <= 1e-4, pixel centres at i + 0.5, colour C + T bg and
alpha = 1 - T. Depth is the *expected* view-space z (gsplat "ED"): sum(w z) / alpha.

Backends:

* ``torch`` -- pure PyTorch, tile-batched, differentiable w.r.t. every Gaussian parameter and the
  background; any device. The reference and the CPU training path.
* ``numba`` -- fast CPU forward (no gradients), also for large batches of views.
* ``gsplat`` -- ``gsplat.rasterization`` on CUDA (``pip install gsplat``).
* ``dgr`` -- LGM's diff-gaussian-rasterization (3DGS kernel: alpha clamp 0.99, near cull z <= 0.2),
  only when asked for by name; CUDA, non-commercial licence, built from source.

``backend="auto"`` picks gsplat on a CUDA device when installed; numba on the CPU when no gradient
is needed; torch otherwise.
"""

from __future__ import annotations

import importlib.util

import torch

from video2gs.camera import Cameras
from video2gs.errors import UserError
from video2gs.gaussians import Gaussians
from video2gs.render._common import RenderOutput, backgrounds_tensor, split_fields

__all__ = ["render", "available_backends", "check_backend", "choose_backend", "RenderOutput", "BACKENDS"]

BACKENDS = ("torch", "numba", "gsplat", "dgr")

_INSTALL_HINTS = {
    "numba": "pip install numba",
    "gsplat": "pip install gsplat (needs a CUDA GPU), or pip install 'video2gs[gpu]'",
    "dgr": (
        "diff_gaussian_rasterization is not on PyPI and is under the Inria non-commercial licence; build "
        "it from source (github.com/ashawkey/diff-gaussian-rasterization) on a CUDA machine"
    ),
}
_NEEDS_CUDA = ("gsplat", "dgr")
_MODULES = {"numba": "numba", "gsplat": "gsplat", "dgr": "diff_gaussian_rasterization"}


def _installed(backend: str) -> bool:
    if backend == "torch":
        return True
    try:
        return importlib.util.find_spec(_MODULES[backend]) is not None
    except (ImportError, ValueError):
        return False


def available_backends() -> list[str]:
    """Backends that can run on this machine (installed, and with a CUDA GPU where one is needed)."""
    cuda = torch.cuda.is_available()
    return [b for b in BACKENDS if _installed(b) and (cuda or b not in _NEEDS_CUDA)]


def _check_backend(backend: str, device: torch.device) -> None:
    if backend not in BACKENDS:
        raise UserError(
            f"unknown render backend {backend!r}; choose auto or one of: {', '.join(available_backends())}"
        )
    if not _installed(backend):
        raise UserError(
            f"render backend {backend!r} is not installed (installed: {', '.join(available_backends())})",
            hint=_INSTALL_HINTS[backend],
        )
    if backend in _NEEDS_CUDA and device.type != "cuda":
        raise UserError(
            f"render backend {backend!r} needs a CUDA device, got {device.type!r} "
            f"(use backend 'torch' or 'numba' on the CPU)"
        )


def check_backend(backend: str) -> str:
    """Raise :class:`UserError` unless ``backend`` is ``auto`` or a backend that can run here."""
    if backend == "auto":
        return backend
    usable = ", ".join(["auto", *available_backends()])
    if backend not in BACKENDS:
        raise UserError(f"render backend {backend!r} is unknown (usable here: {usable})")
    if backend not in available_backends():
        raise UserError(f"render backend {backend!r} is not installed or needs a CUDA GPU (usable here: {usable})")
    return backend


def choose_backend(backend: str, device: torch.device, needs_grad: bool = False) -> str:
    """The backend ``render`` runs for ``backend`` on ``device`` (what ``auto`` picks, for manifests)."""
    return _choose(backend, torch.device(device), needs_grad)


def _choose(backend: str, device: torch.device, needs_grad: bool) -> str:
    if backend != "auto":
        return backend
    if device.type == "cuda" and _installed("gsplat"):
        return "gsplat"
    if device.type == "cpu" and not needs_grad and _installed("numba"):
        return "numba"
    return "torch"


def render(
    gaussians: Gaussians | torch.Tensor,
    cameras: Cameras,
    width: int,
    height: int,
    background=(1.0, 1.0, 1.0),
    backend: str = "auto",
    device=None,
) -> RenderOutput:
    """Render one frame of Gaussians from V cameras.

    gaussians: :class:`~video2gs.gaussians.Gaussians` or tensor [N,14] (activated L4GM layout:
        xyz, opacity, linear scale, quaternion wxyz, rgb); one frame only.
    cameras: :class:`~video2gs.camera.Cameras` -- c2w [V,4,4] (OpenGL), fovy, near, far. Centres
        whose view depth lies outside [near, far] are culled.
    background: colour in [0,1] -- 3-tuple, tensor [3], or tensor [V,3] (one per view).
    backend: "auto" | "torch" | "numba" | "gsplat" | "dgr" (see the module docstring).
    device: where to render (default: the Gaussians' device).

    Returns :class:`RenderOutput`: rgb [V,H,W,3] in [0,1], alpha [V,H,W,1], depth [V,H,W,1]
    (expected view-space z; 0 where alpha is 0), float32 -- or the Gaussians' dtype with the torch
    backend (float64 works there, e.g. for gradient checks).
    """
    data = gaussians.data if isinstance(gaussians, Gaussians) else torch.as_tensor(gaussians)
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2 or data.shape[-1] != 14:
        raise ValueError(f"render takes one frame of Gaussians [N,14]; got shape {tuple(data.shape)}")
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    device = torch.device(device) if device is not None else data.device
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"cannot render on {device}: CUDA is not available on this machine")
    if data.dtype not in (torch.float32, torch.float64):
        data = data.float()
    data = data.to(device)
    cams = cameras.to(device)
    bg = backgrounds_tensor(background, len(cams), device, data.dtype)
    needs_grad = torch.is_grad_enabled() and (data.requires_grad or bg.requires_grad)
    name = _choose(backend, device, needs_grad)
    _check_backend(name, device)

    fields = split_fields(data)
    common = (cams.viewmats(), cams.Ks(width, height), width, height, cams.near, cams.far)
    if name == "torch":
        from video2gs.render import torch_backend

        return torch_backend.rasterize(*fields, *common, bg)
    if name == "numba":
        from video2gs.render import numba_backend

        out = numba_backend.rasterize(*fields, *common, bg)
        return RenderOutput(*(t.to(device) for t in out))
    if name == "gsplat":
        from video2gs.render import gsplat_backend

        return gsplat_backend.rasterize(*fields, *common, bg)
    from video2gs.render import dgr_backend

    return dgr_backend.rasterize(fields, cams, width, height, bg)
