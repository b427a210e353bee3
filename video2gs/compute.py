"""Where and in what precision the networks run: device, dtype and memory format, decided in one place.

* :func:`resolve_device` -- ``"auto" | "cpu" | "cuda" | "cuda:N"`` -> :class:`torch.device`.
* :func:`resolve_dtype` -- ``"auto" | "fp32" | "fp16" | "bf16"`` (or a :class:`torch.dtype`) for a
  device. ``auto``: bf16 on CUDA (fp16 where bf16 is unsupported); on CPU bf16 when the CPU has
  native bf16 dot products (AMX-BF16 or AVX512-BF16, see :func:`cpu_bf16`), fp32 elsewhere.
* :func:`memory_format` -- channels-last on CPU for fp32 and bf16 (oneDNN's NHWC convolutions and
  the channels-last GroupNorm kernel), the default layout otherwise.

The CPU rule comes from ``benchmarks/bench_l4gm.py`` on an AVX512-BF16 CPU (AMD EPYC, 2 threads,
random weights, a heavily shared machine): with 4D attention and channels-last in both dtypes, bf16
ran ``tiny`` at T = 4 1.9x and ``small`` at T = 1 1.45x faster than fp32; bf16 outputs of a random
micro model render within 41-47 dB PSNR of fp32 at the front view (``tests/test_l4gm_precision.py``).
On CPUs without native bf16 (not measured here: PyTorch then emulates bf16 arithmetic) ``auto``
keeps fp32.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from video2gs.errors import UserError

DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32, "float32": torch.float32, "float": torch.float32,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}  # fmt: skip
# dtypes a network may be cast to (fp64 only for reference/parity checks, never chosen by "auto")
SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.float64: "fp64"}


@dataclass(frozen=True)
class CpuBf16:
    """What this CPU offers for bf16 matrix products."""

    amx_bf16: bool  # Intel AMX tiles with bf16 (Sapphire Rapids and later)
    avx512_bf16: bool  # AVX512-BF16 dot products (Cooper Lake, Zen 4 and later)
    capability: str  # torch.backends.cpu.get_cpu_capability(): the vector ISA PyTorch's kernels use

    @property
    def fast(self) -> bool:
        """True when bf16 runs natively (AMX or AVX512-BF16), i.e. ``auto`` picks bf16 on this CPU."""
        return self.amx_bf16 or self.avx512_bf16


def _cpuinfo_flags(path: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """The ``flags`` of the first processor in /proc/cpuinfo (Linux), or None where there is none."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return None


@functools.lru_cache(maxsize=1)
def cpu_bf16() -> CpuBf16:
    """This CPU's bf16 capability: /proc/cpuinfo flags on Linux, PyTorch's own cpuinfo elsewhere."""
    capability = torch.backends.cpu.get_cpu_capability()
    flags = _cpuinfo_flags()
    if flags is not None:
        return CpuBf16(amx_bf16="amx_bf16" in flags, avx512_bf16="avx512_bf16" in flags, capability=capability)
    probe = lambda name: bool(getattr(torch.cpu, name, lambda: False)())  # noqa: E731 - private, may vanish
    return CpuBf16(amx_bf16=probe("_is_amx_tile_supported"), avx512_bf16=probe("_is_avx512_bf16_supported"), capability=capability)


def resolve_device(name: "str | torch.device") -> torch.device:
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` -> a device.

    Raises :class:`UserError` (one line) for an unknown name or CUDA on a machine without it.
    """
    if isinstance(name, torch.device):
        dev = name
    elif name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(name)
        except RuntimeError as exc:
            raise UserError(f"--device: unknown device {name!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    return dev


def resolve_dtype(name: "str | torch.dtype", device: "str | torch.device" = "cpu") -> torch.dtype:
    """The dtype a network runs in on ``device``.

    ``"auto"``: CUDA -> bf16 (fp16 where the GPU lacks bf16); CPU -> bf16 when :func:`cpu_bf16` says
    it is native, else fp32; other devices -> fp32. ``"fp32"``, ``"fp16"``, ``"bf16"`` (and the
    spellings in :data:`DTYPES`) or a :class:`torch.dtype` are taken as given. Anything else is a
    :class:`UserError`.
    """
    if isinstance(name, torch.dtype):
        if name not in SUPPORTED_DTYPES:
            raise UserError(f"unsupported model dtype {name}; use fp32, fp16 or bf16")
        return name
    key = str(name).lower()
    if key == "auto":
        dev = torch.device(device)
        if dev.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if dev.type == "cpu" and cpu_bf16().fast:
            return torch.bfloat16
        return torch.float32
    if key not in DTYPES:
        raise UserError(f"--dtype: unknown dtype {name!r}; use auto, fp32, fp16 or bf16")
    return DTYPES[key]


def memory_format(device: "str | torch.device", dtype: torch.dtype) -> torch.memory_format:
    """Layout of the image tensors in the networks: channels-last for fp32 and bf16 on CPU, the
    default layout elsewhere. On CPU both dtypes run oneDNN convolutions, which were 2.8x (fp32) and
    3.7x (bf16) faster on NHWC than on NCHW tensors for ``tiny`` at T = 4
    (``benchmarks/bench_l4gm.py --layout nchw|cl``)."""
    if torch.device(device).type == "cpu" and dtype in (torch.float32, torch.bfloat16):
        return torch.channels_last
    return torch.contiguous_format


def describe(device: torch.device, dtype: torch.dtype) -> dict:
    """What ran, for a run's manifest: ``{"device": "cpu", "dtype": "bf16", "cpu_bf16": "avx512_bf16"}``."""
    out = {"device": str(device), "dtype": DTYPE_NAMES.get(dtype, str(dtype))}
    if device.type == "cpu":
        cap = cpu_bf16()
        out["cpu_bf16"] = "amx_bf16" if cap.amx_bf16 else "avx512_bf16" if cap.avx512_bf16 else "none"
    return out
