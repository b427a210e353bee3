"""`data make` end to end: layout, cameras, licences, splits, determinism, resume, bad input, the CLI,
and the cross-check between the mesh rasterizer and the splat renderer at the dataset cameras."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from video2gs.cli import main
from video2gs.data import layout
from video2gs.data.make import MakeOptions, make_dataset
from video2gs.errors import UserError
from video2gs.render import render

SMALL = dict(frames=3, resolution=48, fixed_views=4, random_views=2, seed=3)


@pytest.fixture(scope="module")
def gl():
    """Mesh sources need a headless OpenGL context (libEGL + Mesa); skip with the reason when absent."""
    from video2gs.data.raster import MeshRasterizer

    try:
        MeshRasterizer(16).release()
    except UserError as exc:
        pytest.skip(f"no headless OpenGL here: {exc}")


def _splat(shared_dir, name="spot"):
    return shared_dir / "data" / "splats" / f"{name}.splat"


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix != ".json":
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _psnr_iou(clip, t):
    out = render(clip.load_gt(t), clip.cameras(t), clip.meta["resolution"], clip.meta["resolution"], backend="numba")
    psnr, inter, union = [], 0, 0
    for i, v in enumerate(clip.views):
        mse = float(((out.rgb[i].numpy() - clip.image(v, t)) ** 2).mean())
        psnr.append(-10 * np.log10(max(mse, 1e-12)))
        a, b = out.alpha[i, ..., 0].numpy() > 0.5, clip.mask(v, t) > 0.5
        inter, union = inter + (a & b).sum(), union + (a | b).sum()
    return float(np.mean(psnr)), inter / union


def test_gaussian_source_clip(shared_dir, tmp_path):
    out = tmp_path / "ds"
    res = make_dataset(out, [_splat(shared_dir)], ["twist"], MakeOptions(**SMALL))
    assert res.made == ["spot-twist"]
    index = layout.read_dataset_index(out)
    assert index["complete"] and index["clips"][0]["split"] in ("train", "val", "test")
    src = index["sources"][0]
    assert src["licence"] == "CC0-1.0" and "Keenan Crane" in src["attribution"]
    clip = layout.open_clip(out / "spot-twist")
    assert clip.views == list(range(6)) and clip.fixed_views == [0, 1, 2, 3] and clip.random_views == [4, 5]
    assert clip.num_frames == 3 and clip.input_view == 0 and (out / "spot-twist" / "input.mp4").stat().st_size > 0
    np.testing.assert_allclose(clip.azimuth(1), 90.0)
    np.testing.assert_allclose(clip.elevation(0), 0.0)
    assert all(-5 <= clip.elevation(v)[0] <= 30 for v in (4, 5))
    np.testing.assert_allclose(clip.times, [0, 1 / 8, 2 / 8], atol=1e-6)
    # Normalised over all frames: largest bbox side of the means = 1, centred.
    xyz = torch.cat([clip.load_gt(t).xyz for t in range(3)])
    side = xyz.max(0).values - xyz.min(0).values
    assert side.max() == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close((xyz.max(0).values + xyz.min(0).values) / 2, torch.zeros(3), atol=1e-5, rtol=0)
    # The twist moves the object: frames differ.
    assert (clip.load_gt(2).xyz - clip.load_gt(0).xyz).abs().max() > 0.05
    # Images are the GT rendered at the dataset cameras (8-bit PNG rounding only), on white.
    psnr, iou = _psnr_iou(clip, 1)
    assert psnr > 45 and iou > 0.99
    img = clip.image(0, 0)
    np.testing.assert_allclose(img[0, 0], 1.0)
    assert clip.mask(0, 0)[0, 0] == 0 and clip.mask(0, 0).max() == 1.0


def test_deterministic_and_resumable(shared_dir, tmp_path):
    objs = [_splat(shared_dir, "cube")]
    a, b = tmp_path / "a", tmp_path / "b"
    opts = {**SMALL, "frames": 2, "resolution": 32}
    make_dataset(a, objs, ["spin", "wave"], MakeOptions(**opts))
    make_dataset(b, objs, ["spin", "wave"], MakeOptions(**opts))
    assert _digest(a) == _digest(b)
    # Interrupted run: a clip left half-written in .partial -> only that one is redone.
    kept = (a / "cube-spin" / "clip.json").stat().st_mtime_ns
    (a / ".partial" / "cube-wave").mkdir(parents=True)
    shutil.copytree(a / "cube-wave" / "000", a / ".partial" / "cube-wave" / "000")
    shutil.rmtree(a / "cube-wave")
    res = make_dataset(a, objs, ["spin", "wave"], MakeOptions(**opts))
    assert res.made == ["cube-wave"] and res.skipped == ["cube-spin"]
    assert (a / "cube-spin" / "clip.json").stat().st_mtime_ns == kept
    assert not (a / ".partial").exists()
    assert _digest(a) == _digest(b)
    # Other options into the same folder are refused; a different seed changes the content.
    with pytest.raises(UserError, match="made with other options"):
        make_dataset(a, objs, ["spin"], MakeOptions(**{**opts, "seed": 4}))
    c = tmp_path / "c"
    make_dataset(c, objs[:1], ["spin"], MakeOptions(**{**opts, "seed": 4}))
    assert _digest(c / "cube-spin") != _digest(b / "cube-spin")


def test_split_is_by_object(shared_dir):
    """Every clip of an object shares its split; the split of an object does not depend on the others."""
    from video2gs.data.make import object_split, plan_clips
    from video2gs.data.sources import identify

    paths = sorted((shared_dir / "data" / "splats").glob("*.splat"))
    sources = [identify(p) for p in paths]
    opts = MakeOptions(**SMALL)
    plans = plan_clips(sources, ["spin", "bend"], {}, opts)
    by_object = {}
    for p in plans:
        by_object.setdefault(p.obj, set()).add(p.split)
    assert len(by_object) == len(paths) and all(len(s) == 1 for s in by_object.values())
    counts = {s: sum(1 for v in by_object.values() if s in v) for s in ("train", "val", "test")}
    assert counts["train"] > counts["val"] > 0 and counts["test"] > 0  # 29 objects at 0.8/0.1/0.1
    alone = plan_clips(sources[:1], ["spin"], {}, opts)[0]
    assert alone.split == object_split(sources[0].name, opts.seed, opts.split) == by_object[sources[0].name].pop()


def test_mesh_source_through_the_rasterizer(tmp_path, gl):
    trimesh = pytest.importorskip("trimesh")
    box = trimesh.creation.box((0.6, 0.3, 0.4))
    box.visual.vertex_colors = np.array([200, 60, 40, 255], np.uint8)
    path = tmp_path / "box.ply"
    box.export(path)
    out = tmp_path / "ds"
    res = make_dataset(out, [path], ["tumble"], MakeOptions(**{**SMALL, "resolution": 128}))
    assert res.warnings and "unknown" in res.warnings[0]
    clip = layout.open_clip(out / "box-tumble")
    assert clip.meta["images_from"].startswith("mesh rasterizer") and clip.meta["source"]["licence"] == "unknown"
    psnr, iou = _psnr_iou(clip, 2)
    assert psnr > 28 and iou > 0.95
    img = clip.image(0, 2)
    obj = clip.mask(0, 2) > 0.99
    np.testing.assert_allclose(img[obj].mean(0), np.array([200, 60, 40]) / 255, atol=0.02)  # unlit vertex colour


def test_faerie_crosscheck_at_512(shared_dir, tmp_path, gl):
    """The faerie's ground-truth Gaussians, rendered by our renderer at the dataset cameras, match the
    GL rasterizer's images (the issue's bar: PSNR >= 28 dB, mask IoU >= 0.97; measured 31.4 / 0.972)."""
    out = tmp_path / "ds"
    make_dataset(out, [shared_dir / "data" / "md2" / "faerie.md2"], [], MakeOptions(frames=2, resolution=512, fixed_views=4, random_views=4),
                 animations=["run"])
    clip = layout.open_clip(out / "faerie-run")
    assert clip.meta["source"]["licence"].startswith("The Irrlicht Engine License")
    psnr, iou = _psnr_iou(clip, 1)
    assert psnr >= 28 and iou >= 0.97


@pytest.mark.parametrize("content, message", [(b"", "faulty"), (b"x" * 33, "faulty")])
def test_bad_object_is_one_line_and_nothing_written(tmp_path, capsys, content, message):
    bad = tmp_path / "faulty.splat"
    bad.write_bytes(content)
    out = tmp_path / "ds"
    with pytest.raises(SystemExit) as exc:
        main(["data", "make", str(out), "--objects", str(bad), "--motions", "spin", "--quiet"])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert not out.exists()


@pytest.mark.parametrize("name, content", [("broken.obj", b"v 0 0\nf 1 2 9\n"), ("broken.md2", b"IDP2junk"), ("none.glb", None)])
def test_bad_mesh_names_the_file(tmp_path, capsys, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SystemExit):
        main(["data", "make", str(tmp_path / "ds"), "--objects", str(path), "--motions", "spin", "--quiet"])
    assert name in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_cli_multi_value_options(shared_dir, tmp_path, capsys):
    out = tmp_path / "ds"
    main(["data", "make", str(out), "--objects", str(_splat(shared_dir)), str(_splat(shared_dir, "cube")),
          "--motions", "spin", "squash", "--frames", "2", "--resolution", "32", "--fixed-views", "2", "--random-views", "1", "--quiet"])
    summary = capsys.readouterr().out
    assert "made 4 clips" in summary
    names = sorted(c["name"] for c in json.loads((out / "dataset.json").read_text())["clips"])
    assert names == ["cube-spin", "cube-squash", "spot-spin", "spot-squash"]
    from video2gs.data.samples import L4GMDataset, SampleOptions

    ds = L4GMDataset.from_dataset(out, split=None, options=SampleOptions(num_frames=2, num_views=3, num_input_views=2,
                                                                         input_size=32, output_size=32))
    s = ds[0]
    assert s["input"].shape == (4, 9, 32, 32) and s["images_output"].shape == (6, 3, 32, 32)
    main(["data", "preview", str(out / "spot-spin"), "-o", str(tmp_path / "sheet.png"), "--tile", "16"])
    import cv2

    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert sheet.shape == (3 * 2 * 16, 2 * 16, 3)  # views 0, 1 (fixed), 2 (random): rows of images and masks; frames 0, 1
