"""The output folder as a transaction: validate -> build beside -> swap in; resume state.

A run never writes into the results a user already has. Everything a run makes goes into a
staging folder inside OUT; only when the run has finished is it swapped in (a journal makes the
swap restartable), so a failed, interrupted or killed run leaves the previous results byte for
byte as they were::

    OUT/
      manifest.json input/ views/ gaussians/ gaussians_x3/ videos/   the finished run (committed)
      .video2gs/
        staging-reconstruct/   the run being built: the same layout + manifest.json with
                               "progress", and work/ (masks, hand-off state)
        staging-interpolate/   `video2gs interpolate` of a finished run: gaussians_x3/, videos/*_x3
        swap.json              journal while a staging folder is being swapped in
        old/                   the replaced entries while swapping

A staging folder holding no finished stage is not a run: a new run simply replaces it and
``--resume`` starts it again. One with finished stages is continued by ``--resume`` (with the same
result options) or discarded by ``--overwrite``; a plain rerun is refused so no work is lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from video2gs.errors import Interrupted, UserError
from video2gs.fileio import ensure_writable_dir, write_json_atomic
from video2gs.sequence import GAUSSIANS_DIR, MANIFEST, X3_DIR, read_manifest, write_manifest

INPUT_DIR, VIEWS_DIR, VIDEOS_DIR = "input", "views", "videos"
STATE_DIR = ".video2gs"
WORK_DIR = "work"
_LEGACY_WORK = ".work"  # where video2gs 0.1 kept its hand-off state
# What a reconstruction owns at the top of OUT (replaced as a whole by a new reconstruction).
RECONSTRUCT_ENTRIES = (MANIFEST, INPUT_DIR, VIEWS_DIR, GAUSSIANS_DIR, X3_DIR, VIDEOS_DIR, _LEGACY_WORK)
# What `video2gs interpolate` replaces.
X3_VIDEOS = (f"{VIDEOS_DIR}/orbit_x3.mp4", f"{VIDEOS_DIR}/fixed_x3.mp4")
INTERPOLATE_ENTRIES = (MANIFEST, X3_DIR, *X3_VIDEOS)
STAGES = ("prepared", "views", "reconstructed", "interpolated", "rendered")


@dataclass
class RunFolder:
    """One run being built. ``root`` = OUT; ``staging`` = where this run writes; ``source`` = where it
    reads earlier results (the staging folder itself for ``reconstruct``, OUT for ``interpolate``)."""

    root: Path
    kind: str  # "reconstruct" | "interpolate"
    manifest: dict = field(default_factory=dict)
    resumed: bool = False

    @property
    def staging(self) -> Path:
        return staging_dir(self.root, self.kind)

    @property
    def source(self) -> Path:
        return self.staging if self.kind == "reconstruct" else self.root

    @property
    def work(self) -> Path:
        return self.staging / WORK_DIR

    @property
    def progress(self) -> dict:
        return self.manifest.setdefault("progress", {})

    def save(self) -> None:
        write_manifest(self.staging, self.manifest)

    def mark(self, **progress) -> None:
        """Record progress (e.g. ``prepared=True``, ``chunks_done=3``) durably."""
        self.progress.update(progress)
        self.save()

    def input_png(self, i: int) -> Path:
        return self.source / INPUT_DIR / f"{i:06d}.png"

    def finished(self) -> list[str]:
        return finished_stages(self.manifest)

    def describe_kept(self) -> str:
        """What an interrupted run keeps, for the one-line message."""
        p = self.progress
        done = self.finished()
        if not done and not p.get("chunks_done") and not p.get("pairs_done"):
            return "nothing was kept"
        parts = list(done)
        if p.get("chunks_done") and "reconstructed" not in done:
            parts.append(f"{p['chunks_done']} chunk(s) reconstructed")
        if p.get("pairs_done") and "interpolated" not in done:
            parts.append(f"{p['pairs_done']} pair(s) interpolated")
        return "kept " + ", ".join(parts)

    def commit(self) -> None:
        """Swap the finished staging folder into OUT (replacing what this kind of run owns)."""
        self.progress["complete"] = True
        self.save()
        entries = RECONSTRUCT_ENTRIES if self.kind == "reconstruct" else INTERPOLATE_ENTRIES
        swap_in(self.root, self.staging, entries)
        if self.kind == "reconstruct":
            # An interpolation staged against the replaced run no longer applies.
            shutil.rmtree(staging_dir(self.root, "interpolate"), ignore_errors=True)


def staging_dir(root: Path, kind: str) -> Path:
    return Path(root) / STATE_DIR / f"staging-{kind}"


def finished_stages(manifest: dict | None) -> list[str]:
    progress = (manifest or {}).get("progress") or {}
    return [s for s in STAGES if progress.get(s)]


# -- the swap ----------------------------------------------------------------------------------------
def _journal(root: Path) -> Path:
    return Path(root) / STATE_DIR / "swap.json"


def swap_in(root: Path, staging: Path, entries: tuple[str, ...]) -> None:
    """Replace ``root/e`` by ``staging/e`` for each entry (removing ``root/e`` where staging has none).

    Two phases, recorded in a journal so :func:`recover` can finish an interrupted swap: "aside"
    moves every old entry to ``.video2gs/old`` (until it ends, nothing new is in OUT, so whatever is
    still at ``OUT/e`` is old); "in" moves the staged entries into place (whatever is still staged
    is not in yet). The manifest goes last, so a committed manifest always describes whole files.
    """
    root = Path(root)
    ordered = sorted(entries, key=lambda e: e == MANIFEST)
    write_json_atomic(_journal(root), {"staging": str(Path(staging).relative_to(root)), "entries": ordered, "phase": "aside"})
    _finish_swap(root)


def _finish_swap(root: Path) -> None:
    journal = json.loads(_journal(root).read_text())
    staging = root / journal["staging"]
    old = root / STATE_DIR / "old"
    if journal["phase"] == "aside":
        for e in journal["entries"]:
            if (root / e).exists() or (root / e).is_symlink():
                (old / e).parent.mkdir(parents=True, exist_ok=True)
                (root / e).rename(old / e)
        journal["phase"] = "in"
        write_json_atomic(_journal(root), journal)
    for e in journal["entries"]:
        if (staging / e).exists():
            (root / e).parent.mkdir(parents=True, exist_ok=True)
            (staging / e).rename(root / e)
    _journal(root).unlink()
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        (root / STATE_DIR).rmdir()  # only when no other staged run is there
    except OSError:
        pass


def recover(root: Path) -> None:
    """Finish a swap that was interrupted (its journal is still there); no-op otherwise."""
    if _journal(root).is_file():
        _finish_swap(Path(root))


# -- opening a run -----------------------------------------------------------------------------------
def check_output(root: Path) -> Path:
    """OUT must be a folder or not exist yet; its parent must be writable (nothing is created)."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise UserError(f"output {root} exists and is not a folder")
    probe = root
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"output {root}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"output {root}: {probe} is not writable")
    return root


