"""`video2gs export`: the web page folder (contents, frame convention, pruning, size budget, nothing
damaged) and `--format splat|ply` (frames in the recorded up axis); bad input is one line."""

from __future__ import annotations

import json
import re

import pytest
import torch

from test_cli_render import assert_one_line_error, blob, make_sequence, run_cli
from video2gs.formats import load_gaussians, read_gaussians, save_gaussians
from video2gs.formats.web import WEB_SCHEMA, WEB_UP, reduce_frame
from video2gs.gaussians import Gaussians
from video2gs.sequence import Sequence, frame_entries, write_frame, write_manifest
from video2gs.viewer.source import Source
from video2gs.viewer.web_export import export_web, is_web_export


def x3_output(root, count=3):
    """make_sequence's output folder plus a gaussians_x3/ of (count-1)*3+1 frames."""
    make_sequence(root, count)
    for j in range((count - 1) * 3 + 1):
        write_frame(root, j, blob(seed=100 + j), subdir="gaussians_x3")
    return root


def test_web_folder_contents(tmp_path):
    out = x3_output(tmp_path / "out")
    site = tmp_path / "site"
    code, stdout, err = run_cli("export", out, "--web", site, "--quiet")
    assert code == 0, err
    assert "exported 10 frames" in stdout and "http.server" in stdout
    meta = json.loads((site / "sequence.json").read_text())
    assert meta["schema"] == WEB_SCHEMA and meta["up"] == WEB_UP == "y"
    assert list(meta["sequences"]) == ["gaussians", "gaussians_x3"]
    assert meta["sequences"]["gaussians"]["fps"] == 10.0 and meta["sequences"]["gaussians_x3"]["fps"] == 30.0
    assert meta["camera"]["position"] == [0.0, 0.0, 1.5] and meta["camera"]["fovy_deg"] == 49.1
    for name, seq in meta["sequences"].items():
        assert len(seq["frames"]) == len(seq["splats"]) == (3 if name == "gaussians" else 7)
        assert all((site / f).is_file() for f in seq["frames"])
    for f in ("index.html", "viewer.js", "vendor/spark/spark.module.min.js", "vendor/spark/LICENSE", "vendor/three/LICENSE", "vendor/VENDOR.md"):
        assert (site / f).is_file(), f
    assert is_web_export(site)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folders left behind"


def test_page_fetches_nothing_from_elsewhere(tmp_path):
    out = make_sequence(tmp_path / "out", 1)
    site = tmp_path / "site"
    export_web(Source.open(out), site)
    page = (site / "index.html").read_text() + (site / "viewer.js").read_text()
    assert not re.search(r"https?://", page), "the page must not load anything from the network"
    imports = set(re.findall(r'from ?"([^"]+)"', (site / "vendor/spark/spark.module.min.js").read_text()))
    mapped = json.loads(re.search(r'<script type="importmap">(.*?)</script>', page, re.S).group(1))["imports"]
    for spec in imports:  # every import Spark makes resolves to a vendored file through the import map
        prefix = max((k for k in mapped if spec == k or (k.endswith("/") and spec.startswith(k))), key=len)
        assert (site / (mapped[prefix] + spec[len(prefix):])).is_file(), spec


def test_web_frames_are_y_up_and_pruned(tmp_path):
    src = tmp_path / "one.ply"
    g = blob(200)
    g.data[:50, 3] = 0.01  # faint Gaussians, dropped by the default --min-opacity 0.02
    save_gaussians(src, g, min_opacity=None)  # stored −Y up
    site = tmp_path / "site"
    export_web(Source.open(src), site)
    frame = site / json.loads((site / "sequence.json").read_text())["sequences"]["gaussians"]["frames"][0]
    web = load_gaussians(frame, up="y")  # the page's frame is the internal one: no flip
    assert len(web) == 150
    kept = load_gaussians(src).data[50:]
    order = torch.argsort(kept[:, 0])
    web_sorted = web.data[torch.argsort(web.data[:, 0])]
    assert torch.allclose(web_sorted[:, :3], kept[order, :3], atol=1e-6)  # positions: same world, same up


def test_reduce_frame_cap_keeps_largest():
    g = blob(100)
    g.data[:, 4:7] = torch.linspace(0.01, 0.1, 100)[:, None]
    small = reduce_frame(g, 0.0, max_splats=10)
    assert len(small) == 10 and small.data[:, 4].min() >= g.data[90, 4] - 1e-7


