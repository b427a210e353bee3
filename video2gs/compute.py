"""Where and in what precision work runs: the one device resolver and the one dtype resolver.

Every command that takes ``--device`` / ``--dtype`` goes through these, so ``auto`` means the
same everywhere and the manifest can record what actually ran (:func:`describe`).
"""

from __future__ import annotations

import torch

from video2gs.errors import UserError


def resolve_device(name: str | torch.device | None) -> torch.device:
    """``auto`` (or None) -> cuda when available, else cpu; otherwise a device that exists here."""
    if isinstance(name, torch.device):
        return name
    if name is None or str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(str(name))
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {name}: CUDA is not available on this machine (use cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise UserError(f"device {name}: MPS is not available on this machine")
    elif dev.type != "cpu":
        raise UserError(f"device {name}: unsupported device type {dev.type!r} (use auto, cpu, cuda or cuda:N)")
    return dev


def resolve_dtype(name: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``auto`` | fp32 | fp16 | bf16 -> the torch dtype the network runs in on ``device``."""
    from video2gs.nn.checkpoint import resolve_dtype as _resolve

    return _resolve(name, device)


DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.float64: "fp64"}


def describe(device: torch.device, dtype: torch.dtype) -> dict:
    """What ran, for the manifest: ``{"device": "cpu", "dtype": "fp32"}``."""
    return {"device": str(device), "dtype": DTYPE_NAMES.get(dtype, str(dtype))}
