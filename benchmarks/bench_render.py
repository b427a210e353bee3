"""Renderer speed: median wall times of the numba forward, the torch forward+backward, and a
many-view batch, on the real ``plant`` capture and on random scenes.

    python benchmarks/bench_render.py                      # the default table
    python benchmarks/bench_render.py --views 90 --repeat 3 --scenes random

Numba kernels are compiled (or loaded from the on-disk cache) and every configuration is run once
before timing, so compile time is never part of a median. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from video2gs.camera import Cameras  # noqa: E402
from video2gs.gaussians import Gaussians  # noqa: E402
from video2gs.render import render  # noqa: E402

PLANT = REPO.parent / "shared" / "data" / "splats" / "plant.splat"


def plant(n: int, seed: int = 0) -> tuple[torch.Tensor, str]:
    """The plant capture (113,648 splats, -Y up -> +Y up); a random subset of n, or all if n >= that."""
    rec = np.fromfile(PLANT, dtype=[("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])
    label = f"plant (all {len(rec):,})"
    if n < len(rec):
        rec = rec[np.sort(np.random.default_rng(seed).choice(len(rec), n, replace=False))]
        label = f"plant (random {n:,} of 113,648)"
    quat = (rec["rot"].astype(np.float32) - 128) / 128
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    rgba = rec["rgba"].astype(np.float32) / 255
    data = np.concatenate([rec["pos"], rgba[:, 3:], rec["scale"], quat, rgba[:, :3]], axis=1)
    return Gaussians(torch.from_numpy(np.ascontiguousarray(data))).flip_up_axis().data, label


def random_scene(n: int, seed: int = 0) -> tuple[torch.Tensor, str]:
    """n Gaussians in [-0.4, 0.4]^3: scales log-uniform 0.004..0.03 (L4GM-like), opacity 0.05..1."""
    g = torch.Generator().manual_seed(seed)
    xyz = (torch.rand(n, 3, generator=g) - 0.5) * 0.8
    scale = torch.exp(torch.empty(n, 3).uniform_(math.log(0.004), math.log(0.03), generator=g))
    quat = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    opacity = torch.empty(n, 1).uniform_(0.05, 1.0, generator=g)
    return torch.cat([xyz, opacity, scale, quat, torch.rand(n, 3, generator=g)], dim=-1), f"random ({n:,})"


def median_time(fn, repeat: int) -> float:
    fn()  # warm-up: numba compile / cache load, allocator, thread pools
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def forward(data, cams, size, backend):
    return lambda: render(data, cams, size, size, backend=backend)


def forward_backward(data, cams, size):
    def run():
        d = data.clone().requires_grad_()
        out = render(d, cams, size, size, backend="torch")
        (out.rgb.mean() + out.alpha.mean() + out.depth.mean()).backward()

    return run


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--numba-n", type=int, default=65536, help="Gaussians for the single-view numba forward")
    p.add_argument("--numba-size", type=int, default=512, help="image size for the single-view numba forward")
    p.add_argument("--torch-n", type=int, default=16384, help="Gaussians for torch forward+backward")
    p.add_argument("--torch-size", type=int, default=256, help="image size for torch forward+backward")
    p.add_argument("--views", type=int, default=360, help="views in the numba batch (azimuths 0..360)")
    p.add_argument("--views-n", type=int, default=65536, help="Gaussians for the numba view batch")
    p.add_argument("--views-size", type=int, default=256, help="image size for the numba view batch")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per row (median reported)")
    p.add_argument("--scenes", choices=["plant", "random", "both"], default="both")
    p.add_argument("--threads", type=int, default=0, help="torch/numba threads (0 = library default)")
    args = p.parse_args(argv)

    if args.threads:
        import numba

        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)
    makers = {"plant": plant, "random": random_scene}
    scenes = list(makers) if args.scenes == "both" else [args.scenes]
    front = Cameras.orbit([30.0], elevation_deg=15.0)
    rows = []

    def row(what, label, size, views, seconds, note=""):
        rows.append((what, label, f"{size}x{size}", str(views), f"{seconds:.3f}", note))
        print(f"  {what:<24} {label:<30} {seconds:8.3f} s {note}", flush=True)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads", flush=True)
    for name in scenes:
        data, label = makers[name](args.numba_n)
        row("numba forward", label, args.numba_size, 1,
            median_time(forward(data, front, args.numba_size, "numba"), args.repeat))

        data, label = makers[name](args.torch_n)
        t_fb = median_time(forward_backward(data, front, args.torch_size), args.repeat)
        t_tf = median_time(forward(data, front, args.torch_size, "torch"), args.repeat)
        t_nf = median_time(forward(data, front, args.torch_size, "numba"), args.repeat)
        row("torch forward+backward", label, args.torch_size, 1, t_fb)
        row("torch forward", label, args.torch_size, 1, t_tf, f"= {t_tf / t_nf:.1f}x numba")
        row("numba forward", label, args.torch_size, 1, t_nf, f"fwd+bwd torch = {t_fb / t_nf:.1f}x numba fwd")

        data, label = makers[name](args.views_n)
        cams = Cameras.orbit(np.linspace(0.0, 360.0, args.views, endpoint=False), elevation_deg=15.0)
        t = median_time(forward(data, cams, args.views_size, "numba"), max(1, args.repeat // 2))
        row("numba view batch", label, args.views_size, args.views, t, f"{1e3 * t / args.views:.1f} ms/view")

    print("\n| what | scene | size | views | median s | note |\n|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
