"""``video2gs export --web DIR``: a static folder that plays the sequence in a browser with Spark.

The folder holds the page (``index.html``, ``viewer.js``), the pinned Spark and three.js files
(``vendor/``, see ``vendor/VENDOR.md``), ``sequence.json`` and one ``.splat`` per frame
(:mod:`video2gs.formats.web`). Nothing is fetched from anywhere else, so it works from any static
file server (``python -m http.server -d DIR``); browsers refuse module scripts and ``fetch`` on
``file://``, so opening index.html directly does not work.

The export is built in a hidden temporary folder beside DIR and renamed into place only when
complete; a DIR holding an earlier export is replaced, any other non-empty DIR is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

from video2gs.errors import UserError
from video2gs.fileio import ensure_writable_dir, write_json_atomic
from video2gs.formats.web import BYTES_PER_SPLAT, DEFAULT_WEB_MIN_OPACITY, WEB_SCHEMA, frame_path, reduce_frame, web_manifest, write_web_frame
from video2gs.viewer.source import Source

WEB_MANIFEST = "sequence.json"
PAGE_FILES = ("index.html", "viewer.js")
VENDOR_DIR = "vendor"
MB = 1_000_000


@contextlib.contextmanager
def staged_dir(out: Path, is_ours: Callable[[Path], bool], what: str) -> Iterator[Path]:
    """Yield an empty hidden folder beside ``out``; on success it replaces ``out``, else it is removed.

    ``out`` may be missing, empty, or something ``is_ours`` recognises (an earlier export, replaced
    only after the new one is complete); anything else is a UserError, so nothing of the user's is lost.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{what} {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not is_ours(out):
        raise UserError(f"{what} {out} is not empty and holds no earlier export; choose a new or empty folder")
    parent = ensure_writable_dir(out.parent if str(out.parent) else Path("."), f"parent of the {what}")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    except OSError as exc:
        raise UserError(f"cannot write the {what} {out}: {exc.strerror or exc}") from exc
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if out.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot write the {what} {out}: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def is_web_export(folder: Path) -> bool:
    """True if ``folder`` holds a page written by :func:`export_web`."""
    try:
        return json.loads((folder / WEB_MANIFEST).read_text(encoding="utf-8")).get("schema") == WEB_SCHEMA
    except (OSError, ValueError, AttributeError):
        return False


def copy_page(dest: Path) -> int:
    """Copy the page and the vendored libraries into ``dest``; returns the bytes copied."""
    web = resources.files("video2gs.viewer").joinpath("web")
    with resources.as_file(web) as src:
        for name in PAGE_FILES:
            shutil.copy2(src / name, dest / name)
        shutil.copytree(src / VENDOR_DIR, dest / VENDOR_DIR)
    return sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())


def over_budget(frame_bytes: int, done: int, total: int, page_bytes: int, max_mb: float) -> str:
    """The one line for an export over budget: the size it would reach and a per-frame cap that fits."""
    estimate = page_bytes + frame_bytes / done * total
    fit = int((max_mb * MB - page_bytes - 1024 - 64 * total) / (total * BYTES_PER_SPLAT))  # room left for sequence.json
    cap = f"--max-splats {fit}" if fit >= 1 else "--max-splats"
    return (
        f"the web export would take about {estimate / MB:.0f} MB for {total} frames, over --max-size {max_mb:g} MB; "
        f"raise --max-size, raise --min-opacity or cap the frames ({cap} fits)"
    )


def export_web(
    source: Source,
    out: Path,
    *,
    max_mb: float = 100.0,
    min_opacity: float = DEFAULT_WEB_MIN_OPACITY,
    max_splats: int | None = None,
    background: str = "#ffffff",
    stage: Callable[[str, int], contextlib.AbstractContextManager] | None = None,
) -> dict:
    """Write the page for every sequence of ``source`` into ``out``; returns sequence.json's content
    plus ``bytes`` (the folder's size).

    Each frame is reduced by :func:`video2gs.formats.web.reduce_frame`. When the folder would exceed
    ``max_mb`` megabytes (10^6 B) the export stops with one UserError line and ``out`` is untouched.
    ``stage(name, total)`` is a progress context (``Reporter.stage``) or None.
    """
    budget = max_mb * MB
    total_frames = sum(len(s) for s in source.sequences.values())
    with staged_dir(out, is_web_export, "web export folder") as tmp:
        used = page_bytes = copy_page(tmp)
        done = 0
        sequences = {}
        for name, seq in source.sequences.items():
            frames, splats = [], []
            with (stage(name, len(seq)) if stage else contextlib.nullcontext()) as bar:
                for i in range(len(seq)):
                    g = reduce_frame(seq.load(i), min_opacity, max_splats)
                    if len(g) == 0:
                        raise UserError(f"{seq.files[i]}: no Gaussian has opacity >= {min_opacity:g} (lower --min-opacity)")
                    rel = frame_path(name, i)
                    used += write_web_frame(tmp / rel, g)
                    done += 1
                    if used > budget:
                        raise UserError(over_budget(used - page_bytes, done, total_frames, page_bytes, max_mb))
                    frames.append(rel)
                    splats.append(len(g))
                    if bar is not None:
                        bar.advance()
            sequences[name] = {"fps": seq.fps, "frames": frames, "splats": splats}
        manifest = web_manifest(sequences, title=source.path.name or str(source.path), background=background)
        write_json_atomic(tmp / WEB_MANIFEST, manifest)
        used += (tmp / WEB_MANIFEST).stat().st_size
        if used > budget:
            raise UserError(over_budget(used - page_bytes, done, total_frames, page_bytes, max_mb))
    return {**manifest, "bytes": used}
