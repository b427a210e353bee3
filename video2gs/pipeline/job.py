"""``video2gs reconstruct`` and ``video2gs interpolate`` as stages over one output folder.

Stages (each records its completion in ``manifest.json`` so ``--resume`` can skip it):
  1. prepare      decode (streaming) -> segment -> one crop for the clip -> ``input/*.png``
  2. views        views 1..3 of frame 0 (ImageDream + alignment, the user's, or blank) -> ``views/``
  3. reconstruct  chunked L4GM -> ``gaussians/*.ply`` (resumable per chunk)
  4. interpolate  x3 model over key pairs -> ``gaussians_x3/*.ply`` (resumable per pair)
  5. render       ``videos/orbit.mp4``, ``fixed.mp4`` (and ``_x3``)

This module composes the others; it holds no maths of its own.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from video2gs.errors import UserError
from video2gs.fileio import atomic_path, ensure_writable_dir
from video2gs.gaussians import PRUNE_OPACITY
from video2gs.pipeline import multiview
from video2gs.pipeline.chunks import interpolated_count, plan_chunks, plan_pairs
from video2gs.pipeline.reconstruct import interpolate_pairs, reconstruct_chunks
from video2gs.progress import Reporter
from video2gs.sequence import MANIFEST, Sequence, frame_entries, read_manifest, write_frame, write_manifest

INPUT_DIR, VIEWS_DIR, KEYS_DIR, X3_DIR, VIDEOS_DIR, WORK_DIR = "input", "views", "gaussians", "gaussians_x3", "videos", ".work"
OWNED = (MANIFEST, INPUT_DIR, VIEWS_DIR, KEYS_DIR, X3_DIR, VIDEOS_DIR, WORK_DIR)
IMAGE_SIZE = 256  # what the model sees; input/*.png and views/*.png are stored at this size
PLY_FRAME_NOTE = {
    "-y": "PLY files are in the OpenCV/COLMAP frame (-Y up, camera looks along +Z), as SuperSplat/Spark/gsplat.js expect",
    "y": "PLY files are in L4GM's frame (+Y up, front toward +Z)",
}

# Options whose change alters results: --resume refuses to continue a run made with others.
_RESULT_OPTIONS = (
    "fps", "start", "end", "max_frames", "segment", "segment_model", "border_ratio", "views", "prompt",
    "negative_prompt", "guidance", "steps", "elevation", "align_step", "chunk", "model", "seed", "dtype", "up",
    "min_opacity",
)


@dataclass
class ReconstructOptions:
    """Every option of ``video2gs reconstruct`` (recorded verbatim in the manifest)."""

    input: str
    output: str
    fps: float = 15.0
    start: float | None = None
    end: float | None = None
    max_frames: int | None = None
    segment: str = "auto"
    segment_model: str | None = None
    border_ratio: float = 0.2
    views: str = "auto"  # auto | imagedream | none | a folder
    prompt: str = ""
    negative_prompt: str = ""
    guidance: float = 5.0
    steps: int = 30
    elevation: float = 0.0
    align_step: float = 1.0
    chunk: int = 16
    model: str = "l4gm-recon"
    interp_model: str = "l4gm-interp"
    imagedream_model: str = "imagedream"
    interpolate: bool | None = None  # None: on when the interpolation model is available
    device: str = "auto"
    dtype: str = "auto"
    seed: int = 0
    up: str = "-y"
    min_opacity: float = PRUNE_OPACITY
    render: bool = True
    render_size: int = 512
    backend: str = "auto"
    overwrite: bool = False
    resume: bool = False

    def check(self) -> None:
        if not self.fps > 0:
            raise UserError(f"--fps must be positive, got {self.fps}")
        if self.chunk < 2:
            raise UserError(f"--chunk must be at least 2 (chunks overlap by one frame), got {self.chunk}")
        if not 0.0 <= self.border_ratio < 1.0:
            raise UserError(f"--border-ratio must be in [0, 1), got {self.border_ratio}")
        if self.steps < 1:
            raise UserError(f"--steps must be at least 1, got {self.steps}")
        if not self.align_step > 0:
            raise UserError(f"--align-step must be positive, got {self.align_step}")
        if self.up not in ("-y", "y"):
            raise UserError(f"--up must be '-y' or 'y', got {self.up!r}")
        if self.overwrite and self.resume:
            raise UserError("--overwrite and --resume exclude each other")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise UserError(f"--device: unknown device {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
    return dev


# ---------------------------------------------------------------------------------------------------
# output folder state


@dataclass
class OutputFolder:
    root: Path
    manifest: dict = field(default_factory=dict)

    @property
    def work(self) -> Path:
        return self.root / WORK_DIR

    @property
    def progress(self) -> dict:
        return self.manifest.setdefault("progress", {})

    def save(self) -> None:
        write_manifest(self.root, self.manifest)

    def mark(self, **progress) -> None:
        self.progress.update(progress)
        self.save()

    def input_png(self, i: int) -> Path:
        return self.root / INPUT_DIR / f"{i:06d}.png"


def open_output(opts: ReconstructOptions) -> tuple[OutputFolder, bool]:
    """Create or reopen OUT; returns (folder, resuming). Refuses to mix runs."""
    root = Path(opts.output)
    if root.exists() and not root.is_dir():
        raise UserError(f"output {root} exists and is not a folder")
    existing = read_manifest(root) if root.is_dir() else None
    occupied = root.is_dir() and any(p.name in OWNED for p in root.iterdir())
    if opts.resume:
        if existing is None or existing.get("kind") != "reconstruct":
            raise UserError(f"--resume: {root} holds no video2gs reconstruction to continue")
        changed = [k for k in _RESULT_OPTIONS if existing.get("options", {}).get(k) != getattr(opts, k)]
        src = existing.get("source", {})
        if src.get("path") != str(Path(opts.input).resolve()) or src.get("bytes") != _file_size(opts.input):
            changed.insert(0, "input")
        if changed:
            raise UserError(
                f"--resume: {root} was made with different {', '.join(changed)}; "
                "use the same options, or --overwrite to start again"
            )
        return OutputFolder(ensure_writable_dir(root), existing), True
    if occupied and not opts.overwrite:
        raise UserError(f"{root} already holds a video2gs run (pass --overwrite to replace it, or --resume to continue it)")
    ensure_writable_dir(root, "output folder")
    if opts.overwrite:
        for name in OWNED:
            p = root / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    return OutputFolder(root), False


def _file_size(path: str) -> int | None:
    p = Path(path)
    return p.stat().st_size if p.is_file() else None


# ---------------------------------------------------------------------------------------------------
# images


def read_rgba(path: Path) -> np.ndarray:
    """RGBA [H,W,4] (or RGB [H,W,3]) uint8 from a PNG written by this module."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3:
        raise UserError(f"cannot read {path} (was the output folder modified?)")
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA if img.shape[-1] == 4 else cv2.COLOR_BGR2RGB)


