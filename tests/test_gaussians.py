import math

import pytest
import torch

from video2gs.errors import UserError
from video2gs.gaussians import Gaussians, quat_multiply, quat_to_rotmat, rotmat_to_quat


def random_gaussians(n=64, frames=None, seed=0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    shape = (n,) if frames is None else (frames, n)
    return Gaussians.from_fields(
        torch.rand(*shape, 3, generator=g) * 2 - 1,
        torch.rand(*shape, generator=g),
        torch.rand(*shape, 3, generator=g) * 0.05 + 1e-3,
        torch.randn(*shape, 4, generator=g),
        torch.rand(*shape, 3, generator=g),
    )


def random_rotation(seed=1):
    q = torch.randn(4, generator=torch.Generator().manual_seed(seed))
    return quat_to_rotmat(q / q.norm())


def test_layout_and_fields():
    g = random_gaussians(10)
    assert g.data.shape == (10, 14) and len(g) == 10
    assert torch.allclose(g.rotation.norm(dim=-1), torch.ones(10))
    seq = random_gaussians(10, frames=3)
    assert seq.num_frames == 3 and seq.frame(1).data.shape == (10, 14)
    with pytest.raises(ValueError):
        Gaussians(torch.zeros(4, 13))


def test_quaternion_helpers_roundtrip():
    R = random_rotation()
    assert torch.allclose(quat_to_rotmat(rotmat_to_quat(R)), R, atol=1e-5)
    a, b = torch.randn(4), torch.randn(4)
    a, b = a / a.norm(), b / b.norm()
    assert torch.allclose(quat_to_rotmat(quat_multiply(a, b)), quat_to_rotmat(a) @ quat_to_rotmat(b), atol=1e-5)


def test_transform_moves_positions_and_orientations():
    g = random_gaussians(32)
    R = random_rotation()
    t = torch.tensor([0.1, -0.2, 0.3])
    out = g.transform(R, t, scale=2.0)
    assert torch.allclose(out.xyz, 2.0 * g.xyz @ R.T + t, atol=1e-5)
    # covariance R S S R^T rotates as R Σ R^T
    cov = lambda x: quat_to_rotmat(x.rotation) @ torch.diag_embed(x.scale**2) @ quat_to_rotmat(x.rotation).transpose(-1, -2)
    assert torch.allclose(cov(out), 4.0 * R @ cov(g) @ R.T, atol=1e-6)
    assert torch.equal(out.opacity, g.opacity) and torch.equal(out.rgb, g.rgb)
    with pytest.raises(ValueError):
        g.transform(torch.diag(torch.tensor([1.0, 1.0, -1.0])))


def test_flip_up_axis_is_rotation_about_x_and_involution():
    g = random_gaussians(16, frames=2)
    f = g.flip_up_axis()
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
    assert torch.allclose(f.xyz, g.xyz @ flip, atol=0)
    assert torch.allclose(quat_to_rotmat(f.rotation), flip @ quat_to_rotmat(g.rotation), atol=1e-5)
    assert torch.equal(f.flip_up_axis(inverse=True).data, g.data)
    assert torch.allclose(quat_to_rotmat(f.flip_up_axis().rotation), quat_to_rotmat(g.rotation), atol=1e-5)
    # equals the generic rigid transform by 180 deg about X
    assert torch.allclose(quat_to_rotmat(g.transform(flip).rotation), quat_to_rotmat(f.rotation), atol=1e-5)


def test_prune_by_opacity():
    g = random_gaussians(100)
    kept = g.prune(0.5)
    assert len(kept) == int((g.opacity >= 0.5).sum()) and (kept.opacity >= 0.5).all()
    with pytest.raises(ValueError):
        random_gaussians(4, frames=2).prune()


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda d: d.__setitem__((0, 0), math.nan), "NaN"),
        (lambda d: d.__setitem__((1, 5), -0.1), "scales"),
        (lambda d: d.__setitem__((2, 7), 3.0), "quaternion"),
        (lambda d: d.__setitem__((3, 3), 1.5), "opacit"),
    ],
)
def test_validate_rejects_bad_values(corrupt, message):
    g = random_gaussians(8)
    g.validate()
    corrupt(g.data)
    with pytest.raises(UserError, match=message):
        g.validate()


def test_validate_rejects_empty():
    with pytest.raises(UserError, match="zero"):
        Gaussians(torch.zeros(0, 14)).validate()
