"""The output folder as a sequence of Gaussian frames (DESIGN.md, "The output folder").

Reading: :meth:`Sequence.open` accepts

* an output folder ``OUT/`` with ``manifest.json`` and ``gaussians/000000.ply …``,
* a plain folder of ``.ply`` (or ``.splat``) files, in natural order (frame2 < frame10),
* a single ``.ply`` / ``.splat`` file (a one-frame sequence).

Frames load one at a time (:meth:`Sequence.load`); nothing holds the whole sequence.

Writing (used by ``reconstruct``): :func:`write_manifest` / :func:`read_manifest`,
:func:`write_frame` (atomic per-frame PLY), :func:`complete_frames` (for ``--resume``).

Manifest keys this module defines and reads (everything else is the writer's business)::

    schema_version  int, MANIFEST_SCHEMA
    tool            {"name": "video2gs", "version": ...}
    fps             output frames per second of gaussians/
    up              frame of the PLY files: "-y" (viewer frame) or "y" (L4GM's +Y-up frame)
    frames          [{"index": i, "time": seconds, "file": "gaussians/000000.ply"}, ...]
    x3              {"fps": ..., "frames": [...]} of gaussians_x3/, when interpolated
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from video2gs import __version__
from video2gs.errors import UserError
from video2gs.fileio import ensure_writable_dir, write_json_atomic
from video2gs.formats import EXPORT_UP, FOREIGN_UP, SUFFIXES, GaussianFile, check_up, read_gaussians, write_ply
from video2gs.formats.ply import ply_is_complete
from video2gs.gaussians import PRUNE_OPACITY, Gaussians

MANIFEST = "manifest.json"
MANIFEST_SCHEMA = 1
GAUSSIANS_DIR = "gaussians"
X3_DIR = "gaussians_x3"  # the x3 interpolated sequence; its fps is the manifest's x3.fps
DEFAULT_FPS = 15.0  # L4GM's output rate for 30 fps input
_FRAME_FILE = re.compile(r"^(\d{6})\.ply$")


def frame_name(index: int) -> str:
    """File name of frame ``index``: 000000.ply."""
    return f"{index:06d}.ply"


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers by value: frame2 < frame10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


# -- manifest --------------------------------------------------------------------------------------
def read_manifest(folder: str | Path) -> dict | None:
    """The manifest of ``folder`` as a dict, or None if there is none. UserError if unreadable."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read the manifest ({exc})") from exc
    if not isinstance(manifest, dict):
        raise UserError(f"{path}: the manifest is not a JSON object")
    version = manifest.get("schema_version")
    if not isinstance(version, int) or version > MANIFEST_SCHEMA:
        raise UserError(
            f"{path}: manifest schema_version {version!r} is not supported (this video2gs reads up to {MANIFEST_SCHEMA})",
            hint="upgrade video2gs",
        )
    return manifest


def write_manifest(folder: str | Path, manifest: dict) -> Path:
    """Write ``folder/manifest.json`` atomically, stamping schema_version and tool."""
    folder = ensure_writable_dir(Path(folder))
    out = {"schema_version": MANIFEST_SCHEMA, "tool": {"name": "video2gs", "version": __version__}}
    out.update({k: v for k, v in manifest.items() if k not in out})
    if "up" in out:
        out["up"] = check_up(out["up"], what="manifest up")
    path = folder / MANIFEST
    write_json_atomic(path, out)
    return path


def frame_entries(count: int, fps: float, subdir: str = GAUSSIANS_DIR) -> list[dict]:
    """The manifest's ``frames`` list for ``count`` frames at ``fps``."""
    return [{"index": i, "time": round(i / fps, 6), "file": f"{subdir}/{frame_name(i)}"} for i in range(count)]


# -- frames ----------------------------------------------------------------------------------------
def write_frame(
    folder: str | Path,
    index: int,
    gaussians: Gaussians,
    *,
    up: str = EXPORT_UP,
    min_opacity: float | None = PRUNE_OPACITY,
    subdir: str = GAUSSIANS_DIR,
) -> Path:
    """Write frame ``index`` [N,14] (internal frame) to ``folder/subdir/000000.ply`` atomically."""
    path = Path(folder) / subdir / frame_name(index)
    write_ply(path, gaussians, up=up, min_opacity=min_opacity)
    return path


def complete_frames(folder: str | Path, subdir: str = GAUSSIANS_DIR) -> list[int]:
    """Sorted indices of the frames in ``folder/subdir`` that are complete PLYs.

    Writes are atomic, so a frame file exists only once it is whole; the header/size check also
    rejects files damaged by other means. Temporary files (hidden names) are ignored.
    """
    directory = Path(folder) / subdir
    if not directory.is_dir():
        return []
    done = []
    for path in directory.iterdir():
        m = _FRAME_FILE.match(path.name)
        if m and path.is_file() and ply_is_complete(path):
            done.append(int(m.group(1)))
    return sorted(done)


