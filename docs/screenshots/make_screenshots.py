"""Screenshots of both viewers in headless Chromium (what README.md shows).

    python docs/screenshots/make_screenshots.py PATH OUT_PREFIX [--frame N] [--x3] [--demo]

PATH is anything `video2gs view` accepts; with --demo it is first filled with a reconstructed-like
output folder: `video2gs example` (Spot hopping and turning, 24 frames), its 70-frame gaussians_x3/
and input/*.png (our front renders, RGBA, as the model's input would look). Writes OUT_PREFIX-web.png (the `export --web` page, served
by a local static file server) and OUT_PREFIX-view.png (the `view` viser server), both on free
localhost ports that are closed again at the end.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import tempfile
import threading
import time
from pathlib import Path

from video2gs.viewer.browser import open_browser
from video2gs.viewer.source import Source
from video2gs.viewer.viser_app import SequenceViewer
from video2gs.viewer.web_export import export_web


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def web_shot(source: Source, png: Path, frame: int, x3: bool, size=(800, 480)) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        export_web(source, site, min_opacity=0.0, max_mb=500)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with open_browser(*size) as new_page:
                p = new_page()
                p.page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
                p.page.wait_for_function("window.video2gs && window.video2gs.drawn", timeout=60_000)
                if x3:
                    p.page.locator("#x3").check()
                if frame:
                    p.page.locator("#frame").fill(str(frame))
                p.page.wait_for_function(f"window.video2gs.drawn && window.video2gs.frame === {frame}", timeout=60_000)
                p.page.wait_for_timeout(800)
                p.page.screenshot(path=str(png))
                print(png, "console errors:", p.errors)
        finally:
            server.shutdown()
            server.server_close()


def view_shot(source: Source, png: Path, frame: int, x3: bool, size=(1000, 480)) -> None:
    viewer = SequenceViewer(source, port=0).start()
    try:
        if x3:
            viewer.set_sequence("gaussians_x3")
        viewer.show(viewer.sequence, frame)
        with open_browser(*size) as new_page:
            p = new_page()
            p.page.goto(viewer.url)
            p.page.wait_for_selector("canvas", timeout=60_000)
            close = p.page.locator(".mantine-Notification-root button")  # "software WebGL" notice
            close.first.wait_for(timeout=30_000)
            close.first.click()
            time.sleep(3)
            p.page.screenshot(path=str(png))
            print(png, "console errors:", p.errors)
    finally:
        viewer.stop()


def make_demo(out: Path) -> None:
    import cv2
    import numpy as np
    import torch

    from video2gs.camera import Cameras
    from video2gs.commands.example import example_frame, example_object, write_example
    from video2gs.render import render
    from video2gs.sequence import frame_entries, read_manifest, write_frame, write_manifest

    manifest = write_example(out, frames=24)
    obj = example_object()
    n3 = 23 * 3 + 1
    for j in range(n3):  # phase j/72 = key frame j/3: the same motion at three times the rate
        write_frame(out, j, example_frame(obj, j, 72), subdir="gaussians_x3")
    (out / "input").mkdir(exist_ok=True)
    for i in range(24):
        with torch.no_grad():
            r = render(example_frame(obj, i, 24), Cameras.orbit([0.0]), 256, 256, backend="numba")
        rgba = np.concatenate([r.rgb[0].numpy(), r.alpha[0].numpy()], -1)
        cv2.imwrite(str(out / "input" / f"{i:06d}.png"), cv2.cvtColor((rgba * 255).round().astype(np.uint8), cv2.COLOR_RGBA2BGRA))
    manifest = read_manifest(out)
    manifest["x3"] = {"fps": manifest["fps"] * 3, "frames": frame_entries(n3, manifest["fps"] * 3, "gaussians_x3")}
    write_manifest(out, manifest)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("prefix")
    ap.add_argument("--frame", type=int, default=0)
    ap.add_argument("--x3", action="store_true")
    ap.add_argument("--only", choices=("web", "view"))
    ap.add_argument("--demo", action="store_true")
    a = ap.parse_args()
    if a.demo:
        make_demo(Path(a.path))
    source = Source.open(a.path)
    if a.only != "view":
        web_shot(source, Path(f"{a.prefix}-web.png"), a.frame, a.x3)
    if a.only != "web":
        view_shot(source, Path(f"{a.prefix}-view.png"), a.frame, a.x3)


if __name__ == "__main__":
    main()
