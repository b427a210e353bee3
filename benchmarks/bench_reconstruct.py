"""End-to-end `video2gs reconstruct` cost on this machine: seconds per output frame for each stage
and the peak RSS, for a short and a long synthetic video (peak memory must not grow with length).

    python benchmarks/bench_reconstruct.py                      # micro model, 5 s and 60 s clips
    python benchmarks/bench_reconstruct.py --config tiny --seconds 5

Each run is a separate process (peak RSS = that process's VmHWM via getrusage of the child).
Random weights: the numbers measure cost, not quality.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_video(path: Path, seconds: float, fps: int = 30, w: int = 640, h: int = 480) -> Path:
    import imageio_ffmpeg

    proc = subprocess.Popen(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
         "-s", f"{w}x{h}", "-r", str(fps), "-i", "-", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast",
         str(path)],
        stdin=subprocess.PIPE,
    )
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(int(seconds * fps)):
        frame = np.full((h, w, 3), 235, np.uint8)
        cx, cy = w / 2 + 80 * np.sin(i / 20), h / 2 + 40 * np.cos(i / 15)
        disk = (xx - cx) ** 2 + (yy - cy) ** 2 < 90**2
        frame[disk] = (40 + i % 200, 90, 200)
        proc.stdin.write(frame.tobytes())
    proc.stdin.close()
    proc.wait()
    return path


def run(video: Path, model: Path, out: Path, interpolate: bool, render: bool) -> dict:
    args = [sys.executable, "-m", "video2gs", "reconstruct", str(video), "-o", str(out), "--model", str(model),
            "--interp-model", str(model), "--views", "none", "--segment", "key", "--quiet",
            "--interpolate" if interpolate else "--no-interpolate", "--render" if render else "--no-render",
            "--render-size", "256"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(args, check=True)
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    m = json.loads((out / "manifest.json").read_text())
    return {"wall": wall, "peak_rss_mib": peak_kib / 1024, "rss_is_max_so_far": peak_kib == before, "manifest": m}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="micro", help="micro (video2gs.testing) or a named L4GM config (tiny, small)")
    ap.add_argument("--seconds", type=float, nargs="+", default=[5.0, 60.0])
    ap.add_argument("--interpolate", action="store_true", help="also run x3 interpolation (same random model)")
    ap.add_argument("--render", action="store_true", help="also render the videos (256 px)")
    a = ap.parse_args()

    from video2gs.testing import write_random_l4gm

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = write_random_l4gm(tmp / "model.safetensors", a.config)
        print(f"config {a.config}; synthetic 640x480 30 fps videos; CPU threads: default")
        print(f"{'input':>8} {'frames':>7} {'wall s':>8} {'peak RSS MiB':>13}  seconds per output frame by stage")
        for seconds in sorted(a.seconds):
            video = make_video(tmp / f"clip_{seconds:g}.mp4", seconds)
            r = run(video, model, tmp / f"out_{seconds:g}", a.interpolate, a.render)
            m = r["manifest"]
            n = len(m["frames"])
            per = {k: v / n for k, v in m["timings"].items() if k != "total"}
            stages = "  ".join(f"{k} {v:.3f}" for k, v in per.items())
            # ru_maxrss of children is the max over all children so far: runs go short -> long
            print(f"{seconds:>7g}s {n:>7d} {r['wall']:>8.1f} {r['peak_rss_mib']:>13.0f}  {stages}")


if __name__ == "__main__":
    main()
