"""Headless Chromium for checking and documenting the viewers (tests, README screenshots).

Drives the system's Chromium (Debian's ``chromium`` package) through Playwright's Python API with
``executable_path``, so no browser is ever downloaded. WebGL runs on SwiftShader (software), which
headless Chromium only allows with ``--enable-unsafe-swiftshader``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
    "--enable-webgl",
    "--no-sandbox",  # root in containers and CI
    "--disable-dev-shm-usage",
)


def chromium_path() -> str | None:
    """The Chromium executable ($VIDEO2GS_CHROMIUM, else the first of CHROMIUM_NAMES on PATH), or None."""
    explicit = os.environ.get("VIDEO2GS_CHROMIUM")
    if explicit:
        return explicit if os.path.isfile(explicit) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def missing_reason() -> str | None:
    """Why a headless-browser check cannot run here (None when it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if chromium_path() is None:
        return "Chromium is not installed (apt-get install chromium)"
    return None


class Page:
    """A browser page that records console errors and uncaught exceptions (``errors``)."""

    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda msg: self.errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))


@contextlib.contextmanager
def open_browser(width: int = 800, height: int = 600) -> Iterator:
    """Yield a function ``new_page() -> Page`` of a headless Chromium with a ``width`` x ``height``
    viewport at device pixel ratio 1; the browser is closed on exit."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        raise RuntimeError(missing_reason())
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, headless=True, args=list(CHROMIUM_FLAGS))
        try:
            context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
            yield lambda: Page(context.new_page())
        finally:
            browser.close()
