"""`reconstruct --refine`: each frame fitted to its input frame from the network's input camera."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from test_reconstruct_e2e import FAST, cli, clip, model_args, models, plys  # noqa: F401 - fixtures
from video2gs.formats import load_gaussians
from video2gs.gaussians import Gaussians
from video2gs.metrics.image import psnr
from video2gs.pipeline.run_folder import _changed
from video2gs.refine import input_camera, refine_frame
from video2gs.render import render


def _blob(n: int, seed: int, geometry: int | None = None) -> Gaussians:
    """n random Gaussians; ``geometry`` (a seed) fixes positions, scales and rotations apart from the
    colours and opacities (``seed``)."""
    g = torch.Generator().manual_seed(seed if geometry is None else geometry)
    xyz = (torch.rand(n, 3, generator=g) - 0.5) * 0.6
    scale = 0.02 + 0.04 * torch.rand(n, 3, generator=g)
    quat = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    c = torch.Generator().manual_seed(seed + 1000)
    opacity = 0.2 + 0.7 * torch.rand(n, generator=c)
    rgb = torch.rand(n, 3, generator=c)
    return Gaussians.from_fields(xyz, opacity, scale, quat, rgb)


def _target(g: Gaussians, size: int) -> torch.Tensor:
    """[S,S,4]: g rendered from the input camera (RGB on white, alpha)."""
    out = render(g, input_camera(), size, size, backend="torch")
    return torch.cat([out.rgb[0], out.alpha[0]], -1).detach()


def _psnr(g: Gaussians, target: torch.Tensor) -> float:
    """PSNR of g's render from the input camera against target's RGB (evaluate's metric)."""
    out = render(g, input_camera(), target.shape[1], target.shape[0], backend="torch")
    return float(psnr(out.rgb.permute(0, 3, 1, 2), target[None, ..., :3].permute(0, 3, 1, 2))[0])


def test_refine_fits_the_input_view_and_keeps_the_geometry():
    start, truth = _blob(400, 0, geometry=7), _blob(400, 1, geometry=7)  # same shapes, other colours/opacities
    target = _target(truth, 48)
    before = _psnr(start, target)
    refined = refine_frame(start, target, 60)
    after = _psnr(refined, target)
    assert after > before + 6.0, (before, after)
    assert refined.data.shape == start.data.shape
    # the network's geometry is kept exactly; only opacities and colours move, within their ranges
    for field in ("xyz", "scale", "rotation"):
        assert torch.equal(getattr(refined, field), getattr(start, field)), field
    assert (refined.opacity > 0).all() and (refined.opacity < 1).all()
    assert ((refined.rgb >= 0) & (refined.rgb <= 1)).all()
    assert not torch.equal(refined.rgb, start.rgb) and not torch.equal(refined.opacity, start.opacity)


def test_refine_is_deterministic_and_zero_steps_is_a_copy():
    start, target = _blob(200, 2), _target(_blob(200, 3), 32)
    assert torch.equal(refine_frame(start, target, 0).data, start.data)
    a, b = refine_frame(start, target, 5), refine_frame(start, target, 5)
    assert torch.equal(a.data, b.data)  # resumed runs refine bit for bit like uninterrupted ones


def test_refine_sees_from_the_networks_view_0():
    """The fit's camera is the one whose rays the network gets for view 0, and a target seen from
    there is fitted there; from the back (azimuth 180) the fit hardly helps."""
    from video2gs.camera import Cameras, input_view_rays, plucker_rays

    assert torch.allclose(plucker_rays(input_camera().c2w, 32, 32)[0], input_view_rays(32)[0], atol=1e-6)

    start, truth = _blob(400, 4, geometry=8), _blob(400, 5, geometry=8)
    target = _target(truth, 48)
    refined = refine_frame(start, target, 60)
    back = Cameras.orbit([180.0], 0.0)

    def err(g, cams):
        out = render(g, cams, 48, 48, backend="torch")
        ref = render(truth, cams, 48, 48, backend="torch")
        return float(torch.mean((out.rgb[0] - ref.rgb[0]) ** 2))

    front_gain = err(start, input_camera()) / err(refined, input_camera())
    back_gain = err(start, back) / err(refined, back)
    assert front_gain > 3.0 * back_gain, (front_gain, back_gain)


def test_refine_rejects_bad_shapes():
    with pytest.raises(ValueError, match="square RGBA"):
        refine_frame(_blob(10, 0), torch.zeros(8, 6, 4), 3)
    with pytest.raises(ValueError, match="one frame"):
        refine_frame(Gaussians(torch.zeros(2, 10, 14)), torch.zeros(8, 8, 4), 3)


def test_reconstruct_refine_end_to_end(clip, models, tmp_path):  # noqa: F811 - pytest fixtures
    plain, refined = tmp_path / "plain", tmp_path / "refined"
    assert cli("reconstruct", clip, "-o", plain, *model_args(models), *FAST, "--max-frames", 2) == 0
    assert cli("reconstruct", clip, "-o", refined, *model_args(models), *FAST, "--max-frames", 2, "--refine", 4) == 0
    manifest = json.loads((refined / "manifest.json").read_text())
    assert manifest["options"]["refine"] == 4 and manifest["identity"]["refine"] == 4
    a, b = plys(plain / "gaussians"), plys(refined / "gaussians")
    assert len(a) == len(b) == 2
    ga, gb = load_gaussians(a[0]), load_gaussians(b[0])
    assert not np.array_equal(ga.data.numpy(), gb.data.numpy())  # the refined frames differ from the network's
    # a changed --refine is a different result: --resume refuses it
    assert cli("reconstruct", clip, "-o", refined, *model_args(models), *FAST, "--max-frames", 2, "--refine", 5,
               "--resume") != 0


def test_bad_refine_value_is_one_line(capsys, clip, models, tmp_path):  # noqa: F811
    assert cli("reconstruct", clip, "-o", tmp_path / "o", *model_args(models), *FAST, "--refine", -1) != 0
    err = capsys.readouterr().err
    assert "--refine" in err and "Traceback" not in err


def test_runs_from_before_an_option_existed_still_resume():
    """An identity recorded before `refine` existed matches a resume with it off, not with it on."""
    old = {"input": "/v.mp4", "fps": 15.0}
    assert _changed(old, {"input": "/v.mp4", "fps": 15.0, "refine": 0}) == []
    assert _changed(old, {"input": "/v.mp4", "fps": 15.0, "refine": 50}) == ["refine"]
    assert _changed({**old, "refine": 0}, {**old, "refine": 50}) == ["refine"]
