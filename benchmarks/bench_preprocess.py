"""Preprocessing speed and memory: decode, each segmenter, crop (seconds per frame), and peak RSS
while decoding a short vs a long synthetic video (it must stay flat: decoding streams).

    .venv/bin/python benchmarks/bench_preprocess.py [--long-seconds 60] [--frames 10]

Numbers depend on the machine's load; treat them as provisional.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))

from video2gs.video.decode import ffmpeg_exe, open_source  # noqa: E402


def per_frame(fn, items) -> float:
    t0 = time.perf_counter()
    n = 0
    for x in items:
        fn(x)
        n += 1
    return (time.perf_counter() - t0) / max(1, n)


def bench_decode() -> None:
    print("decode (open = probe + timestamp scan; iterate = frames out of the pipe)")
    for name, fps in (("box.mp4", 15), ("tree.avi", 15), ("bigbuckbunny.mp4", 25)):
        path = DATA / "videos" / name
        if not path.is_file():
            print(f"  {name}: missing, skipped")
            continue
        t0 = time.perf_counter()
        src = open_source(path, fps=fps)
        t_open = time.perf_counter() - t0
        t0 = time.perf_counter()
        n = sum(1 for _ in src)
        t_iter = time.perf_counter() - t0
        scanned = src.info.frame_count or n
        print(f"  {name:18s} {src.info.width}x{src.info.height} scanned {scanned:4d} out {n:4d}: "
              f"open {t_open:.2f} s ({1e3 * t_open / scanned:.2f} ms/source frame), "
              f"iterate {1e3 * t_iter / n:.2f} ms/output frame")


def bench_segment_and_crop(n_frames: int) -> None:
    import numpy as np

    from video2gs.preprocess import ClipCrop, make_segmenter, mask_box

    path = DATA / "videos" / "bigbuckbunny.mp4"
    if not path.is_file():
        print("segment: bigbuckbunny.mp4 missing, skipped")
        return
    frames = [f.image for f in open_source(path, fps=5, max_frames=n_frames)]
    print(f"segment ({len(frames)} frames of 1280x720)")
    rgba = [np.concatenate([f, np.full(f.shape[:2] + (1,), 255, np.uint8)], axis=2) for f in frames]
    methods = [("key", {}, frames), ("none", {}, frames), ("alpha", {"has_alpha": True}, rgba)]
    u2netp = DATA / "u2netp" / "u2netp.onnx"
    if u2netp.is_file():
        methods.append(("rembg", {"model": u2netp}, frames))
    masks = None
    for method, kw, imgs in methods:
        t0 = time.perf_counter()
        try:
            seg = make_segmenter(method, **kw)
        except Exception as exc:  # noqa: BLE001 - report and go on
            print(f"  {method}: unavailable ({exc})")
            continue
        t_make = time.perf_counter() - t0
        spf = per_frame(seg, imgs)
        print(f"  {method:6s} {1e3 * spf:8.1f} ms/frame (setup {t_make:.2f} s) {seg.description}")
        if method == "rembg" or masks is None:
            masks = [seg(f) for f in frames]
    boxes = [mask_box(m) for m in masks]
    crop = ClipCrop.from_boxes(boxes, (1280, 720))
    spf = per_frame(lambda fm: crop.apply(*fm), list(zip(frames, masks)))
    print(f"crop     {1e3 * spf:8.2f} ms/frame (1280x720 -> 256x256 RGBA)")


RSS_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
from video2gs.video.decode import open_source
src = open_source(sys.argv[1], fps=30)
t0 = time.perf_counter(); n = sum(1 for _ in src); dt = time.perf_counter() - t0
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec.
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"frames": n, "seconds": dt,
                  "py_peak_mb": hwm / 1024,
                  "ffmpeg_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def bench_memory(long_seconds: float) -> None:
    print("peak RSS while decoding synthetic 1280x720 30 fps videos (fresh process each)")
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in (2.0, long_seconds):
            path = Path(tmp) / f"v{seconds:g}.mp4"
            subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                            "testsrc2=size=1280x720:rate=30", "-t", str(seconds), "-c:v", "libx264", "-preset",
                            "ultrafast", "-pix_fmt", "yuv420p", "-y", str(path)], check=True)
            out = subprocess.run([sys.executable, "-c", RSS_CHILD, str(path), str(REPO)], capture_output=True,
                                 text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"  {seconds:5.0f} s ({r['frames']:5d} frames): python peak {r['py_peak_mb']:.0f} MB, "
                  f"ffmpeg peak {r['ffmpeg_peak_mb']:.0f} MB, {1e3 * r['seconds'] / r['frames']:.2f} ms/frame")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--long-seconds", type=float, default=60.0)
    ap.add_argument("--frames", type=int, default=10, help="frames for the segmenter timings")
    args = ap.parse_args()
    bench_decode()
    bench_segment_and_crop(args.frames)
    bench_memory(args.long_seconds)


if __name__ == "__main__":
    main()
