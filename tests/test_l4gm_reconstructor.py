"""Reconstructor: network input construction (normalised RGB + Plücker rays) and its outputs."""

import pytest
import torch

from video2gs import camera
from video2gs.compute import resolve_dtype
from video2gs.nn.checkpoint import save_checkpoint
from video2gs.nn.configs import L4GMConfig
from video2gs.nn.l4gm import L4GM
from video2gs.reconstructor import IMAGENET_MEAN, IMAGENET_STD, Reconstructor

MICRO = L4GMConfig(
    input_size=32,
    down_channels=(32, 32, 32, 64),
    down_attention=(False, False, True, True),
    up_channels=(64, 32, 32),
    up_attention=(True, True, False),
    splat_size=16,
)


@pytest.fixture(scope="module")
def recon() -> Reconstructor:
    torch.manual_seed(0)
    return Reconstructor(L4GM(MICRO), device="cpu")


def frames(t: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(t, 4, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_input_is_normalised_rgb_then_pluecker_frame_major(recon):
    f = frames(3)
    x = recon.build_input(f)
    assert x.shape == (1, 12, 9, 32, 32) and x.dtype == torch.float32
    x = x.view(3, 4, 9, 32, 32)  # frame-major: image t·4 + v is frame t, view v
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    torch.testing.assert_close(x[:, :, :3] * std + mean, f, atol=1e-6, rtol=0)
    rays = camera.input_view_rays(32)  # [4, 6, H, W]
    for t in range(3):
        torch.testing.assert_close(x[t, :, 3:], rays, atol=0, rtol=0)
    # Plücker = (o x d, d): unit directions, moments orthogonal to them
    d, m = x[0, :, 6:9], x[0, :, 3:6]
    torch.testing.assert_close(d.norm(dim=1), torch.ones(4, 32, 32))
    assert (m * d).sum(1).abs().max() < 1e-5


def test_rays_are_built_once(recon, monkeypatch):
    recon.rays()
    import video2gs.reconstructor as mod

    monkeypatch.setattr(mod, "input_view_rays", lambda *a, **k: pytest.fail("rays rebuilt"))
    recon.build_input(frames(1))


def test_call_returns_fp32_cpu_gaussians_equal_to_the_model(recon):
    f = frames(2)
    out = recon(f)
    assert out.shape == (2, 4 * 16 * 16, 14) and out.dtype == torch.float32 and out.device.type == "cpu"
    out += 0  # a normal tensor, not an inference-mode one: callers may edit it
    with torch.inference_mode():
        direct = recon.model(recon.build_input(f))
    torch.testing.assert_close(out, direct, atol=0, rtol=0)


def test_uint8_frames_match_float_frames(recon):
    f8 = (frames(1) * 255).round().to(torch.uint8)
    torch.testing.assert_close(recon(f8), recon(f8.float() / 255), atol=1e-6, rtol=0)


def test_bad_frame_shapes_are_rejected(recon):
    for shape in ((2, 3, 3, 32, 32), (2, 4, 3, 64, 64), (4, 3, 32, 32), (1, 4, 4, 32, 32)):
        with pytest.raises(ValueError, match="frames must be"):
            recon(torch.rand(shape))


def test_from_file_and_dtype(tmp_path):
    torch.manual_seed(1)
    src = L4GM(MICRO)
    path = save_checkpoint(src, tmp_path / "tiny.safetensors")
    r32 = Reconstructor.from_file(path, dtype="fp32")
    rbf = Reconstructor.from_file(path, dtype="bf16")
    assert r32.model.dtype == torch.float32 and rbf.model.dtype == torch.bfloat16
    assert (r32.dtype, rbf.dtype) == (torch.float32, torch.bfloat16) and r32.device == torch.device("cpu")
    # CPU runs channels-last in both dtypes (oneDNN NHWC convolutions)
    assert rbf.model.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert r32.model.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert rbf.describe()["dtype"] == "bf16" and r32.describe() == {**rbf.describe(), "dtype": "fp32"}
    assert Reconstructor.from_file(path).dtype == resolve_dtype("auto", "cpu")  # the default is the policy
    f = frames(1)
    a, b = r32(f), rbf(f)
    assert b.dtype == torch.float32
    assert (a - b)[..., :3].abs().mean() < 0.05  # bf16 network, same answer within bf16 precision
