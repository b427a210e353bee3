"""Camera conventions pinned to the reference values of conventions.md §9."""

import math

import numpy as np
import pytest
import torch

from video2gs import camera


def test_orbit_reference_matrices():
    expected = {
        0: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1.5], [0, 0, 0, 1]],
        90: [[0, 0, 1, 1.5], [0, 1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 1]],
        180: [[-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, -1, -1.5], [0, 0, 0, 1]],
        270: [[0, 0, -1, -1.5], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]],
    }
    for azimuth, mat in expected.items():
        np.testing.assert_allclose(camera.orbit_camera(0, azimuth, 1.5), mat, atol=1e-6)


def test_elevation_sign_internal_and_user():
    c2w = camera.orbit_camera(-30, 0, 1.5)  # internal sign: negative = above
    np.testing.assert_allclose(c2w[:3, 3], [0, 0.75, 1.299038], atol=1e-6)
    np.testing.assert_allclose(c2w[:3, :3], [[1, 0, 0], [0, 0.866025, 0.5], [0, -0.5, 0.866025]], atol=1e-6)
    np.testing.assert_allclose(camera.orbit_camera(30, 45, 1.5)[:3, 3], [0.918559, -0.75, 0.918559], atol=1e-6)
    # user sign: positive = camera above the object
    assert camera.user_orbit(30, 0)[1, 3] > 0
    np.testing.assert_allclose(camera.user_orbit(30, 0), camera.orbit_camera(-30, 0))
    np.testing.assert_allclose(camera.Cameras.orbit([0], elevation_deg=20).c2w[0].numpy(), camera.user_orbit(20, 0))


def test_pose_to_orbit_inverts():
    for e, a in [(-30.0, 10.0), (45.0, -120.0), (0.0, 90.0)]:
        e2, a2, r2 = camera.pose_to_orbit(camera.orbit_camera(e, a, 2.0))
        assert e2 == pytest.approx(e, abs=1e-4) and a2 == pytest.approx(a, abs=1e-4) and r2 == pytest.approx(2.0)


def test_intrinsics_and_focal():
    assert camera.focal_from_fovy(49.1, 256) == pytest.approx(280.22207, abs=1e-4)
    assert camera.focal_from_fovy(49.1, 512) == pytest.approx(560.44414, abs=1e-4)
    assert camera.focal_from_fovy(49.1, 128) == pytest.approx(140.11104, abs=1e-4)
    np.testing.assert_allclose(camera.intrinsics(512, 512).numpy(), [[560.44414, 0, 256], [0, 560.44414, 256], [0, 0, 1]], atol=1e-3)


def test_rays_and_plucker_reference_values():
    front = torch.from_numpy(camera.orbit_camera(0, 0))
    o, d = camera.get_rays(front, 256, 256)
    np.testing.assert_allclose(d[0, 0], [-0.382628, 0.382628, -0.840947], atol=1e-5)
    np.testing.assert_allclose(d[0, 255], [0.382628, 0.382628, -0.840947], atol=1e-5)
    np.testing.assert_allclose(d[255, 0], [-0.382628, -0.382628, -0.840947], atol=1e-5)
    np.testing.assert_allclose(d[127, 127], [-0.001784, 0.001784, -0.999997], atol=1e-5)
    np.testing.assert_allclose(o[0, 0], [0, 0, 1.5], atol=1e-6)
    pl = camera.plucker_rays(front, 256, 256)
    assert pl.shape == (1, 6, 256, 256)
    np.testing.assert_allclose(pl[0, :, 0, 0], [-0.573942, -0.573942, 0, -0.382628, 0.382628, -0.840947], atol=1e-5)
    np.testing.assert_allclose(pl[0, :3, 0, 255], [-0.573942, 0.573942, 0], atol=1e-5)
    side = camera.plucker_rays(torch.from_numpy(camera.orbit_camera(0, 90)), 256, 256)
    np.testing.assert_allclose(side[0, 3:, 0, 0], [-0.840947, 0.382628, 0.382628], atol=1e-5)
    np.testing.assert_allclose(side[0, :3, 0, 0], [0, -0.573942, 0.573942], atol=1e-5)


def test_input_view_rays_order():
    rays = camera.input_view_rays(32)
    assert rays.shape == (4, 6, 32, 32)
    # the centre ray of view k looks toward the origin from azimuth 90*k
    for k, az in enumerate(camera.INPUT_AZIMUTHS):
        d = rays[k, 3:, 16, 16]
        a = math.radians(az)
        np.testing.assert_allclose(d, [-math.sin(a), 0, -math.cos(a)], atol=0.05)


def test_renderer_matrices():
    cams = camera.Cameras.orbit([0, 90])
    vm = cams.viewmats()
    np.testing.assert_allclose(vm[0], [[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 1.5], [0, 0, 0, 1]], atol=1e-6)
    np.testing.assert_allclose(vm[1], [[0, 0, -1, 0], [0, -1, 0, 0], [-1, 0, 0, 1.5], [0, 0, 0, 1]], atol=1e-6)
    P = camera.projection_matrix()
    np.testing.assert_allclose(P, [[2.189235, 0, 0, 0], [0, 2.189235, 0, 0], [0, 0, 1.5, 1], [0, 0, -0.625, 0]], atol=1e-6)
    cam_view, cam_view_proj, campos = camera.dgr_matrices(cams.c2w[:1])
    np.testing.assert_allclose(cam_view[0], [[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 0], [0, 0, 1.5, 1]], atol=1e-6)
    np.testing.assert_allclose(
        cam_view_proj[0], [[2.189235, 0, 0, 0], [0, -2.189235, 0, 0], [0, 0, -1.5, -1], [0, 0, 1.625, 1.5]], atol=1e-5
    )
    np.testing.assert_allclose(campos[0], [0, 0, 1.5], atol=1e-6)


def test_world_point_projects_right_and_up():
    cams = camera.Cameras.orbit([0])
    p = torch.tensor([0.5, 0.5, 0.0, 1.0])
    pc = cams.viewmats()[0] @ p
    uv = (cams.Ks(512, 512)[0] @ (pc[:3] / pc[2]))[:2]
    np.testing.assert_allclose(uv, [442.815, 69.185], atol=1e-2)
