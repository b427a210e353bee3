"""Loading/saving L4GM weights: official layout, dtypes, strict errors, LGM -> L4GM init, bad files."""

import json
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import REFERENCE
from video2gs.compute import cpu_bf16
from video2gs.errors import UserError
from video2gs.nn.checkpoint import (
    CONFIG_METADATA_KEY,
    describe_keys,
    infer_config,
    init_from_lgm,
    load_model,
    read_header,
    resolve_dtype,
    save_checkpoint,
)
from video2gs.nn.configs import L4GMConfig, get_config
from video2gs.nn.l4gm import L4GM

# A config with the structure of the golden micro model (attention at 2 levels, mid, 2 up blocks).
MICRO = L4GMConfig(
    input_size=32,
    down_channels=(32, 32, 32, 64),
    down_attention=(False, False, True, True),
    up_channels=(64, 32, 32),
    up_attention=(True, True, False),
    splat_size=16,
)


def model(temporal: bool = True, seed: int = 0, **changes) -> L4GM:
    torch.manual_seed(seed)
    return L4GM(MICRO.replace(use_temp_attn=temporal, **changes)).eval()


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].float(), sb[k].float()) for k in sa)


def plain_save(state: dict, path) -> None:
    """A file exactly as the reference writes it: no video2gs metadata."""
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"format": "pt"})


def test_save_then_load_round_trip(tmp_path):
    src = model()
    path = save_checkpoint(src, tmp_path / "m.safetensors")
    # official layout: exactly the model's keys, readable by plain safetensors
    assert set(load_file(str(path))) == set(src.state_dict())
    _, meta = read_header(path)
    assert L4GMConfig.from_dict(json.loads(meta[CONFIG_METADATA_KEY])) == src.config
    loaded = load_model(path)  # config from metadata
    assert loaded.config == src.config and same_weights(src, loaded)
    assert not loaded.training and loaded.dtype == torch.float32
    x = torch.randn(1, 8, 9, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), src(x), atol=0, rtol=0)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


