"""Training steps of `video2gs train` on this CPU: steps/s, peak RSS, and where a step goes.

Each (config, precision) runs in its own subprocess (so ``ru_maxrss`` is its own peak): the real
training pieces (:class:`video2gs.train.data.TrainSamples` on a clip rendered here,
:class:`video2gs.train.loss.Criterion` with LPIPS-VGG, AdamW + grad clip, fp32 master weights,
:class:`video2gs.nn.precision.Precision` autocast), one warm-up step, then ``--steps`` timed steps.
The share of a step is measured by running each part's forward + backward alone on the same batch:
the network (gradient of a stand-in for the loss w.r.t. the Gaussians), the renderer (Gaussians ->
images) and LPIPS (images -> loss).

    python benchmarks/bench_train.py                     # micro and tiny, fp32 and bf16
    python benchmarks/bench_train.py --configs micro --steps 3

Numbers depend on the machine and its load (print ``uptime`` beside them); nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# name -> (model, input size, supervision size, frames, views, LPIPS size)
CASES = {"micro": ("micro", 64, 64, 2, 6, 256), "tiny": ("tiny", 256, 128, 1, 5, 256),
         "demo": ("demo", 128, 128, 4, 8, 128), "demo-t2v6": ("demo", 128, 128, 2, 6, 128)}
LPIPS_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "lpips" / "lpips_vgg_v0.1.safetensors"


def _case(name: str, precision: str, steps: int, workdir: Path) -> dict:
    from video2gs.metrics.fixtures import random_object, spin, write_render_clip
    from video2gs.metrics.lpips import load_lpips
    from video2gs.nn.l4gm import L4GM
    from video2gs.nn.precision import Precision
    from video2gs.train.config import load_config
    from video2gs.train.data import TrainSamples, collate, open_stores, sample_options
    from video2gs.train.loss import Criterion, render_views
    from video2gs.train.trainer import network_config

    model_name, in_size, out_size, frames, views, lpips_size = CASES[name]
    clip = workdir / f"clip{out_size}-{frames}"
    if not (clip / "clip.json").exists():
        g = random_object(3000, seed=0)
        write_render_clip(clip, [spin(g, 10.0 * t) for t in range(frames)], size=out_size, write_gt=False)
    cfg = load_config("l4gm-recon", {"model": model_name, "input_size": in_size, "init": "none", "data.output_size": out_size,
                                     "data.num_frames": frames, "data.num_views": views, "loss.lpips_size": lpips_size})
    torch.manual_seed(0)
    prec = Precision.resolve(precision, "cpu")
    model = L4GM(network_config(cfg)).set_memory_format(prec.memory_format).train()
    opt = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.05, betas=(0.9, 0.95))
    lpips = load_lpips("vgg", LPIPS_FILE)
    crit = Criterion(lpips, 1.0, lpips_size)
    samples = TrainSamples(open_stores([clip]).train, sample_options(cfg, in_size), training=True, seed=0)
    batch = collate([samples[(0, 0)]])
    batch.pop("errors")

    def step():
        with prec.autocast():
            g = model(batch["input"])
        loss, terms, _ = crit(g, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(terms["loss"])

    step()  # warm-up (oneDNN primitive creation)
    t0 = time.perf_counter()
    losses = [step() for _ in range(steps)]
    per_step = (time.perf_counter() - t0) / steps

    def timed(fn) -> float:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    with prec.autocast():
        g = model(batch["input"])
    g_det = g.detach().float().requires_grad_(True)
    pred = render_views(g_det, batch["c2w"], out_size)
    gt = batch["images_output"].flatten(0, 1)
    rgb_det = pred.rgb.detach().requires_grad_(True)

    def network():
        with prec.autocast():
            out = model(batch["input"])
        (out.float() * torch.randn_like(out.float())).mean().backward()

    def renderer():
        r = render_views(g_det, batch["c2w"], out_size)
        ((r.rgb - gt) ** 2).mean().backward()

    def lpips_part():
        size = (lpips_size, lpips_size)
        f = torch.nn.functional.interpolate
        lpips(f(rgb_det, size=size, mode="bilinear"), f(gt, size=size, mode="bilinear")).mean().backward()

    parts = {"network": timed(network), "renderer": timed(renderer), "lpips": timed(lpips_part)}
    model.zero_grad(set_to_none=True)
    total = sum(parts.values())
    return {
        "config": name, "precision": prec.name, "input": in_size, "supervision": out_size, "frames": frames, "views": views,
        "gaussians_per_frame": model.config.gaussians_per_frame, "steps_per_s": 1.0 / per_step, "s_per_step": per_step,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "share": {k: v / total for k, v in parts.items()}, "losses": losses,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/video2gs-bench-train"))
    ap.add_argument("--_case", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args._case:
        print(json.dumps(_case(args._case[0], args._case[1], args.steps, args.workdir)))
        return
    print(f"load average {os.getloadavg()[0]:.1f} (1 min), torch threads {torch.get_num_threads()}")
    for name in args.configs:
        for prec in args.precisions:
            res = subprocess.run([sys.executable, __file__, "--_case", name, prec, "--steps", str(args.steps),
                                  "--workdir", str(args.workdir)], capture_output=True, text=True)
            if res.returncode:
                print(f"{name} {prec}: failed\n{res.stderr[-2000:]}")
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            share = ", ".join(f"{k} {100 * v:.0f}%" for k, v in r["share"].items())
            print(f"{name:5s} {r['precision']:4s} in {r['input']}² sup {r['supervision']}² T={r['frames']} V={r['views']}: "
                  f"{r['steps_per_s']:.3f} steps/s ({r['s_per_step']:.2f} s/step), peak RSS {r['peak_rss_mib']:.0f} MiB; "
                  f"{share}; losses {', '.join(f'{x:.4f}' for x in r['losses'])}")
    print(f"load average {os.getloadavg()[0]:.1f} (1 min)")


if __name__ == "__main__":
    main()