def write_png(path: Path, image: np.ndarray) -> None:
    """uint8 gray [H,W], RGB(A) [H,W,3|4] or float [0,1] -> PNG, atomically."""
    if image.dtype != np.uint8:
        image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if image.shape[-1] == 4 else cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise UserError(f"cannot encode {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.tobytes())


def input_rgb(rgba: np.ndarray) -> np.ndarray:
    """An ``input/*.png`` (RGB already composited on white, alpha = mask) -> RGB float32 [H,W,3]."""
    return rgba[..., :3].astype(np.float32) / 255.0


def on_white(rgba: np.ndarray) -> np.ndarray:
    """RGBA uint8 [H,W,4] -> RGB float32 [H,W,3] composited on white."""
    img = rgba.astype(np.float32) / 255.0
    if img.shape[-1] == 3:
        return img
    a = img[..., 3:]
    return img[..., :3] * a + (1.0 - a)


def to_chw(img: np.ndarray, size: int) -> torch.Tensor:
    """[H,W,3] float -> [3,size,size] (area resize when needed)."""
    if img.shape[0] != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float()


def quantize(img: np.ndarray) -> np.ndarray:
    """float [0,1] -> the float an 8-bit PNG round trip gives (views are used as saved)."""
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).astype(np.float32) / 255.0


# ---------------------------------------------------------------------------------------------------
# stage 1: decode, segment, crop