# -- reading a sequence ----------------------------------------------------------------------------
def _manifest_fps(manifest: dict | None, subdir: str) -> float | None:
    """The playback rate the manifest records for ``subdir`` (gaussians/ or gaussians_x3/)."""
    if manifest is None:
        return None
    if subdir == X3_DIR:
        x3 = manifest.get("x3") or {}
        return float(x3["fps"]) if x3.get("fps") else (float(manifest["fps"]) * 3 if manifest.get("fps") else None)
    return float(manifest["fps"]) if manifest.get("fps") else None


def _gaussian_files(folder: Path) -> list[Path]:
    files = [
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUFFIXES
    ]
    plys = [p for p in files if p.suffix.lower() == ".ply"]
    # A folder holding both kinds is taken as a PLY sequence (the .splat files are likely exports).
    return sorted(plys or files, key=lambda p: natural_key(p.name))


@dataclass
class Sequence:
    """Frames of Gaussians on disk, loaded one at a time.

    files: one path per frame, in playback order. fps: playback rate. up: the frame convention
    recorded by the manifest (None when there is none; files then speak for themselves or are
    taken as −Y up). kind: 'output' (a video2gs output folder), 'folder' or 'file'.
    """

    root: Path
    files: list[Path]
    fps: float
    kind: str
    up: str | None = None
    manifest: dict | None = field(default=None, repr=False)
    subdir: str | None = None  # for kind 'output': which sequence of the folder (gaussians, gaussians_x3)

    @classmethod
    def open(cls, path: str | Path, *, fps: float | None = None, subdir: str = GAUSSIANS_DIR) -> "Sequence":
        """Open an output folder, a plain folder of PLYs, or one .ply/.splat file.

        fps: overrides the manifest's output fps (default :data:`DEFAULT_FPS` without one).
        """
        path = Path(path)
        if fps is not None and not fps > 0:
            raise UserError(f"fps must be positive, got {fps}")
        if not path.exists():
            raise UserError(f"{path}: no such file or folder")
        if path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                raise UserError(f"{path}: unsupported file type '{path.suffix}' (expected .ply, .splat or a folder)")
            return cls(path, [path], float(fps or DEFAULT_FPS), "file")

        manifest = read_manifest(path)
        if manifest is None and path.name in (GAUSSIANS_DIR, X3_DIR) and read_manifest(path.parent) is not None:
            # OUT/gaussians or OUT/gaussians_x3 given directly: it is that sequence of OUT.
            return cls.open(path.parent, fps=fps, subdir=path.name)
        up = None
        if manifest is not None and manifest.get("up") is not None:
            up = check_up(manifest["up"], what=f"{path / MANIFEST}: up")
        sub = path / subdir
        if subdir != GAUSSIANS_DIR and not sub.is_dir():
            raise UserError(f"{sub}: no such folder")
        # The manifest's frame list describes gaussians/ only; other subfolders are listed.
        if manifest is not None and manifest.get("frames") and subdir == GAUSSIANS_DIR:
            files = cls._manifest_files(path, manifest)
            kind = "output"
        elif sub.is_dir():
            files, kind = _gaussian_files(sub), "output"
        else:
            files, kind = _gaussian_files(path), "folder"
        if not files:
            where = sub if sub.is_dir() else path
            raise UserError(f"{where}: no .ply or .splat files found")
        if fps is None:
            fps = _manifest_fps(manifest, subdir) or DEFAULT_FPS
        return cls(path, files, float(fps), kind, up, manifest, subdir if kind == "output" else None)

    @staticmethod
    def _manifest_files(root: Path, manifest: dict) -> list[Path]:
        try:
            entries = sorted(manifest["frames"], key=lambda e: int(e["index"]))
            files = [root / str(e["file"]) for e in entries]
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{root / MANIFEST}: malformed 'frames' list ({exc})") from exc
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise UserError(
                f"{root / MANIFEST}: lists {len(files)} frames but {len(missing)} are missing, first {missing[0]}",
                hint="was the run interrupted? re-run it with --resume",
            )
        return files

    def __len__(self) -> int:
        return len(self.files)

    @property
    def duration(self) -> float:
        """Seconds of playback: frames / fps."""
        return len(self) / self.fps

    def read(self, index: int, *, up: str | None = None, sh: str = "drop") -> GaussianFile:
        """Frame ``index`` with its file details (frame convention, SH).

        up: force the files' frame; by default a file's own header decides, then the manifest,
        then −Y up.
        """
        return read_gaussians(self.files[index], up=up, default_up=self.up or FOREIGN_UP, sh=sh)

    def load(self, index: int, *, up: str | None = None) -> Gaussians:
        """Frame ``index`` as Gaussians [N,14] in the internal +Y-up frame (validated)."""
        return self.read(index, up=up).gaussians

    def __iter__(self) -> Iterator[Gaussians]:
        for i in range(len(self)):
            yield self.load(i)