def occupied(root: Path, entries: tuple[str, ...] = RECONSTRUCT_ENTRIES) -> bool:
    return root.is_dir() and any((root / e).exists() for e in entries)


def begin(root: Path, kind: str, identity: dict, *, resume: bool, overwrite: bool) -> RunFolder | None:
    """Open the staging folder of a run of ``kind`` in OUT = ``root``.

    ``identity``: what must match for ``--resume`` (input, result options); compared key by key.
    Returns None when ``--resume`` finds the committed run already complete with the same identity.
    """
    root = check_output(root)
    if root.is_dir():
        recover(root)
    staging = staging_dir(root, kind)
    staged = read_manifest(staging) if staging.is_dir() else None
    # OUT is taken by any earlier reconstruction; for `interpolate`, by an earlier gaussians_x3/.
    taken = occupied(root, RECONSTRUCT_ENTRIES if kind == "reconstruct" else (X3_DIR,))
    if resume:
        if staged is not None and staged.get("kind") == kind:
            changed = _changed(staged.get("identity", {}), identity)
            if changed and finished_stages(staged):
                raise UserError(f"--resume: the unfinished run in {root} was made with different {', '.join(changed)}; "
                                "use the same options, or --overwrite to start again")
            if not changed:
                _remove_litter(staging)
                return RunFolder(root, kind, staged, resumed=True)
        if taken:
            committed = read_manifest(root) or {}
            recorded = committed.get("identity") if kind == "reconstruct" else (committed.get("x3") or {}).get("identity")
            if kind == "reconstruct" and not recorded:
                raise UserError(f"--resume: {root} holds a run of an older video2gs that cannot be continued; "
                                "pass --overwrite to replace it")
            changed = _changed(recorded or {}, identity)
            if changed:
                raise UserError(f"--resume: {root} holds a finished run made with different {', '.join(changed)}; "
                                "use the same options, or --overwrite to replace it")
            return None  # already complete: nothing to continue
    else:
        if staged is not None and finished_stages(staged) and not overwrite:
            raise UserError(
                f"{root} holds an unfinished run ({', '.join(finished_stages(staged))} done); "
                "pass --resume to continue it, or --overwrite to discard it and start again"
            )
        if taken and not overwrite:
            what = "a video2gs run" if kind == "reconstruct" else f"{root / X3_DIR}"
            raise UserError(f"{root} already holds {what} (pass --overwrite to replace it, or --resume to continue it)"
                            if kind == "reconstruct" else f"{what} exists (pass --overwrite to replace it)")
    if staging.exists():
        shutil.rmtree(staging)
    ensure_writable_dir(staging, "output folder")
    run = RunFolder(root, kind, {"kind": kind, "identity": identity, "progress": {}})
    return run


