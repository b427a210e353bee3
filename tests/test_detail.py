"""`reconstruct --detail`: the input view's Gaussians swapped for one per input pixel at the network's depth."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from test_reconstruct_e2e import FAST, cli, clip, model_args, models, plys  # noqa: F401 - fixtures
from video2gs.camera import INPUT_AZIMUTHS, focal_from_fovy, get_rays, orbit_cameras, project_to_grid
from video2gs.detail import MIN_ALPHA, SCALE_PX, carve, layer_depth, pixel_layer
from video2gs.formats import load_gaussians
from video2gs.gaussians import Gaussians
from video2gs.images import read_rgba
from video2gs.metrics.image import psnr
from video2gs.refine import input_camera
from video2gs.render import render

S, CELLS = 64, 16  # image side and splat grid side: 4 x 4 pixels a cell, as the bundled demo
C2W = orbit_cameras([INPUT_AZIMUTHS[0]], 0.0, user_elevation=False)[0]


def _cells_on_a_slope(s: int, opacity: float = 0.9) -> Gaussians:
    """Network-like Gaussians [4 s², 14]: view 0's cells on their own rays at a depth that grows
    from left to right (1.3 .. 1.6), then 3 s² Gaussians of 'other views' on the same rays, 0.1 to
    0.3 farther (the object's body behind its front; over the background they are free space)."""
    _, dirs = get_rays(C2W, s, s)  # [s,s,3] through the cell centres
    depth = torch.linspace(1.3, 1.6, s)[None, :].expand(s, s)
    n = s * s

    def on_rays(d):  # [s,s] depths -> Gaussians [s²,14]
        xyz = C2W[:3, 3] + dirs * (d / (dirs @ -C2W[:3, 2]))[..., None]
        return Gaussians.from_fields(xyz.reshape(n, 3), torch.full((n,), opacity), torch.full((n, 3), 0.01),
                                     torch.tensor([[1.0, 0, 0, 0]]).expand(n, 4), torch.full((n, 3), 0.5)).data

    return Gaussians(torch.cat([on_rays(depth)] + [on_rays(depth + k) for k in (0.1, 0.2, 0.3)]))


def _image() -> torch.Tensor:
    """[S,S,4]: a colour pattern varying over 30 px in a centred square mask (with a soft one-pixel
    rim), composited on white."""
    yy, xx = torch.meshgrid(torch.arange(S, dtype=torch.float32), torch.arange(S, dtype=torch.float32), indexing="ij")
    rgb = torch.stack([0.5 + 0.4 * torch.sin(xx * 0.2), 0.5 + 0.4 * torch.cos(yy * 0.2), xx / S], -1)
    alpha = torch.zeros(S, S)
    alpha[16:48, 16:48] = 1.0
    alpha[15, 16:48] = alpha[48, 16:48] = 0.5
    return torch.cat([rgb * alpha[..., None] + (1 - alpha[..., None]), alpha[..., None]], -1)


def test_the_layer_sits_at_the_networks_depth_and_brings_the_input_view_back():
    g, image = _cells_on_a_slope(CELLS), _image()
    out = pixel_layer(g, image, CELLS)
    m = int((image[..., 3] > MIN_ALPHA).sum())
    layer = out.data[:m]
    assert m == 32 * 32 + 2 * 32
    # every pixel Gaussian is on its own pixel's ray, at the slope's depth there
    row, col, depth = project_to_grid(layer[:, :3], C2W, S)
    rows, cols = torch.nonzero(image[..., 3] > MIN_ALPHA, as_tuple=True)
    assert torch.equal(row, rows) and torch.equal(col, cols)
    expected = layer_depth(g.data[: CELLS * CELLS], image[..., 3], C2W)[rows, cols]
    assert torch.allclose(depth, expected, atol=1e-4)
    assert float(depth.min()) > 1.3 - 1e-3 and float(depth.max()) < 1.6 + 1e-3
    assert torch.allclose(layer[:, 4], SCALE_PX * depth / focal_from_fovy(49.1, S), rtol=1e-4)
    # seen from the input camera, the layer brings the image and its silhouette back (the network's
    # grey cells: 10 dB, IoU 0.14; the layer: 21.6 dB, IoU 0.86 -- what is left is the 0.6-px spheres'
    # blur and the 'other views' within a pixel of the object, which the carving keeps)
    def score(gg):
        r = render(gg, input_camera(), S, S, backend="torch")
        p = float(psnr(r.rgb.permute(0, 3, 1, 2), image[None, ..., :3].permute(0, 3, 1, 2))[0])
        seen, mask = r.alpha[0, ..., 0] > 0.5, image[..., 3] > 0.5
        return p, float((seen & mask).sum() / (seen | mask).sum())

    (p_net, iou_net), (p_layer, iou_layer) = score(g), score(out)
    assert p_layer > p_net + 8.0 and p_layer > 20.0, (p_net, p_layer)
    assert iou_layer > 0.8 and iou_net < 0.5, (iou_net, iou_layer)


def test_transparent_cells_take_their_neighbours_depth():
    g, image = _cells_on_a_slope(CELLS), _image()
    cells = g.data[: CELLS * CELLS].clone()
    hole = torch.zeros(CELLS, CELLS, dtype=torch.bool)
    hole[6:10, 6:10] = True
    cells[hole.flatten(), 3] = 0.0  # transparent cells: their positions mean nothing
    cells[hole.flatten(), 2] -= 0.5  # ... and are far off (0.5 farther, still in front of the camera)
    full = layer_depth(g.data[: CELLS * CELLS], image[..., 3], C2W)
    holed = layer_depth(cells, image[..., 3], C2W)
    assert float((holed - full).abs().max()) < 0.05  # the slope, not the stray positions


def test_carving_removes_what_the_input_view_sees_as_background_and_moves_back_what_hides_the_surface():
    image = _image()
    depth = torch.full((S, S), 1.5)
    _, dirs = get_rays(C2W, S, S)

    def at(r, c, d):  # a Gaussian on pixel (r, c)'s ray at depth d
        return C2W[:3, 3] + dirs[r, c] * (d / float(dirs[r, c] @ -C2W[:3, 2]))

    pts = torch.stack([at(2, 2, 1.5), at(32, 32, 1.2), at(30, 40, 1.8), at(15, 30, 1.2)])  # bg, front, behind, rim
    g = torch.zeros(4, 14)
    g[:, :3], g[:, 3], g[:, 4:7], g[:, 7] = pts, 0.8, 0.01, 1.0
    out = carve(g, image[..., 3], depth, C2W)
    assert out.shape[0] == 3  # the background one is gone; the rest keep their order
    row, col, d = project_to_grid(out[:, :3], C2W, S)
    assert (row.tolist(), col.tolist()) == ([32, 30, 15], [32, 40, 30])  # projections unchanged
    assert d.tolist() == pytest.approx([1.5, 1.8, 1.2], abs=1e-4)  # the hider moved back onto the surface
    assert torch.equal(out[:, 3:], g[1:, 3:])


def test_a_frame_without_an_object_is_kept_as_the_network_gave_it():
    g = _cells_on_a_slope(CELLS)
    out = pixel_layer(g, torch.ones(S, S, 4) * torch.tensor([1.0, 1.0, 1.0, 0.0]), CELLS)  # all white, empty mask
    assert torch.equal(out.data, g.data)


def test_with_no_trusted_cell_the_layer_is_flat_through_the_origin():
    g, image = _cells_on_a_slope(CELLS), _image()
    cells = g.data[: CELLS * CELLS].clone()
    cells[:, 3] = 0.0  # the network made view 0 transparent everywhere
    depth = layer_depth(cells, image[..., 3], C2W)
    assert torch.allclose(depth, torch.full_like(depth, 1.5))  # the camera's distance to the origin


def test_pixel_layer_rejects_bad_shapes():
    g = _cells_on_a_slope(CELLS)
    with pytest.raises(ValueError, match="square RGBA"):
        pixel_layer(g, torch.zeros(S, S + 1, 4), CELLS)
    with pytest.raises(ValueError, match="one frame"):
        pixel_layer(Gaussians(g.data[None]), _image(), CELLS)
    with pytest.raises(ValueError, match="do not tile"):
        pixel_layer(g, torch.ones(60, 60, 4), CELLS)  # an opaque 60² image


def test_reconstruct_detail_end_to_end(clip, models, tmp_path, capsys):  # noqa: F811 - pytest fixtures
    plain, detailed = tmp_path / "plain", tmp_path / "detailed"
    assert cli("reconstruct", clip, "-o", plain, *model_args(models), *FAST, "--max-frames", 2) == 0
    assert cli("reconstruct", clip, "-o", detailed, *model_args(models), *FAST, "--max-frames", 2, "--detail") == 0
    a, b = json.loads((plain / "manifest.json").read_text()), json.loads((detailed / "manifest.json").read_text())
    assert a["pixel_detail"] is False and b["pixel_detail"] is True  # off by default for an L4GM-trained model
    pa, pb = plys(plain / "gaussians"), plys(detailed / "gaussians")
    assert len(pa) == len(pb) == 2
    ga, gb = load_gaussians(pa[0]), load_gaussians(pb[0])
    mask = read_rgba(detailed / "input" / "000000.png")[..., 3] / 255.0 > MIN_ALPHA  # the 256² crop's mask
    assert gb.data.shape[0] >= int(mask.sum()) and not np.array_equal(ga.data.numpy(), gb.data.numpy())
    # --detail is part of the result: --resume refuses to change it, and names it
    capsys.readouterr()
    assert cli("reconstruct", clip, "-o", detailed, *model_args(models), *FAST, "--max-frames", 2, "--no-detail",
               "--resume") != 0
    assert "detail" in capsys.readouterr().err


def test_on_by_default_for_a_mirror_trained_model_and_a_clear_error_where_it_cannot_work(clip, tmp_path, capsys):  # noqa: F811
    from video2gs.testing import micro_l4gm_config, write_random_l4gm

    mirror = write_random_l4gm(tmp_path / "mirror.safetensors", side_views="mirror")
    out = tmp_path / "out"
    assert cli("reconstruct", clip, "-o", out, "--model", mirror, *FAST, "--max-frames", 2) == 0
    assert json.loads((out / "manifest.json").read_text())["pixel_detail"] is True
    # 48² input -> 24² Gaussians a view, which do not tile the 256² crop: by default the run goes on
    # without the layer and says so; asked for, it is one line before anything is written
    odd = write_random_l4gm(tmp_path / "odd.safetensors", micro_l4gm_config(48), side_views="mirror")
    capsys.readouterr()
    assert cli("reconstruct", clip, "-o", tmp_path / "odd", "--model", odd, *FAST, "--max-frames", 2) == 0
    assert json.loads((tmp_path / "odd" / "manifest.json").read_text())["pixel_detail"] is False
    assert "no pixel detail" in capsys.readouterr().err
    assert cli("reconstruct", clip, "-o", tmp_path / "odd2", "--model", odd, *FAST, "--max-frames", 2, "--detail") != 0
    err = capsys.readouterr().err
    assert "--no-detail" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "odd2").exists()
