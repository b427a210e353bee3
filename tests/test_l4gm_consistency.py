"""Structural properties of the L4GM network on a random micro model (no fixture needed).

Neither attention has a positional encoding and every conv acts per image, so the network is
equivariant to permuting frames and to permuting the views of every frame; temporal attention
is the only operator that mixes frames; batch elements never interact.
"""

import pytest
import torch

from video2gs.nn import unet as unet_module
from video2gs.nn.configs import L4GMConfig
from video2gs.nn.l4gm import L4GM, activate_gaussians

MICRO = L4GMConfig(
    input_size=32,
    down_channels=(32, 32, 32, 64),
    down_attention=(False, False, True, True),
    mid_attention=True,
    up_channels=(64, 32, 32),
    up_attention=(True, True, False),
    splat_size=16,
)
V, S = 4, 16


def make(temporal: bool = True, seed: int = 0) -> L4GM:
    torch.manual_seed(seed)
    model = L4GM(MICRO.replace(use_temp_attn=temporal)).eval()
    with torch.no_grad():  # random GroupNorm affines so no block sits at an identity-like init
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(torch.randn_like(p) * 0.5 + (1.0 if name.endswith("weight") else 0.0))
    return model


def run(model, x):
    with torch.inference_mode():
        return model(x)


def images(b: int, t: int, seed: int = 1):
    return torch.randn(b, t * V, 9, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_output_layout_and_activation_ranges():
    out = run(make(), images(1, 2))
    assert out.shape == (2, V * S * S, 14) and out.dtype == torch.float32
    assert out[..., 0:3].abs().max() <= 1
    assert ((out[..., 3] > 0) & (out[..., 3] < 1)).all()
    assert (out[..., 4:7] > 0).all()
    torch.testing.assert_close(out[..., 7:11].norm(dim=-1), torch.ones(2, V * S * S))
    assert ((out[..., 11:] >= 0) & (out[..., 11:] <= 1)).all()


def test_gaussian_index_is_view_row_col():
    model = make()
    x = images(1, 2)
    with torch.inference_mode():
        raw = model.forward_raw(x)  # [T·V, 14, S, S]
        out = model.to_gaussians(raw, 2)
    t, v, row, col = 1, 2, 5, 11
    expected = activate_gaussians(raw[t * V + v, :, row, col][None, None])[0, 0]
    torch.testing.assert_close(out[t, v * S * S + row * S + col], expected)


def test_temporal_off_equals_per_frame_calls():
    model = make(temporal=False)
    x = images(1, 3)
    joint = run(model, x)
    single = torch.cat([run(model, x[:, t * V : (t + 1) * V]) for t in range(3)])
    torch.testing.assert_close(joint, single, atol=2e-5, rtol=0)


def test_temporal_on_mixes_frames():
    model = make(temporal=True)
    x = images(1, 3)
    joint = run(model, x)
    single = torch.cat([run(model, x[:, t * V : (t + 1) * V]) for t in range(3)])
    assert (joint - single).abs().max() > 1e-2


def test_frame_permutation_equivariance():
    model = make()
    x = images(1, 3)
    perm = [2, 0, 1]
    x_perm = x.view(1, 3, V, 9, 32, 32)[:, perm].reshape(1, 3 * V, 9, 32, 32)
    torch.testing.assert_close(run(model, x_perm), run(model, x)[perm], atol=2e-5, rtol=0)


def test_view_permutation_equivariance():
    model = make()
    x = images(1, 2)
    perm = [3, 1, 0, 2]
    x_perm = x.view(1, 2, V, 9, 32, 32)[:, :, perm].reshape(1, 2 * V, 9, 32, 32)
    out = run(model, x).view(2, V, S * S, 14)[:, perm].reshape(2, V * S * S, 14)
    torch.testing.assert_close(run(model, x_perm), out, atol=2e-5, rtol=0)


def test_batch_of_two_equals_two_calls():
    model = make()
    x = torch.cat([images(1, 2, seed=3), images(1, 2, seed=4)])
    both = run(model, x)  # [B·T, N, 14], batch-major
    one_by_one = torch.cat([run(model, x[:1]), run(model, x[1:])])
    torch.testing.assert_close(both, one_by_one, atol=2e-5, rtol=0)


def test_frames_come_from_the_input_not_the_instance():
    model = make()
    for t in (1, 2, 5):
        assert run(model, images(1, t)).shape == (t, V * S * S, 14)
    with pytest.raises(ValueError, match="T·V"):
        run(model, torch.randn(1, 6, 9, 32, 32))
    with pytest.raises(ValueError, match="T = 3"):
        with torch.inference_mode():
            model(images(1, 2), num_frames=3)
    with pytest.raises(ValueError, match="32²"):
        run(model, torch.randn(1, 4, 9, 64, 64))


def test_legacy_rotation_normalises_over_gaussians():
    raw = torch.randn(2, 50, 14)
    quat = activate_gaussians(raw, "quat")[..., 7:11]
    legacy = activate_gaussians(raw, "gaussians")[..., 7:11]
    torch.testing.assert_close(quat.norm(dim=-1), torch.ones(2, 50))
    torch.testing.assert_close(legacy.norm(dim=1), torch.ones(2, 4))
    # every other column is identical
    keep = [i for i in range(14) if not 7 <= i < 11]
    torch.testing.assert_close(activate_gaussians(raw, "gaussians")[..., keep], activate_gaussians(raw)[..., keep])


def test_never_consumed_skips_are_not_kept(monkeypatch):
    stored = []

    class Recording(unet_module.SkipStack):
        def push(self, x):
            before = len(self)
            super().push(x)
            if len(self) > before:
                stored.append(tuple(x.shape[-2:]))

    monkeypatch.setattr(unet_module, "SkipStack", Recording)
    run(make(), images(1, 1))
    assert len(stored) == MICRO.num_skips_consumed == 9
    assert (32, 32) not in stored  # conv_in and both full-resolution resnet outputs were dropped


def test_training_mode_backward_works():
    model = make().train()
    out = model(images(1, 2))
    out[..., :3].sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.unet.down_blocks[2].t_attns[0].attn.qkv.weight.grad.abs().sum() > 0
