"""`video2gs export --web` in a real headless Chromium: the page, served by a static file server on
a free localhost port, draws what our own renderer draws, and its controls work."""

from __future__ import annotations

import functools
import http.server
import io
import threading

import numpy as np
import pytest

from test_view_fixtures import front_render, iou, make_output, need_object, silhouette
from video2gs.viewer import browser
from video2gs.viewer.source import Source
from video2gs.viewer.web_export import export_web

pytestmark = pytest.mark.skipif(browser.missing_reason() is not None, reason=f"no headless browser: {browser.missing_reason()}")

BLACK = (0.0, 0.0, 0.0)
STEP = 40.0  # degrees between key frames in the test sequence


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    need_object()
    root = tmp_path_factory.mktemp("web")
    out = make_output(root / "out", frames=3, step=STEP)
    page_dir = root / "site"
    export_web(Source.open(out), page_dir, min_opacity=0.0, background="#000000")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(page_dir)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def page(site):
    with browser.open_browser(480, 420) as new_page:
        p = new_page()
        p.page.goto(site[1])
        wait_drawn(p, "gaussians", 0)
        yield p


def wait_drawn(p, sequence: str, frame: int) -> None:
    p.page.wait_for_function(
        "([s, f]) => window.video2gs && window.video2gs.drawn && window.video2gs.drawn.sequence === s && window.video2gs.drawn.frame === f",
        arg=[sequence, frame], timeout=60_000,
    )


def canvas_image(p) -> np.ndarray:
    """The 3D view as [H,W,3] float in [0,1] (the canvas only, not the control bar)."""
    from PIL import Image

    png = p.page.locator("#view canvas").screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32) / 255.0


def ours(out, subdir: str, index: int, shape) -> np.ndarray:
    from video2gs.sequence import Sequence

    return front_render(Sequence.open(out, subdir=subdir).load(index), shape[1], shape[0], background=BLACK)


def compare(shot: np.ndarray, reference: np.ndarray) -> tuple[float, np.ndarray]:
    """(silhouette IoU, |mean colour difference| [3] over the common silhouette)."""
    a, b = silhouette(shot, BLACK), silhouette(reference, BLACK)
    both = a & b
    return iou(a, b), np.abs(shot[both].mean(0) - reference[both].mean(0))


def test_first_frame_matches_our_render(site, page):
    assert page.page.evaluate("window.video2gs.loads") == 1, "frames must load on demand, not all at start"
    shot = canvas_image(page)
    score, colour = compare(shot, ours(site[0], "gaussians", 0, shot.shape))
    assert silhouette(shot, BLACK).mean() > 0.05, "the object is not on screen"
    assert score >= 0.85, f"silhouette IoU {score:.3f} against our render"
    assert colour.max() < 0.06, f"mean colour differs by {colour}"
    assert page.errors == []


def test_slider_steps_through_the_sequence(site, page):
    before = canvas_image(page)
    page.page.locator("#frame").fill("2")  # the range input, as a user drags it
    wait_drawn(page, "gaussians", 2)
    shot = canvas_image(page)
    score, _ = compare(shot, ours(site[0], "gaussians", 2, shot.shape))
    assert score >= 0.85, f"frame 2: IoU {score:.3f} against our render"
    assert iou(silhouette(before, BLACK), silhouette(shot, BLACK)) < 0.9, "the picture did not change"
    assert page.page.locator("#label").inner_text().startswith("3 / 3")
    assert page.errors == []


def test_x3_toggle_switches_sequence(site, page):
    page.page.locator("#frame").fill("1")
    wait_drawn(page, "gaussians", 1)
    key = canvas_image(page)
    page.page.locator("#x3").check()
    wait_drawn(page, "gaussians_x3", 3)  # the same time, t = 1 / fps, in the 3x sequence
    shot = canvas_image(page)
    score, _ = compare(shot, ours(site[0], "gaussians_x3", 3, shot.shape))
    assert score >= 0.85, f"x3 frame 3: IoU {score:.3f} against our render"
    # The test's x3 sequence turns the other way, so the same time looks different.
    assert iou(silhouette(key, BLACK), silhouette(shot, BLACK)) < 0.9
    assert page.errors == []


def test_play_and_background(page):
    page.page.locator("#x3").uncheck()
    wait_drawn(page, "gaussians", 1)
    page.page.locator("#background").fill("#ffffff")
    page.page.wait_for_timeout(300)
    assert canvas_image(page)[:4, :4].min() > 0.95, "the background control did not apply"
    page.page.locator("#speed").select_option("4")
    page.page.locator("#play").click()
    assert page.page.locator("#play").inner_text() == "Pause"
    page.page.wait_for_function("window.video2gs.frame !== 1", timeout=30_000)
    page.page.locator("#play").click()
    assert page.errors == []
