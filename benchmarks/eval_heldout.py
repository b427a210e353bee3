"""Quality of a reconstruction model on held-out clips, measured with `video2gs evaluate`.

For every clip of a `data make` folder (default: its whole `test` split): `video2gs reconstruct
CLIP/input.mp4 --model MODEL --views none [--refine STEPS]` as a user would run it (default
segmentation, the input crop), then `video2gs evaluate OUT --gt CLIP --baseline billboard --lpips
vgg`; prints one line per clip (input-view PSNR, novel-view PSNR / LPIPS-VGG / mask IoU for the
model and the billboard baseline) and the means, and writes them to --json. For a model trained
with the `demo` preset:

    VIDEO2GS_MODEL_LPIPS_VGG=../shared/data/lpips/lpips_vgg_v0.1.safetensors \\
        python benchmarks/eval_heldout.py /data/test128 --model demo --work /tmp/heldout --json heldout.json

Nothing is asserted; it takes about a minute per clip on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def _video2gs(*args: str) -> None:
    cmd = [sys.executable, "-m", "video2gs", *args]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{res.stderr[-3000:]}")


def clips_of(dataset: Path, split: str) -> list[Path]:
    index = json.loads((dataset / "dataset.json").read_text())
    return [dataset / c["name"] for c in index["clips"] if split == "all" or c["split"] == split]


def evaluate_clip(clip: Path, model: str, work: Path, dtype: str, lpips: str, refine: int = 0) -> dict:
    out = work / clip.name
    t0 = time.perf_counter()
    _video2gs("reconstruct", str(clip / "input.mp4"), "-o", str(out), "--model", model, "--views", "none",
              "--no-render", "--no-interpolate", "--dtype", dtype, "--refine", str(refine), "--overwrite", "--quiet")
    t_rec = time.perf_counter() - t0
    _video2gs("evaluate", str(out), "--gt", str(clip), "--baseline", "billboard", "--lpips", lpips, "--quiet")
    metrics = json.loads((out / "metrics.json").read_text())["methods"]
    lp = f"lpips_{lpips}" if lpips != "none" else None

    def pick(method: str, part: str) -> dict:
        s = metrics[method]["summary"][part]
        return {"psnr": s["psnr"], "lpips": s.get(lp) if lp else None, "iou": s["mask_iou"]}

    return {"clip": clip.name, "reconstruct_s": round(t_rec, 1),
            "model": {"input": pick("pred", "input"), "novel": pick("pred", "novel")},
            "billboard": {"input": pick("billboard", "input"), "novel": pick("billboard", "novel")}}


def _mean(rows: list[dict], *path: str) -> float:
    vals = []
    for r in rows:
        v = r
        for p in path:
            v = v[p]
        if v is not None:
            vals.append(v)
    return sum(vals) / len(vals) if vals else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", type=Path, help="a `video2gs data make` folder")
    ap.add_argument("--split", default="test", help="split to evaluate (train, val, test or all)")
    ap.add_argument("--clips", nargs="*", help="only these clip names")
    ap.add_argument("--model", default="demo", help="registry name or .safetensors path")
    ap.add_argument("--dtype", default="auto", help="network precision (auto as reconstruct)")
    ap.add_argument("--lpips", default="vgg", choices=["vgg", "alex", "none"])
    ap.add_argument("--refine", type=int, default=0, help="reconstruct --refine STEPS (0 = off)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/video2gs-heldout"))
    ap.add_argument("--json", type=Path, help="write the rows and means here")
    args = ap.parse_args()
    clips = clips_of(args.dataset, args.split)
    if args.clips:
        clips = [c for c in clips if c.name in set(args.clips)]
    if not clips:
        raise SystemExit(f"no clips in split {args.split!r} of {args.dataset}")
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"model {args.model}, refine {args.refine}, {len(clips)} clips, load {os.getloadavg()[0]:.1f}")
    print(f"{'clip':18s} {'in PSNR':>8s} | {'novel PSNR':>10s} {'LPIPS':>6s} {'IoU':>5s} | "
          f"{'billboard PSNR':>14s} {'LPIPS':>6s} {'IoU':>5s}")
    rows = []
    for clip in clips:
        r = evaluate_clip(clip, args.model, args.work, args.dtype, args.lpips, args.refine)
        rows.append(r)
        m, b = r["model"], r["billboard"]
        print(f"{r['clip']:18s} {m['input']['psnr']:8.2f} | {m['novel']['psnr']:10.2f} {m['novel']['lpips'] or 0:6.3f} "
              f"{m['novel']['iou']:5.3f} | {b['novel']['psnr']:14.2f} {b['novel']['lpips'] or 0:6.3f} {b['novel']['iou']:5.3f}",
              flush=True)
    means = {k: _mean(rows, *k.split(".")) for k in (
        "model.input.psnr", "model.novel.psnr", "model.novel.lpips", "model.novel.iou",
        "billboard.input.psnr", "billboard.novel.psnr", "billboard.novel.lpips", "billboard.novel.iou")}
    print(f"{'mean':18s} {means['model.input.psnr']:8.2f} | {means['model.novel.psnr']:10.2f} "
          f"{means['model.novel.lpips']:6.3f} {means['model.novel.iou']:5.3f} | {means['billboard.novel.psnr']:14.2f} "
          f"{means['billboard.novel.lpips']:6.3f} {means['billboard.novel.iou']:5.3f}")
    print(f"novel PSNR over billboard: {means['model.novel.psnr'] - means['billboard.novel.psnr']:+.2f} dB; "
          f"LPIPS {means['model.novel.lpips'] - means['billboard.novel.lpips']:+.3f}")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "dtype": args.dtype, "refine": args.refine, "rows": rows,
                                         "means": means}, indent=1))


if __name__ == "__main__":
    main()
