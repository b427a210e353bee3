"""Azimuth alignment cost: 360 candidate renders at 256² of a static object, then the MSE argmin.

    python benchmarks/bench_align.py [--gaussians 65536] [--repeats 3] [--backend numba]

Scenes: a random L4GM-like frame (65,536 Gaussians in the unit cube) and the `plant` scan
(subsampled to the same count) from ../shared/data/splats when present.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from video2gs.camera import Cameras
from video2gs.gaussians import Gaussians
from video2gs.pipeline.views import align_azimuth
from video2gs.render import render

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "splats"


def random_scene(n: int) -> Gaussians:
    g = torch.Generator().manual_seed(0)
    return Gaussians.from_fields(
        (torch.rand(n, 3, generator=g) - 0.5) * 0.8,
        torch.rand(n, generator=g) * 0.9 + 0.05,
        torch.rand(n, 3, generator=g) * 0.02 + 0.003,
        torch.randn(n, 4, generator=g),
        torch.rand(n, 3, generator=g),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gaussians", type=int, default=65536)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backend", default="auto")
    a = ap.parse_args()
    scenes = {"random": random_scene(a.gaussians)}
    if (SHARED / "plant.splat").is_file():
        from video2gs.formats import load_gaussians

        plant = load_gaussians(SHARED / "plant.splat")
        idx = torch.randperm(len(plant), generator=torch.Generator().manual_seed(0))[: a.gaussians]
        scenes["plant"] = Gaussians(plant.data[idx])
    print(f"{'scene':>8} {'N':>7} {'median s':>9} {'min s':>7}  found (true 37.0)")
    for name, g in scenes.items():
        frame0 = render(g, Cameras.orbit([37.0]), 256, 256, backend=a.backend).rgb[0].numpy()
        align_azimuth(g, frame0, step=30.0, backend=a.backend)  # warm-up (JIT compile)
        times = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            found = align_azimuth(g, frame0, step=1.0, backend=a.backend)
            times.append(time.perf_counter() - t)
        print(f"{name:>8} {len(g):>7d} {statistics.median(times):>9.2f} {min(times):>7.2f}  {found.azimuth:+.1f}")


if __name__ == "__main__":
    main()
