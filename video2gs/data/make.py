"""``data make``: write a multi-view 4D dataset with exact ground truth (layout: :mod:`video2gs.data.layout`).

For every object x motion (static sources) or object x animation (MD2 models) one clip:

1. frames: Gaussian sources are normalised, then moved by the motion (means and covariances, see
   :mod:`video2gs.data.motions`); mesh sources move their vertices (MD2: the model's own key frames,
   interpolated at the clip's fps) and become flat surface Gaussians (:mod:`video2gs.data.mesh`).
   All frames are normalised together like L4GM's renderer: largest bbox side 1, centred.
2. cameras: ``fixed_views`` at elevation 0, azimuth k * 360 / fixed_views (view ids 0.., view 0 is
   the front, the monocular input view) and ``random_views`` at elevation U[-5, 30] deg (positive
   = above), azimuth U[0, 360) (the ids after the fixed ones), constant over time.
3. images: Gaussian sources through :func:`video2gs.render.render`; mesh sources through a real
   OpenGL rasterizer (:mod:`video2gs.data.raster`), so the two check each other's cameras.
4. ``gt/<t>.ply``, ``input.mp4`` (view 0 at the clip fps), and ``clip.json`` last.

A clip is built in ``OUT/.partial/<name>/`` and renamed into place only when complete, so a folder
``OUT/<name>/`` is always whole; re-running the same command resumes (finished clips are skipped).
Everything is deterministic for a seed: each clip's generator is seeded from (seed, clip name).
The split (train/val/test) is by object, from a hash of (seed, object name): it does not change
when objects are added.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from video2gs import __version__
from video2gs.camera import FOVY_DEG, RADIUS, ZFAR, ZNEAR, Cameras, focal_from_fovy, user_orbit
from video2gs.data import layout
from video2gs.data.md2 import QUAKE_FPS
from video2gs.data.mesh import INSET_PIXELS, TexturedMesh, default_gaussian_count, load_md2_mesh, load_mesh, surface_gaussians
from video2gs.data.motions import sample_motion
from video2gs.data.sources import Source, identify, load_gaussian_source, normalisation, normalise_gaussians
from video2gs.errors import UserError
from video2gs.fileio import ensure_writable_dir
from video2gs.gaussians import Gaussians

PARTIAL_DIR = ".partial"
SPLITS = ("train", "val", "test")
RANDOM_ELEVATION = (-5.0, 30.0)  # degrees, positive = camera above (the reference's Blender range)


@dataclass
class MakeOptions:
    """Every option that changes the content of a clip (recorded in dataset.json)."""

    frames: int = 16
    fps: float = 8.0  # the reference renders its reconstruction data at 8 fps
    resolution: int = 256
    fixed_views: int = 16
    random_views: int = 16
    seed: int = 0
    image_format: str = "png"
    mesh_gaussians: int | None = None  # None: mesh.default_gaussian_count(resolution)
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    backend: str = "auto"

    def check(self) -> "MakeOptions":
        if self.frames < 1:
            raise UserError(f"--frames must be at least 1, got {self.frames}")
        if not self.fps > 0:
            raise UserError(f"--fps must be positive, got {self.fps}")
        if not 16 <= self.resolution <= 4096:
            raise UserError(f"--resolution must be in 16..4096, got {self.resolution}")
        if self.fixed_views < 1 or self.random_views < 0 or self.fixed_views + self.random_views > 1000:
            raise UserError("--fixed-views must be >= 1, --random-views >= 0, together at most 1000")
        if self.image_format not in layout.IMAGE_FORMATS:
            raise UserError(f"--image-format must be png or jpg, got {self.image_format!r}")
        if self.mesh_gaussians is None:
            self.mesh_gaussians = default_gaussian_count(self.resolution)
        if self.mesh_gaussians < 100:
            raise UserError(f"--mesh-gaussians must be at least 100, got {self.mesh_gaussians}")
        if len(self.split) != 3 or min(self.split) < 0 or not abs(sum(self.split) - 1) < 1e-6:
            raise UserError(f"--split needs three non-negative fractions summing to 1, got {self.split}")
        return self

    def record(self) -> dict:
        out = asdict(self)
        out["split"] = list(self.split)
        out.pop("backend")  # does not change the content beyond rounding
        return out


@dataclass
class ClipPlan:
    """One clip to make: ``motion`` is a procedural motion name, or an MD2 animation name."""

    name: str
    obj: str
    source: Source
    motion: str
    split: str
    seed: int
    animation: bool = False


def _clip_seed(seed: int, name: str) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode())]).generate_state(1)[0])


def object_split(name: str, seed: int, fractions=(0.8, 0.1, 0.1)) -> str:
    """train/val/test for an object, from a hash of (seed, name): stable when objects are added."""
    u = np.random.default_rng(_clip_seed(seed, "split:" + name)).random()
    edges = np.cumsum(fractions)
    return SPLITS[int(np.searchsorted(edges, u, side="right").clip(0, 2))]


def plan_clips(sources: list[Source], motions: list[str], animations: dict[str, list[str]], options: MakeOptions) -> list[ClipPlan]:
    """Clips for every static source x motion and every MD2 source x animation, named uniquely."""
    plans, seen = [], {}
    for src in sources:
        base = src.name
        n = seen.get(base, 0)
        seen[base] = n + 1
        obj = base if n == 0 else f"{base}_{n}"
        split = object_split(obj, options.seed, options.split)
        todo = [(a, True) for a in animations[str(src.path)]] if src.kind == "md2" else [(m, False) for m in motions]
        for motion, is_anim in todo:
            name = f"{obj}-{motion}"
            plans.append(ClipPlan(name, obj, src, motion, split, _clip_seed(options.seed, name), is_anim))
    return plans


# -- frames -----------------------------------------------------------------------------------------------
def _times(options: MakeOptions) -> np.ndarray:
    return np.arange(options.frames, dtype=np.float64) / options.fps


def _phases(options: MakeOptions) -> list[float]:
    T = options.frames
    return [t / (T - 1) if T > 1 else 0.0 for t in range(T)]


def _extent(points: np.ndarray) -> np.ndarray:
    p = points.reshape(-1, 3)
    return p.max(0) - p.min(0)


@dataclass
class ClipFrames:
    """gaussians [T,N,14] (normalised, the ground truth); mesh: the mesh frames (mesh sources only)."""

    gaussians: Gaussians
    mesh: TexturedMesh | None
    motion: dict
    normalisation: dict


def clip_frames(plan: ClipPlan, options: MakeOptions, loaded) -> ClipFrames:
    """Build every frame of one clip. ``loaded``: the source's content (Gaussians, TexturedMesh, or
    (MD2Model, TexturedMesh))."""
    rng = np.random.default_rng(plan.seed)
    phases = _phases(options)
    if plan.source.kind == "gaussians":
        rest: Gaussians = loaded
        motion = sample_motion(plan.motion, rng, _extent(rest.xyz.numpy()))
        frames = torch.stack([motion.apply_to_gaussians(rest, u).data for u in phases])
        centre, scale = normalisation(frames[..., 0:3].numpy())
        gaussians = normalise_gaussians(Gaussians(frames), centre, scale)
        return ClipFrames(gaussians, None, {"name": motion.name, "params": motion.params},
                          {"centre": centre.tolist(), "scale": scale})
    if plan.animation:
        model, mesh = loaded
        vertices = model.clip_vertices(plan.motion, options.frames, options.fps)
        motion_record = {"name": "animation", "animation": plan.motion, "key_frames": model.animations[plan.motion],
                         "key_frame_rate": QUAKE_FPS}
    else:
        mesh = loaded
        c0, s0 = normalisation(mesh.vertices[0])
        rest = (mesh.vertices[0] - c0) * s0
        motion = sample_motion(plan.motion, rng, _extent(rest))
        x = torch.from_numpy(rest)
        vertices = np.stack([motion.apply(x, u).numpy() for u in phases])
        motion_record = {"name": motion.name, "params": motion.params}
    centre, scale = normalisation(vertices)
    mesh = mesh.with_vertices((vertices - centre) * scale)
    inset = mesh_inset(options.resolution)
    gaussians = surface_gaussians(mesh, options.mesh_gaussians, seed=plan.seed, inset=inset)
    return ClipFrames(gaussians, mesh, motion_record, {"centre": centre.tolist(), "scale": scale, "surface_inset": inset})


def mesh_inset(resolution: int) -> float:
    """World-space inset of mesh surface Gaussians: :data:`~video2gs.data.mesh.INSET_PIXELS` pixels at
    the orbit centre (radius / focal length per pixel)."""
    return INSET_PIXELS * RADIUS / focal_from_fovy(FOVY_DEG, resolution)


def camera_angles(plan: ClipPlan, options: MakeOptions) -> tuple[np.ndarray, np.ndarray]:
    """(elevation [V], azimuth [V]) degrees; fixed views first, then random ones."""
    rng = np.random.default_rng([plan.seed, 1])  # independent of the motion's draws
    fixed_az = np.arange(options.fixed_views) * 360.0 / options.fixed_views
    rand_el = rng.uniform(*RANDOM_ELEVATION, size=options.random_views)
    rand_az = rng.uniform(0.0, 360.0, size=options.random_views)
    elevation = np.concatenate([np.zeros(options.fixed_views), rand_el])
    azimuth = np.concatenate([fixed_az, rand_az])
    return elevation, azimuth


def clip_cameras(elevation: np.ndarray, azimuth: np.ndarray) -> Cameras:
    """The cameras of the views (the same function the reader uses: :func:`video2gs.camera.user_orbit`)."""
    return Cameras(torch.from_numpy(np.stack([user_orbit(e, a, RADIUS) for e, a in zip(elevation, azimuth)])))


# -- one clip ------------------------------------------------------------------------------------------
class _Renderers:
    """The mesh rasterizer is created once, on first use (it needs an OpenGL context)."""

    def __init__(self, resolution: int, backend: str):
        self.resolution, self.backend = resolution, backend
        self._mesh = None

    def mesh(self):
        if self._mesh is None:
            from video2gs.data.raster import MeshRasterizer

            self._mesh = MeshRasterizer(self.resolution)
        return self._mesh

    def close(self):
        if self._mesh is not None:
            self._mesh.release()
            self._mesh = None

    def images(self, frames: ClipFrames, t: int, cameras: Cameras) -> tuple[np.ndarray, np.ndarray]:
        """rgb [V,H,W,3] on white, alpha [V,H,W] (float32)."""
        size = self.resolution
        if frames.mesh is not None:
            return self.mesh().render(frames.mesh, t, cameras)
        from video2gs.render import render

        out = render(frames.gaussians.frame(t), cameras, size, size, background=(1.0, 1.0, 1.0), backend=self.backend)
        return out.rgb.numpy(), out.alpha[..., 0].numpy()


@contextlib.contextmanager
def _one_torch_thread():
    """The per-clip tensors are small (10^4..10^5 Gaussians): torch's intra-op threads only add
    synchronisation, which costs up to 4x on a busy machine (measured). Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def make_clip(plan: ClipPlan, out_root: Path, options: MakeOptions, loaded, renderers: _Renderers, on_frame=None) -> dict:
    """Write one clip completely (in OUT/.partial, then renamed into place). Returns its record."""
    with _one_torch_thread():
        return _make_clip(plan, out_root, options, loaded, renderers, on_frame)


