"""``reconstruct`` and ``interpolate`` as transactions over one output folder.

    validate -> begin (staging) -> prepare -> views -> reconstruct -> interpolate -> render -> commit

Everything a run depends on — every option, the input's readability, the segmentation model,
the views folder or ImageDream weights, every checkpoint — is checked by ``validate_*`` before
OUT is touched. The stages then build the run in its staging folder (:mod:`run_folder`), each
recording its progress so ``--resume`` continues from any interruption, and :meth:`RunFolder.commit`
swaps the finished run in. This module composes the stage modules; it holds no maths of its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from video2gs.compute import resolve_device
from video2gs.errors import UserError
from video2gs.gaussians import PRUNE_OPACITY
from video2gs.pipeline import run_folder
from video2gs.pipeline.options import InterpolateOptions, OptionError, ReconstructOptions, about
from video2gs.pipeline.prepare import IMAGE_SIZE, file_size, prepare_frames
from video2gs.pipeline.run_folder import VIEWS_DIR, RunFolder
from video2gs.progress import Reporter
from video2gs.sequence import X3_DIR, frame_entries, read_manifest

PLY_FRAME_NOTE = {
    "-y": "PLY files are in the OpenCV/COLMAP frame (-Y up, camera looks along +Z), as SuperSplat/Spark/gsplat.js expect",
    "y": "PLY files are in L4GM's frame (+Y up, front toward +Z)",
}


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
    already_complete: bool = False


# -- models ------------------------------------------------------------------------------------------
RELEASED_RECON, BUNDLED_RECON = "l4gm-recon", "demo"


def choose_model(name: str, rep: Reporter) -> str:
    """``--model auto``: the released l4gm-recon when it is on disk, else a bundled model (the card
    ``demo``, when the package ships one), said in one line; any other name or path as given. With
    neither, l4gm-recon (whose absence is then the one-line error naming `video2gs download`)."""
    if name != "auto":
        return name
    if model_on_disk(RELEASED_RECON):
        return RELEASED_RECON
    from video2gs.weights import model_names

    if BUNDLED_RECON in model_names() and model_on_disk(BUNDLED_RECON):  # a registry name, never a path
        rep.info(f"no {RELEASED_RECON} weights: using the small bundled model {BUNDLED_RECON} (trained by video2gs, "
                 f"modest quality); `video2gs download {RELEASED_RECON}` gets the released L4GM (non-commercial)")
        return BUNDLED_RECON
    return RELEASED_RECON


def model_on_disk(name_or_path: str) -> bool:
    """True when a model is on disk; never downloads. As ``weights.resolve`` reads it: a registry
    name is a name (a folder of that name in the current directory does not count), anything else a path."""
    from video2gs.weights import get_card, model_names, presence

    if name_or_path in model_names():
        return presence(get_card(name_or_path))[0]
    return Path(name_or_path).expanduser().exists()


def model_record(name: str, path: Path, role: str) -> dict:
    """The manifest's record of a model: registry name or path, resolved path, sha256 (of a folder:
    of its files' names and hashes)."""
    from video2gs.weights import sha256_file

    path = Path(path)
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f"{f.relative_to(path)}\0{sha256_file(f)}\n".encode())
        digest = h.hexdigest()
    else:
        digest = sha256_file(path) if path.is_file() else None
    return {"role": role, "name": name, "path": str(path.resolve()), "sha256": digest}


def load_reconstructor(name_or_path: str, device: torch.device, dtype: str, role: str):
    """Resolve (never download) and load an L4GM checkpoint strictly; refuse non-finite weights."""
    from video2gs.reconstructor import Reconstructor
    from video2gs.weights import resolve

    path = resolve(name_or_path, download=False)
    recon = Reconstructor.from_file(path, device=device, dtype=dtype)
    bad = next((n for n, p in recon.model.named_parameters() if not torch.isfinite(p).all()), None)
    if bad is not None:
        raise UserError(f"{role} model {path}: weight {bad} holds NaN or infinite values (a damaged checkpoint?)")
    return recon, model_record(name_or_path, path, role)


def check_l4gm_file(name_or_path: str, role: str) -> Path:
    """Resolve an L4GM checkpoint (never download) and check its header matches an L4GM, cheaply."""
    from video2gs.nn.checkpoint import diff_keys, infer_config, read_header
    from video2gs.nn.l4gm import L4GM
    from video2gs.weights import resolve

    path = resolve(name_or_path, download=False)
    shapes, metadata = read_header(path)  # refuses pickles and damaged files with one line
    try:
        cfg = infer_config(shapes, metadata)
        with torch.device("meta"):
            diff = diff_keys(L4GM(cfg), shapes)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - any shape of foreign state dict
        raise UserError(f"{role} model {path} is not an L4GM checkpoint ({type(exc).__name__}: {exc})") from exc
    if diff:
        raise UserError(f"{role} model {path} does not match an L4GM: {diff.summary()}")
    return path


