"""Speed of ``video2gs evaluate``: seconds per clip frame at 256² and 512², 32 views (16 at elevation 0,
16 elevated, as a dataset clip), ground truth evaluated against itself plus the two baselines.

    python benchmarks/bench_evaluate.py                    # 256 and 512, LPIPS VGG+Alex, 3 frames
    python benchmarks/bench_evaluate.py --sizes 256 --frames 4 --lpips vgg --objects 65536

The clip is rendered first (not timed) from a random blob of ``--objects`` Gaussians (65,536 = one L4GM
frame) turning about +Y. The first frame is evaluated once untimed (numba cache load, LPIPS weights,
allocator), then ``evaluate`` runs over all frames; per-frame time = wall time / frames. Also printed:
the share of one frame spent rendering, in LPIPS and in the Chamfer distance. Needs
../shared/data/lpips for the LPIPS weights. Timings on a shared machine are noisy: quote with `uptime`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from video2gs.data.layout import open_clip  # noqa: E402
from video2gs.metrics.evaluate import Settings, baseline_methods, evaluate, prediction_method  # noqa: E402
from video2gs.metrics.fixtures import random_object, spin, write_render_clip  # noqa: E402
from video2gs.sequence import Sequence  # noqa: E402

LPIPS_DIR = REPO.parent / "shared" / "data" / "lpips"
VIEWS = [(0.0, 22.5 * k) for k in range(16)] + [(-5.0 + 35.0 * ((k * 7) % 16) / 15, (k * 137.5) % 360) for k in range(16)]


def bench(size: int, frames: int, objects: int, nets: tuple[str, ...], baselines: list[str]) -> dict:
    weights = {n: LPIPS_DIR / f"lpips_{n}_v0.1.safetensors" for n in nets}
    with tempfile.TemporaryDirectory() as tmp:
        g = random_object(objects)
        root = write_render_clip(Path(tmp) / "clip", [spin(g, 8.0 * t) for t in range(frames)], views=VIEWS, size=size)
        clip = open_clip(root)

        def methods():
            pred = prediction_method(Sequence.open(root / "gt"), clip)
            return [pred, *baseline_methods(baselines, clip, None, 0)]

        settings = Settings(lpips_nets=nets)
        warm = methods()
        for m in warm:
            m.matches = {0: m.matches[0]}
        evaluate(clip, warm, settings, lpips_weights=weights)  # warm-up, untimed
        start = time.perf_counter()
        ev = evaluate(clip, methods(), settings, lpips_weights=weights)
        per_frame = (time.perf_counter() - start) / frames

        # where one frame's time goes (one method, all views)
        from video2gs.metrics.geometry import chamfer
        from video2gs.metrics.lpips import load_lpips
        from video2gs.render import render

        cams = clip.cameras(0)
        gt = clip.load_gt(0)
        t0 = time.perf_counter()
        with torch.no_grad():
            out = render(gt, cams, size, size)
        t_render = time.perf_counter() - t0
        x = out.rgb.permute(0, 3, 1, 2)
        t_lpips = {}
        for n in nets:
            mod = load_lpips(n, weights[n])
            t0 = time.perf_counter()
            with torch.no_grad():
                for i in range(0, len(x), 4):
                    mod(x[i:i + 4], x.flip(0)[i:i + 4])
            t_lpips[n] = time.perf_counter() - t0
        t0 = time.perf_counter()
        chamfer(gt, gt)
        t_chamfer = time.perf_counter() - t0
    return {"size": size, "views": len(VIEWS), "methods": len(ev.methods), "per_frame": per_frame,
            "render": t_render, "lpips": t_lpips, "chamfer": t_chamfer,
            "novel_psnr": ev.summary("pred")["novel"]["psnr"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--objects", type=int, default=65536)
    parser.add_argument("--lpips", default="vgg,alex")
    parser.add_argument("--baselines", default="billboard,static", help="comma-separated, or 'none'")
    args = parser.parse_args()
    nets = tuple(n for n in args.lpips.split(",") if n and n != "none")
    baselines = [b for b in args.baselines.split(",") if b and b != "none"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}; "
          f"{args.objects:,} Gaussians, {len(VIEWS)} views, LPIPS {'+'.join(nets) or 'none'}, "
          f"methods: gt-as-prediction{''.join(' + ' + b for b in baselines)}")
    print(f"{'size':>5} {'s/frame':>8} {'render 1 method':>16} {'LPIPS 1 method':>24} {'Chamfer':>8}  GT-self PSNR")
    for size in (int(s) for s in args.sizes.split(",")):
        r = bench(size, args.frames, args.objects, nets, baselines)
        lp = ", ".join(f"{n} {t:.2f}s" for n, t in r["lpips"].items()) or "-"
        print(f"{size:>5} {r['per_frame']:>8.2f} {r['render']:>15.2f}s {lp:>24} {r['chamfer']:>7.2f}s  {r['novel_psnr']:.1f} dB")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
