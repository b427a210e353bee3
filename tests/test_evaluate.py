"""`video2gs evaluate` on small clips rendered by our renderer from known Gaussians: the ground truth
against itself is (near) perfect, baselines score lower, frames match by time, poses are normalised to
the input view, protocol views are the right ones, outputs are written, bad input is one line."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from conftest import cli_with
from video2gs.commands import evaluate as evaluate_cmd
from video2gs.data.layout import open_clip
from video2gs.errors import UserError
from video2gs.metrics.evaluate import (Settings, baseline_methods, canonical_transform, consistent4d_views, evaluate,
                                       input_view_of, match_by_time, prediction_method)
from video2gs.metrics.fixtures import random_object, spin, write_render_clip
from video2gs.sequence import Sequence, frame_entries, write_frame, write_manifest

FRAMES = 4
FPS = 8.0
NO_LPIPS = Settings(lpips_nets=())


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    """4 frames of a spinning asymmetric blob, 8 views (6 at elevation 0, 45 deg apart; 2 elevated), 64²."""
    g = random_object(2500)
    return write_render_clip(tmp_path_factory.mktemp("clip") / "blob", [spin(g, 12.0 * t) for t in range(FRAMES)],
                             size=64, fps=FPS)


@pytest.fixture(scope="module")
def clip(clip_dir):
    return open_clip(clip_dir)


@pytest.fixture(scope="module")
def lpips_weights(shared_dir):
    folder = shared_dir / "data" / "lpips"
    paths = {n: folder / f"lpips_{n}_v0.1.safetensors" for n in ("vgg", "alex")}
    if not all(p.is_file() for p in paths.values()):
        pytest.skip(f"LPIPS weights not found in {folder}")
    return paths


@pytest.fixture(scope="module")
def full(clip, clip_dir, lpips_weights):
    """GT as prediction plus both baselines, with both LPIPS networks."""
    pred = prediction_method(Sequence.open(clip_dir / "gt"), clip)
    methods = [pred, *baseline_methods(["billboard", "static"], clip, None, input_view_of(clip))]
    return evaluate(clip, methods, Settings(), lpips_weights=lpips_weights)


def test_ground_truth_against_itself(full):
    s = full.summary("pred")
    for role in ("input", "novel"):
        assert s[role]["psnr"] >= 45.0  # only PNG quantisation separates them
        assert s[role]["lpips_vgg"] < 1e-3 and s[role]["lpips_alex"] < 1e-3
        assert s[role]["ssim"] > 0.999 and s[role]["mask_iou"] > 0.99
    assert s["input"]["images"] == FRAMES and s["novel"]["images"] == 7 * FRAMES
    assert s["geometry"]["chamfer"] == 0.0 and s["geometry"]["temporal_error"] == 0.0
    assert s["geometry"]["gt_motion"] > 0.005  # the blob does move


def test_baselines_score_lower(full):
    gt, bb, st = (full.summary(m) for m in ("pred", "billboard", "static"))
    for base in (bb, st):
        assert base["novel"]["psnr"] < gt["novel"]["psnr"] - 10
        assert base["novel"]["lpips_vgg"] > gt["novel"]["lpips_vgg"] + 0.02
        assert base["geometry"]["chamfer"] > 0.005 and base["geometry"]["temporal_error"] > 0.005
    # the billboard is the input view itself: its input-view numbers flatter it, its novel views are poor
    assert bb["input"]["psnr"] > bb["novel"]["psnr"] + 8 and bb["input"]["mask_iou"] > 0.95
    # static = ground-truth frame 0: perfect at frame 0, then falls behind as the object turns
    frames = {f["frame"]: f for f in full.per_frame("static")}
    assert frames[0]["novel"]["psnr"] > 45 and frames[FRAMES - 1]["novel"]["psnr"] < frames[1]["novel"]["psnr"]
    assert st["geometry"]["pred_motion"] == 0.0
    assert st["geometry"]["temporal_error"] == pytest.approx(st["geometry"]["gt_motion"])


def test_grid_and_json_layout(full):
    # GT above each method, per grid frame: (1 + 3 methods) rows x 4 frames, 6 views
    cell = 160
    assert full.grid.shape == (4 * 4 * cell, 6 * cell, 3) and full.grid.dtype == np.uint8
    obj = full.to_json()
    assert set(obj["methods"]) == {"pred", "billboard", "static"}
    assert obj["settings"]["input_view"] == 0 and obj["settings"]["frames"] == list(range(FRAMES))
    per_view = obj["methods"]["pred"]["per_view"]
    assert [v["view"] for v in per_view] == list(range(8)) and per_view[0]["role"] == "input"
    assert obj["higher_is_better"]["psnr"] and not obj["higher_is_better"]["lpips_vgg"]


def _output_folder(root, frames, fps, start=0.0):
    """A reconstruct-style output folder: manifest (times start + i/fps) and gaussians/."""
    for i, g in enumerate(frames):
        write_frame(root, i, g)
    entries = frame_entries(len(frames), fps)
    for e in entries:
        e["time"] = round(start + e["time"], 6)
    write_manifest(root, {"fps": fps, "up": "-y", "frames": entries})
    return root


def test_frames_match_by_time(clip, tmp_path):
    g = random_object(2500)
    # a prediction at twice the clip's rate: clip frame t <-> prediction frame 2t (same object at those times)
    frames = [spin(g, 6.0 * i) for i in range(2 * FRAMES - 1)]
    seq = Sequence.open(_output_folder(tmp_path / "out", frames, 2 * FPS))
    method = prediction_method(seq, clip)
    assert method.matches == {t: 2 * t for t in range(FRAMES)}
    ev = evaluate(clip, [method], NO_LPIPS)
    assert ev.summary("pred")["novel"]["psnr"] > 40
    # shifted by 10 s: no overlap is one clear error
    late = Sequence.open(_output_folder(tmp_path / "late", frames[:2], FPS, start=10.0))
    with pytest.raises(UserError, match="no time overlap"):
        prediction_method(late, clip)
    # a prediction at half the rate covers every other clip frame; clip frames past its end are skipped
    assert match_by_time(np.arange(4) / 8, np.array([0.0, 0.25]), 8, 4) == {0: 0, 2: 1}
    assert match_by_time(np.arange(4) / 8, np.array([0.0, 0.25]) + 0.06, 8, 4) == {0: 0, 2: 1}
    assert match_by_time(np.arange(4) / 8, np.array([0.0, 0.25]) + 0.07, 8, 4) == {1: 0, 3: 1}


def test_plain_folder_counts_must_agree(clip, tmp_path):
    folder = tmp_path / "plys"
    folder.mkdir()
    for i in range(FRAMES - 1):
        write_frame(folder, i, random_object(50), subdir=".")
    with pytest.raises(UserError, match=r"3 frames, the clip .* 4.*counts must agree"):
        prediction_method(Sequence.open(folder), clip)


def test_input_view_is_made_the_canonical_front(tmp_path):
    """A clip filmed from an elevated input view: the prediction lives in the input camera's canonical
    frame, so GT rotated by M evaluates perfectly and the unrotated GT does not."""
    g = random_object(2500)
    views = [(20.0, 30.0), (0.0, 120.0), (0.0, 240.0), (10.0, 300.0)]
    root = write_render_clip(tmp_path / "elevated", [g, spin(g, 10.0)], views=views, size=64, fps=FPS, input_view=0)
    clip = open_clip(root)
    M = canonical_transform(clip, 0)
    from video2gs.camera import orbit_camera, user_orbit

    np.testing.assert_allclose(M @ user_orbit(20.0, 30.0), orbit_camera(0, 0), atol=1e-5)
    np.testing.assert_allclose(M[:3, 3], 0, atol=1e-5)  # a pure rotation about the object centre
    R = torch.from_numpy(M[:3, :3]).float()
    canon = [clip.load_gt(t).transform(R) for t in range(2)]
    from video2gs.metrics.evaluate import Method

    rotated = Method("pred", lambda t: canon[t], {0: 0, 1: 1})
    unrotated = Method("raw", lambda t: clip.load_gt(t), {0: 0, 1: 1})
    ev = evaluate(clip, [rotated, unrotated], NO_LPIPS)
    assert ev.summary("pred")["all"]["psnr"] > 45 and ev.summary("pred")["geometry"]["chamfer"] < 1e-5
    assert ev.summary("raw")["all"]["psnr"] < 30
    # the billboard faces the input camera: it reproduces the (elevated) input view
    bb = evaluate(clip, baseline_methods(["billboard"], clip, None, 0), NO_LPIPS).summary("billboard")
    assert bb["input"]["mask_iou"] > 0.95


def _tiny_clip_encoder(folder):
    """A random CLIP vision tower in the ImageDream folder layout (image_encoder/ only)."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=224, patch_size=32, projection_dim=16)
    CLIPVisionModel(config).save_pretrained(folder / "image_encoder", safe_serialization=True)
    return folder


