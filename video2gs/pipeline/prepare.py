"""Stage 1, prepare: decode (streaming) -> segment -> one crop for the clip -> ``input/*.png``.

Two streaming passes over the source so memory stays bounded by one frame: pass 1 segments each
frame, stores its mask as a PNG under ``work/masks`` and collects the clip's union box; pass 2
decodes again and writes the crops (RGBA 256², RGB composited on white, A = mask).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from video2gs.errors import UserError
from video2gs.fileio import ensure_writable_dir
from video2gs.images import read_mask, write_png
from video2gs.pipeline.run_folder import RunFolder
from video2gs.progress import Reporter

IMAGE_SIZE = 256  # what the model sees; input/*.png and views/*.png are stored at this size


def prepare_frames(src, segmenter, run: RunFolder, rep: Reporter, *, border_ratio: float, input_path: str) -> dict:
    """Write ``input/000000.png …`` for every selected frame of ``src`` (a :class:`FrameSource`).

    Returns the manifest's ``source`` record (sizes, rates, frame times, segmentation, crop).
    """
    from video2gs.preprocess.crop import ClipCrop, mask_box

    info = src.info
    masks_dir = ensure_writable_dir(run.work / "masks")
    boxes, times = [], []
    with rep.stage("segment", len(src)) as st:
        for frame in src.frames():
            mask = segmenter(frame.image)  # [H,W] uint8 {0,255}
            write_png(masks_dir / f"{frame.index:06d}.png", mask)
            boxes.append(mask_box(mask))
            times.append(frame.time)
            st.advance()
    if not times:
        raise UserError(f"{input_path}: no decodable frame")
    found = [b for b in boxes if b is not None]
    if not found:
        raise UserError(
            f"{input_path}: no object found in any frame with --segment {segmenter.name} "
            "(try another --segment method, or --segment none for frames already on white)"
        )
    if len(found) < len(boxes):
        rep.warn(f"no object found in {len(boxes) - len(found)} of {len(boxes)} frames; they stay blank")
    crop = ClipCrop.from_boxes(found, (info.width, info.height), border_ratio=border_ratio, size=IMAGE_SIZE, method=segmenter.name)
    with rep.stage("crop", len(times)) as st:
        for frame in src.frames():
            if frame.index >= len(times):
                break
            mask = read_mask(masks_dir / f"{frame.index:06d}.png")
            write_png(run.input_png(frame.index), crop.apply(frame.image, mask))
            st.advance()
    shutil.rmtree(masks_dir, ignore_errors=True)
    return {
        "path": str(Path(input_path).resolve()),
        "bytes": file_size(input_path),
        "kind": info.kind,
        "width": info.width,
        "height": info.height,
        "fps": round(info.source_fps, 6),
        "variable_rate": info.variable_rate,
        "frames": info.frame_count,
        "frames_used": len(times),
        "times": [round(t, 6) for t in times],
        "crop": crop.to_dict(),
    }


def file_size(path: str) -> int | None:
    p = Path(path)
    return p.stat().st_size if p.is_file() else None
