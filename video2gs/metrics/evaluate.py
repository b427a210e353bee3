"""Judge a 4D reconstruction against a multi-view clip with exact ground truth (``video2gs evaluate``).

What is compared: every method (the prediction and any baselines) is rendered at every evaluated
ground-truth view of every matched frame, on the clip's background (white), at the clip's image
size (or ``size``; ground-truth images are resized then), and compared per image with PSNR, SSIM,
LPIPS (VGG and/or Alex) and the mask IoU of rendered alpha vs the clip's mask. With ``gt/*.ply``,
also the opacity-weighted Chamfer distance of centres per frame and the temporal error
(:mod:`video2gs.metrics.geometry`). Aggregates are plain means of per-image numbers, kept apart
for the input view (the clip's ``input_view``: the camera the monocular video was filmed from --
numbers there flatter a method) and the novel views.

Frames: a prediction with a manifest (``video2gs reconstruct`` output) is matched by time: each
ground-truth frame at time tau takes the prediction frame nearest in time when it lies within half
the smaller of the two frame intervals, else it is skipped. A plain folder of PLYs (or a prediction
without times) is matched by position: frame i <-> ground-truth frame i, and the counts must agree.

Poses: the prediction is taken to be in L4GM's canonical frame (input camera = the front camera
at azimuth 0, elevation 0, radius 1.5; ``video2gs.camera``). Every clip camera is mapped by
M = orbit(0, 0, r) . inverse(c2w[input view, frame 0]) (``docs/l4gm.md`` §6), and so are the
ground-truth Gaussians for the Chamfer distance. Our own clips film the input from azimuth 0,
elevation 0, so M is the identity there; for an elevated input view it rotates the clip so that
input view = canonical front. (Consequence: ``gt/`` given as the prediction is only exact when M
is the identity.)

Crop: ``reconstruct`` feeds the network one square crop of the clip (``preprocess.crop``: the
union box of the object scaled to 80 % of the canvas), so its Gaussians are the object as the
*crop* shows it. When the prediction's manifest records that crop, the Gaussians are first mapped
back by :func:`uncrop_transform` -- a uniform scale about the origin and a shift across the input
camera's image plane (the weak-perspective inverse of the crop's zoom and offset) -- so that they
are judged against the clip's own cameras (``keep_crop=True`` skips this).

Protocols: ``full`` (default: every view, both LPIPS nets) and ``consistent4d`` (4 held-out views
at elevation 0 -- those nearest to the input azimuth + 45/135/225/315 degrees --, 512x512, white
background, LPIPS-VGG, plus CLIP image similarity when a CLIP image encoder is on disk; FVD is not
computed).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from video2gs.camera import FOVY_DEG, RADIUS, Cameras, front_normalisation
from video2gs.errors import UserError
from video2gs.gaussians import Gaussians
from video2gs.metrics import baselines as _baselines
from video2gs.metrics.geometry import chamfer, temporal_stability
from video2gs.metrics.image import mask_iou, psnr, ssim

PROTOCOLS = ("full", "consistent4d")
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips_vgg": False, "lpips_alex": False, "mask_iou": True,
                    "clip_similarity": True, "chamfer": False, "temporal_error": False}
CONSISTENT4D_OFFSETS = (45.0, 135.0, 225.0, 315.0)  # azimuths of the held-out views, from the input view's
CONSISTENT4D_SIZE = 512
LPIPS_CHUNK = 4  # views per LPIPS call: bounds the backbone's activations (VGG at 512^2: ~0.3 GB per image)
FVD_NOTE = "FVD is not computed (no video feature network is shipped or downloaded)."


# -- what is evaluated ---------------------------------------------------------------------------------
@dataclass
class Method:
    """One thing to judge: ``load(gt_frame)`` -> Gaussians [N,14] in the canonical frame.

    matches: {ground-truth frame: source frame index} (the frames this method covers);
    times: {ground-truth frame: source frame time in seconds, when known}.
    """

    name: str
    load: Callable[[int], Gaussians]
    matches: dict[int, int]
    times: dict[int, float | None] = field(default_factory=dict)
    note: str | None = None  # said in the evaluation's notes (e.g. how the prediction was uncropped)


def uncrop_transform(crop: dict, fovy_deg: float, radius: float = RADIUS) -> tuple[float, np.ndarray]:
    """(scale m, shift t [3]) mapping Gaussians reconstructed from ``crop`` (a manifest's
    ``source.crop``) to the frame the uncropped input camera sees: ``x -> m·x + t``.

    The network's camera is L4GM's front camera (fovy 49.1°) over the ``size`` canvas; the clip's
    is the same pose with ``fovy_deg`` over the ``frame_size`` frame. A canvas pixel q comes from
    frame pixel p = b0 + (q - o) / k (box corner b0, paste offset o, zoom k). For points near the
    origin (depth ≈ radius) this is a scale by m = f_canvas / (k · f_frame) and a shift of
    radius · δ / f_frame, δ = b0 - c_frame + (c_canvas - o) / k, in the camera's x (right) and
    y (up; pixel rows grow down) axes -- world x and y for the front camera.
    """
    size = float(crop["size"])
    fw, fh = (float(v) for v in crop["frame_size"])
    x0, y0, x1, y1 = (float(v) for v in crop["box"])
    sw, sh = (float(v) for v in crop["scaled"])
    ox, oy = (float(v) for v in crop["offset"])
    k = 0.5 * (sw / (x1 - x0) + sh / (y1 - y0))  # canvas px per frame px (the two differ by rounding)
    f_canvas = 0.5 * size / math.tan(math.radians(FOVY_DEG) / 2.0)
    f_frame = 0.5 * fh / math.tan(math.radians(fovy_deg) / 2.0)
    dx = x0 - 0.5 * fw + (0.5 * size - ox) / k
    dy = y0 - 0.5 * fh + (0.5 * size - oy) / k
    m = f_canvas / (k * f_frame)
    return m, np.array([radius * dx / f_frame, -radius * dy / f_frame, 0.0])


def match_by_time(gt_times: np.ndarray, pred_times: np.ndarray, gt_fps: float, pred_fps: float) -> dict[int, int]:
    """{gt frame: pred frame} for ground-truth frames with a prediction frame within half the
    smaller frame interval (``0.5 / max(gt_fps, pred_fps)`` seconds) of their time."""
    tol = 0.5 / max(gt_fps, pred_fps) + 1e-6
    out = {}
    for t, tau in enumerate(gt_times):
        i = int(np.argmin(np.abs(pred_times - tau)))
        if abs(pred_times[i] - tau) <= tol:
            out[t] = i
    return out


def _fps_of(times: np.ndarray) -> float:
    steps = np.diff(np.asarray(times, dtype=np.float64))
    steps = steps[steps > 0]
    return float(1.0 / np.median(steps)) if len(steps) else 1.0


def prediction_method(seq, clip, name: str = "pred", keep_crop: bool = False) -> Method:
    """A :class:`~video2gs.sequence.Sequence` as a Method: matched by manifest times, else by index;
    uncropped (:func:`uncrop_transform`) when its manifest records the input crop, unless ``keep_crop``."""
    frames = (seq.manifest or {}).get("frames") if seq.kind == "output" else None
    crop = ((seq.manifest or {}).get("source") or {}).get("crop") if seq.kind == "output" else None
    pred_times = None
    if frames:
        try:
            entries = sorted(frames, key=lambda e: int(e["index"]))
            pred_times = np.array([float(e["time"]) for e in entries], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{seq.root / 'manifest.json'}: frames need an index and a time ({exc})") from exc
    if pred_times is not None and clip.times is not None:
        matches = match_by_time(clip.times, pred_times, _fps_of(clip.times), float(seq.fps))
        if not matches:
            raise UserError(
                f"{seq.root}: no time overlap with the clip: the prediction covers {pred_times[0]:.3f}-{pred_times[-1]:.3f} s, "
                f"the clip {clip.times[0]:.3f}-{clip.times[-1]:.3f} s"
            )
        times = {t: float(pred_times[i]) for t, i in matches.items()}
    else:
        if len(seq) != clip.num_frames:
            raise UserError(
                f"{seq.root} has {len(seq)} frames, the clip {clip.root} {clip.num_frames}: without frame times "
                "(a plain folder of PLYs) frame i is compared with ground-truth frame i, so the counts must agree"
            )
        matches = {t: t for t in range(clip.num_frames)}
        times = {t: None for t in matches}

    note = None
    if crop and not keep_crop:
        try:
            m, shift = uncrop_transform(crop, clip_fovy(clip), clip.radius)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise UserError(f"{seq.root / 'manifest.json'}: unreadable source.crop ({exc})") from exc
        note = (f"{name}: uncropped from the input crop (scale {m:.4f}, shift {shift[0]:+.4f}, {shift[1]:+.4f}); "
                "--keep-crop compares it as reconstructed")

        def load(t: int) -> Gaussians:
            return seq.load(matches[t]).transform(torch.eye(3), torch.from_numpy(shift).float(), scale=m)
    else:
        def load(t: int) -> Gaussians:
            return seq.load(matches[t])

    return Method(name, load, matches, times, note)


# -- clip side -----------------------------------------------------------------------------------------
def input_view_of(clip, override: int | None = None) -> int:
    """The clip's input view: ``override``, else clip.json's ``input_view``, else the view whose
    frame-0 camera sits at elevation 0, azimuth 0 (the canonical front); UserError if none."""
    if override is not None:
        if override not in clip.views:
            raise UserError(f"--input-view {override}: the clip has no such view (views {clip.views[0]}..{clip.views[-1]})")
        return override
    if clip.input_view is not None:
        if clip.input_view not in clip.views:
            raise UserError(f"{clip.root}: clip.json names input view {clip.input_view}, which has no folder")
        return clip.input_view
    for v in clip.views:
        az = (clip.azimuth(v)[0] + 180.0) % 360.0 - 180.0
        if abs(clip.elevation(v)[0]) < 1e-3 and abs(az) < 1e-3:
            return v
    raise UserError(f"{clip.root}: cannot tell the input view (no clip.json and no view at elevation 0, azimuth 0); pass --input-view")


def canonical_transform(clip, input_view: int) -> np.ndarray:
    """M [4,4] with M . c2w(input view, frame 0) = the canonical front camera (``docs/l4gm.md`` §6)."""
    return front_normalisation(clip.c2w(input_view)[0], clip.radius).double().numpy()


def clip_fovy(clip) -> float:
    """The clip's vertical field of view in degrees (clip.json ``fovy_deg``, else L4GM's 49.1)."""
    return float(clip.meta.get("fovy_deg", FOVY_DEG))


def to_canonical(g: Gaussians, M: np.ndarray) -> Gaussians:
    """Ground-truth Gaussians in the prediction's frame: ``M`` applied (no copy when M is the identity)."""
    if np.allclose(M, np.eye(4), atol=1e-6):
        return g
    return g.transform(torch.from_numpy(M[:3, :3]).float(), torch.from_numpy(M[:3, 3]).float())


