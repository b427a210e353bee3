"""MultiViewUNet: released parameter names/shapes, golden parity with the official port, loading the hub layout."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import FIXTURES, REFERENCE
from safetensors.torch import load_file, save_file

from video2gs.nn.imagedream.unet import MultiViewUNet, timestep_embedding

GOLDEN_CONFIG = FIXTURES / "imagedream_unet_golden_config.json"
GOLDEN_WEIGHTS = FIXTURES / "imagedream_unet_golden_weights.safetensors"
GOLDEN_IO = FIXTURES / "imagedream_unet_golden_io.safetensors"
TOL = 1e-4


def _need(*paths):
    for p in paths:
        if not p.is_file():
            pytest.skip(f"reference file {p} not found (set VIDEO2GS_SHARED)")


@pytest.fixture(scope="module")
def golden():
    _need(GOLDEN_CONFIG, GOLDEN_WEIGHTS, GOLDEN_IO)
    cfg = json.loads(GOLDEN_CONFIG.read_text())
    unet = MultiViewUNet(**cfg["unet_config"]).eval()
    unet.load_state_dict(load_file(GOLDEN_WEIGHTS), strict=True)
    return cfg, unet, load_file(GOLDEN_IO)


def test_full_size_names_and_shapes_match_release_manifest():
    manifest_path = REFERENCE / "imagedream_unet_state_dict_manifest.json"
    _need(manifest_path, REFERENCE / "imagedream_unet_config.json")
    manifest = json.loads(manifest_path.read_text())
    hub_config = json.loads((REFERENCE / "imagedream_unet_config.json").read_text())
    config = {k: v for k, v in hub_config.items() if not k.startswith("_")}
    with torch.device("meta"):
        unet = MultiViewUNet(**config)
    shapes = {k: list(v.shape) for k, v in unet.state_dict().items()}
    assert len(shapes) == 773
    assert set(shapes) == set(manifest), (sorted(set(shapes) ^ set(manifest))[:10])
    assert shapes == manifest
    assert sum(v.numel() for v in unet.state_dict().values()) == 941_672_900


def test_golden_fixture_reproduces_official_outputs(golden):
    cfg, unet, io = golden
    assert sum(p.numel() for p in unet.parameters()) == cfg["num_params"]
    x = io["x"].clone()
    with torch.no_grad():
        kwargs = dict(num_frames=int(io["num_frames"]), camera=io["camera"], ip=io["ip"], ip_img=io["ip_img"])
        out = unet(x, io["timesteps"], io["context"], **kwargs)
        emb = unet.embed_time_and_camera(io["timesteps"], io["camera"], torch.float32)
        resampled = unet.image_prompt_tokens(io["ip"])
    assert torch.equal(x, io["x"]), "forward() must not modify the caller's x"
    t_emb = timestep_embedding(io["timesteps"], cfg["unet_config"]["model_channels"])
    torch.testing.assert_close(t_emb, io["t_emb"], atol=TOL, rtol=TOL)
    torch.testing.assert_close(emb, io["emb"], atol=TOL, rtol=TOL)
    torch.testing.assert_close(resampled, io["resampler_out"], atol=TOL, rtol=TOL)
    torch.testing.assert_close(torch.cat([io["context"], resampled], 1), io["context_full"], atol=TOL, rtol=TOL)
    torch.testing.assert_close(out, io["out"], atol=TOL, rtol=TOL)


def test_hub_unet_folder_loads_through_from_pretrained(golden, tmp_path):
    """A folder like the release (class name MultiViewUNetModel, fp16 weights) loads into our class, strictly."""
    cfg, unet, _ = golden
    folder = tmp_path / "unet"
    folder.mkdir()
    hub_config = {"_class_name": "MultiViewUNetModel", "_diffusers_version": "0.25.0", **cfg["unet_config"]}
    (folder / "config.json").write_text(json.dumps(hub_config, indent=2, sort_keys=True) + "\n")
    weights16 = {k: v.half().contiguous() for k, v in unet.state_dict().items()}
    save_file(weights16, str(folder / "diffusion_pytorch_model.safetensors"))

    options = dict(torch_dtype=torch.float32, local_files_only=True, use_safetensors=True, output_loading_info=True)
    loaded, info = MultiViewUNet.from_pretrained(tmp_path, subfolder="unet", **options)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    as_json = lambda v: list(v) if isinstance(v, (list, tuple)) else v  # noqa: E731
    assert {k: as_json(loaded.config[k]) for k in cfg["unet_config"]} == cfg["unet_config"]
    state = loaded.state_dict()
    assert state.keys() == weights16.keys()
    assert all(state[k].dtype == torch.float32 and torch.equal(state[k], weights16[k].float()) for k in state)


def _small_unet(**overrides) -> MultiViewUNet:
    cfg = dict(model_channels=32, channel_mult=[1, 2], num_res_blocks=1, attention_resolutions=[1, 2],
               num_head_channels=16, context_dim=32, camera_dim=16, ip_dim=2)  # fmt: skip
    cfg.update(overrides)
    torch.manual_seed(0)
    return MultiViewUNet(**cfg).eval()


def _small_inputs(groups: int = 1, size: int = 8, ip_tokens: int = 5, ctx: int = 32):
    n = groups * 5
    return dict(
        x=torch.randn(n, 4, size, size), timesteps=torch.full((n,), 500.0), context=torch.randn(n, 7, ctx),
        camera=torch.randn(n, 16), ip=torch.randn(n, ip_tokens, 1280), ip_img=torch.randn(groups, 4, size, size),
    )  # fmt: skip


def test_transformer_depth_two_builds_and_runs():
    unet = _small_unet(transformer_depth=2)
    assert any(".transformer_blocks.1.attn2.to_k_ip.weight" in k for k in unet.state_dict())
    with torch.no_grad():
        out = unet(num_frames=5, **_small_inputs())
    assert out.shape == (5, 4, 8, 8) and torch.isfinite(out).all()


def test_pixel_controller_replaces_reference_slot_and_views_interact():
    unet = _small_unet()
    inp = _small_inputs(groups=2)
    with torch.no_grad():
        base = unet(num_frames=5, **inp)
        # The reference rows (4 and 9) of x are overwritten by ip_img: their content is irrelevant.
        x2 = inp["x"].clone()
        x2[4::5] += 3.0
        same = unet(num_frames=5, **{**inp, "x": x2})
        # ip_img of group 0 reaches the views of group 0 only (3-D attention is per object).
        ip_img2 = inp["ip_img"].clone()
        ip_img2[0] += 1.0
        moved = unet(num_frames=5, **{**inp, "ip_img": ip_img2})
    torch.testing.assert_close(same, base, atol=1e-5, rtol=1e-5)
    assert (moved[:4] - base[:4]).abs().max() > 1e-3
    torch.testing.assert_close(moved[5:], base[5:], atol=1e-5, rtol=1e-5)


def test_half_precision_matches_fp32():
    """fp16 (the CUDA dtype): group norms and the resampler softmax run in fp32, the rest in fp16."""
    unet = _small_unet()
    half = _small_unet().half()
    inp = _small_inputs()
    with torch.no_grad():
        ref = unet(num_frames=5, **inp)
        out = half(num_frames=5, **{k: v.half() for k, v in inp.items()})
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    assert (out.float() - ref).abs().max() < 2e-2 * ref.abs().max()


def test_forward_rejects_batch_not_multiple_of_num_frames():
    unet = _small_unet()
    inp = _small_inputs()
    with pytest.raises(ValueError, match="num_frames"):
        unet(num_frames=4, **inp)
