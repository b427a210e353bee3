"""Parity with the official L4GM forward (golden micro fixture, ../shared/fixtures/README.md)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import FIXTURES
from video2gs.nn.attention import cpu_attention_budget
from video2gs.nn.checkpoint import load_model
from video2gs.nn.configs import L4GMConfig

TOL = 1e-4


@pytest.fixture(scope="module")
def golden():
    paths = [FIXTURES / f"l4gm_golden_micro_{n}" for n in ("config.json", "weights.safetensors", "io.safetensors")]
    if not all(p.exists() for p in paths):
        pytest.skip("L4GM golden fixture not available (../shared/fixtures missing)")
    cfg = L4GMConfig.from_dict(json.loads(paths[0].read_text()))
    return cfg, paths[1], load_file(str(paths[2]))


def _run(model, x):
    with torch.inference_mode():
        return model.forward_raw(x).float(), model(x)


def test_golden_parity_fp32(golden):
    cfg, weights, io = golden
    model = load_model(weights, config=cfg, dtype="fp32")  # strict by default
    assert model.dtype == torch.float32 and not model.training
    raw, gaussians = _run(model, io["input"])
    assert raw.shape == io["raw_conv_out"].shape and gaussians.shape == io["gaussians"].shape
    assert (raw - io["raw_conv_out"]).abs().max() <= TOL
    assert (gaussians - io["gaussians"]).abs().max() <= TOL


def test_golden_parity_channels_last_fp32(golden):
    """The CPU layout :mod:`video2gs.compute` picks for fp32 (NHWC, oneDNN convolutions) keeps parity."""
    cfg, weights, io = golden
    model = load_model(weights, config=cfg, dtype="fp32").set_memory_format(torch.channels_last)
    assert model.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    raw, gaussians = _run(model, io["input"])
    assert (raw - io["raw_conv_out"]).abs().max() <= TOL
    assert (gaussians - io["gaussians"]).abs().max() <= TOL


def test_golden_parity_with_heavily_chunked_attention(golden):
    cfg, weights, io = golden
    model = load_model(weights, config=cfg, dtype="fp32")
    with cpu_attention_budget(2**20):  # ~20x below the largest score matrix: every attention is chunked
        raw, gaussians = _run(model, io["input"])
    assert (raw - io["raw_conv_out"]).abs().max() <= TOL
    assert (gaussians - io["gaussians"]).abs().max() <= TOL


def test_golden_parity_fp64_is_at_least_as_close(golden):
    cfg, weights, io = golden
    model = load_model(weights, config=cfg, dtype=torch.float64)
    raw, gaussians = _run(model, io["input"].double())
    assert (raw - io["raw_conv_out"]).abs().max() <= TOL
    assert (gaussians - io["gaussians"]).abs().max() <= TOL


@pytest.mark.parametrize("dtype, rel", [("bf16", 0.05), ("fp16", 0.01)])
def test_low_precision_stays_close(golden, dtype, rel):
    cfg, weights, io = golden
    model = load_model(weights, config=cfg, dtype=dtype)
    assert model.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    raw, gaussians = _run(model, io["input"])
    assert gaussians.dtype == torch.float32  # activations always in fp32
    ref = io["raw_conv_out"]
    assert (raw - ref).abs().mean() <= rel * ref.std()
    assert torch.isfinite(gaussians).all()
    # quaternions are unit even though the network ran in low precision
    torch.testing.assert_close(gaussians[..., 7:11].norm(dim=-1), torch.ones(gaussians.shape[:2]), atol=1e-5, rtol=0)
