"""A built, non-editable install of video2gs carries the web page and its vendored libraries."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "video2gs" / "viewer" / "web"


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="building the wheel offline needs setuptools in this environment")
def test_wheel_contains_the_web_assets(tmp_path):
    # Build from a copy, so the build leaves nothing in the checkout.
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("video2gs", "models"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(src)],
        check=True, capture_output=True,
    )
    wheel = next(tmp_path.glob("video2gs-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"video2gs/viewer/web/{p.relative_to(WEB).as_posix()}" for p in WEB.rglob("*") if p.is_file()}
    assert {"video2gs/viewer/web/index.html", "video2gs/viewer/web/vendor/spark/spark.module.min.js"} <= expected
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