def prepare_frames(opts: ReconstructOptions, out: OutputFolder, rep: Reporter) -> dict:
    """Two streaming passes over the source: masks and the clip's union box, then the crops.

    Pass 1 stores each frame's mask as a PNG under .work/masks (so segmentation runs once and
    memory stays bounded); pass 2 decodes again and writes ``input/000000.png ...`` (RGBA 256²).
    Returns the manifest's ``source`` record and the output fps.
    """
    from video2gs.preprocess.crop import ClipCrop, mask_box
    from video2gs.preprocess.segment import make_segmenter
    from video2gs.video.decode import open_source

    src = open_source(opts.input, fps=opts.fps, start=opts.start, end=opts.end, max_frames=opts.max_frames)
    info = src.info
    if info.kind == "video" and info.frame_count == 1:
        raise UserError(
            f"{opts.input}: the video has a single decodable frame; reconstructing one static frame "
            "works from an image file (save that frame as .png and pass it instead)"
        )
    segmenter = make_segmenter(opts.segment, model=opts.segment_model, has_alpha=info.has_alpha)
    rep.info(f"source: {info.kind} {info.width}x{info.height}, {info.source_fps:.3g} fps -> {len(src)} frames at {src.output_fps:.3g} fps")
    rep.info(f"segmentation: {segmenter.description}")
    for w in src.warnings:
        rep.warn(w)
    masks_dir = out.work / "masks"
    ensure_writable_dir(masks_dir)
    boxes, times = [], []
    with rep.stage("segment", len(src)) as st:
        for frame in src.frames():
            mask = segmenter(frame.image)  # [H,W] uint8 {0,255}
            write_png(masks_dir / f"{frame.index:06d}.png", mask)
            boxes.append(mask_box(mask))
            times.append(frame.time)
            st.advance()
    if not times:
        raise UserError(f"{opts.input}: no decodable frame")
    found = [b for b in boxes if b is not None]
    if not found:
        raise UserError(
            f"{opts.input}: no object found in any frame with --segment {segmenter.name} "
            "(try another --segment method, or --segment none for frames already on white)"
        )
    if len(found) < len(boxes):
        rep.warn(f"no object found in {len(boxes) - len(found)} of {len(boxes)} frames; they stay blank")
    crop = ClipCrop.from_boxes(found, (info.width, info.height), border_ratio=opts.border_ratio, size=IMAGE_SIZE, method=segmenter.name)
    with rep.stage("crop", len(times)) as st:
        for frame in src.frames():
            if frame.index >= len(times):
                break
            mask = cv2.imread(str(masks_dir / f"{frame.index:06d}.png"), cv2.IMREAD_GRAYSCALE)
            write_png(out.input_png(frame.index), crop.apply(frame.image, mask))
            st.advance()
    shutil.rmtree(masks_dir, ignore_errors=True)
    return {
        "path": str(Path(opts.input).resolve()),
        "bytes": _file_size(opts.input),
        "kind": info.kind,
        "width": info.width,
        "height": info.height,
        "fps": info.source_fps,
        "variable_rate": info.variable_rate,
        "frames": info.frame_count,
        "frames_used": len(times),
        "times": [round(t, 6) for t in times],
        "segment": segmenter.name,
        "crop": crop.to_dict(),
    }, src.output_fps


# ---------------------------------------------------------------------------------------------------
# models


def load_reconstructor(name_or_path: str, device: torch.device, dtype: str, what: str):
    """Resolve a registry name or path (downloading where allowed) and load it strictly."""
    from video2gs.reconstructor import Reconstructor
    from video2gs.weights import resolve

    path = resolve(name_or_path)
    return Reconstructor.from_file(path, device=device, dtype=dtype), _model_record(name_or_path, path, what)


def _model_record(name: str, path: Path, role: str) -> dict:
    from video2gs.weights import sha256_file

    path = Path(path)
    return {
        "role": role,
        "name": name,
        "path": str(path.resolve()),
        "sha256": sha256_file(path) if path.is_file() else None,
    }


def model_on_disk(name_or_path: str) -> bool:
    """True when a model (registry name or path) is on disk; never downloads."""
    from video2gs.weights import get_card, presence

    p = Path(name_or_path).expanduser()
    if p.exists():
        return True
    try:
        return presence(get_card(name_or_path))[0]
    except UserError:
        return False