def _imagedream_loader(folder: Path, device, dtype: str):
    def load():
        from video2gs.nn.imagedream.pipeline import ImageDreamPipeline

        _quiet_third_party()
        return ImageDreamPipeline.from_pretrained(folder, device=device, dtype=dtype)

    return load


def _quiet_third_party() -> None:
    """transformers' and diffusers' loading bars and notices would break through our progress display."""
    import diffusers.utils.logging as dlog
    import transformers.utils.logging as tlog

    for log in (tlog, dlog):
        log.set_verbosity_error()
        log.disable_progress_bar()


# -- reconstruct -------------------------------------------------------------------------------------
@dataclass
class ReconstructPlan:
    """What validation established: every resource the run needs, loaded or checked."""

    source: object  # FrameSource
    segmenter: object
    segment_record: dict
    views_source: str  # none | folder | imagedream | mirror
    user_views: tuple | None
    imagedream_folder: Path | None
    recon: object  # Reconstructor
    models: list[dict]
    interpolate: bool
    interp_path: Path | None
    device: torch.device
    detail: bool
    backend: str
    compute: dict = field(default_factory=dict)


def validate_reconstruct(opts: ReconstructOptions, rep: Reporter) -> ReconstructPlan:
    """Check every option, the input, and every model the run will need; touch nothing in OUT."""
    from video2gs.pipeline.views import load_user_views, resolve_views_source
    from video2gs.preprocess.segment import make_segmenter
    from video2gs.render import check_backend, choose_backend
    from video2gs.video.decode import open_source
    from video2gs.weights import resolve

    opts.validate()
    with about("device"):
        device = resolve_device(opts.device)
    with about("backend"):
        check_backend(opts.backend)
    run_folder.check_output(Path(opts.output))
    if not Path(opts.input).exists():
        raise UserError(f"input not found: {opts.input}")
    src = open_source(opts.input, fps=opts.fps, start=opts.start, end=opts.end, max_frames=opts.max_frames, cap=opts.cap_fps)
    with about("segment_model" if opts.segment_model else "segment"):
        segmenter = make_segmenter(opts.segment, model=opts.segment_model, has_alpha=src.info.has_alpha)
    segment_record = {"method": segmenter.name, "description": segmenter.description}
    model_file = getattr(segmenter, "model_file", None)
    if model_file is not None and Path(model_file).is_file():
        segment_record.update(model_record(str(opts.segment_model or "u2net"), Path(model_file), "segmentation"))

    with about("model"):
        model_name = choose_model(opts.model, rep)
        recon, record = load_reconstructor(model_name, device, opts.dtype, "reconstruction")
    own_views = recon.side_views in ("blank", "mirror")  # the model's side views come from the video itself
    if own_views and opts.views not in ("auto", "none"):
        raise OptionError("views", f"{opts.views}: model {model_name} was trained with {recon.side_views} side views and only "
                                   "takes --views none; use --model l4gm-recon for ImageDream or your own views")
    if own_views:
        views = recon.side_views if recon.side_views == "mirror" else "none"
    else:
        views = resolve_views_source(opts.views, model_on_disk(opts.imagedream_model))
    user_views = imagedream_folder = None
    if views == "none" and opts.views == "auto" and not own_views:  # blank is what such a model wants
        rep.warn("ImageDream weights not found: views 1..3 of frame 0 are blank (--views none); "
                 "run `video2gs download imagedream` or pass --views DIR for better results")
    elif views == "imagedream":
        from video2gs.nn.imagedream.pipeline import check_layout

        with about("imagedream_model"):
            imagedream_folder = resolve(opts.imagedream_model, download=False)
            check_layout(imagedream_folder)
    elif views not in ("none", "mirror"):
        user_views = load_user_views(Path(views), IMAGE_SIZE)
        views = "folder"

    interpolate = opts.interpolate if opts.interpolate is not None else model_on_disk(opts.interp_model)
    with about("interp_model"):
        interp_path = check_l4gm_file(opts.interp_model, "interpolation") if interpolate else None
    backend = choose_backend(opts.backend, device)
    # Pixel detail by default for models trained with mirror side views (the bundled demo): their
    # coarse Gaussians blur even the input view. Released L4GM: as the reference, unless asked.
    detail = opts.detail if opts.detail is not None else recon.side_views == "mirror"
    if detail and IMAGE_SIZE % recon.config.splat_size:  # the layer needs whole pixels per Gaussian cell
        why = f"model {model_name}'s {recon.config.splat_size}² Gaussians a view do not tile the {IMAGE_SIZE}² input crop"
        if opts.detail:
            raise OptionError("detail", f"does not work here: {why} (use --no-detail)")
        rep.warn(f"no pixel detail: {why}")
        detail = False
    models = [record]
    if imagedream_folder is not None:
        models.append(model_record(opts.imagedream_model, imagedream_folder, "imagedream"))
    return ReconstructPlan(src, segmenter, segment_record, views, user_views, imagedream_folder, recon, models,
                           interpolate, interp_path, device, detail, backend,
                           {**recon.describe(), "backend": backend})


