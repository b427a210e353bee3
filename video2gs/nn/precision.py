"""Training precision: fp32 master weights, low-precision compute inside autocast regions.

The optimiser always updates fp32 parameters; the forward (convolutions, linear layers, SDPA) runs
in the compute dtype under :func:`torch.autocast`, on CPU and CUDA alike, and gradients come back
in fp32. fp16 additionally needs loss scaling (CUDA only), bf16 and fp32 do not.

    prec = Precision.resolve("auto", device)         # bf16 on CUDA / native-bf16 CPUs, else fp32
    model = L4GM(cfg).to(device).set_memory_format(prec.memory_format).train()
    scaler = prec.grad_scaler()
    with prec.autocast():
        gaussians = model(images)                     # activated Gaussians come out fp32
    loss = criterion(render(gaussians, ...), target)  # render and loss in fp32, outside autocast
    scaler.scale(loss).backward(); scaler.step(opt); scaler.update()

The dtype policy is :func:`video2gs.compute.resolve_dtype`'s, so inference and training agree.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from video2gs import compute
from video2gs.errors import UserError


@dataclass(frozen=True)
class Precision:
    """Compute dtype of the autocast regions on one device (fp32: no autocast at all)."""

    device: torch.device
    dtype: torch.dtype

    @classmethod
    def resolve(cls, name: "str | torch.dtype", device: "str | torch.device") -> "Precision":
        """``"auto" | "fp32" | "bf16" | "fp16"`` on ``device`` (policy of :mod:`video2gs.compute`)."""
        dev = compute.resolve_device(device)
        dtype = compute.resolve_dtype(name, dev)
        if dtype == torch.float64:
            raise UserError("fp64 is for parity checks, not training; use fp32, bf16 or fp16")
        if dtype == torch.float16 and dev.type != "cuda":
            raise UserError("fp16 training needs CUDA (loss scaling); on CPU use bf16 or fp32")
        return cls(dev, dtype)

    @property
    def name(self) -> str:
        return compute.DTYPE_NAMES[self.dtype]

    @property
    def memory_format(self) -> torch.memory_format:
        """Layout for the network's images (channels-last on CPU): pass to ``L4GM.set_memory_format``."""
        return compute.memory_format(self.device, self.dtype)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for the forward pass: autocast to the compute dtype, or nothing for fp32."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A loss scaler: active for fp16 on CUDA, a pass-through (``enabled=False``) otherwise."""
        return torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