# ---------------------------------------------------------------------------------------------------
# stage 2: the views of frame 0


def make_views(opts: ReconstructOptions, out: OutputFolder, recon, rep: Reporter, device: torch.device) -> dict:
    """Write ``views/view_{090,180,270}.png`` (what conditions chunk 0) and return the manifest record."""
    frame0 = input_rgb(read_rgba(out.input_png(0)))  # [256,256,3]
    views_dir = out.root / VIEWS_DIR
    source = opts.views
    if source == "auto":
        source = "imagedream" if model_on_disk(opts.imagedream_model) else "none"
        if source == "none":
            rep.warn(
                "ImageDream weights not found: views 1..3 of frame 0 are blank (--views none); "
                "run `video2gs download imagedream` or pass --views DIR for better results"
            )
    record: dict = {"source": source}
    if source == "none":
        sides = multiview.blank_views(IMAGE_SIZE)
    elif source == "imagedream":
        sides, record = _imagedream_views(opts, frame0, recon, views_dir, rep, device)
    else:
        sides, files = multiview.load_user_views(Path(source), IMAGE_SIZE)
        record.update(source="folder", folder=str(Path(source).resolve()), files={str(k): str(v) for k, v in files.items()})
    for az, img in zip((90, 180, 270), sides):
        write_png(views_dir / f"view_{az:03d}.png", img)
    return record


def _imagedream_views(opts, frame0, recon, views_dir: Path, rep: Reporter, device):
    """Generate 4 views, reconstruct them statically (T = 1), align the azimuth, render aligned views."""
    from video2gs.gaussians import Gaussians
    from video2gs.nn.imagedream.pipeline import ImageDreamPipeline
    from video2gs.weights import resolve

    folder = resolve(opts.imagedream_model)
    with rep.stage("imagedream", opts.steps) as st:
        pipe = ImageDreamPipeline.from_pretrained(folder, device=device, dtype="auto" if opts.dtype == "auto" else opts.dtype)
        generated = pipe(
            frame0,
            prompt=opts.prompt,
            negative_prompt=opts.negative_prompt,
            guidance_scale=opts.guidance,
            num_inference_steps=opts.steps,
            elevation=opts.elevation,
            seed=opts.seed,
            progress=lambda done, total: st.update(completed=done, total=total),
        )  # [4,256,256,3], input view first
        del pipe
    for az, img in zip((0, 90, 180, 270), generated):
        write_png(views_dir / f"generated_{az:03d}.png", img)
    with rep.stage("align", 1) as st:
        size = recon.config.input_size
        x = torch.stack([to_chw(quantize(v), size) for v in generated])[None]  # [1,4,3,S,S]
        static = Gaussians(recon(x)[0])  # [N,14]
        found = multiview.align_azimuth(static, frame0, step=opts.align_step, backend=opts.backend, device=None)
        aligned = multiview.aligned_views(static, found.azimuth, IMAGE_SIZE, backend=opts.backend)
        st.advance()
    for az, img in zip((0, 90, 180, 270), aligned):
        write_png(views_dir / f"aligned_{az:03d}.png", img)
    rep.info(f"azimuth alignment: {found.azimuth:+.1f} deg (MSE {found.error:.4f})")
    record = {
        "source": "imagedream",
        "model": _model_record(opts.imagedream_model, Path(folder), "imagedream"),
        "azimuth": found.azimuth,
        "alignment_mse": found.error,
        "align_step": opts.align_step,
        "prompt": opts.prompt,
        "guidance": opts.guidance,
        "steps": opts.steps,
        "elevation": opts.elevation,
        "seed": opts.seed,
    }
    return aligned[1:], record


# ---------------------------------------------------------------------------------------------------
# stages 3 and 4


def _frame_loader(out: OutputFolder, size: int):
    return lambda i: to_chw(input_rgb(read_rgba(out.input_png(i))), size)


def _writer(out: OutputFolder, subdir: str, opts_up: str, min_opacity: float, stage):
    def write(index: int, g) -> None:
        write_frame(out.root, index, g, up=opts_up, min_opacity=min_opacity, subdir=subdir)
        stage.advance()

    return write