def identity_of(opts: ReconstructOptions, plan: ReconstructPlan) -> dict:
    """What a resumed run must share with the interrupted one (``--model auto`` and ``--detail`` as they
    resolved)."""
    return {"input": str(Path(opts.input).resolve()), "input_bytes": file_size(opts.input), **opts.result_options(),
            "model": plan.models[0]["name"], "detail": plan.detail}


def run_reconstruct(opts: ReconstructOptions, rep: Reporter) -> Summary:
    t0 = time.perf_counter()
    plan = validate_reconstruct(opts, rep)
    created = not Path(opts.output).exists()
    run = run_folder.begin(Path(opts.output), "reconstruct", identity_of(opts, plan), resume=opts.resume, overwrite=opts.overwrite)
    if run is None:
        m = read_manifest(Path(opts.output))
        rep.info(f"{opts.output} already holds this run, complete; nothing to do")
        return Summary(Path(opts.output), m["source"]["frames_used"], len(m["frames"]), len((m.get("x3") or {}).get("frames", [])),
                       m["fps"], m.get("timings", {}), [], True, already_complete=True)
    try:
        with run_folder.guard(run, created_root=created):
            return _reconstruct(opts, plan, run, rep, t0)
    finally:
        plan.source.close()


def _reconstruct(opts: ReconstructOptions, plan: ReconstructPlan, run: RunFolder, rep: Reporter, t0: float) -> Summary:
    from video2gs.pipeline.interpolate import interpolate_stage
    from video2gs.pipeline.reconstruct import reconstruct_stage
    from video2gs.pipeline.render import render_stage
    from video2gs.pipeline.views import imagedream_views, make_views

    m = run.manifest
    if run.resumed:
        rep.info(f"resuming {run.root}: {run.describe_kept()}")
    else:
        options = dataclasses.asdict(opts)
        options["input"] = str(Path(opts.input).resolve())
        m.update(options=options, up=opts.up, ply_frame=PLY_FRAME_NOTE[opts.up], timings={})
    kept = [r for r in m.get("models", []) if r.get("role") == "interpolation"]  # from before a resume
    m.update(models=[*plan.models, *kept], compute=plan.compute, segmentation=plan.segment_record)
    timings = m.setdefault("timings", {})

    if not run.progress.get("prepared"):
        source = prepare_frames(plan.source, plan.segmenter, run, rep, border_ratio=opts.border_ratio, input_path=opts.input)
        fps = round(plan.source.output_fps, 6)
        m.update(source=source, fps=fps, frames=frame_entries(len(source["times"]), fps))
        run.mark(prepared=True)
    n = len(m["frames"])

    if not run.progress.get("views"):
        from video2gs.images import read_rgba, to_float

        frame0 = to_float(read_rgba(run.input_png(0))[..., :3])  # [256,256,3]
        loader = None
        if plan.views_source == "imagedream":
            pipe_loader = _imagedream_loader(plan.imagedream_folder, plan.device, opts.dtype)
            loader = lambda f0: imagedream_views(f0, pipe_loader=pipe_loader, recon=plan.recon, opts=opts, rep=rep, size=IMAGE_SIZE)  # noqa: E731
        m["views"] = make_views(plan.views_source, frame0, run.staging / VIEWS_DIR, size=IMAGE_SIZE,
                                user_views=plan.user_views, imagedream=loader, rep=rep)
        run.mark(views=True)

    if not run.progress.get("reconstructed"):
        m["pixel_detail"] = plan.detail
        m["views"]["later_chunks"] = {"blank": "blank", "mirror": "each frame's own view 0 and its mirror image"}.get(
            plan.recon.side_views, "renders of the previous chunk")
        reconstruct_stage(run, plan.recon, rep, num_frames=n, chunk=opts.chunk, up=opts.up,
                          min_opacity=opts.min_opacity, backend=opts.backend, refine=opts.refine, detail=plan.detail)
        run.mark(reconstructed=True)
    plan.recon = None  # free the network before the interpolation model loads

    frames_x3 = 0
    if plan.interpolate and n > 1:
        x3_fps = round(m["fps"] * 3, 6)
        m["x3"] = {"fps": x3_fps, "identity": {"model": opts.interp_model}}
        if not run.progress.get("interpolated"):
            interp, record = load_reconstructor(str(plan.interp_path), plan.device, opts.dtype, "interpolation")
            record["name"] = opts.interp_model
            m["models"] = [r for r in m["models"] if r["role"] != "interpolation"] + [record]
            interpolate_stage(run, interp, rep, up=opts.up, min_opacity=opts.min_opacity, backend=opts.backend)
            del interp
        frames_x3 = (n - 1) * 3 + 1
        m["x3"]["frames"] = frame_entries(frames_x3, x3_fps, X3_DIR)
        run.mark(interpolated=True)
    elif plan.interpolate:
        rep.warn("a single frame has nothing to interpolate; skipping interpolation")

    videos = []
    if opts.render and not run.progress.get("rendered"):
        videos = render_stage(run, rep, size=opts.render_size, backend=opts.backend, device=plan.device, x3=frames_x3 > 0)
        run.mark(rendered=True)
    for k, v in rep.timings.items():
        timings[k] = round(timings.get(k, 0.0) + v, 3)
    timings["total"] = round(timings.get("total", 0.0) + time.perf_counter() - t0, 3)
    shutil.rmtree(run.work, ignore_errors=True)
    run.commit()
    videos = [run.root / run_folder.VIDEOS_DIR / p.name for p in videos]
    return Summary(run.root, m["source"]["frames_used"], n, frames_x3, m["fps"], timings, videos, run.resumed)