def _make_clip(plan: ClipPlan, out_root: Path, options: MakeOptions, loaded, renderers: _Renderers, on_frame=None) -> dict:
    from video2gs.video.encode import Mp4Writer

    partial = out_root / PARTIAL_DIR / plan.name
    if partial.exists():
        shutil.rmtree(partial)  # an interrupted earlier attempt
    partial.mkdir(parents=True)
    frames = clip_frames(plan, options, loaded)
    elevation, azimuth = camera_angles(plan, options)
    cameras = clip_cameras(elevation, azimuth)
    T, V = options.frames, len(elevation)
    for v in range(V):
        layout.write_cameras(partial, v, np.full(T, elevation[v]), np.full(T, azimuth[v]))
    with Mp4Writer(partial / layout.INPUT_VIDEO, fps=options.fps) as video:
        for t in range(T):
            rgb, alpha = renderers.images(frames, t, cameras)
            for v in range(V):
                layout.write_view_frame(partial, v, t, rgb[v], alpha[v], fmt=options.image_format)
            video.write(rgb[0])
            layout.write_gt(partial, t, frames.gaussians.frame(t))
            if on_frame is not None:
                on_frame()
    record = {
        "name": plan.name,
        "source": plan.source.record(),
        "motion": frames.motion,
        "split": plan.split,
        "seed": plan.seed,
        "dataset_seed": options.seed,
        "fps": options.fps,
        "num_frames": T,
        "times": _times(options).round(6).tolist(),
        "resolution": options.resolution,
        "image_format": options.image_format,
        "views": list(range(V)),
        "fixed_views": list(range(options.fixed_views)),
        "random_views": list(range(options.fixed_views, V)),
        "input_view": 0,
        "elevation_sign": "positive = camera above (Blender); pose = camera.user_orbit(elevation, rotation)",
        "radius": RADIUS,
        "fovy_deg": FOVY_DEG,
        "near": ZNEAR,
        "far": ZFAR,
        "num_gaussians": int(frames.gaussians.data.shape[1]),
        "images_from": "mesh rasterizer (moderngl)" if frames.mesh is not None else "video2gs.render",
        "normalisation": frames.normalisation,
    }
    layout.write_clip_record(partial, record)  # last file: marks the clip complete
    final = out_root / plan.name
    if final.exists():
        shutil.rmtree(final)  # an incomplete folder of this clip (complete ones are skipped)
    os.replace(partial, final)
    return record