def test_consistent4d_protocol(clip, clip_dir, lpips_weights, tmp_path):
    # elevation-0 views at 0, 45, ..., 225 (view k at 45k); input 0 -> nearest to 45, 135, 225, 315
    views = consistent4d_views(clip, 0)
    assert views[:3] == [1, 3, 5] and len(set(views)) == 4 and 0 not in views
    assert all(abs(clip.elevation(v)[0]) < 0.5 for v in views)
    encoder = _tiny_clip_encoder(tmp_path / "imagedream")
    pred = prediction_method(Sequence.open(clip_dir / "gt"), clip)
    ev = evaluate(clip, [pred], Settings(protocol="consistent4d", size=64, clip_encoder=str(encoder)),
                  lpips_weights=lpips_weights)
    assert ev.metrics == ["psnr", "ssim", "lpips_vgg", "mask_iou", "clip_similarity"]
    assert ev.settings["views"] == views and ev.summary("pred")["input"]["images"] == 0
    assert ev.summary("pred")["novel"]["clip_similarity"] == pytest.approx(1.0, abs=1e-3)
    assert any("FVD is not computed" in n for n in ev.notes)


def test_consistent4d_without_encoder_says_so(clip, clip_dir, monkeypatch, lpips_weights):
    monkeypatch.setattr("video2gs.metrics.clip_score.find_encoder", lambda: None)
    pred = prediction_method(Sequence.open(clip_dir / "gt"), clip)
    ev = evaluate(clip, [pred], Settings(protocol="consistent4d", size=32, views=[1]), lpips_weights=lpips_weights)
    assert "clip_similarity" not in ev.metrics
    assert any("CLIP image similarity skipped" in n for n in ev.notes)
    assert any("resized from 64x64 to 32x32" in n for n in ev.notes)