def consistent4d_views(clip, input_view: int) -> list[int]:
    """The 4 held-out views of the consistent4d protocol: elevation-0 views other than the input,
    each nearest (in azimuth) to the input azimuth + 45/135/225/315 degrees."""
    base = float(clip.azimuth(input_view)[0])
    flat = [v for v in clip.views if v != input_view and abs(float(clip.elevation(v)[0])) < 0.5]
    chosen: list[int] = []
    for off in CONSISTENT4D_OFFSETS:
        left = [v for v in flat if v not in chosen]
        if not left:
            break
        diff = [abs((float(clip.azimuth(v)[0]) - base - off + 180.0) % 360.0 - 180.0) for v in left]
        chosen.append(left[int(np.argmin(diff))])
    if len(chosen) < 4:
        raise UserError(f"{clip.root}: the consistent4d protocol needs 4 views at elevation 0 besides the input view; found {len(chosen)}")
    return chosen


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    if img.shape[0] == size and img.shape[1] == size:
        return img
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


# -- settings and result -------------------------------------------------------------------------------
@dataclass
class Settings:
    protocol: str = "full"
    size: int | None = None  # None: the clip's image size
    views: list[int] | None = None  # None: all (full) / the protocol's
    lpips_nets: tuple[str, ...] = ("vgg", "alex")
    clip_encoder: str | None = None  # ImageDream folder for CLIP similarity (consistent4d)
    input_view: int | None = None
    backend: str = "auto"
    device: str | None = None
    grid_frames: int = 4
    grid_views: int = 6
    grid_cell: int = 160


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(vals)) if vals else None