@contextlib.contextmanager
def guard(run: RunFolder, *, created_root: bool):
    """Around a run's stages: on Ctrl-C raise :class:`Interrupted` with the one line that says what was
    kept; on any failure :func:`abandon` what is not worth keeping."""
    try:
        yield
    except KeyboardInterrupt as exc:
        line = interrupted_line(run)
        abandon(run, created_root)
        raise Interrupted(line) from exc
    except BaseException:
        abandon(run, created_root)
        raise


def interrupted_line(run: RunFolder) -> str:
    if run.finished():
        kept = f"{run.describe_kept()} (unfinished, in {run.staging.relative_to(run.root)})"
    else:
        kept = "nothing was kept"
    previous = " the previous results are unchanged;" if occupied(run.root) else ""
    return f"interrupted:{previous} {kept}; run the same command with --resume to continue"


def abandon(run: RunFolder, created_root: bool) -> None:
    """After a failure: a staging folder with no finished stage is not a run, so remove it (and OUT
    itself when this run created it and it is left empty); one with finished stages stays for --resume."""
    if run.finished() or run.progress.get("chunks_done") or run.progress.get("pairs_done"):
        return
    shutil.rmtree(run.staging, ignore_errors=True)
    for folder in (run.root / STATE_DIR, run.root) if created_root else (run.root / STATE_DIR,):
        try:
            folder.rmdir()  # only when empty
        except OSError:
            pass


def _remove_litter(folder: Path) -> None:
    """Delete the hidden temporary files a killed process left (atomic writes use ``.name.XXXX``)."""
    for p in folder.rglob(".*"):
        if p.is_file():
            p.unlink(missing_ok=True)


def _changed(old: dict, new: dict) -> list[str]:
    # A key the old record lacks is an option added since that run began (e.g. refine); options are
    # added off by default (0/False/None/""), so the old run matches while the new value is off.
    return [k for k in new if (old[k] != new[k] if k in old else bool(new[k]))]
