"""`data make` throughput and the mesh-rasterizer vs splat-renderer cross-check (prints numbers).

    python benchmarks/bench_data.py make                 # all ../shared splats x 2 motions x 16 frames x 32 views at 256²
    python benchmarks/bench_data.py make --limit 6       # a subset (the total is extrapolated per object kind)
    python benchmarks/bench_data.py crosscheck           # faerie clips at 256² and 512²: PSNR / mask IoU, all views and frames

Timings are wall seconds of this process on whatever else the machine is doing: the load average
is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDEO2GS_SHARED", REPO.parent / "shared"))


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_make(args) -> None:
    from video2gs.data.make import MakeOptions, make_dataset

    splats = sorted((SHARED / "data" / "splats").glob("*.splat"))
    if not splats:
        raise SystemExit(f"no splats under {SHARED / 'data' / 'splats'}")
    chosen = splats if args.limit is None else splats[: args.limit]
    motions = args.motions.split(",")
    opts = dict(frames=args.frames, resolution=args.resolution, fixed_views=16, random_views=args.views - 16)
    work = Path(tempfile.mkdtemp(prefix="bench_data_"))
    per_clip: dict[str, list[float]] = {}
    try:
        print(f"load average before: {_load()}")
        # Warm-up (numba compilation, imports), not counted.
        make_dataset(work / "warm", chosen[:1], motions[:1], MakeOptions(**{**opts, "frames": 1}))
        start = time.perf_counter()
        for path in chosen:
            for motion in motions:
                t0 = time.perf_counter()
                make_dataset(work / "ds", [path], [motion], MakeOptions(**opts))
                per_clip.setdefault(path.stem, []).append(time.perf_counter() - t0)
        total = time.perf_counter() - start
        size = _du(work / "ds")
        print(f"load average after: {_load()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n_clips = sum(len(v) for v in per_clip.values())
    images = n_clips * args.frames * args.views
    big = {k: v for k, v in per_clip.items() if (SHARED / "data" / "splats" / f"{k}.splat").stat().st_size > 1_000_000}
    small = {k: v for k, v in per_clip.items() if k not in big}
    small_t = [t for v in small.values() for t in v]
    big_t = [t for v in big.values() for t in v]
    print(f"{len(chosen)} objects x {len(motions)} motions = {n_clips} clips, {args.frames} frames x {args.views} views at "
          f"{args.resolution}²: {total:.1f} s ({total / n_clips:.2f} s/clip, {images / total:.1f} images/s), {size / 1e6:.0f} MB")
    if small_t:
        print(f"  10k-splat objects: median {statistics.median(small_t):.2f} s/clip (min {min(small_t):.2f}, max {max(small_t):.2f})")
    if big_t:
        print(f"  ~115k-splat captures ({', '.join(big)}): median {statistics.median(big_t):.2f} s/clip")
    if args.limit is not None and len(chosen) < len(splats):
        n_big = sum(1 for p in splats if p.stat().st_size > 1_000_000)
        n_small = len(splats) - n_big
        est_small = statistics.median(small_t) if small_t else 0.0
        est_big = statistics.median(big_t) if big_t else est_small * 10
        estimate = len(motions) * (n_small * est_small + n_big * est_big)
        print(f"  extrapolated to all {len(splats)} objects x {len(motions)} motions: about {estimate:.0f} s "
              f"({n_small} x {est_small:.2f} + {n_big} x {est_big:.2f} s per motion{'' if big_t else ', captures guessed at 10x'})")


def bench_crosscheck(args) -> None:
    from video2gs.data.layout import open_clip
    from video2gs.data.make import MakeOptions, make_dataset
    from video2gs.render import render

    faerie = SHARED / "data" / "md2" / "faerie.md2"
    work = Path(tempfile.mkdtemp(prefix="bench_xcheck_"))
    try:
        for res in args.resolutions:
            ds = work / f"r{res}"
            t0 = time.perf_counter()
            make_dataset(ds, [faerie], [], MakeOptions(frames=args.frames, resolution=res), animations=args.animations.split(","))
            made = time.perf_counter() - t0
            psnr, inter, union, ious = [], 0, 0, []
            for name in args.animations.split(","):
                clip = open_clip(ds / f"faerie-{name}")
                for t in range(clip.num_frames):
                    out = render(clip.load_gt(t), clip.cameras(t), res, res, backend="numba")
                    for i, v in enumerate(clip.views):
                        mse = float(((out.rgb[i].numpy() - clip.image(v, t)) ** 2).mean())
                        psnr.append(-10 * np.log10(mse))
                        a, b = out.alpha[i, ..., 0].numpy() > 0.5, clip.mask(v, t) > 0.5
                        inter, union = inter + int((a & b).sum()), union + int((a | b).sum())
                        ious.append((a & b).sum() / (a | b).sum())
            print(f"faerie {args.animations} at {res}² ({len(psnr)} images, {clip.meta['num_gaussians']} Gaussians/frame, "
                  f"made in {made:.0f} s): PSNR mean {np.mean(psnr):.2f} dB (min {np.min(psnr):.2f}); "
                  f"mask IoU pooled {inter / union:.4f}, mean {np.mean(ious):.4f} (min {np.min(ious):.4f})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average: {_load()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what")
    m = sub.add_parser("make")
    m.add_argument("--limit", type=int, default=None, help="first N splats only (extrapolate)")
    m.add_argument("--motions", default="spin,bend")
    m.add_argument("--frames", type=int, default=16)
    m.add_argument("--views", type=int, default=32)
    m.add_argument("--resolution", type=int, default=256)
    c = sub.add_parser("crosscheck")
    c.add_argument("--resolutions", type=int, nargs="+", default=[256, 512])
    c.add_argument("--animations", default="run,wave,flip")
    c.add_argument("--frames", type=int, default=16)
    args = ap.parse_args()
    if args.what in (None, "make"):
        if args.what is None:
            args = ap.parse_args(["make"])
        bench_make(args)
    if args.what == "crosscheck":
        bench_crosscheck(args)


if __name__ == "__main__":
    main()
