"""The one entry point later stages use to run L4GM: images of 4 views per frame -> Gaussians.

:class:`Reconstructor` owns the network's input construction (``docs/l4gm.md`` §4): ImageNet-normalised
RGB followed by the Plücker rays of the 4 default input views (azimuth 0/90/180/270, elevation 0,
from :func:`video2gs.camera.input_view_rays`), frame-major ``[1, T·4, 9, H, W]``. Nothing else in
the project builds network inputs: the training samples (:mod:`video2gs.data.samples`) call
:func:`network_input` with the rays of their own (normalised, masked) input cameras.
"""

from __future__ import annotations

from pathlib import Path

import torch

from video2gs import compute
from video2gs.camera import INPUT_AZIMUTHS, input_view_rays
from video2gs.nn.checkpoint import load_model, trained_side_views
from video2gs.nn.configs import L4GMConfig
from video2gs.nn.l4gm import L4GM

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def network_input(rgb: torch.Tensor, rays: torch.Tensor) -> torch.Tensor:
    """The 9-channel network input: rgb [T, V, 3, H, W] in [0, 1] (or uint8) and Plücker rays
    [V, 6, H, W] (the same for every frame) or [T, V, 6, H, W] -> [1, T·V, 9, H, W] float32.

    Channels 0:3 are (rgb - mean) / std with ImageNet statistics, 3:9 the rays (moment, direction).
    """
    rgb = rgb.float() / 255.0 if rgb.dtype == torch.uint8 else rgb.float()
    mean = torch.tensor(IMAGENET_MEAN, device=rgb.device).view(1, 1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=rgb.device).view(1, 1, 3, 1, 1)
    rgb = (rgb - mean) / std  # [T, V, 3, H, W]
    rays = rays.to(rgb.device, torch.float32)
    if rays.ndim == 4:
        rays = rays.expand(rgb.shape[0], -1, -1, -1, -1)  # [T, V, 6, H, W]
    return torch.cat([rgb, rays], dim=2).reshape(1, -1, 9, *rgb.shape[-2:])


def mirror_side_views(front: torch.Tensor) -> torch.Tensor:
    """Views 1..3 (azimuth 90/180/270) of a model trained with ``side_views = "mirror"``, made from
    each frame's own view 0: front [T, 3, H, W] -> [T, 3, 3, H, W] = (front, front mirrored
    left-right, front).

    Why: without ImageDream nothing shows the unseen sides, but the back's silhouette is the mirror
    image of the front's (exactly so in an orthographic view) and a side view spans the same rows
    as the front; a blank view gives the network nothing of either. Works on any per-channel
    normalised image as well (mirroring commutes with it).
    """
    return torch.stack([front, front.flip(-1), front], dim=1)


class Reconstructor:
    """Run an :class:`L4GM` on frames of 4 views.

    ``model`` is moved to ``device`` (a name for :func:`video2gs.compute.resolve_device`, default:
    where it is) and cast to ``dtype`` (:func:`video2gs.compute.resolve_dtype`; ``"auto"``: bf16 on
    CUDA and on CPUs with native bf16, fp32 elsewhere), in the memory format
    :func:`video2gs.compute.memory_format` picks (channels-last on CPU). ``.device`` and
    ``.dtype`` say what actually runs (:meth:`describe` for a manifest). ``compile=True`` routes the
    network through ``torch.compile``. Results are returned float32 on ``output_device`` (default
    CPU, so callers can stream them to disk while the next chunk runs; pass ``None`` to keep them on
    the compute device). ``side_views`` says what the model saw as input views 1..3 in training
    ("reference": real or generated side views, as the released models; "blank": white, as
    ``reconstruct --views none``; "mirror": :func:`mirror_side_views` of every frame); :meth:`from_file` reads it from the file's metadata.
    """

    def __init__(
        self,
        model: L4GM,
        device: "str | torch.device | None" = None,
        dtype: "str | torch.dtype" = "auto",
        compile: bool = False,
        output_device: "str | torch.device | None" = "cpu",
        side_views: str = "reference",
    ):
        self.side_views = side_views
        self.device = compute.resolve_device(device) if device is not None else model.device
        self.dtype = compute.resolve_dtype(dtype, self.device)
        if model.config.num_input_views != len(INPUT_AZIMUTHS):
            raise ValueError(f"the Reconstructor feeds {len(INPUT_AZIMUTHS)} views; model has {model.config.num_input_views}")
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.model.set_memory_format(compute.memory_format(self.device, self.dtype))
        if compile:
            self.model.enable_compile()
        self.output_device = None if output_device is None else torch.device(output_device)
        self._rays: torch.Tensor | None = None  # [4, 6, H, W] float32 on self.device, built once

    @classmethod
    def from_file(
        cls,
        path: "str | Path",
        config: "None | str | dict | L4GMConfig" = None,
        device: "str | torch.device" = "cpu",
        dtype: "str | torch.dtype" = "auto",
        compile: bool = False,
        rot_norm: str | None = None,
        output_device: "str | torch.device | None" = "cpu",
    ) -> "Reconstructor":
        """Load weights with :func:`~video2gs.nn.checkpoint.load_model` (strict) and wrap them."""
        dev = compute.resolve_device(device)
        model = load_model(path, config=config, device=dev, dtype=compute.resolve_dtype(dtype, dev), rot_norm=rot_norm)
        return cls(model, device=dev, dtype=model.dtype, compile=compile, output_device=output_device,
                   side_views=trained_side_views(path))

    def describe(self) -> dict:
        """What runs, for a manifest: ``{"device": "cpu", "dtype": "bf16", "cpu_bf16": "avx512_bf16"}``."""
        return compute.describe(self.device, self.dtype)

    @property
    def config(self) -> L4GMConfig:
        return self.model.config

    @property
    def gaussians_per_frame(self) -> int:
        return self.config.gaussians_per_frame

    def rays(self) -> torch.Tensor:
        """Plücker rays [4, 6, H, W] (float32, on the device) of the default input views, cached."""
        if self._rays is None:
            self._rays = input_view_rays(self.config.input_size).to(self.device)
        return self._rays

    def build_input(self, frames: torch.Tensor) -> torch.Tensor:
        """frames [T, 4, 3, H, W] in [0, 1] (or uint8 0..255) -> network input [1, T·4, 9, H, W] float32.

        Channels 0:3 are (rgb - mean) / std with ImageNet statistics, 3:9 the Plücker rays (moment,
        direction) of view v, the same for every frame.
        """
        size = self.config.input_size
        if frames.ndim != 5 or tuple(frames.shape[1:]) != (len(INPUT_AZIMUTHS), 3, size, size):
            raise ValueError(f"frames must be [T, 4, 3, {size}, {size}], got {tuple(frames.shape)}")
        return network_input(frames.to(self.device), self.rays())

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """frames [T, 4, 3, H, W] (views at azimuth 0/90/180/270, object on white) -> Gaussians [T, N, 14]
        float32 (N = 4·S², index ``v·S² + row·S + col``; layout of :mod:`video2gs.gaussians`)."""
        with torch.inference_mode():
            x = self.build_input(frames)
            gaussians = self.model(x, num_frames=frames.shape[0])  # [T, N, 14]
            del x
            if self.output_device is not None:
                gaussians = gaussians.to(self.output_device)
        # Leave inference mode: callers may edit or differentiate copies of the result.
        return gaussians.clone()