# -- the command -------------------------------------------------------------------------------------
@pytest.fixture
def run(monkeypatch, capsys):
    """cli.main with only `evaluate` registered."""
    monkeypatch.setenv("COLUMNS", "200")
    return cli_with(monkeypatch, capsys, lambda app: app.command("evaluate")(evaluate_cmd.evaluate), prefix=("evaluate",))


def test_command_writes_json_csv_grid(run, clip_dir, tmp_path, lpips_weights, monkeypatch):
    monkeypatch.setenv("VIDEO2GS_MODEL_LPIPS_ALEX", str(lpips_weights["alex"]))
    out = tmp_path / "eval"
    code, stdout, err = run(clip_dir / "gt", "--gt", clip_dir, "--out", out, "--baseline", "static",
                            "--csv", tmp_path / "frames.csv", "--lpips", "alex", "--views", "0,2,6", "--quiet")
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evaluated pred, static on 4 frames x 3 views")
    obj = json.loads((out / "metrics.json").read_text())
    assert obj["pred"] == str(clip_dir / "gt") and obj["baselines"] == ["static"]
    assert obj["methods"]["pred"]["summary"]["novel"]["psnr"] > 45
    with open(tmp_path / "frames.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * FRAMES * 2  # methods x frames x (input, novel)
    assert {r["role"] for r in rows} == {"input", "novel"} and float(rows[0]["lpips_alex"]) < 1e-3
    import cv2

    grid = cv2.imread(str(out / "comparison.png"))
    assert grid.shape == (4 * 3 * 160, 3 * 160, 3)


def test_command_baseline_without_prediction(run, clip_dir, tmp_path):
    code, stdout, err = run("--gt", clip_dir, "--baseline", "billboard", "--out", tmp_path / "bb", "--lpips", "none",
                            "--views", "0,2", "--quiet")
    assert code == 0, err
    obj = json.loads((tmp_path / "bb" / "metrics.json").read_text())
    assert obj["pred"] is None and set(obj["methods"]) == {"billboard"}
    s = obj["methods"]["billboard"]["summary"]
    assert s["input"]["psnr"] > s["novel"]["psnr"] and "lpips_vgg" not in s["input"]


def _one_error(code: int, err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error:"), (code, err)
    return lines[0]


def test_bad_input_is_one_line(run, clip_dir, tmp_path):
    import shutil

    common = ("--lpips", "none", "--quiet")
    # no PRED and no baseline; no PRED without --out
    assert "give PRED" in _one_error(*run("--gt", clip_dir, *common)[::2])
    assert "--out" in _one_error(*run("--gt", clip_dir, "--baseline", "static", *common)[::2])
    # an empty PRED folder
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no .ply or .splat files" in _one_error(*run(empty, "--gt", clip_dir, *common)[::2])
    # a clip missing a mask, one missing a camera file, one with an unreadable image
    for damage, expected in (("000/mask/002.png", "missing mask"), ("003/camera/rotation.npy", "missing camera file"),
                             ("001/img/001.png", "cannot decode the image")):
        broken = tmp_path / f"broken{len(expected)}"
        shutil.copytree(clip_dir, broken)
        if damage.endswith("img/001.png"):
            (broken / damage).write_bytes(b"not a png")
        else:
            (broken / damage).unlink()
        assert expected in _one_error(*run(clip_dir / "gt", "--gt", broken, "--out", tmp_path / "o", *common)[::2])
    # unknown baseline, protocol, view
    assert "unknown baseline" in _one_error(*run("--gt", clip_dir, "--baseline", "nope", "--out", tmp_path / "o", *common)[::2])
    assert "--protocol" in _one_error(*run(clip_dir / "gt", "--gt", clip_dir, "--protocol", "x", *common)[::2])
    assert "no view 42" in _one_error(*run(clip_dir / "gt", "--gt", clip_dir, "--views", "0,42", "--out", tmp_path / "o", *common)[::2])
    assert not (tmp_path / "o" / "metrics.json").exists()


@pytest.mark.parametrize("offset, fovy", [((0.0, 0.0), 49.1), ((0.18, -0.12), 49.1), ((-0.1, 0.15), 40.0)])
def test_uncrop_maps_the_reconstruct_crop_back_to_the_clip_camera(offset, fovy):
    """What the network sees is the crop of the input frame. Gaussians that reproduce that crop in
    L4GM's camera, mapped by uncrop_transform, must be the object the clip's camera filmed: render
    the object off-centre in the clip camera, crop the frame as reconstruct does, then check that
    the *inverse* map of the object renders that crop: same centre (a sign slip moves it), same size
    (a wrong zoom resizes it). Weak perspective is not exact (the object's depth scales too), so
    the silhouettes agree to a few pixels, not to the pixel."""
    from video2gs.camera import FOVY_DEG, Cameras, orbit_camera
    from video2gs.metrics.evaluate import uncrop_transform
    from video2gs.preprocess.crop import ClipCrop, mask_box
    from video2gs.render import render

    g = random_object(2500, seed=3)
    g = g.transform(torch.eye(3), torch.tensor([offset[0], offset[1], 0.0]), scale=0.6)  # small and off-centre
    front = torch.from_numpy(orbit_camera(0.0, 0.0)).float()
    size = 160
    seen = render(g, Cameras(front[None], fovy_deg=fovy), size, size, backend="torch")
    rgb = (seen.rgb[0].numpy() * 255).round().astype(np.uint8)
    mask = (seen.alpha[0, ..., 0].numpy() > 0.5).astype(np.uint8) * 255
    crop = ClipCrop.from_boxes([mask_box(mask)], (size, size), size=256)
    canvas = crop.apply(rgb, mask)  # [256, 256, 4], what reconstruct writes to input/
    target = canvas[..., 3] > 127

    def silhouette(m: float, shift: np.ndarray) -> np.ndarray:
        as_reconstructed = g.transform(torch.eye(3), -torch.from_numpy(shift).float() / m, scale=1.0 / m)
        out = render(as_reconstructed, Cameras(front[None], fovy_deg=FOVY_DEG), 256, 256, backend="torch")
        return out.alpha[0, ..., 0].numpy() > 0.5

    def centre_and_size(sil: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ys, xs = np.nonzero(sil)
        return np.array([xs.mean(), ys.mean()]), np.array([np.ptp(xs), np.ptp(ys)], dtype=float)

    m, shift = uncrop_transform(crop.to_dict(), fovy)
    want_c, want_s = centre_and_size(target)
    got_c, got_s = centre_and_size(silhouette(m, shift))
    assert np.abs(got_c - want_c).max() < 3.0, (got_c, want_c, m, shift)
    assert np.abs(got_s / want_s - 1.0).max() < 0.1, (got_s, want_s, m)
    # the check can fail: without the map (or with the shift's sign flipped) the silhouette is elsewhere
    wrong_c, wrong_s = centre_and_size(silhouette(1.0, np.zeros(3)))
    assert np.abs(wrong_c - want_c).max() > 6.0 or np.abs(wrong_s / want_s - 1.0).max() > 0.2
    if abs(offset[0]) + abs(offset[1]) > 0:
        flipped_c, _ = centre_and_size(silhouette(m, shift * np.array([-1.0, -1.0, 1.0])))
        assert np.abs(flipped_c - want_c).max() > 6.0
