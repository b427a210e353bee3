"""What a run writes besides checkpoints: ``metrics.jsonl``, TensorBoard events, grid PNGs.

``metrics.jsonl`` has one JSON object per line: ``{"step", "split": "train", "loss", "mse_rgb",
"mse_alpha", "lpips", "psnr", "lr", "steps_per_s", "skipped", "time"}`` (train terms are means over
the steps since the previous line) and ``{"step", "split": "val", "input": {...}, "novel": {...}}``
(see :mod:`video2gs.train.validate`). A resumed run appends; lines past the resumed step are
dropped first, so the file reads like one uninterrupted run.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from video2gs.fileio import write_bytes_atomic

METRICS_FILE, GRID_DIR, TB_DIR = "metrics.jsonl", "grids", "tensorboard"


def truncate_after(path: Path, step: int) -> None:
    """Drop lines of ``metrics.jsonl`` logged after ``step`` (a resumed run redoes those steps)."""
    if not path.is_file():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= step]
    write_bytes_atomic(path, ("\n".join(keep) + "\n" if keep else "").encode())


class RunLog:
    """Appends metric lines; mirrors scalars to TensorBoard when it is installed and wanted."""

    def __init__(self, run: Path, tensorboard: bool = True):
        self.path = Path(run) / METRICS_FILE
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the optional extra is not installed
                pass
            else:
                self.writer = SummaryWriter(str(Path(run) / TB_DIR))

    def write(self, record: dict) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.writer is not None:
            prefix = record.get("split", "train")
            for key, value in _scalars(record):
                self.writer.add_scalar(f"{prefix}/{key}", value, record["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _scalars(record: dict, prefix: str = ""):
    for k, v in record.items():
        if k in ("step", "split"):
            continue
        if isinstance(v, dict):
            yield from _scalars(v, f"{prefix}{k}/")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield f"{prefix}{k}", float(v)


def write_grid(path: Path, pred: torch.Tensor, gt: torch.Tensor, views: int, max_frames: int = 2, max_views: int = 8) -> Path:
    """Predictions under ground truth: pred, gt [N, 3, H, W] frame-major with ``views`` per frame ->
    a PNG with, per shown frame, a row of ground truth and a row of predictions."""
    frames = pred.shape[0] // views
    shown = sorted({0, frames - 1})[:max_frames]
    rows = []
    for f in shown:
        for src in (gt, pred):
            imgs = src[f * views: f * views + min(views, max_views)].detach().float().clamp(0, 1)
            rows.append(torch.cat(list(imgs), dim=2))  # [3, H, V·W]
    grid = (torch.cat(rows, dim=1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    ok, data = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    write_bytes_atomic(Path(path), data.tobytes())
    return Path(path)
