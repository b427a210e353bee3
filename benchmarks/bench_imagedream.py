"""ImageDream speed: tiny pipeline per step (CPU), full-size UNet one CFG step (CPU), full pipeline (CUDA).

    python benchmarks/bench_imagedream.py                 # tiny pipeline + full-size UNet step on CPU
    python benchmarks/bench_imagedream.py --skip-full     # tiny pipeline only
    python benchmarks/bench_imagedream.py --cuda          # full-size pipeline, random weights, fp16, 30 steps

All weights are random (no downloads). Full-size configs come from
../shared/reference/imagedream_pipeline_configs.json (override with --reference).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from video2gs.nn.imagedream.camera import imagedream_cameras
from video2gs.nn.imagedream.random_init import random_pipeline, random_unet

DEFAULT_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "imagedream_pipeline_configs.json"


def _image() -> np.ndarray:
    """RGB 256² test image on white: a shaded disc."""
    yy, xx = np.mgrid[:256, :256] / 255.0
    disc = ((xx - 0.5) ** 2 + (yy - 0.5) ** 2) < 0.16
    rgb = np.ones((256, 256, 3), dtype=np.float32)
    rgb[disc] = np.stack([xx, yy, 0.5 * np.ones_like(xx)], -1)[disc]
    return rgb


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_pipeline(pipe, steps: int, guidance: float = 5.0, runs: int = 2) -> dict:
    """Time full calls; per-step time from the progress callback, first step of each run excluded."""
    device = pipe.device
    results = []
    for _ in range(runs):
        stamps: list[float] = []

        def progress(i, n):
            _sync(device)
            stamps.append(time.perf_counter())

        _sync(device)
        t0 = time.perf_counter()
        pipe(_image(), num_inference_steps=steps, guidance_scale=guidance, seed=0, progress=progress)
        _sync(device)
        total = time.perf_counter() - t0
        per_step = float(np.median(np.diff(stamps))) if len(stamps) > 1 else float("nan")
        results.append((total, per_step))
    total, per_step = results[-1]  # the last run is warm
    return {"total_s": total, "per_step_s": per_step, "first_run_total_s": results[0][0]}


def bench_tiny(steps: int) -> None:
    torch.manual_seed(0)
    pipe = random_pipeline(seed=0)
    r = time_pipeline(pipe, steps)
    print(f"tiny pipeline (CPU fp32, CFG batch 10, {steps} steps): {r['per_step_s']:.3f} s/step, "
          f"{r['total_s']:.2f} s per call warm ({r['first_run_total_s']:.2f} s cold)")  # fmt: skip


def bench_full_unet_cpu(reference: Path) -> None:
    cfg = json.loads(reference.read_text())["unet/config.json"]
    t0 = time.perf_counter()
    unet = random_unet(cfg, "cpu", torch.float32, seed=0)
    build = time.perf_counter() - t0
    n = sum(p.numel() for p in unet.parameters())
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10, 4, 32, 32, generator=g)
    t = torch.full((10,), 958.0)
    context = torch.randn(10, 77, cfg["context_dim"], generator=g)
    ip = torch.randn(10, 257, 1280, generator=g)
    ip_img = torch.randn(2, 4, 32, 32, generator=g)
    camera = imagedream_cameras(0.0).repeat(2, 1)
    with torch.no_grad():
        t0 = time.perf_counter()
        out = unet(x, t, context, num_frames=5, camera=camera, ip=ip, ip_img=ip_img)
        step = time.perf_counter() - t0
    assert torch.isfinite(out).all()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"full-size UNet ({n / 1e9:.3f} B params, CPU fp32, {torch.get_num_threads()} threads): build+random init "
        f"{build:.1f} s, one step at CFG batch 10: {step:.1f} s, peak RSS {rss:.1f} GB"
    )


def bench_cuda(reference: Path, steps: int) -> None:
    ref = json.loads(reference.read_text())
    device = torch.device("cuda")
    t0 = time.perf_counter()
    configs = [ref[f"{name}/config.json"] for name in ("unet", "vae", "text_encoder", "image_encoder")]
    pipe = random_pipeline(*configs, device=device, dtype=torch.float16, seed=0)
    build = time.perf_counter() - t0
    r = time_pipeline(pipe, steps, runs=2)
    mem = torch.cuda.max_memory_allocated(device) / 2**30
    name = torch.cuda.get_device_name(device)
    print(
        f"full pipeline ({name}, fp16, random weights, CFG batch 10, {steps} steps): {r['total_s']:.2f} s per call "
        f"warm ({r['first_run_total_s']:.2f} s cold), {r['per_step_s'] * 1e3:.1f} ms/step, peak {mem:.1f} GiB, "
        f"build {build:.1f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cuda", action="store_true", help="full-size pipeline on CUDA in fp16")
    ap.add_argument("--steps", type=int, default=None, help="denoising steps (default: 5 tiny, 30 CUDA)")
    ap.add_argument("--skip-full", action="store_true", help="CPU mode: skip the full-size UNet step (~45 s, 7 GB)")
    ap.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    if args.cuda:
        if not torch.cuda.is_available():
            raise SystemExit("--cuda: no CUDA device")
        bench_cuda(args.reference, args.steps or 30)
        return
    bench_tiny(args.steps or 5)
    if not args.skip_full:
        bench_full_unet_cpu(args.reference)


if __name__ == "__main__":
    main()
