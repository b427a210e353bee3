"""The output folder model: opening sequences, manifests, atomic frames, resume, the example."""

from __future__ import annotations

import json

import pytest
import torch

from video2gs.commands.example import example_frame, example_object, write_example
from video2gs.errors import UserError
from video2gs.formats import save_gaussians
from video2gs.formats.ply import read_ply
from video2gs.gaussians import Gaussians
from video2gs.sequence import (
    DEFAULT_FPS,
    MANIFEST_SCHEMA,
    Sequence,
    complete_frames,
    frame_entries,
    natural_key,
    read_manifest,
    write_frame,
    write_manifest,
)


def frame_gaussians(t: int, n: int = 16) -> Gaussians:
    """A frame whose x coordinates encode its index t (so order can be checked)."""
    gen = torch.Generator().manual_seed(t)
    xyz = torch.rand(n, 3, generator=gen) * 0.5
    xyz[:, 0] = t / 100.0
    return Gaussians.from_fields(xyz, torch.full((n,), 0.5), torch.full((n, 3), 0.02), torch.randn(n, 4, generator=gen), torch.rand(n, 3, generator=gen))


def make_output(tmp_path, count=3, fps=12.0, up="-y"):
    out = tmp_path / "out"
    for t in range(count):
        write_frame(out, t, frame_gaussians(t), up=up)
    write_manifest(out, {"fps": fps, "up": up, "frames": frame_entries(count, fps)})
    return out


def test_output_folder(tmp_path):
    out = make_output(tmp_path, count=4, fps=12.0)
    seq = Sequence.open(out)
    assert (len(seq), seq.fps, seq.up, seq.kind) == (4, 12.0, "-y", "output")
    assert seq.duration == pytest.approx(4 / 12)
    for t in (2, 0, 3):  # random access, one frame at a time
        assert seq.load(t).xyz[0, 0].item() == pytest.approx(t / 100)
    assert [g.xyz[0, 0].item() for g in seq] == pytest.approx([0, 0.01, 0.02, 0.03])
    assert Sequence.open(out, fps=30).fps == 30


def test_manifest_is_stamped_and_checked(tmp_path):
    out = make_output(tmp_path)
    m = read_manifest(out)
    assert m["schema_version"] == MANIFEST_SCHEMA and m["tool"]["name"] == "video2gs"
    assert [f["file"] for f in m["frames"]] == ["gaussians/000000.ply", "gaussians/000001.ply", "gaussians/000002.ply"]
    assert m["frames"][1]["time"] == pytest.approx(1 / 12, abs=1e-6)
    assert read_manifest(tmp_path) is None
    (out / "manifest.json").write_text(json.dumps({**m, "schema_version": MANIFEST_SCHEMA + 1}))
    with pytest.raises(UserError, match="schema_version"):
        Sequence.open(out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match="manifest"):
        Sequence.open(out)


def test_manifest_listing_missing_frames(tmp_path):
    out = make_output(tmp_path, count=3)
    (out / "gaussians" / "000001.ply").unlink()
    with pytest.raises(UserError, match="1 are missing.*000001.ply"):
        Sequence.open(out)


def test_manifest_up_applies_to_files_without_comment(tmp_path):
    # A PLY written by another tool in L4GM's +Y-up frame; the manifest says so.
    out = tmp_path / "out"
    g = frame_gaussians(5)
    write_frame(out, 0, g, up="y")
    path = out / "gaussians" / "000000.ply"
    text = path.read_bytes().replace(b"comment video2gs up=y\n", b"")
    path.write_bytes(text)
    assert read_ply(path).up_source == "default"
    write_manifest(out, {"fps": 15, "up": "y", "frames": frame_entries(1, 15)})
    torch.testing.assert_close(Sequence.open(out).load(0).xyz, g.xyz, rtol=0, atol=0)


def test_folder_without_manifest_uses_gaussians_subfolder(tmp_path):
    out = make_output(tmp_path, count=2)
    (out / "manifest.json").unlink()
    seq = Sequence.open(out)
    assert (len(seq), seq.fps, seq.up) == (2, DEFAULT_FPS, None)


def test_plain_folder_natural_order(tmp_path):
    names = ["frame10.ply", "frame2.ply", "frame1.ply", "Frame3.ply"]
    for name in names:
        save_gaussians(tmp_path / name, frame_gaussians(int("".join(c for c in name if c.isdigit()))))
    (tmp_path / ".frame0.tmp.ply").write_bytes(b"partial")  # a temporary file is ignored
    (tmp_path / "notes.txt").write_text("ignored")
    seq = Sequence.open(tmp_path)
    assert seq.kind == "folder"
    assert [p.name for p in seq.files] == ["frame1.ply", "frame2.ply", "Frame3.ply", "frame10.ply"]
    assert [round(seq.load(i).xyz[0, 0].item() * 100) for i in range(len(seq))] == [1, 2, 3, 10]
    assert sorted(["a10", "a9", "a100"], key=natural_key) == ["a9", "a10", "a100"]


