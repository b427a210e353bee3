"""LPIPS v0.1 (Zhang et al. 2018) with AlexNet or VGG16 features, without torchvision.

The metric, as the official ``lpips`` package computes it: both images go through an ImageNet
backbone; at five ReLU taps the features are unit-normalised over channels, their squared
difference is weighted per channel by a learned 1x1 convolution (the "lin" heads), averaged over
the image and summed over the taps. 0 = identical; larger = more different.

Weights: one safetensors file per backbone holding the torchvision backbone *and* the lin heads,
under the official state-dict names (``net.slice{s}.{i}.weight``, ``lin{k}.model.1.weight``,
``scaling_layer.shift|scale``). They are model-registry entries ``lpips-vgg`` / ``lpips-alex``
(cards ``models/lpips-*.json``: source, sha256, licence); :func:`load_lpips` resolves them.

:class:`LPIPS` is an ``nn.Module``: differentiable with respect to its *inputs* (usable as a
training loss, as L4GM's trainer uses LPIPS-VGG at 256²), never with respect to its weights
(``requires_grad=False``), and it runs on whatever device it is moved to.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from video2gs.errors import UserError

NETS = ("vgg", "alex")
MODEL_NAMES = {"vgg": "lpips-vgg", "alex": "lpips-alex"}

# Backbone layout: per slice (one tap each), the torchvision ``features`` indices of its convs,
# and whether a max-pool precedes the slice. Conv parameters for AlexNet: (stride, padding).
_VGG_SLICES = ((0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28))
_ALEX_SLICES = ((0,), (3,), (6,), (8,), (10,))
_ALEX_CONV = {0: (4, 2), 3: (1, 2), 6: (1, 1), 8: (1, 1), 10: (1, 1)}
_ALEX_POOL_BEFORE = (False, True, True, False, False)  # MaxPool(3, stride 2)
_EPS = 1e-10  # the official unit-normalisation epsilon


def expected_keys(net: str) -> set[str]:
    """The official state-dict names an LPIPS-``net`` weights file must hold."""
    slices = _VGG_SLICES if net == "vgg" else _ALEX_SLICES
    keys = {f"net.slice{s + 1}.{i}.{p}" for s, idx in enumerate(slices) for i in idx for p in ("weight", "bias")}
    return keys | {f"lin{k}.model.1.weight" for k in range(5)} | {"scaling_layer.shift", "scaling_layer.scale"}


class LPIPS(nn.Module):
    """LPIPS distance between two batches of RGB images.

    net: "vgg" (the variant L4GM trains with) or "alex" (the official headline variant).
    state: the official-name state dict (see :func:`load_lpips`, which reads it from disk).
    value_range: the range of the inputs: ``(0, 1)`` (default; renders and decoded images) or
        ``(-1, 1)`` (the official package's native range).

    ``forward(x, y)``: x, y [N,3,H,W] (or [3,H,W]) float -> distances [N]. Gradients flow to
    x and y only. H, W >= 16 for VGG (five taps down to 1/16), >= 32 for AlexNet.
    """

    def __init__(self, net: str, state: dict[str, torch.Tensor], value_range: tuple[float, float] = (0.0, 1.0)):
        super().__init__()
        if net not in NETS:
            raise ValueError(f"LPIPS net must be one of {NETS}, got {net!r}")
        if tuple(value_range) not in ((0.0, 1.0), (-1.0, 1.0)):
            raise ValueError(f"value_range must be (0, 1) or (-1, 1), got {value_range}")
        self.net = net
        self.value_range = tuple(float(v) for v in value_range)
        slices = _VGG_SLICES if net == "vgg" else _ALEX_SLICES
        missing = sorted(expected_keys(net) - set(state))
        if missing:
            raise UserError(f"LPIPS-{net} weights lack {len(missing)} tensors (e.g. {missing[0]}): wrong or damaged file")
        self.register_buffer("shift", state["scaling_layer.shift"].float().reshape(1, 3, 1, 1).clone())
        self.register_buffer("scale", state["scaling_layer.scale"].float().reshape(1, 3, 1, 1).clone())
        self.slices = nn.ModuleList()
        for s, idx in enumerate(slices):
            convs = nn.ModuleList()
            for i in idx:
                w, b = state[f"net.slice{s + 1}.{i}.weight"], state[f"net.slice{s + 1}.{i}.bias"]
                stride, pad = _ALEX_CONV[i] if net == "alex" else (1, 1)
                conv = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], stride=stride, padding=pad)
                with torch.no_grad():
                    conv.weight.copy_(w.float())
                    conv.bias.copy_(b.float())
                convs.append(conv)
            self.slices.append(convs)
        self.lins = nn.ModuleList()
        for k in range(5):
            w = state[f"lin{k}.model.1.weight"].float()  # [1,C,1,1]
            if w.shape[1] != self.slices[k][-1].out_channels:
                raise UserError(f"LPIPS-{net} weights: lin{k} has {w.shape[1]} channels, the backbone tap {self.slices[k][-1].out_channels}")
            lin = nn.Conv2d(w.shape[1], 1, 1, bias=False)
            with torch.no_grad():
                lin.weight.copy_(w)
            self.lins.append(lin)
        self.requires_grad_(False)
        self.eval()

    def _pool(self, s: int, x: torch.Tensor) -> torch.Tensor:
        if self.net == "vgg":
            return F.max_pool2d(x, 2, 2) if s > 0 else x
        return F.max_pool2d(x, 3, 2) if _ALEX_POOL_BEFORE[s] else x

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS takes RGB images [N,3,H,W], got {tuple(x.shape)}")
        x = x.to(self.shift.dtype)
        return 2 * x - 1 if self.value_range == (0.0, 1.0) else x

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five unit-normalised taps of images x [N,3,H,W] (in ``value_range``): [N,C_k,H_k,W_k]."""
        h = (self._prepare(x) - self.shift) / self.scale
        taps = []
        for s, convs in enumerate(self.slices):
            h = self._pool(s, h)
            for conv in convs:
                h = F.relu(conv(h))
            # clamp: the same value as sqrt(sum f^2) except at an all-zero feature vector, where
            # it keeps the gradient finite (sqrt'(0) is infinite) instead of NaN.
            norm = torch.sqrt(torch.clamp((h * h).sum(1, keepdim=True), min=1e-20))
            taps.append(h / (norm + _EPS))
        return taps

    def distance(self, fx: list[torch.Tensor], fy: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS [N] from two images' :meth:`features` (lets one target's features serve many predictions)."""
        total = fx[0].new_zeros(fx[0].shape[0])
        for lin, a, b in zip(self.lins, fx, fy):
            total = total + lin((a - b) ** 2).mean(dim=(1, 2, 3))
        return total

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape:
            raise ValueError(f"LPIPS needs images of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        n = 1 if x.ndim == 3 else x.shape[0]
        # One backbone pass over both batches (better use of the conv kernels).
        taps = self.features(torch.cat([x, y]) if x.ndim == 4 else torch.stack([x, y]))
        return self.distance([f[:n] for f in taps], [f[n:] for f in taps])


def read_lpips_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The official-name state dict from a safetensors file (UserError when unreadable)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: LPIPS weights not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read the LPIPS weights ({exc})") from exc


def load_lpips(net: str = "vgg", weights: str | os.PathLike | None = None, *, device=None,
               value_range: tuple[float, float] = (0.0, 1.0)) -> LPIPS:
    """An :class:`LPIPS` module for ``net`` ("vgg" | "alex"), weights from ``weights`` (a path or a
    model name) or, by default, the registry entry ``lpips-<net>`` (env var, config file, cache)."""
    if net not in NETS:
        raise UserError(f"unknown LPIPS network {net!r}; choose one of: {', '.join(NETS)}")
    from video2gs import weights as registry

    path = registry.resolve(weights if weights is not None else MODEL_NAMES[net], download=False)
    module = LPIPS(net, read_lpips_state(path), value_range)
    return module.to(device) if device is not None else module
