"""The run folder as a transaction: the journalled swap survives a crash at every step, and
`begin` decides fresh / resume / refuse as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from video2gs.errors import UserError
from video2gs.pipeline import run_folder
from video2gs.pipeline.run_folder import RECONSTRUCT_ENTRIES, begin, recover, swap_in
from video2gs.sequence import write_manifest


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _old_run(root: Path) -> None:
    write_manifest(root, {"kind": "reconstruct", "identity": {"input": "old"}, "progress": {"complete": True}})
    (root / "gaussians").mkdir(parents=True)
    (root / "gaussians" / "000000.ply").write_bytes(b"old frame")
    (root / "gaussians_x3").mkdir()
    (root / "gaussians_x3" / "000000.ply").write_bytes(b"old x3")
    (root / "notes.txt").write_text("the user's own file")


def _new_run(staging: Path) -> None:
    write_manifest(staging, {"kind": "reconstruct", "identity": {"input": "new"}, "progress": {"complete": True}})
    (staging / "gaussians").mkdir(parents=True)
    (staging / "gaussians" / "000000.ply").write_bytes(b"new frame")
    (staging / "work").mkdir()


def _expected_after(root: Path) -> dict[str, bytes]:
    return {"gaussians/000000.ply": b"new frame", "notes.txt": b"the user's own file",
            "manifest.json": (root / ".video2gs/staging-reconstruct/manifest.json").read_bytes()}


def test_swap_replaces_owned_entries_and_keeps_the_users_files(tmp_path):
    _old_run(tmp_path)
    staging = run_folder.staging_dir(tmp_path, "reconstruct")
    _new_run(staging)
    want = _expected_after(tmp_path)
    swap_in(tmp_path, staging, RECONSTRUCT_ENTRIES)
    assert tree(tmp_path) == want  # old x3 removed (the new run has none), private state gone
    assert not (tmp_path / ".video2gs").exists()


def _swap_with_crash(root: Path, monkeypatch, crash_at: int | None) -> int:
    """Run a swap that dies at rename number ``crash_at`` (None: never); returns the renames made."""
    _old_run(root)
    staging = run_folder.staging_dir(root, "reconstruct")
    _new_run(staging)
    real_rename = Path.rename
    calls = []

    def flaky(self, target):
        calls.append(self)
        if crash_at is not None and len(calls) == crash_at + 1:
            raise KeyboardInterrupt  # the process dies here
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", flaky)
    try:
        swap_in(root, staging, RECONSTRUCT_ENTRIES)
    except KeyboardInterrupt:
        pass
    finally:
        monkeypatch.setattr(Path, "rename", real_rename)
    return len(calls)


def test_a_swap_interrupted_at_any_rename_is_finished_by_recover(tmp_path, monkeypatch):
    renames = _swap_with_crash(tmp_path / "clean", monkeypatch, None)
    assert renames == 5  # 3 old entries aside, 2 new ones in
    for k in range(renames):
        root = tmp_path / f"crash{k}"
        _old_run(root)
        _new_run(run_folder.staging_dir(root, "reconstruct"))
        want = _expected_after(root)
        for p in list(root.rglob("*"))[::-1]:
            p.unlink() if p.is_file() else p.rmdir()
        _swap_with_crash(root, monkeypatch, k)
        assert (root / ".video2gs" / "swap.json").is_file(), f"crash at rename {k} left no journal"
        recover(root)
        assert tree(root) == want, f"crash at rename {k}"


def test_begin_fresh_then_refuses_an_occupied_folder(tmp_path):
    run = begin(tmp_path / "out", "reconstruct", {"input": "a"}, resume=False, overwrite=False)
    assert run.staging.is_dir() and not run.resumed
    _old_run(tmp_path / "taken")
    with pytest.raises(UserError, match="already holds a video2gs run"):
        begin(tmp_path / "taken", "reconstruct", {"input": "a"}, resume=False, overwrite=False)
    run = begin(tmp_path / "taken", "reconstruct", {"input": "a"}, resume=False, overwrite=True)
    assert (tmp_path / "taken" / "gaussians" / "000000.ply").read_bytes() == b"old frame"  # untouched until commit


def test_a_staging_folder_without_a_finished_stage_is_not_a_run(tmp_path):
    run = begin(tmp_path, "reconstruct", {"input": "a"}, resume=False, overwrite=False)
    run.save()  # started, nothing finished
    again = begin(tmp_path, "reconstruct", {"input": "b"}, resume=False, overwrite=False)
    assert not again.resumed
    resumed = begin(tmp_path, "reconstruct", {"input": "c"}, resume=True, overwrite=False)
    assert not resumed.resumed  # nothing to continue: started afresh, not refused


def test_an_unfinished_run_is_resumed_or_refused(tmp_path):
    run = begin(tmp_path, "reconstruct", {"input": "a", "fps": 15}, resume=False, overwrite=False)
    run.mark(prepared=True, chunks_done=2)
    with pytest.raises(UserError, match="--resume to continue"):
        begin(tmp_path, "reconstruct", {"input": "a", "fps": 15}, resume=False, overwrite=False)
    with pytest.raises(UserError, match="different fps"):
        begin(tmp_path, "reconstruct", {"input": "a", "fps": 10}, resume=True, overwrite=False)
    again = begin(tmp_path, "reconstruct", {"input": "a", "fps": 15}, resume=True, overwrite=False)
    assert again.resumed and again.progress["chunks_done"] == 2
    fresh = begin(tmp_path, "reconstruct", {"input": "a", "fps": 10}, resume=False, overwrite=True)
    assert not fresh.resumed and fresh.progress == {}


def test_resume_of_a_complete_run(tmp_path):
    _old_run(tmp_path)
    assert begin(tmp_path, "reconstruct", {"input": "old"}, resume=True, overwrite=False) is None
    with pytest.raises(UserError, match="different input"):
        begin(tmp_path, "reconstruct", {"input": "other"}, resume=True, overwrite=False)
