"""Speed, memory and loss curve of real L4GM optimisation steps, fp32 against bf16 autocast.

One step: network forward (under :class:`video2gs.nn.precision.Precision`'s autocast) -> activated
Gaussians -> the differentiable torch renderer at ``--views`` supervision views -> MSE on RGB and
alpha -> backward -> gradient clip 1.0 (as L4GM) -> AdamW (lr 4e-4, L4GM's). fp32 master weights in
both precisions. The target is fixed and synthetic: a seeded random cloud of coloured Gaussians,
rendered at the 4 input views (the network's input, built by :class:`video2gs.reconstructor.
Reconstructor`) and at the supervision views (the target images). Same initial weights, same data,
same number of steps for fp32 and bf16, each (config, precision) in its own subprocess so its peak
RSS is its own; both loss curves are printed so "not worse" can be judged.

    python benchmarks/bench_train_step.py                          # micro and tiny, fp32 vs bf16
    python benchmarks/bench_train_step.py --configs micro --steps 40 --frames 2

Numbers depend on the machine and its load; print them, never assert them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from video2gs.camera import INPUT_AZIMUTHS, Cameras  # noqa: E402
from video2gs.nn.precision import Precision  # noqa: E402
from video2gs.reconstructor import Reconstructor  # noqa: E402
from video2gs.render import render  # noqa: E402
from video2gs.testing import micro_l4gm_config, random_l4gm  # noqa: E402

# micro at 64² (4,096 Gaussians per frame, renders 64²); tiny at 256² (16,384 per frame, renders 128²)
CASES = {"micro": (micro_l4gm_config(64), 64), "tiny": ("tiny", 128)}
DEFAULT_STEPS = {"micro": 30, "tiny": 8}


def _vm_hwm() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def synthetic_scene(n: int = 400, seed: int = 0) -> torch.Tensor:
    """A fixed cloud of ``n`` opaque coloured Gaussians [n, 14] inside the unit cube (the target)."""
    g = torch.Generator().manual_seed(seed)
    xyz = (torch.rand(n, 3, generator=g) - 0.5) * 0.8
    opacity = torch.full((n, 1), 0.8)
    scale = torch.rand(n, 3, generator=g) * 0.03 + 0.02
    quat = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    rgb = torch.rand(n, 3, generator=g)
    return torch.cat([xyz, opacity, scale, quat, rgb], dim=-1)


def run_case(name: str, precision: str, steps: int, frames: int, views: int, threads: int | None) -> dict:
    if threads:
        torch.set_num_threads(threads)
    cfg, side = CASES[name]
    prec = Precision.resolve(precision, "cpu")
    model = random_l4gm(cfg, seed=0)
    size = model.config.input_size
    # Input: the scene at the 4 input views (object on white), same for every frame; the one input builder.
    scene = synthetic_scene()
    with torch.no_grad():
        inp = render(scene, Cameras.orbit(list(INPUT_AZIMUTHS)), size, size, backend="torch").rgb  # [4, H, W, 3]
        x = Reconstructor(model, device="cpu", dtype="fp32").build_input(inp.permute(0, 3, 1, 2)[None].expand(frames, -1, -1, -1, -1))
        sup = Cameras.orbit([float(a) for a in torch.linspace(0, 360, views + 1)[:-1] + 15.0], elevation_deg=20.0)
        target = render(scene, sup, side, side, backend="torch")
    model = model.float().set_memory_format(prec.memory_format).train()  # fp32 master weights
    opt = torch.optim.AdamW(model.parameters(), lr=4e-4)
    scaler = prec.grad_scaler()
    losses, times = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        with prec.autocast():
            gaussians = model(x, num_frames=frames)  # [T, N, 14] float32
        loss = 0.0
        for t in range(frames):
            out = render(gaussians[t], sup, side, side, backend="torch")
            loss = loss + torch.nn.functional.mse_loss(out.rgb, target.rgb) + torch.nn.functional.mse_loss(out.alpha, target.alpha)
        loss = loss / frames
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        times.append(time.perf_counter() - t0)
        losses.append(float(loss))
    step_s = statistics.median(times[1:]) if len(times) > 1 else times[0]  # step 0 includes warm-up
    return {"steps_per_s": 1.0 / step_s, "step_s": step_s, "peak_rss_mib": _vm_hwm() / 2**20, "losses": losses,
            "threads": torch.get_num_threads(), "gaussians": int(gaussians.shape[1])}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["micro", "tiny"], choices=list(CASES))
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--steps", type=int, default=None, help="optimisation steps per case (default: micro 30, tiny 8)")
    p.add_argument("--frames", type=int, default=2, help="frames T per sample (default 2: temporal attention on)")
    p.add_argument("--views", type=int, default=4, help="supervision views rendered per frame (default 4)")
    p.add_argument(
        "--omp-wait-policy", default="PASSIVE", choices=["PASSIVE", "ACTIVE"],
        help="OMP_WAIT_POLICY of the measured subprocesses unless already set (PASSIVE: OpenMP threads sleep "
        "instead of spinning; on a shared, oversubscribed CPU spinning made 2-thread calls 5-20x slower)",
    )
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    p.add_argument("--_case", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._case:
        name, precision = args._case
        steps = args.steps or DEFAULT_STEPS[name]
        print(json.dumps(run_case(name, precision, steps, args.frames, args.views, args.threads)))
        return
    print(
        f"# L4GM train steps on CPU (forward, torch render x {args.views} views x T={args.frames}, MSE, backward, "
        f"AdamW), torch {torch.__version__}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', args.omp_wait_policy)}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'config':>6} {'precision':>9} {'steps':>5} {'s/step':>8} {'steps/s':>8} {'peak RSS':>10} {'first loss':>11} {'last loss':>10}")
    curves = {}
    for name in args.configs:
        for precision in args.precisions:
            cmd = [sys.executable, __file__, "--_case", name, precision, "--frames", str(args.frames), "--views", str(args.views)]
            cmd += ["--steps", str(args.steps)] if args.steps else []
            cmd += ["--threads", str(args.threads)] if args.threads else []
            res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", args.omp_wait_policy)))
            if res.returncode != 0:
                why = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"
                print(f"{name:>6} {precision:>9}  FAILED: {why}", flush=True)
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            curves[(name, precision)] = r["losses"]
            print(
                f"{name:>6} {precision:>9} {len(r['losses']):>5} {r['step_s']:>8.2f} {r['steps_per_s']:>8.3f} "
                f"{r['peak_rss_mib']:>6.0f} MiB {r['losses'][0]:>11.5f} {r['losses'][-1]:>10.5f}",
                flush=True,
            )
    for (name, precision), losses in curves.items():
        print(f"# loss {name} {precision}: " + " ".join(f"{v:.5f}" for v in losses))


if __name__ == "__main__":
    main()
