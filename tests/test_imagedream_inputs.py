"""ImageDream inputs: camera vectors, CLIP preprocessing, input image handling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import FIXTURES, REFERENCE
from safetensors.torch import load_file

from video2gs.camera import opengl_to_mvdream_blender, user_orbit
from video2gs.errors import UserError
from video2gs.nn.imagedream.camera import imagedream_cameras
from video2gs.nn.imagedream.clip_preprocess import ClipPreprocessConfig, clip_preprocess, shortest_edge_size
from video2gs.nn.imagedream.pipeline import image_on_white, resolve_device_dtype

PIPELINE_CONFIGS = REFERENCE / "imagedream_pipeline_configs.json"
GOLDEN_IO = FIXTURES / "imagedream_unet_golden_io.safetensors"


def _reference() -> dict:
    if not PIPELINE_CONFIGS.is_file():
        pytest.skip(f"{PIPELINE_CONFIGS} not found (set VIDEO2GS_SHARED)")
    return json.loads(PIPELINE_CONFIGS.read_text())


@pytest.mark.parametrize("elevation", [0, 5, 15])
def test_camera_vectors_match_reference_json(elevation):
    expected = torch.tensor(_reference()["camera_vectors"][f"elevation_{elevation}"])
    cams = imagedream_cameras(elevation)
    assert cams.shape == (5, 16) and cams.dtype == torch.float32
    torch.testing.assert_close(cams, expected, atol=1e-6, rtol=0)


def test_camera_vectors_match_fixture_and_sign_convention():
    if not GOLDEN_IO.is_file():
        pytest.skip(f"{GOLDEN_IO} not found (set VIDEO2GS_SHARED)")
    io = load_file(GOLDEN_IO)
    for e in (0, 15):
        torch.testing.assert_close(imagedream_cameras(e), io[f"camera_mvdream_diffusers_elev{e}"], atol=1e-6, rtol=0)
        # The LGM/L4GM vendored copy drops the minus sign: it equals ours at the opposite elevation.
        torch.testing.assert_close(imagedream_cameras(-e), io[f"camera_l4gm_elev{e}"], atol=1e-6, rtol=0)
    # Positive elevation = camera above: the blender z (row 2, translation) is +sin(e).
    assert imagedream_cameras(15)[0, 11] == pytest.approx(np.sin(np.radians(15)), abs=1e-6)


def test_blender_conversion_is_a_proper_rotation_of_the_world():
    c2w = user_orbit(20.0, 60.0, radius=1.0)
    out = opengl_to_mvdream_blender(c2w)
    # world (x, y, z) -> (x, -z, y): a rotation, so the camera basis stays right-handed and orthonormal.
    np.testing.assert_allclose(out[:3, 3], [c2w[0, 3], -c2w[2, 3], c2w[1, 3]], atol=1e-7)
    np.testing.assert_allclose(out[:3, :3] @ out[:3, :3].T, np.eye(3), atol=1e-6)
    assert np.linalg.det(out[:3, :3]) == pytest.approx(1.0, abs=1e-6)
    assert imagedream_cameras(0, extra_view=False).shape == (4, 16)


def test_clip_preprocess_matches_transformers_pil_processor():
    from transformers import CLIPImageProcessorPil  # transformers >= 5 (pinned) has it: no skip hides a break
    cfg_dict = _reference()["feature_extractor/preprocessor_config.json"]
    kwargs = {k: v for k, v in cfg_dict.items() if k not in ("feature_extractor_type", "image_processor_type")}
    processor = CLIPImageProcessorPil(**kwargs)
    cfg = ClipPreprocessConfig.from_dict(cfg_dict)
    rng = np.random.default_rng(0)
    for shape in [(256, 256, 3), (301, 257, 3), (180, 403, 3)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        expected = processor(images=image, return_tensors="np")["pixel_values"]
        ours = clip_preprocess(image, cfg)
        assert ours.shape == (1, 3, 224, 224) and ours.dtype == torch.float32
        np.testing.assert_allclose(ours.numpy(), expected, atol=1e-6, rtol=0)


def test_clip_preprocess_by_hand_and_config_roundtrip():
    cfg_dict = _reference()["feature_extractor/preprocessor_config.json"]
    cfg = ClipPreprocessConfig.from_dict(cfg_dict)
    assert cfg.to_dict() == dict(sorted(cfg_dict.items()))
    assert shortest_edge_size(300, 200, 224) == (336, 224) and shortest_edge_size(200, 301, 224) == (224, 337)
    # A flat colour survives resize and crop unchanged: only rescale + normalise act.
    image = np.full((256, 256, 3), (255, 128, 0), dtype=np.uint8)
    out = clip_preprocess(image, cfg)[0]
    expected = (np.array([255, 128, 0]) / 255 - np.array(cfg.image_mean)) / np.array(cfg.image_std)
    np.testing.assert_allclose(out.mean(dim=(1, 2)).numpy(), expected, atol=1e-5)
    with pytest.raises(ValueError):
        clip_preprocess(image.astype(np.float32), cfg)
    with pytest.raises(ValueError):
        ClipPreprocessConfig.from_dict({**cfg_dict, "do_center_crop": False})


def test_image_on_white_composites_rgba_and_validates():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:2, ..., 3] = 255  # top half opaque red-ish, bottom half transparent
    out = image_on_white(rgba)
    assert out.shape == (4, 4, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[:2, :, 0], 200 / 255, atol=1e-7)
    np.testing.assert_allclose(out[:2, :, 1:], 0.0)
    np.testing.assert_allclose(out[2:], 1.0)
    np.testing.assert_allclose(image_on_white(rgba.astype(np.float32) / 255), out, atol=1e-6)
    with pytest.raises(UserError):
        image_on_white(np.full((4, 4, 3), 1.5, dtype=np.float32))
    with pytest.raises(UserError):
        image_on_white(np.zeros((4, 4), dtype=np.uint8))


def test_auto_dtype_on_cpu_is_fp32():
    device, dtype = resolve_device_dtype("cpu", "auto")
    assert device.type == "cpu" and dtype == torch.float32
    assert resolve_device_dtype("cpu", "fp16")[1] == torch.float16
    with pytest.raises(UserError):
        resolve_device_dtype("cpu", "int8")
