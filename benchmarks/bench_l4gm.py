"""Speed and memory of one L4GM forward (random weights).

CPU (default): every (config, T, variant) case runs in its own subprocess, so its peak RSS
(``VmHWM``) belongs to that case alone. Variants:

* ``before-fp32`` / ``before-bf16``: the previous CPU attention (3D ``[b·heads, L, d]`` slices, which
  SDPA serves with its explicit-softmax path), default memory format -- as shipped before.
* ``after-fp32`` / ``after-bf16``: 4D slices (SDPA's flash kernel) and the memory format
  :func:`video2gs.compute.memory_format` picks (channels-last on CPU).

Seconds are the median of ``--repeat`` timed calls after a single-frame warm-up. Achieved GFLOP/s
(analytic FLOPs, ``video2gs.nn.configs.forward_flops``) are compared with the matmul peak measured
in the same dtype on the same machine first. A case whose predicted peak RSS (linear in T from
T = 1 and T = 4 of the same variant) would not fit in the available memory is skipped, with the
prediction printed.

    python benchmarks/bench_l4gm.py                 # micro tiny small big x T=1 4 16 (before-* at T=1 4 only)
    python benchmarks/bench_l4gm.py --configs small --frames 4 --variants before-fp32 after-bf16
    python benchmarks/bench_l4gm.py --configs tiny --frames 1 4 --threads 2 --repeat 5

CUDA: ``big`` at T = 16 in bf16 by default: seconds per chunk, peak CUDA memory, analytic FLOPs
and the fraction of the GPU's peak they represent.

    python benchmarks/bench_l4gm.py --cuda                           # big, T=16, bf16
    python benchmarks/bench_l4gm.py --cuda --frames 1 4 16 --peak-tflops 989 --compile

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

from video2gs import compute  # noqa: E402
from video2gs.nn.configs import forward_flops, get_config  # noqa: E402
from video2gs.nn.l4gm import L4GM  # noqa: E402
from video2gs.testing import micro_l4gm_config  # noqa: E402

VARIANTS = ("before-fp32", "after-fp32", "before-bf16", "after-bf16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _proc_status(field: str) -> int:
    """A memory field of /proc/self/status in bytes (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _config(name: str):
    return micro_l4gm_config() if name == "micro" else get_config(name)  # micro: the tests' 64² config


def _random_model(name: str, device: str, dtype: torch.dtype) -> L4GM:
    """Random weights without a slow default init: meta build, then N(0, 0.02) (GroupNorm affine 1/0)."""
    with torch.device("meta"):
        model = L4GM(_config(name))
    model = model.to_empty(device=device)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if ".norm" in pname or pname.startswith("unet.norm_out"):
                p.fill_(1.0 if pname.endswith("weight") else 0.0)
            else:
                p.normal_(0.0, 0.02)
    return model.to(dtype).eval()


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 2.0) -> dict[str, float]:
    """Best GFLOP/s of an n x n x n product in ``dtype`` over about ``seconds`` each, two ways:
    ``mm`` (torch.mm: the BLAS PyTorch links) and ``onednn`` (the same GEMM as a 1x1 channels-last
    convolution, the library the network's convolutions run on). ``peak`` is the larger."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    x = torch.randn(1, n, n // 64, 64).to(dtype).contiguous(memory_format=torch.channels_last)  # n pixels, n channels
    w = torch.randn(n, n, 1, 1).to(dtype).contiguous(memory_format=torch.channels_last)

    def best(fn) -> float:
        fn()
        top, t_end = 0.0, time.perf_counter() + seconds
        while time.perf_counter() < t_end:
            t0 = time.perf_counter()
            fn()
            top = max(top, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
        return top

    with torch.inference_mode():
        res = {"mm": best(lambda: a @ b), "onednn": best(lambda: torch.nn.functional.conv2d(x, w))}
    return {**res, "peak": max(res.values())}


def run_cpu_case(name: str, frames: int, variant: str, threads: int | None, repeat: int, layout: str) -> dict:
    """One case in this process (``VIDEO2GS_ATTENTION_3D`` was set by the parent for ``before-*``)."""
    if threads:
        torch.set_num_threads(threads)
    stage, dname = variant.split("-")
    dtype = DTYPES[dname]
    model = _random_model(name, "cpu", dtype)
    fmt = {"nchw": torch.contiguous_format, "cl": torch.channels_last}.get(layout)
    if fmt is None:  # "auto": as shipped before (NCHW) or as compute.py decides now
        fmt = torch.contiguous_format if stage == "before" else compute.memory_format("cpu", dtype)
    model.set_memory_format(fmt)
    cfg = model.config
    x = torch.randn(1, frames * cfg.num_input_views, 9, cfg.input_size, cfg.input_size)
    with torch.inference_mode():  # warm-up: one single-frame pass (kernel selection, allocator)
        model(x[:, : cfg.num_input_views])
    rss_before = _proc_status("VmRSS")
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model(x)
        times.append(time.perf_counter() - t0)
        assert out.shape == (frames, cfg.gaussians_per_frame, 14)
        del out
    flops = forward_flops(cfg, frames)["total"]
    sec = statistics.median(times)
    return {
        "seconds": sec,
        "min": min(times),
        "max": max(times),
        "threads": torch.get_num_threads(),
        "channels_last": fmt == torch.channels_last,
        "rss_before_mib": rss_before / 2**20,
        "peak_rss_mib": _proc_status("VmHWM") / 2**20,
        "gflop": flops / 1e9,
        "gflops_per_s": flops / sec / 1e9,
    }


def cpu_main(args) -> None:
    cap = compute.cpu_bf16()
    threads = args.threads or torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", args.omp_wait_policy)
    cmd = [sys.executable, __file__, "--_peak"] + (["--threads", str(args.threads)] if args.threads else [])
    peaks = json.loads(subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout.splitlines()[-1])
    print(
        f"# L4GM forward on CPU, random weights, torch {torch.__version__}, {threads} threads, ISA {cap.capability}, "
        f"amx_bf16={cap.amx_bf16} avx512_bf16={cap.avx512_bf16}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', args.omp_wait_policy)}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        "# matmul peak, 2048³, best of ~2 s (torch.mm | same GEMM as a oneDNN 1x1 conv): "
        + ", ".join(f"{d} {p['mm']:.0f} | {p['onednn']:.0f} GFLOP/s" for d, p in peaks.items())
    )
    print(f"# seconds: median of {args.repeat} calls [min-max]; one subprocess per case")
    print(f"{'config':>6} {'T':>3} {'variant':>12} {'CL':>3} {'seconds':>9} {'[min-max]':>15} {'GFLOP':>8} {'GFLOP/s':>8} {'of peak':>8} {'peak RSS':>10}")
    peak_rss: dict[tuple[str, str, int], float] = {}
    for name in args.configs:
        for t in sorted(args.frames):
            for variant in args.variants:
                if variant.startswith("before") and t not in args.before_frames:
                    continue  # the old path is minutes per call at large T: compared at --before-frames only
                known = {tt: peak_rss[(name, variant, tt)] for tt in (1, 4) if (name, variant, tt) in peak_rss}
                if t > 4 and len(known) == 2:
                    predicted = known[4] + (known[4] - known[1]) * (t - 4) / 3  # MiB, linear in T
                    avail = _mem_available() / 2**20
                    if predicted > 0.85 * avail:
                        print(f"{name:>6} {t:>3} {variant:>12}  skipped: predicted peak RSS {predicted / 1024:.1f} GiB > 85 % of the {avail / 1024:.1f} GiB available")
                        continue
                env["VIDEO2GS_ATTENTION_3D"] = "1" if variant.startswith("before") else "0"
                cmd = [sys.executable, __file__, "--_case", name, str(t), variant, "--repeat", str(args.repeat), "--layout", args.layout]
                if args.threads:
                    cmd += ["--threads", str(args.threads)]
                res = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if res.returncode != 0:
                    why = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"
                    print(f"{name:>6} {t:>3} {variant:>12}  FAILED: {why}", flush=True)
                    continue
                r = json.loads(res.stdout.strip().splitlines()[-1])
                peak_rss[(name, variant, t)] = r["peak_rss_mib"]
                frac = r["gflops_per_s"] / peaks[variant.split("-")[1]]["peak"]
                print(
                    f"{name:>6} {t:>3} {variant:>12} {'y' if r['channels_last'] else 'n':>3} {r['seconds']:>9.2f} "
                    f"{'[' + format(r['min'], '.2f') + '-' + format(r['max'], '.2f') + ']':>15} {r['gflop']:>8.0f} "
                    f"{r['gflops_per_s']:>8.1f} {frac:>8.1%} {r['peak_rss_mib']:>6.0f} MiB",
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
        if args.channels_last:  # NHWC weights and input: every conv (and what follows) runs channels-last
            model.set_memory_format(torch.channels_last)
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
    p.add_argument("--configs", nargs="+", default=None, help="configs: micro (64², as in the tests) tiny small big (default: all on CPU, big on CUDA)")
    p.add_argument("--frames", nargs="+", type=int, default=None, help="frames T per call (default: 1 4 16)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS, help="CPU variants (default: all four)")
    p.add_argument("--before-frames", nargs="+", type=int, default=[1, 4], help="T at which before-* variants run (default: 1 4)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    p.add_argument(
        "--omp-wait-policy", default="PASSIVE", choices=["PASSIVE", "ACTIVE"],
        help="OMP_WAIT_POLICY of the measured subprocesses unless already set (PASSIVE: OpenMP threads sleep "
        "instead of spinning; on a shared, oversubscribed CPU spinning made 2-thread calls 5-20x slower)",
    )
    p.add_argument("--layout", default="auto", choices=["auto", "nchw", "cl"], help="CPU: force a memory format (default: per variant)")
    p.add_argument("--cuda", action="store_true", help="benchmark on CUDA instead (default big, T=16, bf16)")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"], help="CUDA dtype")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="dense peak of the GPU in this dtype (H100 SXM bf16: 989)")
    p.add_argument("--warmup", type=int, default=2, help="CUDA warm-up calls")
    p.add_argument("--repeat", type=int, default=3, help="timed calls per case (CPU: median; CUDA: best)")
    p.add_argument("--compile", action="store_true", help="CUDA: torch.compile the network")
    p.add_argument("--channels-last", action="store_true", help="CUDA: channels-last (NHWC) weights")
    p.add_argument("--_case", nargs=3, help=argparse.SUPPRESS)
    p.add_argument("--_peak", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--_dry-run-on-cpu", dest="dry_run_on_cpu", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._peak:
        if args.threads:
            torch.set_num_threads(args.threads)
        print(json.dumps({d: matmul_peak(DTYPES[d]) for d in ("fp32", "bf16")}))
    elif args._case:
        print(json.dumps(run_cpu_case(args._case[0], int(args._case[1]), args._case[2], args.threads, args.repeat, args.layout)))
    elif args.cuda:
        args.configs = args.configs or ["big"]
        cuda_main(args)
    else:
        args.configs = args.configs or ["micro", "tiny", "small", "big"]
        args.frames = args.frames or [1, 4, 16]
        cpu_main(args)


if __name__ == "__main__":
    main()
