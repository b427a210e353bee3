"""Speed of the file formats, mp4 encoding and `video2gs render` on the bundled example.

    .venv/bin/python benchmarks/bench_formats.py [--n 65536] [--repeat 5] [--render-size 256]

Prints one line per measurement (best of --repeat). One L4GM frame is 65,536 Gaussians.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from video2gs.formats import load_gaussians, save_gaussians
from video2gs.gaussians import Gaussians
from video2gs.video.encode import Mp4Writer


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def frame(n: int) -> Gaussians:
    gen = torch.Generator().manual_seed(0)
    return Gaussians.from_fields(
        torch.rand(n, 3, generator=gen) * 2 - 1,
        0.01 + 0.98 * torch.rand(n, generator=gen),
        torch.exp(math.log(1e-3) + torch.rand(n, 3, generator=gen) * math.log(100)),
        torch.randn(n, 4, generator=gen),
        torch.rand(n, 3, generator=gen),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=65_536)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--render-size", type=int, default=256)
    args = ap.parse_args()
    g = frame(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for ext in ("ply", "splat"):
            path = tmp / f"f.{ext}"
            w = best_of(args.repeat, lambda: save_gaussians(path, g, min_opacity=None))
            r = best_of(args.repeat, lambda: load_gaussians(path))
            mb = path.stat().st_size / 1e6
            print(f"{ext:5s} N={args.n}: write {w * 1e3:7.1f} ms  read {r * 1e3:7.1f} ms  ({mb:.2f} MB)")

        for w_, h_ in ((512, 512), (2048, 512)):
            yy, xx = np.mgrid[0:h_, 0:w_]
            # smooth moving discs on white, like renders (pure noise would be a worst case)
            frames = [
                np.where((((xx - 8 * i - w_ / 3) ** 2 + (yy - h_ / 2) ** 2) < (h_ / 4) ** 2)[..., None],
                         np.stack([xx % 256, yy % 256, np.full_like(xx, 40)], -1), 255).astype(np.uint8)
                for i in range(30)
            ]

            def encode():
                with Mp4Writer(tmp / "v.mp4", fps=30) as video:
                    for f in frames:
                        video.write(f)

            t = best_of(max(1, args.repeat // 2), encode)
            print(f"mp4   {w_}x{h_}: {len(frames) / t:7.1f} frames/s (render-like frames, crf 18, preset medium)")

        from video2gs.cli import main as cli

        s = args.render_size
        cli(["example", str(tmp / "demo"), "--frames", "24", "-q"])
        for backend in ("auto",):
            t = time.perf_counter()
            try:
                cli(["render", str(tmp / "demo"), "--size", str(s), "--orbit-seconds", "2", "--backend", backend, "-q"])
            except SystemExit:
                pass
            dt = time.perf_counter() - t
            print(f"render example (10k Gaussians) {s}px, backend {backend}: 60 orbit + 24 fixed(x4) frames in {dt:.1f} s "
                  f"({dt / (60 + 96) * 1e3:.0f} ms per view incl. loading and encoding)")


if __name__ == "__main__":
    main()
