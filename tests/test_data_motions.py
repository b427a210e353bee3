"""Procedural motions: rest shape at u = 0, exact Jacobians, covariances carried as J Sigma J^T, rigid
motions agreeing with Gaussians.transform, seeded parameters."""

import numpy as np
import pytest
import torch

from video2gs.data.motions import MOTIONS, Motion, parse_motions, sample_motion
from video2gs.errors import UserError
from video2gs.gaussians import Gaussians, quat_to_rotmat


def _gaussians(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Gaussians.from_fields(
        torch.rand(n, 3, generator=g) - 0.5, torch.rand(n, generator=g), torch.rand(n, 3, generator=g) * 0.03 + 0.005,
        torch.randn(n, 4, generator=g), torch.rand(n, 3, generator=g),
    )


def _cov(g: Gaussians) -> torch.Tensor:
    R = quat_to_rotmat(g.rotation.double())
    S = g.scale.double()
    M = R * S[:, None, :]
    return M @ M.transpose(1, 2)


@pytest.mark.parametrize("name", MOTIONS)
def test_rest_shape_at_time_zero(name):
    m = sample_motion(name, np.random.default_rng(1))
    x = torch.rand(50, 3, dtype=torch.float64) - 0.5
    torch.testing.assert_close(m.apply(x, 0.0), x, atol=1e-9, rtol=0)
    assert (m.apply(x, 1.0) - x).abs().max() > 1e-3 or name == "squash"  # it moves (squash returns at whole cycles)
    assert (m.apply(x, 0.37) - x).abs().max() > 1e-3


@pytest.mark.parametrize("name", MOTIONS)
def test_jacobian_matches_finite_differences(name):
    m = sample_motion(name, np.random.default_rng(2))
    x = torch.rand(30, 3, dtype=torch.float64) - 0.5
    y, J = m.apply_with_jacobian(x, 0.6)
    torch.testing.assert_close(y, m.apply(x, 0.6))
    eps = 1e-6
    for j in range(3):
        d = torch.zeros(3, dtype=torch.float64)
        d[j] = eps
        fd = (m.apply(x + d, 0.6) - m.apply(x - d, 0.6)) / (2 * eps)
        torch.testing.assert_close(J[..., j], fd, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", MOTIONS)
def test_covariances_follow_the_jacobian(name):
    """Sigma' of the moved Gaussians = J Sigma J^T, with J taken at each mean."""
    m = sample_motion(name, np.random.default_rng(3))
    g = _gaussians()
    moved = m.apply_to_gaussians(g, 0.5)
    _, J = m.apply_with_jacobian(g.xyz.double(), 0.5)
    expected = J @ _cov(g) @ J.transpose(1, 2)
    torch.testing.assert_close(_cov(moved), expected, atol=1e-7, rtol=1e-4)
    torch.testing.assert_close(moved.xyz.double(), m.apply(g.xyz.double(), 0.5), atol=1e-6, rtol=0)
    torch.testing.assert_close(moved.rotation.norm(dim=-1), torch.ones(len(g)), atol=1e-5, rtol=0)
    torch.testing.assert_close(moved.rgb, g.rgb)
    torch.testing.assert_close(moved.opacity, g.opacity)


def test_rigid_spin_equals_gaussians_transform():
    m = Motion("spin", {"axis": [0.0, 1.0, 0.0], "turns": 0.25})
    g = _gaussians()
    moved = m.apply_to_gaussians(g, 1.0)  # 90 degrees about +Y
    R = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    ref = g.transform(R)
    torch.testing.assert_close(moved.xyz, ref.xyz, atol=1e-6, rtol=0)
    torch.testing.assert_close(_cov(moved), _cov(ref), atol=1e-7, rtol=1e-4)


def test_squash_preserves_volume():
    m = Motion("squash", {"axis": [0.0, 1.0, 0.0], "amount": 0.3, "cycles": 1.0})
    _, J = m.apply_with_jacobian(torch.rand(10, 3, dtype=torch.float64), 0.25)
    torch.testing.assert_close(torch.linalg.det(J), torch.ones(10, dtype=torch.float64))


def test_articulation_moves_one_side_only():
    m = sample_motion("articulate", np.random.default_rng(4))
    n, off = np.array(m.params["plane_normal"]), m.params["plane_offset"]
    x = torch.rand(400, 3, dtype=torch.float64) - 0.5
    d = x.numpy() @ n - off
    moved = (m.apply(x, 1.0) - x).norm(dim=-1).numpy()
    assert moved[d < -0.1].max() < 1e-3 and moved[d > 0.1].min() > 1e-3


def test_parameters_are_seeded():
    a = sample_motion("wave", np.random.default_rng(9)).params
    b = sample_motion("wave", np.random.default_rng(9)).params
    c = sample_motion("wave", np.random.default_rng(10)).params
    assert a == b and a != c


def test_parse_motions():
    assert parse_motions(["spin,bend", "bend", "wave"]) == ["spin", "bend", "wave"]
    assert parse_motions(["all"]) == list(MOTIONS)
    with pytest.raises(UserError, match="unknown motion 'jump'"):
        parse_motions(["jump"])
