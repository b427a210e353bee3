"""Safe file writing: nothing a user already has is damaged by a failed or interrupted run.

Every output is written to a temporary name in the destination folder and renamed into place
only once complete (rename is atomic on POSIX within one file system).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path

from video2gs.errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; finished outputs get the permissions a plain open() would give.
_FILE_MODE = 0o666 & ~_umask()


def ensure_writable_dir(path: Path, what: str = "output folder") -> Path:
    """Create ``path`` (and parents) if needed; raise :class:`UserError` if it is a file or unwritable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {what} {path}: {exc.strerror or exc}") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path} is not writable")
    return path


@contextlib.contextmanager
def atomic_path(dest: Path, suffix: str | None = None):
    """Yield a temporary path next to ``dest``; on success rename it to ``dest``, else delete it.

    ``suffix`` defaults to dest's own suffix (writers such as ffmpeg pick the format from it).
    """
    dest = Path(dest)
    ensure_writable_dir(dest.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=dest.suffix if suffix is None else suffix, dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _FILE_MODE)
        os.replace(tmp_path, dest)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if exc.errno == errno.ENOSPC:
            raise UserError(f"no space left on the device while writing {dest}") from exc
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise UserError(f"cannot write {dest}: {exc.strerror}") from exc
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def write_bytes_atomic(dest: Path, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(dest: Path, obj) -> None:
    write_bytes_atomic(dest, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())
