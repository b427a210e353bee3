"""Speed and memory of one L4GM forward (random weights).

CPU (default): ``tiny`` and ``small`` at T = 1 and T = 4, each case in its own subprocess so the
peak RSS (``VmHWM``) belongs to that case alone; the RSS just before the timed call (weights + warm-up) is printed next to it.

    python benchmarks/bench_l4gm.py                      # tiny, small x T=1, 4
    python benchmarks/bench_l4gm.py --configs tiny --frames 1 4 16 --threads 2

CUDA: ``big`` at T = 16 in bf16 by default: seconds per chunk, peak CUDA memory, analytic FLOPs
(``video2gs.nn.configs.forward_flops``) and the fraction of the GPU's peak they represent.

    python benchmarks/bench_l4gm.py --cuda                           # big, T=16, bf16
    python benchmarks/bench_l4gm.py --cuda --frames 1 4 16 --peak-tflops 989 --compile

Numbers depend on the machine and its load; print them, never assert them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from video2gs.nn.configs import forward_flops, get_config  # noqa: E402
from video2gs.nn.l4gm import L4GM  # noqa: E402


def _proc_status(field: str) -> int:
    """A memory field of /proc/self/status in bytes (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _random_model(name: str, device: str, dtype: torch.dtype) -> L4GM:
    """Random weights without a slow default init: meta build, then N(0, 0.02) (GroupNorm affine 1/0)."""
    with torch.device("meta"):
        model = L4GM(get_config(name))
    model = model.to_empty(device=device)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if ".norm" in pname or pname.startswith("unet.norm_out"):
                p.fill_(1.0 if pname.endswith("weight") else 0.0)
            else:
                p.normal_(0.0, 0.02)
    return model.to(dtype).eval()


def run_cpu_case(name: str, frames: int, threads: int | None, warmup: bool) -> dict:
    if threads:
        torch.set_num_threads(threads)
    model = _random_model(name, "cpu", torch.float32)
    cfg = model.config
    x = torch.randn(1, frames * cfg.num_input_views, 9, cfg.input_size, cfg.input_size)
    if warmup:  # one single-frame pass: kernel selection / allocator warm-up, lower peak than the timed call
        with torch.inference_mode():
            model(x[:, : cfg.num_input_views])
    rss_before = _proc_status("VmRSS")
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model(x)
    seconds = time.perf_counter() - t0
    assert out.shape == (frames, cfg.gaussians_per_frame, 14)
    flops = forward_flops(cfg, frames)["total"]
    return {
        "config": name,
        "frames": frames,
        "threads": torch.get_num_threads(),
        "seconds": seconds,
        "rss_before_mib": rss_before / 2**20,
        "peak_rss_mib": _proc_status("VmHWM") / 2**20,
        "tflop": flops / 1e12,
        "gflops_per_s": flops / seconds / 1e9,
    }


def cpu_main(args) -> None:
    print(f"# L4GM forward on CPU, fp32, random weights (torch {torch.__version__}); one subprocess per case")
    print(f"{'config':>7} {'T':>3} {'threads':>7} {'seconds':>9} {'TFLOP':>7} {'GFLOP/s':>8} {'RSS before':>12} {'peak RSS':>10}")
    for name in args.configs or ["tiny", "small"]:
        for t in args.frames or [1, 4]:
            cmd = [sys.executable, __file__, "--_case", name, str(t)]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            if args.no_warmup:
                cmd.append("--no-warmup")
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                print(f"{name:>7} {t:>3}  FAILED: {res.stderr.strip().splitlines()[-1] if res.stderr else res.returncode}")
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(
                f"{name:>7} {t:>3} {r['threads']:>7} {r['seconds']:>9.2f} {r['tflop']:>7.3f} {r['gflops_per_s']:>8.1f} "
                f"{r['rss_before_mib']:>9.0f} MiB {r['peak_rss_mib']:>6.0f} MiB",
                flush=True,
            )


def cuda_main(args) -> None:
    """Accelerator mode. ``--_dry-run-on-cpu`` runs the same code path on the CPU (no CUDA memory
    statistics; for checking this script on a machine without a GPU)."""
    dry = args.dry_run_on_cpu
    if not dry and not torch.cuda.is_available():
        sys.exit("--cuda: no CUDA device available")
    device = torch.device("cpu" if dry else "cuda")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]

    def sync() -> None:
        if not dry:
            torch.cuda.synchronize()

    dev = "CPU (dry run)" if dry else torch.cuda.get_device_name()
    print(
        f"# L4GM forward on {dev}, {args.dtype}, torch {torch.__version__}, compile={args.compile}, "
        f"channels_last={args.channels_last}, peak {args.peak_tflops} TFLOP/s"
    )
    print(f"{'config':>7} {'T':>3} {'s/chunk':>9} {'ms/frame':>9} {'TFLOP':>7} {'TFLOP/s':>8} {'of peak':>8} {'peak mem':>10} {'weights':>9}")
    for name in args.configs or ["big"]:
        if not dry:
            torch.cuda.empty_cache()
        model = _random_model(name, device, dtype)
        if args.channels_last:  # NHWC weights make every conv (and what follows) run channels-last
            model = model.to(memory_format=torch.channels_last)
        if args.compile:
            model.enable_compile()
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        cfg = model.config
        for t in args.frames or [16]:
            x = torch.randn(1, t * cfg.num_input_views, 9, cfg.input_size, cfg.input_size, device=device, dtype=dtype)
            with torch.inference_mode():
                for _ in range(args.warmup):
                    model(x)
                sync()
                if not dry:
                    torch.cuda.reset_peak_memory_stats()
                times = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    out = model(x)
                    sync()
                    times.append(time.perf_counter() - t0)
            assert out.shape == (t, cfg.gaussians_per_frame, 14)
            del out
            sec = min(times)
            flops = forward_flops(cfg, t)["total"]
            tflops = flops / sec / 1e12
            peak = _proc_status("VmHWM") if dry else torch.cuda.max_memory_allocated()
            print(
                f"{name:>7} {t:>3} {sec:>9.3f} {1e3 * sec / t:>9.1f} {flops / 1e12:>7.2f} {tflops:>8.1f} "
                f"{tflops / args.peak_tflops:>8.1%} {peak / 2**30:>6.2f} GiB {weights / 2**30:>5.2f} GiB",
                flush=True,
            )
            del x
        del model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=None, help="named configs (default: tiny small on CPU, big on CUDA)")
    p.add_argument("--frames", nargs="+", type=int, default=None, help="frames T per call (default: 1 4 on CPU, 16 on CUDA)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    p.add_argument("--no-warmup", action="store_true", help="CPU: skip the single-frame warm-up pass")
    p.add_argument("--cuda", action="store_true", help="benchmark on CUDA instead (default big, T=16, bf16)")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"], help="CUDA dtype")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="dense peak of the GPU in this dtype (H100 SXM bf16: 989)")
    p.add_argument("--warmup", type=int, default=2, help="CUDA warm-up calls")
    p.add_argument("--repeat", type=int, default=3, help="CUDA timed calls (the best is reported)")
    p.add_argument("--compile", action="store_true", help="CUDA: torch.compile the network")
    p.add_argument("--channels-last", action="store_true", help="CUDA: channels-last (NHWC) weights")
    p.add_argument("--_case", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--_dry-run-on-cpu", dest="dry_run_on_cpu", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._case:
        print(json.dumps(run_cpu_case(args._case[0], int(args._case[1]), args.threads, not args.no_warmup)))
    elif args.cuda:
        cuda_main(args)
    else:
        cpu_main(args)


if __name__ == "__main__":
    main()