def _summarise(rows: list[dict], metrics: list[str]) -> dict:
    return {"images": len(rows), **{m: _mean(r.get(m) for r in rows) for m in metrics}}


@dataclass
class Evaluation:
    """Everything measured: per-image rows, per-method geometry, the grid image and notes."""

    settings: dict
    rows: list[dict]  # one per (method, frame, view)
    geometry: dict[str, dict]  # method -> {"per_frame": {t: chamfer dict}, "motion": [...], ...}
    metrics: list[str]  # image metrics measured
    grid: np.ndarray | None
    notes: list[str]

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(r["method"] for r in self.rows))

    def summary(self, method: str) -> dict:
        rows = [r for r in self.rows if r["method"] == method]
        out = {role: _summarise([r for r in rows if r["role"] == role], self.metrics) for role in ("input", "novel")}
        out["all"] = _summarise(rows, self.metrics)
        geo = self.geometry.get(method)
        if geo:
            out["geometry"] = {k: v for k, v in geo.items() if k != "per_frame"}
        return out

    def per_frame(self, method: str) -> list[dict]:
        rows = [r for r in self.rows if r["method"] == method]
        geo = (self.geometry.get(method) or {}).get("per_frame", {})
        out = []
        for t in sorted({r["frame"] for r in rows}):
            fr = [r for r in rows if r["frame"] == t]
            entry = {"frame": t, "time": fr[0]["time"], "source_frame": fr[0]["source_frame"]}
            for role in ("input", "novel"):
                entry[role] = _summarise([r for r in fr if r["role"] == role], self.metrics)
            if t in geo:
                entry["chamfer"] = geo[t]["chamfer"]
            out.append(entry)
        return out

    def per_view(self, method: str) -> list[dict]:
        rows = [r for r in self.rows if r["method"] == method]
        out = []
        for v in sorted({r["view"] for r in rows}):
            vr = [r for r in rows if r["view"] == v]
            out.append({"view": v, "role": vr[0]["role"], "elevation": vr[0]["elevation"], "azimuth": vr[0]["azimuth"],
                        **_summarise(vr, self.metrics)})
        return out

    def to_json(self) -> dict:
        return {
            "settings": self.settings,
            "metrics": self.metrics,
            "higher_is_better": {m: HIGHER_IS_BETTER[m] for m in [*self.metrics, "chamfer", "temporal_error"]},
            "notes": self.notes,
            "methods": {m: {"summary": self.summary(m), "per_frame": self.per_frame(m), "per_view": self.per_view(m)}
                        for m in self.methods},
        }

    def csv_rows(self) -> list[dict]:
        """One row per (method, frame, role): the means of that frame's views, plus its Chamfer."""
        out = []
        for m in self.methods:
            for entry in self.per_frame(m):
                for role in ("input", "novel"):
                    s = entry[role]
                    if not s["images"]:
                        continue
                    out.append({"method": m, "frame": entry["frame"], "time": entry["time"],
                                "source_frame": entry["source_frame"], "role": role, "views": s["images"],
                                **{k: s[k] for k in self.metrics}, "chamfer": entry.get("chamfer")})
        return out