def test_over_budget_is_one_line_and_writes_nothing(tmp_path):
    out = make_sequence(tmp_path / "out", 3)
    site = tmp_path / "site"
    code, stdout, err = run_cli("export", out, "--web", site, "--max-size", "1", "--quiet")
    assert_one_line_error(code, stdout, err, "--max-size 1 MB", "--max-splats")
    assert not site.exists()
    # A budget with room for 100 of the 300 Gaussians per frame: the cap the line names fits it.
    export_web(Source.open(out), site)
    page = sum(p.stat().st_size for p in site.rglob("*") if p.is_file() and p.suffix != ".splat")
    budget = str((page + 3 * 100 * 32) / 1e6)
    line = run_cli("export", out, "--web", site, "--max-size", budget, "-q")[2]
    fit = int(re.search(r"--max-splats (\d+) fits", line).group(1))
    assert 50 <= fit < 300, line
    code, stdout, err = run_cli("export", out, "--web", site, "--max-size", budget, "--max-splats", fit, "-q")
    assert code == 0, err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_replaces_an_earlier_export_but_not_other_folders(tmp_path):
    out = make_sequence(tmp_path / "out", 2)
    site = tmp_path / "site"
    assert run_cli("export", out, "--web", site, "-q")[0] == 0
    assert run_cli("export", out, "--web", site, "-q", "--max-splats", "10")[0] == 0
    assert json.loads((site / "sequence.json").read_text())["sequences"]["gaussians"]["splats"] == [10, 10]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert_one_line_error(*run_cli("export", out, "--web", mine, "-q"), "not empty")
    assert (mine / "notes.txt").read_text() == "keep me" and len(list(mine.iterdir())) == 1
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert_one_line_error(*run_cli("export", out, "--web", afile, "-q"), "not a folder")
    assert_one_line_error(*run_cli("export", out, "--web", afile / "sub", "-q"), "not a folder")


def test_nothing_to_show_is_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(*run_cli("export", empty, "--web", tmp_path / "s1", "-q"), "no .ply or .splat files")
    faint = tmp_path / "faint.ply"
    g = blob(10)
    g.data[:, 3] = 0.01
    save_gaussians(faint, g, min_opacity=None)
    assert_one_line_error(*run_cli("export", faint, "--web", tmp_path / "s2", "-q"), "no Gaussian has opacity")
    assert_one_line_error(*run_cli("export", faint, "-q"), "--web DIR or --format")
    assert_one_line_error(*run_cli("export", faint, "--format", "obj", "-q"), "splat or ply")
    assert not (tmp_path / "s2").exists()


@pytest.mark.parametrize("fmt", ["splat", "ply"])
@pytest.mark.parametrize("up", ["-y", "y"])
def test_format_export_keeps_recorded_up(tmp_path, fmt, up):
    out = tmp_path / "out"
    for t in range(2):
        write_frame(out, t, blob(seed=t), up=up)
    for j in range(4):
        write_frame(out, j, blob(seed=10 + j), up=up, subdir="gaussians_x3")
    write_manifest(out, {"fps": 12.0, "up": up, "frames": frame_entries(2, 12.0)})
    dest = tmp_path / "dest"
    code, stdout, err = run_cli("export", out, "--format", fmt, "-o", dest, "-q")
    assert code == 0, err
    assert f"exported 6 frames as .{fmt} (up {up})" in stdout
    files = sorted((dest / "gaussians").iterdir())
    assert [f.name for f in files] == [f"00000{i}.{fmt}" for i in range(2)]
    if fmt == "ply":
        assert read_gaussians(files[0]).up_source == "header" and read_gaussians(files[0]).up == up
    # Read back in the frame the manifest records: the same Gaussians as the source.
    seq = Sequence.open(dest)
    assert seq.up == up and seq.fps == 12.0 and len(seq) == 2
    src = Sequence.open(out)
    tol = 1e-6 if fmt == "ply" else 0.02  # .splat quantises colour, opacity and rotation to bytes
    assert torch.allclose(seq.load(1).data[:, :3], src.load(1).data[:, :3], atol=1e-6)
    assert torch.allclose(seq.load(1).data[:, 11:14], src.load(1).data[:, 11:14], atol=tol)
    x3 = Source.open(dest).sequences["gaussians_x3"]
    assert len(x3) == 4 and x3.fps == 36.0


def test_format_export_default_folder(tmp_path):
    src = tmp_path / "one.splat"
    save_gaussians(src, blob(30))
    code, stdout, err = run_cli("export", src, "--format", "ply", "-q")
    assert code == 0, err
    assert (tmp_path / "one_ply" / "gaussians" / "000000.ply").is_file()
    assert len(Gaussians(load_gaussians(tmp_path / "one_ply" / "gaussians" / "000000.ply").data)) == 30
