"""`video2gs reconstruct` end to end in fp32 against `--dtype auto`: how much faster, how far apart.

Runs the real command on a video (one process per run, fp32 and auto alternating, --repeat pairs),
prints the wall time and the manifest's per-stage seconds of each (median over the pairs), the
speed-up, what `auto` resolved to (the manifest's `compute`), and how far the two runs' PLYs are
apart: every frame's Gaussians rendered from 8 cameras (elevation 0 and 20°, 256 px, on white),
PSNR of the auto renders against the fp32 ones, per frame, mean and minimum. For the bundled model
on the shared box video:

    python benchmarks/reconstruct_dtype.py ../shared/data/videos/box.mp4 --model demo --repeat 3

Nothing is asserted; the tolerance that a test holds is in tests/test_l4gm_precision.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from precision_trained import render_psnr, renders  # one camera rig and PSNR for both precision benchmarks


def run(video: Path, out: Path, dtype: str, model: str, extra: list[str]) -> dict:
    args = [sys.executable, "-m", "video2gs", "reconstruct", str(video), "-o", str(out), "--model", model,
            "--dtype", dtype, "--views", "none", "--no-interpolate", "--no-render", "--quiet", "--overwrite", *extra]
    t0 = time.perf_counter()
    subprocess.run(args, check=True)
    wall = time.perf_counter() - t0
    m = json.loads((out / "manifest.json").read_text())
    return {"wall": wall, "timings": m.get("timings", {}), "compute": m.get("compute", {})}


def frame_renders(folder: Path, size: int = 256) -> torch.Tensor:
    """The run's PLYs, in frame order, rendered as precision_trained.py renders them: [T, 8, size, size, 3]."""
    from video2gs.formats import load_gaussians

    return renders([load_gaussians(ply) for ply in sorted((folder / "gaussians").glob("*.ply"))], size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--model", default="demo", help="registry name or .safetensors path")
    ap.add_argument("--repeat", type=int, default=3, help="pairs of runs (fp32, auto)")
    ap.add_argument("--max-frames", type=int, default=0, help="limit the frames (0 = all)")
    a = ap.parse_args()

    extra = ["--max-frames", str(a.max_frames)] if a.max_frames else []
    runs: dict[str, list[dict]] = {"fp32": [], "auto": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for _ in range(a.repeat):
            for dtype in ("fp32", "auto"):
                runs[dtype].append(run(a.video, tmp / dtype, dtype, a.model, extra))
        ref, test = frame_renders(tmp / "fp32"), frame_renders(tmp / "auto")
    stages = sorted({k for r in runs["fp32"] + runs["auto"] for k in r["timings"] if k != "total"})
    med = {d: {"wall": statistics.median(r["wall"] for r in rs),
               **{k: statistics.median(r["timings"].get(k, 0.0) for r in rs) for k in stages}} for d, rs in runs.items()}
    print(f"video {a.video.name}, model {a.model}, {len(ref)} frames, median of {a.repeat} paired runs")
    print(f"auto ran as: {runs['auto'][0]['compute']}; fp32 as: {runs['fp32'][0]['compute']}")
    print(f"{'':>6} {'wall s':>8} " + " ".join(f"{k:>12}" for k in stages))
    for d in ("fp32", "auto"):
        print(f"{d:>6} {med[d]['wall']:>8.2f} " + " ".join(f"{med[d][k]:>12.2f}" for k in stages))
    print(f"speed-up end to end: {med['fp32']['wall'] / med['auto']['wall']:.2f}x"
          + "".join(f"; {k} {med['fp32'][k] / med['auto'][k]:.2f}x" for k in stages if med["auto"][k] > 0.05))
    if len(ref) != len(test):
        print(f"PLY counts differ: fp32 {len(ref)}, auto {len(test)}")
        return
    scores = render_psnr(test, ref).tolist()
    print("render PSNR auto vs fp32 per frame (dB): " + " ".join(f"{s:.1f}" for s in scores))
    print(f"mean {statistics.mean(scores):.1f} dB, min {min(scores):.1f} dB")


if __name__ == "__main__":
    main()
