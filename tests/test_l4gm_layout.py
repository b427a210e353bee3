"""L4GM state-dict layout, parameter counts, configs and analytic FLOPs (meta device: nothing allocated)."""

import json

import pytest
import torch

from conftest import FIXTURES, REFERENCE
from video2gs.errors import UserError
from video2gs.nn.configs import CONFIGS, L4GMConfig, forward_flops, get_config
from video2gs.nn.l4gm import L4GM


def meta_model(config) -> L4GM:
    with torch.device("meta"):
        return L4GM(config)


def shapes_of(model) -> dict:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def load_manifest(name: str) -> dict:
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"reference manifest {path} not available (../shared missing)")
    return json.loads(path.read_text())


def test_big_matches_released_l4gm_manifest_exactly():
    manifest = load_manifest("l4gm_state_dict_manifest.json")
    ours = shapes_of(meta_model("big"))
    assert len(manifest) == 456
    assert ours == manifest  # same names, same shapes
    assert set(ours) == set(manifest)


def test_big_without_temporal_matches_lgm_manifest_exactly():
    manifest = load_manifest("lgm_big_state_dict_manifest.json")
    ours = shapes_of(meta_model(get_config("big", use_temp_attn=False)))
    assert len(manifest) == 376
    assert ours == manifest
    assert not any(".t_attns." in k for k in ours)


def _count(model) -> tuple[int, int]:
    sd = model.state_dict()
    return len(sd), sum(v.numel() for v in sd.values())


@pytest.mark.parametrize(
    "name, temporal, tensors, params",
    [
        ("big", True, 456, 466_464_544),
        ("big", False, 376, 415_042_848),
        ("small", True, 424, 464_379_936),
        ("small", False, 344, 412_958_240),
        ("tiny", True, 274, 66_044_032),
        ("tiny", False, 244, 59_743_360),
    ],
)
def test_parameter_counts_match_the_reference_table(name, temporal, tensors, params):
    assert _count(meta_model(get_config(name, use_temp_attn=temporal))) == (tensors, params)


def test_golden_micro_config_counts():
    path = FIXTURES / "l4gm_golden_micro_config.json"
    if not path.exists():
        pytest.skip("golden fixture config not available (../shared missing)")
    cfg = L4GMConfig.from_dict(json.loads(path.read_text()))
    assert _count(meta_model(cfg)) == (300, 1_241_248)
    assert cfg.num_unused_skips == 3


def test_reference_options_map_to_named_configs():
    opts = load_manifest("l4gm_lgm_options.json")
    arch = lambda c: (c.down_channels, c.down_attention, c.mid_attention, c.up_channels, c.up_attention, c.splat_size)  # noqa: E731
    assert arch(L4GMConfig.from_dict(opts["l4gm"]["big"])) == arch(get_config("big"))
    assert arch(L4GMConfig.from_dict(opts["l4gm"]["lrm"])) == arch(get_config("small"))
    # LGM tiny lists 4 up_attention flags for 3 up blocks; the extra one is dropped.
    tiny = L4GMConfig.from_dict(opts["lgm"]["tiny"])
    assert tiny.up_attention == (True, False, False)
    assert arch(tiny) == arch(get_config("tiny"))


def test_big_forward_shapes_on_meta_at_t16():
    model = meta_model("big")
    with torch.inference_mode():
        raw = model.forward_raw(torch.empty(1, 64, 9, 256, 256, device="meta"))
        out = model.to_gaussians(raw, 16)
    assert raw.shape == (64, 14, 128, 128)
    assert out.shape == (16, 65536, 14)


def test_config_round_trip_and_model_card_form():
    for cfg in CONFIGS.values():
        assert L4GMConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    card = {"arch": "big", "use_temp_attn": False, "rot_norm": "gaussians", "tensors": 376, "num_frames": 16}
    cfg = L4GMConfig.from_dict(card)
    assert cfg == get_config("big", use_temp_attn=False, rot_norm="gaussians")
    assert L4GMConfig.from_dict({"rot_norm_dim": "gaussians"}).rot_norm == "gaussians"


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"splat_size": 64}, "splat_size"),
        ({"down_channels": (64, 128, 256, 512, 1024, 1000)}, "multiple of 32"),
        ({"rot_norm": "dim1"}, "rot_norm"),
        ({"down_attention": (True,)}, "down_attention"),
        ({"input_size": 100}, "divisible"),
        ({"up_channels": (1024,) * 7, "up_attention": (False,) * 7, "splat_size": 512}, "skips"),
        ({"up_channels": (1024, 1024, 512, 256, 256)}, "must equal down_channels"),
    ],
)
def test_invalid_configs_are_user_errors(changes, words):
    with pytest.raises(UserError, match=words):
        get_config("big", **changes)
    with pytest.raises(UserError, match="unknown L4GM config"):
        get_config("huge")


def test_analytic_flops_match_reference_estimates():
    big = get_config("big")
    f16 = forward_flops(big, 16)
    assert f16["total"] == pytest.approx(42.5e12, rel=0.01)
    assert f16["conv"] == pytest.approx(23.8e12, rel=0.01)
    assert f16["attn_proj"] == pytest.approx(3.2e12, rel=0.02)
    assert f16["attn_scores"] == pytest.approx(15.6e12, rel=0.01)
    assert forward_flops(big, 1)["total"] == pytest.approx(1.9e12, rel=0.03)
    assert forward_flops(big, 4)["total"] == pytest.approx(8.3e12, rel=0.01)
    # Everything but the temporal score term is linear in frames and batch.
    lgm = get_config("big", use_temp_attn=False)
    assert forward_flops(lgm, 4)["total"] == pytest.approx(4 * forward_flops(lgm, 1)["total"])
    assert forward_flops(big, 2, batch=3)["total"] == pytest.approx(3 * forward_flops(big, 2)["total"])