def test_single_file(tmp_path):
    save_gaussians(tmp_path / "one.splat", frame_gaussians(0))
    seq = Sequence.open(tmp_path / "one.splat", fps=24)
    assert (len(seq), seq.kind, seq.fps) == (1, "file", 24)
    assert len(seq.load(0)) == 16


def test_bad_inputs(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        Sequence.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no .ply"):
        Sequence.open(tmp_path / "empty")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(UserError, match="unsupported file type"):
        Sequence.open(tmp_path / "a.txt")
    with pytest.raises(UserError, match="fps"):
        Sequence.open(tmp_path / "empty", fps=0)


def test_complete_frames_for_resume(tmp_path):
    out = make_output(tmp_path, count=4)
    gdir = out / "gaussians"
    assert complete_frames(out) == [0, 1, 2, 3]
    data = (gdir / "000002.ply").read_bytes()
    (gdir / "000002.ply").write_bytes(data[:-10])  # damaged
    (gdir / ".000004.abc.ply").write_bytes(data)  # an unfinished temporary write
    (gdir / "extra.ply").write_bytes(data)  # not a frame name
    assert complete_frames(out) == [0, 1, 3]
    assert complete_frames(tmp_path / "nothing") == []


def test_write_frame_is_atomic(tmp_path):
    out = make_output(tmp_path, count=1)
    before = (out / "gaussians" / "000000.ply").read_bytes()
    bad = frame_gaussians(1)
    bad.data[0, 4] = -1.0
    with pytest.raises(UserError):
        write_frame(out, 0, bad)
    assert (out / "gaussians" / "000000.ply").read_bytes() == before
    assert [p.name for p in (out / "gaussians").iterdir()] == ["000000.ply"]


# -- the bundled example ----------------------------------------------------------------------------
def test_example_sequence(tmp_path):
    obj = example_object()
    assert len(obj) == 10_000
    # The bundled file is -Y up; read into the internal +Y-up frame, Spot stands on its four legs:
    # the lowest tenth of its height (the legs, at the corners of the body) spreads wide in x-z,
    # the highest tenth (head and horns) is compact. Upside down the two would swap.
    xyz = obj.xyz
    y = xyz[:, 1]
    span = float(y.max() - y.min())
    assert span > 0.9

    def footprint(mask):
        q = xyz[mask]
        return float((q[:, 0].max() - q[:, 0].min()) * (q[:, 2].max() - q[:, 2].min()))

    assert footprint(y < y.min() + 0.1 * span) > 3 * footprint(y > y.max() - 0.1 * span)
    manifest = write_example(tmp_path / "ex", frames=6, fps=10)
    seq = Sequence.open(tmp_path / "ex")
    assert (len(seq), seq.fps, seq.up, manifest["source"]["kind"]) == (6, 10, "-y", "example")
    frames = [seq.load(i) for i in range(len(seq))]
    for a, b in zip(frames, frames[1:]):
        assert (a.xyz - b.xyz).abs().max() > 1e-2  # consecutive frames actually differ
    torch.testing.assert_close(frames[2].xyz, example_frame(obj, 2, 6).xyz, atol=1e-6, rtol=0)
    # The loop is seamless: frame `count` would equal frame 0.
    torch.testing.assert_close(example_frame(obj, 6, 6).xyz, example_frame(obj, 0, 6).xyz, atol=1e-5, rtol=0)
    # Every frame stays inside the unit cube (the reconstruction's world).
    assert max(f.xyz.abs().max().item() for f in frames) < 1.0
    # Re-running over an earlier example is fine; a folder with other content is refused.
    write_example(tmp_path / "ex", frames=3)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        write_example(tmp_path / "other")


def test_subfolder_sequences_ignore_the_manifest_frame_list(tmp_path):
    out = make_output(tmp_path, count=3)
    for t in range(2):
        write_frame(out, t, frame_gaussians(50 + t), subdir="keys")
    keys = Sequence.open(out, subdir="keys")
    assert len(keys) == 2 and keys.load(1).xyz[0, 0].item() == pytest.approx(0.51)
    with pytest.raises(UserError, match="no such folder"):
        Sequence.open(out, subdir="gaussians_x3")
