"""bf16 against fp32 on a trained model: how far apart are the two outputs, and how much faster is bf16?

For every clip of a `data make` folder (default: its test split) the model reconstructs the clip's
input view (all frames, one chunk, the side views the model was trained with) once in fp32 and once
in bf16 on the CPU; both Gaussian sets are rendered from 8 cameras around the object (elevation 0
and 20°) and compared: PSNR of the bf16 renders against the fp32 ones (the fp32 output as the
reference), and the seconds of each network call (median of --repeat). Prints one line per clip
and the means. For the bundled model:

    python benchmarks/precision_trained.py /data/test128 --model demo

Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch


def load_clip_frames(clip: Path, size: int) -> torch.Tensor:
    """The clip's input view 0, every frame, [T, 3, size, size] in [0, 1] on white."""
    from video2gs.data.layout import open_clip
    from video2gs.images import to_chw

    c = open_clip(clip)
    view = c.meta.get("input_view", 0)
    return torch.stack([to_chw(c.image(view, t), size) for t in range(c.num_frames)])


def network_frames(front: torch.Tensor, side_views: str) -> torch.Tensor:
    """[T, 3, H, W] -> the [T, 4, 3, H, W] input the model saw in training (mirror or blank sides)."""
    from video2gs.reconstructor import mirror_side_views

    if side_views == "mirror":
        sides = mirror_side_views(front)
    else:
        sides = torch.ones(front.shape[0], 3, *front.shape[1:])
    return torch.cat([front[:, None], sides], dim=1)


def renders(gaussians, size: int = 128) -> torch.Tensor:
    """Each frame's Gaussians (a [T, G, 14] tensor or a list of frames) on white from 8 cameras around
    the object (azimuth 0/90/180/270 at elevation 0, 45/135/225/315 at 20°) -> [T, 8, size, size, 3]."""
    from video2gs.camera import Cameras, orbit_cameras
    from video2gs.render import render

    cams = Cameras(torch.cat([orbit_cameras([0, 90, 180, 270], 0.0), orbit_cameras([45, 135, 225, 315], 20.0)]))
    with torch.no_grad():
        return torch.stack([render(g, cams, size, size, background=(1.0, 1.0, 1.0)).rgb for g in gaussians])


def render_psnr(test: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """PSNR [T] of renders ``test`` against ``ref`` (both [T, V, H, W, 3]), over each frame's V views."""
    from video2gs.metrics.image import psnr

    T, V = ref.shape[:2]
    nchw = lambda x: x.flatten(0, 1).permute(0, 3, 1, 2).clamp(0, 1)  # noqa: E731
    return psnr(nchw(test), nchw(ref)).reshape(T, V).mean(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--model", default="demo", help="registry name or .safetensors path")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from video2gs import compute, weights
    from video2gs.reconstructor import Reconstructor

    path = weights.resolve(args.model, download=False)
    models = {d: Reconstructor.from_file(path, device="cpu", dtype=d) for d in ("fp32", "bf16")}
    side = models["fp32"].side_views
    size = models["fp32"].config.input_size
    index = json.loads((args.dataset / "dataset.json").read_text())
    clips = [args.dataset / c["name"] for c in index["clips"] if args.split == "all" or c["split"] == args.split]
    cap = compute.cpu_bf16()
    print(f"model {path.name} ({side} side views), CPU amx_bf16={cap.amx_bf16} avx512_bf16={cap.avx512_bf16}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'clip':18s} {'T':>3s} {'fp32 s':>8s} {'bf16 s':>8s} {'speed-up':>8s} {'render PSNR bf16 vs fp32':>25s}")
    rows = []
    for clip in clips:
        x = network_frames(load_clip_frames(clip, size), side)
        out, secs = {}, {}
        for d, recon in models.items():
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                out[d] = recon(x)
                times.append(time.perf_counter() - t0)
            secs[d] = statistics.median(times)
        ref, low = renders(out["fp32"]), renders(out["bf16"])
        p = float(render_psnr(low, ref).mean())
        rows.append({"clip": clip.name, "frames": x.shape[0], "fp32_s": secs["fp32"], "bf16_s": secs["bf16"], "psnr": p})
        print(f"{clip.name:18s} {x.shape[0]:3d} {secs['fp32']:8.2f} {secs['bf16']:8.2f} {secs['fp32'] / secs['bf16']:7.2f}x {p:25.2f}")
    mean = {k: statistics.mean(r[k] for r in rows) for k in ("fp32_s", "bf16_s", "psnr")}
    print(f"{'mean (' + str(len(rows)) + ')':18s} {'':3s} {mean['fp32_s']:8.2f} {mean['bf16_s']:8.2f} "
          f"{mean['fp32_s'] / mean['bf16_s']:7.2f}x {mean['psnr']:25.2f}")
    if args.json:
        args.json.write_text(json.dumps({"model": str(path), "rows": rows, "mean": mean}, indent=1))


if __name__ == "__main__":
    main()