# -- interpolate -------------------------------------------------------------------------------------
def run_interpolate(opts: InterpolateOptions, rep: Reporter) -> Summary:
    """``video2gs interpolate OUT``: x3 frames for a finished reconstruction, swapped in when done."""
    from video2gs.pipeline.interpolate import interpolate_stage
    from video2gs.pipeline.render import render_stage
    from video2gs.render import check_backend

    t0 = time.perf_counter()
    opts.validate()
    root = Path(opts.output)
    if root.is_dir():
        run_folder.recover(root)
    manifest = read_manifest(root) if root.is_dir() else None
    if manifest is None or manifest.get("kind", "reconstruct") != "reconstruct" or not manifest.get("frames"):
        raise UserError(f"{root}: not a finished `video2gs reconstruct` output (interpolation needs its input/ frames and gaussians/)")
    n = len(manifest["frames"])
    if n < 2:
        raise UserError(f"{root}: a single frame has nothing to interpolate")
    with about("device"):
        device = resolve_device(opts.device)
    with about("backend"):
        check_backend(opts.backend)
    with about("model"):
        interp, record = load_reconstructor(opts.model, device, opts.dtype, "interpolation")
    run = run_folder.begin(root, "interpolate", opts.result_options(), resume=opts.resume, overwrite=opts.overwrite)
    if run is None:
        rep.info(f"{root / X3_DIR} is already complete; nothing to do")
        return Summary(root, n, n, (n - 1) * 3 + 1, manifest["x3"]["fps"], {}, [], True, already_complete=True)
    if not run.resumed:
        run.manifest.update({k: v for k, v in manifest.items() if k not in ("progress", "kind", "identity")})
        run.manifest["reconstruct_identity"] = manifest.get("identity")
    m = run.manifest
    with run_folder.guard(run, created_root=False):
        x3_fps = round(m["fps"] * 3, 6)
        m["x3"] = {"fps": x3_fps, "identity": opts.result_options()}
        m["models"] = [r for r in m.get("models", []) if r.get("role") != "interpolation"] + [record]
        if not run.progress.get("interpolated"):
            interpolate_stage(run, interp, rep, up=m.get("up", "-y"), min_opacity=m.get("options", {}).get("min_opacity", PRUNE_OPACITY),
                              backend=opts.backend)
        del interp
        frames_x3 = (n - 1) * 3 + 1
        m["x3"]["frames"] = frame_entries(frames_x3, x3_fps, X3_DIR)
        run.mark(interpolated=True)
        videos = []
        if opts.render and not run.progress.get("rendered"):
            videos = render_stage(run, rep, size=opts.render_size, backend=opts.backend, device=device, keys=False, x3=True)
            run.mark(rendered=True)
    m.setdefault("timings", {}).update({f"x3_{k}": round(v, 3) for k, v in rep.timings.items()})
    # The identity of the committed manifest stays the reconstruction's.
    m["kind"], m["identity"] = "reconstruct", m.pop("reconstruct_identity", None)
    run.commit()
    videos = [root / run_folder.VIDEOS_DIR / p.name for p in videos]
    return Summary(root, n, n, frames_x3, x3_fps, {"total": round(time.perf_counter() - t0, 3)}, videos, run.resumed)