# -- the dataset ---------------------------------------------------------------------------------------
def load_source(src: Source):
    """The content of a source, checked (UserError naming the file)."""
    if src.kind == "gaussians":
        return load_gaussian_source(src)
    if src.kind == "md2":
        return load_md2_mesh(src.path, src.texture)
    return load_mesh(src.path)


def check_existing(out: Path, options: MakeOptions) -> dict | None:
    """The existing dataset.json of OUT (None for a new folder); UserError when its options differ."""
    if not (out / layout.DATASET_FILE).is_file():
        if out.is_dir() and any(p for p in out.iterdir() if not p.name.startswith(".")):
            raise UserError(f"{out}: the folder is not empty and holds no {layout.DATASET_FILE}; choose a new folder")
        return None
    index = layout.read_dataset_index(out)
    old = index.get("options", {})
    new = options.record()
    changed = sorted(k for k in new if k in old and old[k] != new[k])
    if changed:
        diff = ", ".join(f"{k} {old[k]} -> {new[k]}" for k in changed)
        raise UserError(f"{out} was made with other options ({diff}); use a new folder or the same options to resume")
    return index


def dataset_index(plans: list[ClipPlan], options: MakeOptions, previous: dict | None, complete: bool) -> dict:
    """dataset.json: the options, the clips (planned ones and earlier ones kept), sources and splits."""
    clips = {c["name"]: c for c in (previous or {}).get("clips", [])}
    sources = {s["path"]: s for s in (previous or {}).get("sources", [])}
    for p in plans:
        clips[p.name] = {"name": p.name, "object": p.obj, "source": p.source.path.name,
                         "motion": p.motion, "animation": p.animation, "split": p.split}
        sources[str(p.source.path)] = p.source.record()
    return {
        "created_by": f"video2gs {__version__} data make",
        "options": options.record(),
        "fps": options.fps,
        "num_frames": options.frames,
        "times": _times(options).round(6).tolist(),
        "input_view": 0,
        "fixed_views": list(range(options.fixed_views)),
        "random_views": list(range(options.fixed_views, options.fixed_views + options.random_views)),
        "camera_convention": "per view camera/elevation.npy (deg, positive = above) and rotation.npy (deg azimuth); "
                             "c2w = video2gs.camera.user_orbit(elevation, rotation, 1.5), OpenGL axes, +Y up",
        "complete": complete,
        "clips": list(clips.values()),
        "sources": list(sources.values()),
    }


