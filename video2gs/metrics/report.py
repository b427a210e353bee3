"""What ``evaluate`` writes and prints: metrics.json, the per-frame CSV, the comparison grid PNG
(ground truth above, each method below it, per evaluated frame) and the rich summary table."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import cv2

from video2gs import __version__
from video2gs.fileio import atomic_path, write_bytes_atomic, write_json_atomic
from video2gs.metrics.evaluate import HIGHER_IS_BETTER, Evaluation

METRICS_FILE = "metrics.json"
GRID_FILE = "comparison.png"
SCHEMA_VERSION = 1
_HEADERS = {"psnr": "PSNR", "ssim": "SSIM", "lpips_vgg": "LPIPS-V", "lpips_alex": "LPIPS-A",
            "mask_iou": "IoU", "clip_similarity": "CLIP"}


def write_metrics(path: Path, ev: Evaluation, extra: dict | None = None) -> Path:
    """metrics.json (atomic): schema_version, tool, the inputs, then :meth:`Evaluation.to_json`."""
    obj = {"schema_version": SCHEMA_VERSION, "tool": {"name": "video2gs", "version": __version__}, **(extra or {}),
           **ev.to_json()}
    write_json_atomic(path, obj)
    return path


def write_csv(path: Path, ev: Evaluation) -> Path:
    """One row per (method, frame, input/novel): means over that frame's views, plus its Chamfer."""
    rows = ev.csv_rows()
    fields = ["method", "frame", "time", "source_frame", "role", "views", *ev.metrics, "chamfer"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r[k]) for k in fields})
    write_bytes_atomic(path, buf.getvalue().encode())
    return path


def write_grid(path: Path, ev: Evaluation) -> Path | None:
    """The comparison grid [rows of views] as PNG; None when nothing was rendered."""
    if ev.grid is None:
        return None
    ok, buf = cv2.imencode(".png", ev.grid[..., ::-1])
    if not ok:  # pragma: no cover - cv2 encodes any uint8 image
        raise RuntimeError("cannot encode the comparison grid")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())
    return path


def _fmt(metric: str, value) -> str:
    if value is None:
        return "-"
    if value != value:  # NaN
        return "-"
    if metric == "psnr":
        return f"{value:.2f}"
    return f"{value:.4f}" if metric.startswith("lpips") or metric == "chamfer" else f"{value:.3f}"


def summary_table(ev: Evaluation):
    """A rich Table of the image metrics: one row per method and view group (input / novel)."""
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False, header_style="bold", caption="PSNR in dB; ↑ higher is better, ↓ lower")
    table.add_column("method", no_wrap=True)
    table.add_column("views", no_wrap=True)
    for c in ev.metrics:
        table.add_column(_HEADERS[c] + ("↑" if HIGHER_IS_BETTER[c] else "↓"), justify="right", no_wrap=True)
    for m in ev.methods:
        s = ev.summary(m)
        first = True
        for role in ("input", "novel"):
            if s[role]["images"]:
                table.add_row(m if first else "", f"{role} ×{s[role]['images']}", *[_fmt(c, s[role].get(c)) for c in ev.metrics])
                first = False
    return table


def geometry_table(ev: Evaluation):
    """A rich Table of the geometry numbers per method (None without ground-truth Gaussians)."""
    from rich.table import Table

    if not any(ev.geometry.get(m) for m in ev.methods):
        return None
    table = Table(show_edge=False, pad_edge=False, header_style="bold",
                  caption="object units (largest bounding-box side = 1); motion = Chamfer between consecutive frames")
    for c in ("method", "Chamfer↓", "pred→gt", "gt→pred", "t-err↓", "motion", "gt motion"):
        table.add_column(c, justify="left" if c == "method" else "right", no_wrap=True)
    keys = ("chamfer", "pred_to_gt", "gt_to_pred", "temporal_error", "pred_motion", "gt_motion")
    for m in ev.methods:
        g = ev.geometry.get(m) or {}
        table.add_row(m, *[_fmt("chamfer", g.get(k)) for k in keys])
    return table


def per_view_table(ev: Evaluation, method: str):
    """A rich Table of one method's per-view means (elevation positive = camera above)."""
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False, header_style="bold", title=f"{method}: per view")
    for c in ("view", "role", "elev°", "azim°"):
        table.add_column(c, justify="right")
    for c in ev.metrics:
        table.add_column(_HEADERS[c], justify="right")
    for r in ev.per_view(method):
        table.add_row(str(r["view"]), r["role"], f"{r['elevation']:.1f}", f"{r['azimuth']:.1f}",
                      *[_fmt(c, r.get(c)) for c in ev.metrics])
    return table