# -- the loop ------------------------------------------------------------------------------------------
def _lpips_modules(nets, lpips_weights: dict | None, device):
    from video2gs.metrics.lpips import load_lpips

    return {net: load_lpips(net, (lpips_weights or {}).get(net), device=device) for net in nets}


def _grid_pick(items: list, count: int) -> list:
    if len(items) <= count:
        return list(items)
    idx = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in dict.fromkeys(idx.tolist())]


def _label(cell: np.ndarray, text: str) -> np.ndarray:
    cell = np.ascontiguousarray(cell)
    scale = max(0.3, cell.shape[0] / 400)
    cv2.putText(cell, text, (3, int(14 * scale / 0.4)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return cell


def evaluate(clip, methods: list[Method], settings: Settings, *, lpips_weights: dict | None = None,
             reporter=None) -> Evaluation:
    """Render every method at the evaluated views of every common matched frame and measure.

    clip: :class:`video2gs.data.layout.Clip`; methods: :class:`Method` list (at least one);
    lpips_weights: {net: path} overriding the registry (tests). Returns an :class:`Evaluation`.
    """
    from video2gs.render import render

    if settings.protocol not in PROTOCOLS:
        raise UserError(f"unknown protocol {settings.protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    if not methods:
        raise UserError("nothing to evaluate: give a prediction or a --baseline")
    notes: list[str] = [m.note for m in methods if m.note]
    input_view = input_view_of(clip, settings.input_view)
    if settings.protocol == "consistent4d":
        views = settings.views or consistent4d_views(clip, input_view)
        size = settings.size or CONSISTENT4D_SIZE
        nets = ("vgg",)
        notes.append(FVD_NOTE)
    else:
        views = settings.views or list(clip.views)
        size = settings.size
        nets = tuple(settings.lpips_nets)
    for v in views:
        if v not in clip.views:
            raise UserError(f"--views: the clip has no view {v} (views {clip.views[0]}..{clip.views[-1]})")
    first = clip.image(views[0], 0)
    if size is None:
        if first.shape[0] != first.shape[1]:
            raise UserError(f"{clip.image_file(views[0], 0)}: images are {first.shape[1]}x{first.shape[0]}; give --size to compare square renders")
        size = first.shape[0]
    if first.shape[0] != size or first.shape[1] != size:
        notes.append(f"ground-truth images resized from {first.shape[1]}x{first.shape[0]} to {size}x{size} "
                     "(resampling lowers every score; compare at the clip's own resolution for exact numbers)")
    clip_sim = None
    if settings.protocol == "consistent4d":
        from video2gs.metrics.clip_score import ClipSimilarity, find_encoder

        folder = settings.clip_encoder or find_encoder()
        if folder is None:
            notes.append("CLIP image similarity skipped: no CLIP image encoder on disk (it comes with the ImageDream "
                         "model: `video2gs download imagedream`, or --clip-model FOLDER)")
        else:
            clip_sim = ClipSimilarity(folder, device=settings.device)
            notes.append(f"CLIP image similarity: pooled CLIP ViT features of {folder}/image_encoder (cosine)")
    device = torch.device(settings.device) if settings.device else torch.device("cpu")
    lpips = _lpips_modules(nets, lpips_weights, device)
    metrics = ["psnr", "ssim", *[f"lpips_{n}" for n in nets], "mask_iou"] + (["clip_similarity"] if clip_sim else [])

    M = canonical_transform(clip, input_view)
    M_t = torch.from_numpy(M).float()
    fovy = clip_fovy(clip)
    frames = sorted(set.intersection(*(set(m.matches) for m in methods)))
    if not frames:
        raise UserError("the prediction and the baselines share no frame of the clip")
    skipped = clip.num_frames - len(frames)
    if skipped:
        notes.append(f"{len(frames)} of the clip's {clip.num_frames} frames have a matching prediction frame; the other {skipped} are not evaluated")
    has_gt = clip.has_gt
    if not has_gt:
        notes.append("no ground-truth Gaussians (gt/): Chamfer distance and temporal error not computed")
    grid_frames = set(_grid_pick(frames, settings.grid_frames))
    grid_views = [input_view] if input_view in views else []
    grid_views += _grid_pick([v for v in views if v != input_view], settings.grid_views - len(grid_views))
    grid_rows: list[np.ndarray] = []

    rows: list[dict] = []
    geometry = {m.name: {"per_frame": {}, "_pred_motion": [], "_gt_motion": []} for m in methods} if has_gt else {}
    prev: dict[str, Gaussians] = {}
    prev_gt: Gaussians | None = None
    with reporter.stage("evaluate", len(frames)) if reporter is not None else contextlib.nullcontext() as stage:
        for t in frames:
            cams = clip.cameras(t, views)
            cams = Cameras(M_t @ cams.c2w, fovy, cams.near, cams.far)
            gt_rgb = np.stack([_resize(clip.image(v, t), size) for v in views])  # [V,H,W,3]
            gt_mask = np.stack([_resize(clip.mask(v, t), size) for v in views])  # [V,H,W]
            gt_rgb_t = torch.from_numpy(gt_rgb).permute(0, 3, 1, 2).to(device)
            gt_mask_t = torch.from_numpy(gt_mask).to(device)
            gt_g = None
            if has_gt:
                gt_g = to_canonical(clip.load_gt(t), M)
            cells = {"gt": gt_rgb} if t in grid_frames else None
            gt_motion = chamfer(prev_gt, gt_g)["chamfer"] if gt_g is not None and prev_gt is not None else None
            vals: dict[str, dict[str, torch.Tensor]] = {}
            with torch.no_grad():
                for m in methods:
                    g = m.load(t)
                    out = render(g, cams, size, size, background=(1.0, 1.0, 1.0), backend=settings.backend,
                                 device=settings.device)
                    pred_rgb = out.rgb.permute(0, 3, 1, 2).to(device).clamp(0, 1)  # [V,3,H,W]
                    pred_alpha = out.alpha[..., 0].to(device)  # [V,H,W]
                    vals[m.name] = {"psnr": psnr(pred_rgb, gt_rgb_t), "ssim": ssim(pred_rgb, gt_rgb_t),
                                    "mask_iou": mask_iou(pred_alpha, gt_mask_t), "_rgb": pred_rgb}
                    if gt_g is not None:
                        geo = geometry[m.name]
                        geo["per_frame"][t] = chamfer(g, gt_g)
                        if m.name in prev and gt_motion is not None:
                            geo["_pred_motion"].append(chamfer(prev[m.name], g)["chamfer"])
                            geo["_gt_motion"].append(gt_motion)
                        prev[m.name] = g
                # LPIPS and CLIP: the ground truth's features are computed once and serve every method
                for net, mod in lpips.items():
                    parts: dict[str, list[torch.Tensor]] = {m.name: [] for m in methods}
                    for i in range(0, len(views), LPIPS_CHUNK):
                        gt_taps = mod.features(gt_rgb_t[i:i + LPIPS_CHUNK])
                        for m in methods:
                            parts[m.name].append(mod.distance(mod.features(vals[m.name]["_rgb"][i:i + LPIPS_CHUNK]), gt_taps))
                    for m in methods:
                        vals[m.name][f"lpips_{net}"] = torch.cat(parts[m.name])
                if clip_sim is not None:
                    gt_embed = clip_sim.embed(gt_rgb)
                    for m in methods:
                        pred_embed = clip_sim.embed(vals[m.name]["_rgb"].permute(0, 2, 3, 1).cpu().numpy())
                        vals[m.name]["clip_similarity"] = (pred_embed * gt_embed).sum(-1)
            for m in methods:
                pred_rgb = vals[m.name].pop("_rgb")
                if cells is not None:
                    cells[m.name] = pred_rgb.permute(0, 2, 3, 1).cpu().numpy()
                v_np = {k: v.detach().float().cpu().numpy() for k, v in vals[m.name].items()}
                for k, v in enumerate(views):
                    rows.append({"method": m.name, "frame": t, "time": None if clip.times is None else float(clip.times[t]),
                                 "source_frame": m.matches[t], "source_time": m.times.get(t), "view": v,
                                 "role": "input" if v == input_view else "novel",
                                 "elevation": float(clip.elevation(v)[t]), "azimuth": float(clip.azimuth(v)[t]),
                                 **{name: float(v_np[name][k]) for name in metrics}})
            prev_gt = gt_g
            if cells is not None:
                for name, imgs in cells.items():
                    row = [np.clip(np.rint(cv2.resize(imgs[views.index(v)], (settings.grid_cell, settings.grid_cell),
                                                      interpolation=cv2.INTER_AREA) * 255), 0, 255).astype(np.uint8)
                           for v in grid_views]
                    row[0] = _label(row[0], f"{name} t{t}")
                    grid_rows.append(np.concatenate(row, axis=1))
            if stage is not None:
                stage.advance()

    for name, geo in geometry.items():
        per = geo["per_frame"]
        pm, gm = geo.pop("_pred_motion"), geo.pop("_gt_motion")
        geo.update({"chamfer": _mean(c["chamfer"] for c in per.values()),
                    "pred_to_gt": _mean(c["pred_to_gt"] for c in per.values()),
                    "gt_to_pred": _mean(c["gt_to_pred"] for c in per.values()), **temporal_stability(pm, gm)})
    grid = np.concatenate(grid_rows, axis=0) if grid_rows else None
    settings_out = {
        "protocol": settings.protocol, "size": size, "views": views, "input_view": input_view,
        "grid_views": grid_views, "frames": frames, "lpips": list(nets), "background": "white", "fovy_deg": fovy,
        "canonical_transform": M.round(8).tolist(), "clip": str(clip.root), "clip_frames": clip.num_frames,
        "methods": {m.name: {"frames": len(m.matches)} for m in methods},
        "frame_matching": "by time (nearest, within half the smaller frame interval) when the prediction has a "
                          "manifest and the clip has times; else frame i <-> ground-truth frame i",
    }
    return Evaluation(settings_out, rows, geometry, metrics, grid, notes)


def baseline_methods(names: list[str], clip, pred: Method | None, input_view: int) -> list[Method]:
    """The requested baselines as Methods over every clip frame (see :mod:`video2gs.metrics.baselines`)."""
    out = []
    M = canonical_transform(clip, input_view)
    fovy = clip_fovy(clip)
    c2w_in = M @ clip.c2w(input_view).astype(np.float64)  # [T,4,4], canonical frame
    all_frames = {t: t for t in range(clip.num_frames)}
    for name in dict.fromkeys(names):
        if name not in _baselines.BASELINES:
            raise UserError(f"unknown baseline {name!r}; choose from: {', '.join(_baselines.BASELINES)}")
        if name == "billboard":
            def load(t: int) -> Gaussians:
                return _baselines.billboard(clip.image(input_view, t), clip.mask(input_view, t), c2w_in[t], fovy)

            out.append(Method("billboard", load, dict(all_frames)))
        elif pred is not None:
            first = min(pred.matches)
            frame0 = pred.load(first)
            out.append(Method("static", lambda t, g=frame0: g, {t: pred.matches[first] for t in pred.matches}))
        else:
            if not clip.has_gt:
                raise UserError(f"--baseline static without a prediction repeats the clip's ground-truth frame 0, but {clip.root} has no gt/")
            g0 = to_canonical(clip.load_gt(0), M)
            out.append(Method("static", lambda t, g=g0: g, {t: 0 for t in all_frames}))
    return out
