"""video2gs.compute: device, dtype and memory-format policy."""

import pytest
import torch

from video2gs import compute
from video2gs.compute import CpuBf16, cpu_bf16, describe, memory_format, resolve_device, resolve_dtype
from video2gs.errors import UserError


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UserError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device("cuda:0")


@pytest.mark.parametrize("fast, want", [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_dtype_on_cpu_follows_native_bf16(monkeypatch, fast, want):
    monkeypatch.setattr(compute, "cpu_bf16", lambda: CpuBf16(amx_bf16=False, avx512_bf16=fast, capability="AVX512"))
    assert resolve_dtype("auto", "cpu") == want
    assert resolve_dtype("fp32", "cpu") == torch.float32 and resolve_dtype("bf16", "cpu") == torch.bfloat16
    assert resolve_dtype("half", "cpu") == torch.float16 and resolve_dtype(torch.float64) == torch.float64


def test_bad_dtypes_are_one_line_errors():
    with pytest.raises(UserError, match="unknown dtype 'int8'"):
        resolve_dtype("int8", "cpu")
    with pytest.raises(UserError, match="unsupported model dtype"):
        resolve_dtype(torch.int8)


def test_cpuinfo_flags_are_read(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n\nprocessor\t: 1\n")
    assert compute._cpuinfo_flags(info) == {"fpu", "sse", "avx512f", "avx512_bf16", "amx_tile"}
    assert compute._cpuinfo_flags(tmp_path / "missing") is None
    assert CpuBf16(False, True, "AVX512").fast and CpuBf16(True, False, "AMX").fast and not CpuBf16(False, False, "AVX2").fast


def test_this_cpu_is_described_consistently():
    cap = cpu_bf16()
    flags = compute._cpuinfo_flags()
    if flags is not None:
        assert cap.avx512_bf16 == ("avx512_bf16" in flags) and cap.amx_bf16 == ("amx_bf16" in flags)
    d = describe(torch.device("cpu"), resolve_dtype("auto", "cpu"))
    assert d["device"] == "cpu" and d["dtype"] == ("bf16" if cap.fast else "fp32")
    assert d["cpu_bf16"] in ("amx_bf16", "avx512_bf16", "none")


def test_memory_format():
    assert memory_format("cpu", torch.bfloat16) == torch.channels_last
    assert memory_format("cpu", torch.float32) == torch.channels_last
    assert memory_format("cpu", torch.float64) == torch.contiguous_format
    assert memory_format("cuda", torch.bfloat16) == torch.contiguous_format