@pytest.mark.parametrize("file_dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("model_dtype", ["fp32", "bf16"])
def test_every_file_dtype_loads_cast_to_the_model_dtype(tmp_path, file_dtype, model_dtype):
    src = model()
    path = save_checkpoint(src, tmp_path / "m.safetensors", dtype=file_dtype)
    assert next(iter(load_file(str(path)).values())).dtype == file_dtype
    loaded = load_model(path, dtype=model_dtype)
    want = resolve_dtype(model_dtype)
    assert all(p.dtype == want for p in loaded.parameters())
    w_src, w_got = src.unet.conv_in.weight, loaded.unet.conv_in.weight
    torch.testing.assert_close(w_got, w_src.to(file_dtype).to(want), atol=0, rtol=0)


def test_config_is_inferred_from_shapes_without_metadata(tmp_path):
    src = model(temporal=False)
    path = tmp_path / "lgm_micro.safetensors"
    plain_save(src.state_dict(), path)
    # Without metadata the input size is assumed to be the reference 256 (not visible in weights).
    loaded = load_model(path)
    cfg = loaded.config
    assert (cfg.down_channels, cfg.up_channels, cfg.down_attention, cfg.up_attention) == (
        MICRO.down_channels, MICRO.up_channels, MICRO.down_attention, MICRO.up_attention
    )
    assert cfg.use_temp_attn is False and cfg.input_size == 256 and cfg.splat_size == 128
    assert same_weights(src, loaded)
    # an explicit config is used as given
    assert load_model(path, config=MICRO.replace(use_temp_attn=False)).config.input_size == 32


def test_manifests_infer_the_released_configs():
    for name, temporal in (("l4gm_state_dict_manifest.json", True), ("lgm_big_state_dict_manifest.json", False)):
        path = REFERENCE / name
        if not path.exists():
            pytest.skip("reference manifests not available (../shared missing)")
        shapes = {k: tuple(v) for k, v in json.loads(path.read_text()).items()}
        cfg = infer_config(shapes)
        assert cfg.name == "big" and cfg.use_temp_attn is temporal
        assert cfg == get_config("big", use_temp_attn=temporal)
        assert describe_keys(shapes) == ("L4GM big" if temporal else "LGM big (no temporal layers)")


def test_describe_recognises_other_files():
    path = REFERENCE / "imagedream_unet_state_dict_manifest.json"
    if path.exists():
        assert "ImageDream" in describe_keys(json.loads(path.read_text()))
    assert "ImageDream" in describe_keys(["input_blocks.0.0.weight", "out.2.bias"])
    assert "diffusers" in describe_keys(["down_blocks.0.resnets.0.conv1.weight"])
    assert "module." in describe_keys(["module.unet.conv_in.weight"])
    assert "without the 'unet.' prefix" in describe_keys(["conv_in.weight", "down_blocks.0.nets.0.conv1.weight"])
    assert describe_keys([]) == "an empty weights file"
    assert "something else" in describe_keys(["encoder.weight"])


def test_lgm_file_into_l4gm_is_one_clear_error(tmp_path):
    path = save_checkpoint(model(temporal=False), tmp_path / "lgm.safetensors")
    with pytest.raises(UserError) as err:
        load_model(path, config=MICRO)
    msg = str(err.value)
    n_temporal = sum(".t_attns." in k for k in model().state_dict())
    assert f"{n_temporal} missing" in msg and "t_attns" in msg
    assert "looks like LGM" in msg and "init_from_lgm" in msg
    assert "\n" not in msg


def test_unexpected_and_wrong_shape_keys_are_named(tmp_path):
    state = model().state_dict()
    state["extra.weight"] = torch.zeros(3)
    state["unet.conv_in.bias"] = torch.zeros(7)
    path = tmp_path / "odd.safetensors"
    plain_save(state, path)
    with pytest.raises(UserError) as err:
        load_model(path, config=MICRO)
    msg = str(err.value)
    assert "1 unexpected (extra.weight)" in msg
    assert "1 with the wrong shape (unet.conv_in.bias file [7] vs model [32])" in msg
    assert "missing" not in msg


def test_imagedream_weights_are_refused_with_a_description(tmp_path):
    path = tmp_path / "unet.safetensors"
    plain_save({"input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3), "out.2.bias": torch.zeros(4)}, path)
    with pytest.raises(UserError, match="ImageDream"):
        load_model(path)
    with pytest.raises(UserError, match="looks like an ImageDream"):
        load_model(path, config="tiny")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_files_are_user_errors(tmp_path, damage):
    path = save_checkpoint(model(), tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\xff" * 999, "empty": b""}[damage])
    with pytest.raises(UserError, match="not a valid safetensors file"):
        load_model(path)


def test_missing_pickle_and_folder_paths(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_model(tmp_path / "nope.safetensors")
    pt = tmp_path / "model.pth"
    pt.write_bytes(b"not even read")
    with pytest.raises(UserError, match="pickle"):
        load_model(pt)
    with pytest.raises(UserError, match="folder"):
        load_model(tmp_path)
    with pytest.raises(UserError, match=".safetensors"):
        save_checkpoint(model(), tmp_path / "x.pt")


def test_init_from_lgm_copies_matching_and_keeps_temporal_fresh(tmp_path):
    lgm = model(temporal=False, seed=1)
    path = save_checkpoint(lgm, tmp_path / "lgm.safetensors", dtype="fp16")
    target = model(temporal=True, seed=2)
    report = init_from_lgm(target, path)
    lgm_keys = set(lgm.state_dict())
    assert set(report.copied) == lgm_keys
    assert set(report.fresh) == {k for k in target.state_dict() if ".t_attns." in k} and report.fresh
    assert report.skipped == []
    sd = target.state_dict()
    for k in lgm_keys:
        torch.testing.assert_close(sd[k], lgm.state_dict()[k].half().float(), atol=0, rtol=0)
    # fresh temporal layers keep PyTorch's default init (GroupNorm weight 1, bias 0)
    t_norm = target.unet.mid_block.t_attns[0].norm
    assert torch.all(t_norm.weight == 1) and torch.all(t_norm.bias == 0)
    # a dict works too, and shape mismatches are skipped rather than copied
    bad = {"unet.conv_in.weight": torch.zeros(1), "conv.bias": torch.ones(14)}
    report = init_from_lgm(model(), bad)
    assert report.copied == ["conv.bias"] and report.skipped == ["unet.conv_in.weight"]


def test_non_strict_load_warns_and_fills_what_matches(tmp_path):
    lgm = model(temporal=False)
    path = save_checkpoint(lgm, tmp_path / "lgm.safetensors")
    with pytest.warns(UserWarning, match="freshly initialised"):
        loaded = load_model(path, config=MICRO, strict=False)
    assert loaded.config.use_temp_attn
    torch.testing.assert_close(loaded.conv.weight, lgm.conv.weight, atol=0, rtol=0)


def test_legacy_rotation_switch(tmp_path):
    state = model(temporal=False).state_dict()
    for name, expected in (("model.safetensors", "gaussians"), ("model_fp16.safetensors", "gaussians"), ("model_fixrot.safetensors", "quat")):
        plain_save(state, tmp_path / name)
        assert load_model(tmp_path / name).config.rot_norm == expected, name
    assert load_model(tmp_path / "model.safetensors", rot_norm="quat").config.rot_norm == "quat"
    assert load_model(tmp_path / "model_fixrot.safetensors", rot_norm="gaussians").config.rot_norm == "gaussians"
    # an L4GM file named model.safetensors (what training writes) is never treated as legacy
    plain_save(model().state_dict(), tmp_path / "model.safetensors")
    assert load_model(tmp_path / "model.safetensors").config.rot_norm == "quat"


def test_resolve_dtype():
    # auto on CPU: bf16 where the CPU has native bf16 (video2gs.compute), else fp32
    assert resolve_dtype("auto", "cpu") == (torch.bfloat16 if cpu_bf16().fast else torch.float32)
    assert resolve_dtype("bf16") == torch.bfloat16 and resolve_dtype("half") == torch.float16
    with pytest.raises(UserError, match="unknown dtype"):
        resolve_dtype("int8")


def test_strict_load_allocates_nothing_before_the_check(tmp_path):
    """A mismatch is found from the header alone: the model is built on the meta device."""
    path = save_checkpoint(model(temporal=False), tmp_path / "lgm.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserError):
            load_model(path, config="big")  # would be 1.8 GB if materialised; fails instantly instead
