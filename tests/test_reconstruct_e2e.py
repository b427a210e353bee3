"""`video2gs reconstruct` / `interpolate` end to end, with micro random-weight checkpoints in the
official format (written here, loaded through the real loading code). Most tests use a small
video made here; the real videos of ../shared are used where present."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import DATA
from media import make_video, object_frames, object_video
from video2gs.cli import main
from video2gs.formats import load_gaussians
from video2gs.testing import write_random_l4gm
from video2gs.video.decode import open_source

VIDEOS = DATA / "videos"
FAST = ["--views", "none", "--segment", "key", "--no-render", "--quiet"]
needs_videos = pytest.mark.skipif(not VIDEOS.is_dir(), reason=f"the real test videos of ../shared are not at {VIDEOS}")


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    return {
        "recon": write_random_l4gm(d / "recon.safetensors", seed=0),
        "interp": write_random_l4gm(d / "interp.safetensors", seed=1),
    }


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    """6 frames, 96x64, 10 fps: a box sliding over a plain backdrop."""
    return object_video(tmp_path_factory.mktemp("media") / "clip.mp4")


def cli(*args) -> int:
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def model_args(models, interpolate=False):
    args = ["--model", models["recon"], "--interp-model", models["interp"]]
    return args + (["--interpolate"] if interpolate else ["--no-interpolate"])


def plys(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ply"))


@needs_videos
@pytest.mark.parametrize(
    "video, fps, segment",
    # tree.avi is a handheld shot whose tree fills the frame: border keying finds no backdrop there
    [("box.mp4", 2.0, "key"), ("tree.avi", 15.0, "none"), ("bigbuckbunny.mp4", 5.0, "key")],
)
def test_ply_count_equals_resampled_frame_count(video, fps, segment, models, tmp_path):
    out = tmp_path / "out"
    args = ["--fps", fps, *model_args(models), *FAST, "--segment", segment]
    assert cli("reconstruct", VIDEOS / video, "-o", out, *args) == 0
    expected = len(open_source(VIDEOS / video, fps=fps))
    files = plys(out / "gaussians")
    assert len(files) == expected > 1
    assert len(list((out / "input").glob("*.png"))) == expected
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["frames"]) == expected and manifest["progress"]["complete"]
    assert manifest["source"]["path"] == str((VIDEOS / video).resolve())
    assert manifest["options"]["fps"] == fps and manifest["up"] == "-y"
    assert set(manifest["timings"]) >= {"segment", "crop", "reconstruct", "total"}
    assert [m["role"] for m in manifest["models"]] == ["reconstruction"] and len(manifest["models"][0]["sha256"]) == 64
    # what ran, not "auto"
    from video2gs.compute import resolve_dtype, DTYPE_NAMES

    assert manifest["compute"]["device"] == "cpu" and manifest["compute"]["backend"] == "numba"
    assert manifest["compute"]["dtype"] == DTYPE_NAMES[resolve_dtype("auto", "cpu")]
    # rates are rounded for people, not float noise
    assert manifest["fps"] == round(manifest["fps"], 6) and manifest["source"]["fps"] == round(manifest["source"]["fps"], 6)
    # what the model saw: RGBA 256², an object in some frames, white outside the mask
    coverage = []
    for png in sorted((out / "input").glob("*.png")):
        img = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        assert img.shape == (256, 256, 4)
        assert (img[..., :3][img[..., 3] == 0] == 255).all()
        coverage.append((img[..., 3] > 0).mean())
    assert 0 < max(coverage) < 0.95
    # consecutive frames differ (the video moves); each frame is a valid splat set
    a, b = load_gaussians(files[0]), load_gaussians(files[-1])
    assert len(a) > 0 and not np.array_equal(a.data.numpy()[:100], b.data.numpy()[:100])
    # nothing private is left behind by a finished run
    assert not (out / ".video2gs").exists()


def test_synthetic_clip_end_to_end(clip, models, tmp_path):
    out = tmp_path / "out"
    assert cli("reconstruct", clip, "-o", out, *model_args(models), *FAST) == 0
    assert len(plys(out / "gaussians")) == len(open_source(clip, fps=15)) == 6
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["compute"]["device"] == "cpu" and manifest["compute"]["dtype"] in ("fp32", "bf16")
    assert manifest["segmentation"]["method"] == "key"
    assert sorted(p.name for p in out.iterdir()) == ["gaussians", "input", "manifest.json", "views"]


def test_interpolation_counts_and_separate_command(clip, models, tmp_path):
    out = tmp_path / "out"
    args = ["reconstruct", clip, "-o", out, "--max-frames", 5, "--chunk", 3, *model_args(models, True)]
    assert cli(*args, "--views", "none", "--segment", "key", "--render-size", 32, "--quiet") == 0
    assert len(plys(out / "gaussians")) == 5
    assert len(plys(out / "gaussians_x3")) == 3 * (5 - 1) + 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["x3"]["fps"] == pytest.approx(3 * manifest["fps"])
    assert [e["index"] for e in manifest["x3"]["frames"]] == list(range(13))
    for name in ("orbit.mp4", "fixed.mp4", "orbit_x3.mp4", "fixed_x3.mp4"):
        assert (out / "videos" / name).stat().st_size > 0
    # fixed_x3 has one video frame per x3 frame
    cap = cv2.VideoCapture(str(out / "videos" / "fixed_x3.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 13
    first = load_gaussians(out / "gaussians_x3" / "000000.ply").data.clone()
    keys_before = {p.name: p.read_bytes() for p in plys(out / "gaussians")}

    # `video2gs interpolate` refuses to clobber, then redoes it identically with --overwrite
    assert cli("interpolate", out, "--model", models["interp"], "--no-render", "--quiet") == 1
    assert cli("interpolate", out, "--model", models["interp"], "--no-render", "--overwrite", "--quiet") == 0
    assert len(plys(out / "gaussians_x3")) == 13
    assert np.array_equal(load_gaussians(out / "gaussians_x3" / "000000.ply").data, first)
    assert {p.name: p.read_bytes() for p in plys(out / "gaussians")} == keys_before
    # --no-render replaced the x3 videos' sequence, so the stale x3 videos went with it
    assert not (out / "videos" / "orbit_x3.mp4").exists() and (out / "videos" / "orbit.mp4").exists()
    assert cli("interpolate", out, "--model", models["interp"], "--factor", 2, "--quiet") == 1
    # --resume on a complete x3 sequence has nothing to do
    assert cli("interpolate", out, "--model", models["interp"], "--resume", "--quiet") == 0


def test_one_frame_video_is_a_one_frame_sequence(models, tmp_path):
    src = make_video(tmp_path / "one.mp4", object_frames(1))
    out = tmp_path / "out"
    assert cli("reconstruct", src, "-o", out, *model_args(models, True), "--views", "none", "--segment", "key",
               "--render-size", 32, "--quiet") == 0
    assert len(plys(out / "gaussians")) == 1
    assert not (out / "gaussians_x3").exists()  # nothing to interpolate
    assert (out / "videos" / "orbit.mp4").stat().st_size > 0


def test_views_from_a_folder_are_used(clip, models, tmp_path):
    views = tmp_path / "views"
    views.mkdir()
    for az, colour in ((90, (0, 0, 255)), (180, (0, 255, 0)), (270, (255, 0, 0))):
        img = np.full((300, 200, 3), 255, np.uint8)
        img[100:200, 50:150] = colour
        cv2.imwrite(str(views / f"{az:03d}.png"), img)
    out = tmp_path / "out"
    args = ["reconstruct", clip, "-o", out, "--max-frames", 2, *model_args(models)]
    assert cli(*args, "--views", views, "--segment", "key", "--no-render", "--quiet") == 0
    saved = cv2.imread(str(out / "views" / "view_090.png"))
    assert saved.shape == (256, 256, 3) and saved[128, 128].tolist() == [0, 0, 255]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["views"]["source"] == "folder"
    (views / "180.png").unlink()
    assert cli(*args, "--views", views, "--segment", "key", "--no-render", "--quiet", "--overwrite") == 1
    # the failed replacement left the first run as it was
    assert cv2.imread(str(out / "views" / "view_090.png")).tolist() == saved.tolist()


@pytest.mark.parametrize("w, h, gray", [(641, 479, False), (96, 64, True), (3840, 2160, False)], ids=["odd", "gray", "4k"])
def test_awkward_videos_work(w, h, gray, models, tmp_path):
    src = make_video(tmp_path / "v.mp4", object_frames(3, w, h, gray))
    out = tmp_path / "out"
    assert cli("reconstruct", src, "-o", out, *model_args(models), *FAST) == 0
    assert len(plys(out / "gaussians")) == 3


def test_cap_fps_never_exceeds_the_target(models, tmp_path):
    src = make_video(tmp_path / "v.mp4", object_frames(9), fps=25)
    assert len(open_source(src, fps=15)) == 9  # L4GM's floor rule keeps 25 fps
    out = tmp_path / "out"
    assert cli("reconstruct", src, "-o", out, "--fps", 15, "--cap-fps", *model_args(models), *FAST) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fps"] == 12.5 and len(plys(out / "gaussians")) == 5


def test_render_of_a_subfolder_plays_at_its_own_rate_and_files_go_to_videos(clip, models, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert cli("reconstruct", clip, "-o", out, "--max-frames", 3, *model_args(models, True), "--views", "none",
               "--segment", "key", "--no-render", "--quiet") == 0
    from video2gs.sequence import Sequence

    manifest = json.loads((out / "manifest.json").read_text())
    assert Sequence.open(out / "gaussians_x3").fps == pytest.approx(manifest["x3"]["fps"]) == 30.0
    assert Sequence.open(out / "gaussians").fps == pytest.approx(manifest["fps"])
    assert cli("render", out / "gaussians_x3", "--fixed", "--size", 16, "--quiet") == 0
    assert (out / "videos" / "fixed_x3.mp4").is_file()
    cap = cv2.VideoCapture(str(out / "videos" / "fixed_x3.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(30.0)
    # a single frame of an output folder renders into OUT/videos, never into gaussians/
    assert cli("render", out / "gaussians" / "000001.ply", "--fixed", "--size", 16, "--quiet") == 0
    assert (out / "videos" / "000001_fixed.mp4").is_file()
    assert plys(out / "gaussians") == sorted((out / "gaussians").iterdir())
    # a lone file elsewhere renders into the current folder
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "a.ply").write_bytes((out / "gaussians" / "000000.ply").read_bytes())
    monkeypatch.chdir(tmp_path)
    assert cli("render", lone / "a.ply", "--fixed", "--size", 16, "--quiet") == 0
    assert (tmp_path / "a_fixed.mp4").is_file() and sorted(p.name for p in lone.iterdir()) == ["a.ply"]


# -- bad input: one line, non-zero exit, no traceback, nothing damaged --------------------------------


def assert_one_line_error(capsys, *words):
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) >= 1 and lines[-1].startswith("error:"), err
    text = " ".join(lines).lower()
    for w in words:
        assert w.lower() in text, err
    return text


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: d / "missing.mp4", ["not found"]),
        (lambda d: _write(d / "notes.mp4", "hello, not a video"), ["notes.mp4"]),
        (lambda d: make_video(d / "flat.mp4", [np.full((64, 64, 3), 128, np.uint8)] * 6), ["no object"]),
    ],
    ids=["missing", "not-a-video", "uniform"],
)
def test_bad_inputs(make, words, models, tmp_path, capsys):
    src = make(tmp_path)
    out = tmp_path / "out"
    assert cli("reconstruct", src, "-o", out, *model_args(models), "--views", "none", "--segment", "key", "--no-render") == 1
    assert_one_line_error(capsys, *words)
    assert not out.exists()  # a run that finished no stage leaves nothing behind


def test_truncated_video_is_clear(clip, models, tmp_path, capsys):
    data = clip.read_bytes()
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(data[: len(data) // 3])
    code = cli("reconstruct", bad, "-o", tmp_path / "out", "--max-frames", 3, *model_args(models), *FAST)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    # either the decodable part is used (with a warning) or it fails with one clear line
    assert code == 0 or (code == 1 and "error:" in err)


@pytest.mark.parametrize(
    "extra, words",
    [(["--fps", 0], ["--fps"]), (["--fps", -3], ["--fps"]), (["--chunk", 1], ["--chunk"]),
     (["--start", 2, "--end", 1], ["--end"]), (["--dtype", "fp8"], ["--dtype"]), (["--device", "tpu"], ["--device"]),
     (["--border-ratio", 1.5], ["--border-ratio"]), (["--overwrite", "--resume"], ["--overwrite", "--resume"])],
)
def test_bad_options(extra, words, clip, models, tmp_path, capsys):
    assert cli("reconstruct", clip, "-o", tmp_path / "o", *model_args(models), *FAST, *extra) == 1
    assert_one_line_error(capsys, *words)
    assert not (tmp_path / "o").exists()


def test_output_that_is_a_file(clip, models, tmp_path, capsys):
    f = tmp_path / "out"
    f.write_text("precious")
    assert cli("reconstruct", clip, "-o", f, *model_args(models), *FAST) == 1
    assert_one_line_error(capsys, "not a folder")
    assert f.read_text() == "precious"


def test_models_missing_offline_never_download(clip, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # even online, reconstruct never starts a download itself
    import video2gs.weights as weights

    monkeypatch.setattr(weights, "fetch", lambda *a, **k: pytest.fail("reconstruct started a download"))
    assert cli("reconstruct", clip, "-o", tmp_path / "o", "--model", "l4gm-recon", "--max-frames", 2, *FAST) == 1
    text = assert_one_line_error(capsys, "l4gm-recon", "video2gs download")
    assert "retry" not in text
    assert not (tmp_path / "o").exists()


def test_without_released_weights_the_bundled_model_runs_and_says_so(clip, tmp_path, capsys, monkeypatch):
    """--model auto (the default) with no l4gm-recon anywhere and a bundled model in the package: the
    bundled model reconstructs, one line says so and names the download, the manifest records it,
    and its blank side views are fed to every chunk (no renders handed from one chunk to the next)."""
    from test_weights import install_bundled_card

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("VIDEO2GS_MODEL_L4GM_RECON", raising=False)
    install_bundled_card(monkeypatch, tmp_path / "pkg", write_random_l4gm(tmp_path / "m.safetensors", side_views="blank"))
    import video2gs.pipeline.reconstruct as stage

    monkeypatch.setattr(stage, "side_views", lambda *a, **k: pytest.fail("a blank-trained model got rendered side views"))
    out = tmp_path / "o"
    assert cli("reconstruct", clip, "-o", out, "--max-frames", 5, "--chunk", 2, "--segment", "key", "--no-render") == 0
    err = capsys.readouterr().err
    assert len([ln for ln in err.splitlines() if "bundled model demo" in ln]) == 1
    assert "download l4gm-recon" in " ".join(err.split())
    m = json.loads((out / "manifest.json").read_text())
    rec = next(r for r in m["models"] if r["role"] == "reconstruction")
    assert rec["name"] == "demo" and rec["path"] == str((tmp_path / "pkg" / "demo.safetensors").resolve())
    assert m["views"]["source"] == "none" and m["views"]["later_chunks"] == "blank"
    assert len(plys(out / "gaussians")) == 5


def test_a_folder_named_like_a_model_is_not_that_model(clip, tmp_path, capsys, monkeypatch):
    """`video2gs example demo/` (the README's first command) leaves a folder named demo; with no
    bundled demo and no l4gm-recon, --model auto must still say l4gm-recon is missing, not take the
    folder for a model (registry names are names, as weights.resolve reads them)."""
    from video2gs import weights

    registry = {k: v for k, v in weights._registry().items() if k != "demo"}  # a package without the bundled model
    monkeypatch.setattr(weights, "_registry", lambda: registry)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("VIDEO2GS_MODEL_L4GM_RECON", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    (tmp_path / "l4gm-recon").mkdir()
    from video2gs.pipeline.run import model_on_disk

    assert not model_on_disk("l4gm-recon") and model_on_disk(str(tmp_path / "demo"))
    assert cli("reconstruct", clip, "-o", tmp_path / "o", "--max-frames", 2, *FAST) == 1
    assert_one_line_error(capsys, "l4gm-recon", "video2gs download")


def test_a_mirror_trained_model_gets_each_frames_own_mirror_views(clip, tmp_path, capsys, monkeypatch):
    """A model trained with side_views = mirror (the bundled demo's kind): in every chunk, every
    frame's views 1..3 are that frame's own view 0 at 90°/270° and its mirror image at 180° (what
    training fed it), nothing is rendered or handed over, and other --views are one line."""
    import video2gs.pipeline.reconstruct as stage
    from video2gs.reconstructor import Reconstructor

    model = write_random_l4gm(tmp_path / "mirror.safetensors", side_views="mirror")
    seen = []
    real = Reconstructor.__call__
    monkeypatch.setattr(Reconstructor, "__call__", lambda self, frames: (seen.append(frames.clone()), real(self, frames))[1])
    monkeypatch.setattr(stage, "side_views", lambda *a, **k: pytest.fail("a mirror-trained model got rendered side views"))
    out = tmp_path / "o"
    assert cli("reconstruct", clip, "-o", out, "--model", model, "--max-frames", 5, "--chunk", 2, "--segment", "key",
               "--no-render", "--quiet") == 0
    assert len(seen) >= 3  # chunks of 2 with overlap over 5 frames
    fronts = []
    for x in seen:  # [T, 4, 3, H, W]
        assert torch.equal(x[:, 1], x[:, 0]) and torch.equal(x[:, 3], x[:, 0]) and torch.equal(x[:, 2], x[:, 0].flip(-1))
        fronts += [f for f in x[:, 0]]
    assert any(not torch.equal(fronts[0], f) for f in fronts)  # the object moves: not frame 0's views for all
    m = json.loads((out / "manifest.json").read_text())
    assert m["views"]["source"] == "mirror" and "mirror" in m["views"]["later_chunks"]
    back = cv2.imread(str(out / "views" / "view_180.png"))
    front = cv2.imread(str(out / "input" / "000000.png"))
    assert back is not None and np.abs(back.astype(int) - cv2.resize(front, back.shape[:2][::-1])[:, ::-1].astype(int)).mean() < 2.0
    assert len(plys(out / "gaussians")) == 5
    assert cli("reconstruct", clip, "-o", tmp_path / "o2", "--model", model, "--views", "imagedream", "--quiet") == 1
    assert_one_line_error(capsys, "--views", "mirror side views", "--views none")


def test_a_blank_trained_model_refuses_side_views(clip, tmp_path, capsys):
    model = write_random_l4gm(tmp_path / "blank.safetensors", side_views="blank")
    views = tmp_path / "views"
    views.mkdir()
    out = tmp_path / "o"
    for v in ("imagedream", str(views)):
        assert cli("reconstruct", clip, "-o", out, "--model", model, "--views", v, "--segment", "key", "--quiet") == 1
        assert_one_line_error(capsys, "--views", "blank side views", "--views none")
        assert not out.exists()