def reconstruct_stage(opts: ReconstructOptions, out: OutputFolder, recon, rep: Reporter, num_frames: int) -> None:
    size = recon.config.input_size
    sides = torch.stack([to_chw(on_white(read_rgba(out.root / VIEWS_DIR / f"view_{az:03d}.png")), size) for az in (90, 180, 270)])
    chunks = plan_chunks(num_frames, opts.chunk)
    start = int(out.progress.get("chunks_done", 0))
    done_frames = sum(len(c.keep) for c in chunks[:start])
    with rep.stage("reconstruct", num_frames) as st:
        st.advance(done_frames)
        reconstruct_chunks(
            num_frames,
            _frame_loader(out, size),
            sides,
            recon,
            _writer(out, KEYS_DIR, opts.up, opts.min_opacity, st),
            chunk_size=opts.chunk,
            state_dir=out.work,
            start_chunk=start,
            on_chunk_done=lambda c: out.mark(chunks_done=c.index + 1),
            backend=opts.backend,
        )


def interpolate_stage(out: OutputFolder, interp, rep: Reporter, *, up: str, min_opacity: float, backend: str) -> int:
    """x3 interpolation of ``gaussians/`` into ``gaussians_x3/``; returns the frame count."""
    keys = Sequence.open(out.root, subdir=KEYS_DIR)
    n = len(keys)
    total = interpolated_count(n)
    start = int(out.progress.get("pairs_done", 0))
    pairs = plan_pairs(n)
    with rep.stage("interpolate", total) as st:
        st.advance(sum(len(p.keep) for p in pairs[:start]))
        interpolate_pairs(
            n,
            _frame_loader(out, interp.config.input_size),
            keys.load,
            interp,
            _writer(out, X3_DIR, up, min_opacity, st),
            size=interp.config.input_size,
            start_pair=start,
            on_pair_done=lambda p: out.mark(pairs_done=p.a + 1),
            backend=backend,
        )
    return total


# ---------------------------------------------------------------------------------------------------
# stage 5


def render_stage(
    out: OutputFolder, rep: Reporter, *, size: int, backend: str, device, keys: bool = True, x3: bool
) -> list[Path]:
    """Videos of ``gaussians/`` (``keys``) and/or ``gaussians_x3/`` (``x3``) into ``videos/``."""
    from video2gs.commands.render import render_videos

    sequences = [("", Sequence.open(out.root))] if keys else []
    if x3:
        sequences.append(("_x3", Sequence.open(out.root / X3_DIR, fps=out.manifest["fps"] * 3)))
    written = []
    for suffix, seq in sequences:
        written += render_videos(
            seq, out.root / VIDEOS_DIR, orbit=True, fixed=True, size=size, backend=backend, device=device,
            suffix=suffix, reporter=rep,
        )
    return written


# ---------------------------------------------------------------------------------------------------
# entry points


@dataclass
class Summary:
    output: Path
    frames_in: int
    frames_out: int
    frames_x3: int
    fps: float
    timings: dict
    videos: list
    resumed: bool


