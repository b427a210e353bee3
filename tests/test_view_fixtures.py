"""Small sequences for the viewer and export tests (imported by test_view*.py / test_export*.py),
made from a shared 10k-splat object turned per frame, plus checks of the helpers themselves."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import DATA
from video2gs.camera import Cameras
from video2gs.formats import load_gaussians
from video2gs.gaussians import Gaussians
from video2gs.sequence import frame_entries, write_frame, write_manifest

OBJECT = DATA / "splats" / "spot.splat"  # CC0, 10,000 splats, −Y up
SIZE = 0.8  # longest side after scaling: well inside the front camera's view


def need_object() -> Path:
    if not OBJECT.is_file():
        pytest.skip(f"shared splat object not found at {OBJECT} (../shared/data/splats)")
    return OBJECT


def turn_y(degrees: float) -> torch.Tensor:
    a = math.radians(degrees)
    return torch.tensor([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])


def frame(obj: Gaussians, degrees: float) -> Gaussians:
    """The object (internal +Y-up frame) turned about +Y by ``degrees`` and scaled to SIZE."""
    return obj.transform(turn_y(degrees), scale=SIZE)


def front_render(g: Gaussians, width: int, height: int, background=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Our own render [H,W,3] float in [0,1] of the front camera (numba), the viewers' first view."""
    from video2gs.render import render

    with torch.no_grad():
        out = render(g, Cameras.orbit([0.0]), width, height, background=background, backend="numba")
    return out.rgb[0].numpy()


def make_output(root: Path, frames: int = 4, step: float = 40.0, x3: bool = True, inputs: bool = True, fps: float = 10.0) -> Path:
    """A reconstructed-like output folder: manifest, gaussians/ (frame i turned by i·step°),
    gaussians_x3/ ((frames−1)·3+1 frames, turned by −j·step/3° so it differs visibly from the key
    frames) and input/*.png (front renders, RGBA 64²)."""
    import cv2

    obj = load_gaussians(need_object())
    root.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        g = frame(obj, i * step)
        write_frame(root, i, g)
        if inputs:
            from video2gs.render import render

            with torch.no_grad():
                out = render(g, Cameras.orbit([0.0]), 64, 64, background=(1.0, 1.0, 1.0), backend="numba")
            rgba = np.concatenate([out.rgb[0].numpy(), out.alpha[0].numpy()], axis=-1)
            (root / "input").mkdir(exist_ok=True)
            bgra = cv2.cvtColor((rgba * 255).round().astype(np.uint8), cv2.COLOR_RGBA2BGRA)
            cv2.imwrite(str(root / "input" / f"{i:06d}.png"), bgra)
    manifest = {"fps": fps, "up": "-y", "frames": frame_entries(frames, fps), "source": {"kind": "test"}}
    if x3:
        n3 = (frames - 1) * 3 + 1
        for j in range(n3):
            write_frame(root, j, frame(obj, -j * step / 3), subdir="gaussians_x3")
        manifest["x3"] = {"fps": fps * 3, "frames": frame_entries(n3, fps * 3, "gaussians_x3")}
    write_manifest(root, manifest)
    return root


def silhouette(rgb: np.ndarray, background, tol: float = 0.08) -> np.ndarray:
    """Pixels [H,W] whose colour differs from the background by more than ``tol`` in some channel."""
    return (np.abs(rgb[..., :3] - np.asarray(background, dtype=np.float32)) > tol).any(-1)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_make_output_is_a_sequence(tmp_path):
    from video2gs.viewer.source import Source

    src = Source.open(make_output(tmp_path / "out", frames=3))
    assert list(src.sequences) == ["gaussians", "gaussians_x3"]
    assert len(src.sequences["gaussians"]) == 3 and len(src.sequences["gaussians_x3"]) == 7
    assert src.sequences["gaussians_x3"].fps == 30.0 and len(src.inputs) == 3
    # Same time -> same input frame: x3 frame 3 is key frame 1.
    assert src.input_index("gaussians_x3", 3) == 1 and src.input_index("gaussians", 2) == 2


def test_silhouette_iou_helpers():
    a = np.zeros((4, 4, 3), np.float32)
    a[:2] = 1.0
    s = silhouette(a, (0, 0, 0))
    assert s.sum() == 8 and iou(s, s) == 1.0 and iou(s, ~s) == 0.0