@dataclass
class MakeResult:
    out: Path
    made: list[str]
    skipped: list[str]
    splits: dict
    warnings: list[str]


def make_dataset(out, objects, motions: list[str], options: MakeOptions, *, animations: list[str] | None = None,
                 texture=None, reporter=None) -> MakeResult:
    """Write (or resume) a dataset in ``out``. objects: paths; motions: names for static sources;
    animations: MD2 animation names (None = all of each model's). ``reporter``: a
    :class:`video2gs.progress.Reporter` (or None)."""
    options.check()
    out = Path(out)
    if not objects:
        raise UserError("no objects given (--objects PATH ...)")
    sources = [identify(p, texture=texture) for p in objects]  # everything checked before writing
    warnings = [w for s in sources for w in s.warnings]
    if any(s.kind != "md2" for s in sources) and not motions:
        raise UserError("no motions given for the static objects (--motions spin,bend,... or all)")
    loaded, anims = {}, {}
    for src in sources:
        loaded[str(src.path)] = content = load_source(src)
        if src.kind == "md2":
            names = list(content[0].animations)
            if animations:
                missing = [a for a in animations if a not in names]
                if missing:
                    raise UserError(f"{src.path}: no animation {missing[0]!r} (has: {', '.join(names)})")
                names = list(animations)
            anims[str(src.path)] = names
    plans = plan_clips(sources, motions, anims, options)
    previous = check_existing(out, options) if out.exists() else None
    ensure_writable_dir(out, "dataset folder")
    layout.write_dataset_index(out, dataset_index(plans, options, previous, complete=False))
    todo = [p for p in plans if not layout.is_clip_complete(out / p.name)]
    skipped = [p.name for p in plans if p not in todo]
    renderers = _Renderers(options.resolution, options.backend)
    made = []
    try:
        if reporter is not None:
            for w in warnings:
                reporter.warn(w)
            if skipped:
                reporter.info(f"resuming: {len(skipped)} of {len(plans)} clips are already complete")
        stage_cm = reporter.stage("frames", len(todo) * options.frames) if reporter is not None else contextlib.nullcontext()
        with stage_cm as stage:
            for plan in todo:
                if stage is not None:
                    stage.update(description=plan.name[:24])
                make_clip(plan, out, options, loaded[str(plan.source.path)], renderers,
                          on_frame=stage.advance if stage is not None else None)
                made.append(plan.name)
    finally:
        renderers.close()
    partial = out / PARTIAL_DIR
    if partial.is_dir() and not any(partial.iterdir()):
        partial.rmdir()
    layout.write_dataset_index(out, dataset_index(plans, options, previous, complete=True))
    splits = {s: sorted({p.obj for p in plans if p.split == s}) for s in SPLITS}
    return MakeResult(out, made, skipped, splits, warnings)
