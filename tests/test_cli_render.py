"""`video2gs render` and `video2gs example` end to end: videos, bad input, nothing damaged."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from video2gs.cli import main
from video2gs.commands.render import parse_background
from video2gs.render.turntable import orbit_plan
from video2gs.errors import UserError
from video2gs.formats import save_gaussians
from video2gs.gaussians import Gaussians
from video2gs.sequence import frame_entries, write_frame, write_manifest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the real entry point in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 1, (code, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err + out
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def blob(n: int = 300, seed: int = 0, shift: float = 0.0) -> Gaussians:
    """A small opaque ball of red Gaussians around the origin."""
    gen = torch.Generator().manual_seed(seed)
    xyz = torch.randn(n, 3, generator=gen) * 0.15
    xyz[:, 0] += shift
    return Gaussians.from_fields(
        xyz, torch.full((n,), 0.9), torch.full((n, 3), 0.03), torch.randn(n, 4, generator=gen),
        torch.tensor([0.9, 0.1, 0.1]).expand(n, 3),
    )


def make_sequence(root, count=3, fps=10.0):
    for t in range(count):
        write_frame(root, t, blob(seed=t, shift=0.1 * t))
    write_manifest(root, {"fps": fps, "up": "-y", "frames": frame_entries(count, fps)})
    return root


def decode(path) -> np.ndarray:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])


# -- pure helpers -------------------------------------------------------------------------------------
def test_orbit_plan_turns_once_and_loops():
    plan = orbit_plan(360, 24, 15.0)
    assert [az for az, _ in plan[:3]] == [0.0, 1.0, 2.0] and plan[-1][0] == 359.0
    assert [t for _, t in plan[:5]] == [0, 0, 1, 1, 2]  # 15 fps sequence in a 30 fps video
    assert plan[48][1] == 0 and max(t for _, t in plan) == 23  # loops after 24 frames
    assert {t for _, t in orbit_plan(10, 1, 15.0)} == {0}  # a single file just spins


def test_parse_background():
    assert parse_background("white") == (1.0, 1.0, 1.0)
    assert parse_background("Black") == (0.0, 0.0, 0.0)
    assert parse_background("#ff8000") == pytest.approx((1.0, 128 / 255, 0.0))
    with pytest.raises(UserError, match="#rrggbb"):
        parse_background("teal")


# -- rendering ------------------------------------------------------------------------------------------
def test_render_sequence_folder(tmp_path):
    out = make_sequence(tmp_path / "out", count=3, fps=10)
    code, stdout, err = run_cli("render", out, "--size", 64, "--orbit-seconds", 0.5, "--quiet")
    assert code == 0, err
    orbit, fixed = decode(out / "videos" / "orbit.mp4"), decode(out / "videos" / "fixed.mp4")
    assert orbit.shape == (15, 64, 64, 3)  # 0.5 s at 30 fps
    assert fixed.shape == (3, 64, 256, 3)  # one frame per sequence frame, 4 views side by side
    # The red ball is in the middle of every view on a white background.
    for view in [orbit[0], *np.split(fixed[0], 4, axis=1)]:
        centre, corner = view[28:36, 28:36].astype(int), view[:6, :6].astype(int)
        assert corner.min() > 230
        assert centre[..., 0].mean() - centre[..., 1].mean() > 80
    assert "rendered 3 frames" in stdout and "orbit.mp4 (15 frames)" in stdout and "fixed.mp4 (3 frames)" in stdout
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["fixed.mp4", "orbit.mp4"]


def test_render_single_file_spins_into_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "scans").mkdir()
    save_gaussians(tmp_path / "scans" / "ball.splat", blob(shift=0.3))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("render", tmp_path / "scans" / "ball.splat", "--orbit", "--size", 32, "--orbit-seconds", 0.2,
                           "--background", "#000000", "-q")
    assert sorted(p.name for p in (tmp_path / "scans").iterdir()) == ["ball.splat"]  # nothing lands beside the scan
    assert code == 0, err
    frames = decode(tmp_path / "ball_orbit.mp4")
    assert frames.shape == (6, 32, 32, 3)
    assert (frames.max(-1) < 20).mean() > 0.5  # mostly black background around a small ball
    assert np.abs(frames[0].astype(int) - frames[3].astype(int)).max() > 40  # the off-centre ball moves
    assert not (tmp_path / "ball_fixed.mp4").exists()


def test_example_then_render(tmp_path):
    out = tmp_path / "demo"
    code, stdout, err = run_cli("example", out, "--frames", 3, "-q")
    assert code == 0, err
    assert "video2gs render" in stdout
    code, _, err = run_cli("render", out, "--fixed", "--size", 32, "-q", "-o", tmp_path / "vids")
    assert code == 0, err
    fixed = decode(tmp_path / "vids" / "fixed.mp4")
    assert fixed.shape == (3, 32, 128, 3)
    assert np.abs(fixed[0].astype(int) - fixed[1].astype(int)).max() > 30  # Spot moves


def test_example_video_is_the_bundled_clip_and_never_replaces_a_file(tmp_path):
    from video2gs.video.decode import open_source

    target = tmp_path / "faerie.mp4"
    code, stdout, err = run_cli("example", "--video", target)
    assert code == 0, err
    assert "video2gs reconstruct" in stdout
    src = open_source(target)
    try:
        frames = [f.image for f in src.frames()]
    finally:
        src.close()
    assert len(frames) == 16 and frames[0].shape[:2] == (128, 128)
    assert (frames[0] > 240).all(axis=-1).mean() > 0.6  # an object on white
    assert run_cli("example", "--video", target)[0] == 0  # the same bytes again: fine
    other = tmp_path / "mine.mp4"
    other.write_bytes(b"precious")
    code, _, err = run_cli("example", "--video", other)
    assert code == 1 and "exists" in err and other.read_bytes() == b"precious"


def test_failed_render_leaves_existing_videos_untouched(tmp_path):
    out = make_sequence(tmp_path / "out", count=3)
    path = out / "gaussians" / "000002.ply"
    data = bytearray(path.read_bytes())
    start = data.index(b"end_header\n") + len(b"end_header\n")
    data[start:start + 4] = np.float32(np.nan).tobytes()  # frame 2's first x is NaN
    path.write_bytes(bytes(data))
    videos = out / "videos"
    videos.mkdir()
    (videos / "orbit.mp4").write_bytes(b"earlier orbit")
    (videos / "fixed.mp4").write_bytes(b"earlier fixed")
    code, out_, err = run_cli("render", out, "--size", 32, "--orbit-seconds", 0.1, "-q")
    assert_one_line_error(code, out_, err, "000002.ply", "NaN")
    assert (videos / "orbit.mp4").read_bytes() == b"earlier orbit"
    assert (videos / "fixed.mp4").read_bytes() == b"earlier fixed"
    assert sorted(p.name for p in videos.iterdir()) == ["fixed.mp4", "orbit.mp4"]  # no temporaries


# -- bad input: one line, exit 1, no traceback -------------------------------------------------------------
def bad_ply(tmp_path, kind: str):
    folder = tmp_path / kind
    folder.mkdir()
    path = folder / "000000.ply"
    save_gaussians(path, blob(20))
    data = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[:-9])
    elif kind == "missing_props":
        path.write_bytes(data.replace(b"property float opacity\n", b"property float opacitx\n"))
    elif kind == "zero":
        head = data[: data.index(b"end_header\n") + 11]
        path.write_bytes(head.replace(b"element vertex 20", b"element vertex 0"))
    elif kind == "inf":
        start = data.index(b"end_header\n") + 11
        path.write_bytes(data[:start] + np.float32(np.inf).tobytes() + data[start + 4:])
    elif kind == "not_ply":
        path.write_bytes(b"\x00binary garbage")
    return folder


@pytest.mark.parametrize(
    "kind,fragment",
    [("truncated", "truncated"), ("missing_props", "opacity"), ("zero", "zero Gaussians"),
     ("inf", "NaN or Inf"), ("not_ply", "not a valid PLY")],
)
def test_bad_ply_inputs(tmp_path, kind, fragment):
    folder = bad_ply(tmp_path, kind)
    assert_one_line_error(*run_cli("render", folder, "--size", 16, "-q"), "000000.ply", fragment)
    assert not (folder / "videos" / "orbit.mp4").exists()


def test_bad_paths_and_options(tmp_path):
    assert_one_line_error(*run_cli("render", tmp_path / "nope"), "no such file")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(*run_cli("render", tmp_path / "empty"), "no .ply")
    seq = make_sequence(tmp_path / "seq", count=1)
    assert_one_line_error(*run_cli("render", seq, "--backend", "warp-drive"), "warp-drive")
    assert_one_line_error(*run_cli("render", seq, "--background", "teal"), "#rrggbb")
    assert_one_line_error(*run_cli("render", seq, "--size", 3), "--size")
    assert_one_line_error(*run_cli("render", seq, "--input-up", "z"), "--input-up")
    assert_one_line_error(*run_cli("render", seq, "--device", "toaster"), "--device")
    (tmp_path / "afile").write_text("x")
    assert_one_line_error(*run_cli("render", seq, "-o", tmp_path / "afile"), "not a folder")
    assert not (seq / "videos").exists()


def test_backend_not_installed(tmp_path):
    from video2gs.render import available_backends

    missing = [b for b in ("gsplat", "dgr") if b not in available_backends()]
    if not missing:
        pytest.skip("every optional backend is installed here")
    seq = make_sequence(tmp_path / "seq", count=1)
    assert_one_line_error(*run_cli("render", seq, "--backend", missing[0]), missing[0])


def test_cuda_device_without_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    seq = make_sequence(tmp_path / "seq", count=1)
    assert_one_line_error(*run_cli("render", seq, "--device", "cuda"), "CUDA is not available")


def test_entry_point_prints_one_line_and_debug_shows_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO}
    cmd = [sys.executable, "-m", "video2gs", "render", str(tmp_path / "missing")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert [line for line in r.stderr.splitlines() if line.strip()] == [f"error: {tmp_path / 'missing'}: no such file or folder"]
    with pytest.raises(UserError, match="no such file"):  # --debug lets the exception (and traceback) through
        main(["render", str(tmp_path / "missing"), "--debug"])


def test_render_videos_api_for_the_pipeline(tmp_path):
    from video2gs.render.turntable import render_videos
    from video2gs.progress import Reporter
    from video2gs.sequence import Sequence

    out = make_sequence(tmp_path / "out", count=2, fps=10)
    for t in range(4):
        write_frame(out, t, blob(seed=t), subdir="gaussians_x3")
    seq = Sequence.open(out / "gaussians_x3")
    # OUT/gaussians_x3 is OUT's x3 sequence: 3x the manifest's rate (it records no x3 entry here)
    assert (seq.kind, seq.subdir, len(seq), seq.fps) == ("output", "gaussians_x3", 4, 30.0)
    with Reporter(quiet=True) as rep:
        paths = render_videos(seq, out / "videos", fixed=True, orbit=False, size=16, suffix="_x3", reporter=rep)
        with rep.stage("after", 1) as stage:  # the caller's reporter is still running
            stage.advance()
    assert paths == [out / "videos" / "fixed_x3.mp4"]
    assert decode(paths[0]).shape == (4, 16, 64, 3)