def run_reconstruct(opts: ReconstructOptions, rep: Reporter) -> Summary:
    opts.check()
    device = resolve_device(opts.device)
    t0 = time.perf_counter()
    if not Path(opts.input).exists():
        raise UserError(f"input not found: {opts.input}")
    if Path(opts.output).exists() and not Path(opts.output).is_dir():
        raise UserError(f"output {opts.output} exists and is not a folder")
    # Models first: a missing or wrong checkpoint fails before OUT is touched or any long work starts.
    recon, record = load_reconstructor(opts.model, device, opts.dtype, "reconstruction")
    out, resumed = open_output(opts)
    m = out.manifest
    if not resumed:
        m.update(kind="reconstruct", options=dataclasses.asdict(opts), up=opts.up, ply_frame=PLY_FRAME_NOTE[opts.up])
        m["options"]["input"] = str(Path(opts.input).resolve())
        m["progress"] = {}
        m["timings"] = {}
        out.save()  # from here on the folder is a resumable run
    else:
        rep.info(f"resuming {out.root}: {out.progress}")
    timings = m.setdefault("timings", {})

    m["models"] = [record]
    if not out.progress.get("prepared"):
        source, fps = prepare_frames(opts, out, rep)
        m.update(source=source, fps=fps, frames=frame_entries(len(source["times"]), fps))
        out.mark(prepared=True)
    n = len(m["frames"])
    interpolate = opts.interpolate if opts.interpolate is not None else model_on_disk(opts.interp_model)
    if not out.progress.get("views"):
        m["views"] = make_views(opts, out, recon, rep, device)
        out.mark(views=True)
    if out.progress.get("chunks_done", 0) < len(plan_chunks(n, opts.chunk)):
        reconstruct_stage(opts, out, recon, rep, n)
    del recon

    frames_x3 = 0
    if interpolate and n > 1:
        interp, record = load_reconstructor(opts.interp_model, device, opts.dtype, "interpolation")
        m["models"].append(record)
        frames_x3 = interpolate_stage(out, interp, rep, up=opts.up, min_opacity=opts.min_opacity, backend=opts.backend)
        m["x3"] = {"fps": m["fps"] * 3, "frames": frame_entries(frames_x3, m["fps"] * 3, X3_DIR)}
        del interp
        out.save()
    elif interpolate:
        rep.warn("a single frame has nothing to interpolate; skipping interpolation")
    videos = []
    if opts.render:
        videos = render_stage(out, rep, size=opts.render_size, backend=opts.backend, device=device, x3=frames_x3 > 0)
    for k, v in rep.timings.items():
        timings[k] = round(timings.get(k, 0.0) + v, 3)
    timings["total"] = round(time.perf_counter() - t0, 3)
    out.mark(complete=True)
    shutil.rmtree(out.work, ignore_errors=True)
    return Summary(out.root, m["source"]["frames_used"], n, frames_x3, m["fps"], timings, videos, resumed)


def run_interpolate(
    root: Path, *, model: str, factor: int, device: str, dtype: str, render: bool, render_size: int, backend: str,
    overwrite: bool, resume: bool, rep: Reporter,
) -> Summary:
    """``video2gs interpolate OUT``: x3 frames for an existing reconstruction."""
    from video2gs.pipeline.chunks import INTERP_FACTOR

    if factor != INTERP_FACTOR:
        raise UserError(f"--factor {factor}: the interpolation model inserts exactly 2 frames between keys; only --factor 3 is supported")
    root = Path(root)
    manifest = read_manifest(root) if root.is_dir() else None
    if manifest is None or manifest.get("kind") != "reconstruct" or not manifest.get("progress", {}).get("chunks_done"):
        raise UserError(f"{root}: not a finished `video2gs reconstruct` output (interpolation needs its input/ frames and gaussians/)")
    out = OutputFolder(root, manifest)
    if (root / X3_DIR).exists() and not (overwrite or resume):
        raise UserError(f"{root / X3_DIR} exists (pass --overwrite to replace it, or --resume to continue it)")
    if overwrite:
        shutil.rmtree(root / X3_DIR, ignore_errors=True)
        out.progress.pop("pairs_done", None)
    elif not resume:
        out.progress.pop("pairs_done", None)
    t0 = time.perf_counter()
    dev = resolve_device(device)
    interp, record = load_reconstructor(model, dev, dtype, "interpolation")
    up, min_opacity = manifest.get("up", "-y"), manifest.get("options", {}).get("min_opacity", PRUNE_OPACITY)
    n = len(manifest["frames"])
    if n < 2:
        raise UserError(f"{root}: a single frame has nothing to interpolate")
    frames_x3 = interpolate_stage(out, interp, rep, up=up, min_opacity=min_opacity, backend=backend)
    manifest["models"] = [m for m in manifest.get("models", []) if m.get("role") != "interpolation"] + [record]
    manifest["x3"] = {"fps": manifest["fps"] * 3, "frames": frame_entries(frames_x3, manifest["fps"] * 3, X3_DIR)}
    out.save()
    videos = render_stage(out, rep, size=render_size, backend=backend, device=dev, keys=False, x3=True) if render else []
    timings = manifest.setdefault("timings", {})
    timings.update({f"x3_{k}": round(v, 3) for k, v in rep.timings.items()})
    out.save()
    return Summary(root, n, n, frames_x3, manifest["fps"] * 3, {"total": round(time.perf_counter() - t0, 3)}, videos, resume)
