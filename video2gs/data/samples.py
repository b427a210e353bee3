"""Training samples as the reference builds them (``docs/l4gm.md`` §6), and a torch Dataset of them.

One sample = one animation (a :mod:`store <video2gs.data.stores>`), T frames, V = ``num_views``
views per frame: ``num_input_views`` (4) network inputs followed by extra supervision views.

1. **Views.** Training with ``shuffle_input``: the inputs are 4 distinct fixed views drawn at random
   (not necessarily 90° apart), the extras a random permutation of the random views. Otherwise the
   inputs are the fixed views at azimuth 0/90/180/270 (every quarter of the fixed list) and the extras
   the random views in order. Too few views: the last one is repeated (the reference warns too).
2. **Frames.** ``mode="recon"``: t = 0..T-1 (with ``random_start``, training only: T consecutive
   frames from a random start, so clips longer than T are seen whole). ``mode="interp"``: T consecutive frames from a random
   start in [0, min(24, frames) - T) (the reference's 24-frame interp clips: [0, 20) for T = 4).
3. **Poses.** ``c2w = camera.user_orbit(elevation, azimuth, radius)`` (Blender elevation, i.e. the
   reference's ``orbit_camera(-elevation, azimuth)``), then every pose is left-multiplied by
   ``camera.front_normalisation(c2w[frame 0, input view 0])``: input view 0 of frame 0 becomes the
   canonical front camera ``orbit_camera(0, 0, radius)``.
4. **Inputs** (bilinear to ``input_size``): training only, with probability ``prob_grid_distortion``
   every frame's input views 1..3 are grid-distorted, with ``prob_cam_jitter`` their poses jittered
   (``camera.orbit_jitter``); with ``prob_recolour`` every image of the sample (inputs and
   supervision) goes through one random colour map (:func:`~video2gs.data.augment.recolour`). Then ``mode="recon"`` masks: views 1..3 of frames >= 1 take frame 0's
   images **and** poses; ``mode="interp"``: frames 1..T-2 (all 4 views) become lerps of the first and
   last frame (weights t / (T-1)), and the poses are masked as in recon. Supervision is never masked.
5. The 9-channel network input comes from :func:`video2gs.reconstructor.network_input` (ImageNet
   normalisation + Plücker rays of the masked input poses).

Sample dict (float32 unless noted; N_in = T·num_input_views, N = T·num_views, frame-major: t0v0, t0v1, ...):

==================  =======================  =============================================================
key                 shape                    meaning
==================  =======================  =============================================================
``input``           [N_in, 9, in, in]        network input: ImageNet-normalised RGB (about [-2.1, 2.6]), Plücker rays (moment, direction)
``images_output``   [N, 3, out, out]         supervision RGB in [0, 1], on white (bilinear to ``output_size``)
``masks_output``    [N, 1, out, out]         supervision alpha in [0, 1]
``c2w``             [N, 4, 4]                supervision cameras, OpenGL c2w, normalised (use with ``camera.Cameras``)
``c2w_input``       [N_in, 4, 4]             the input cameras as the network saw them (jittered, masked)
``normalisation``   [4, 4]                   the store's world -> the sample's (the front normalisation of step 3)
``colour_map``      [3, 3]                   the recolouring applied to every image (identity when none)
``cam_view``        [N, 4, 4]                reference rasterizer layout: transposed OpenCV w2c
``cam_view_proj``   [N, 4, 4]                ``cam_view @ P`` (``camera.projection_matrix``)
``cam_pos``         [N, 3]                   true camera positions (the reference's sign bug is not kept)
``view_ids``        [num_views] int64        store view ids used (the same for every frame)
``frame_ids``       [T] int64                store frame indices used
``index``           [] int64                 the dataset index of this sample
==================  =======================  =============================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from video2gs.camera import FOVY_DEG, RADIUS, dgr_matrices, front_normalisation, orbit_jitter, plucker_rays, user_orbit
from video2gs.data.augment import grid_distortion, recolour, recolour_matrix
from video2gs.errors import UserError
from video2gs.reconstructor import network_input

MODES = ("recon", "interp")
INTERP_MAX_FRAMES = 24  # the reference's interpolation clips are 24 frames long


@dataclass
class SampleOptions:
    """The reference's data options (``core/options.py``; recon defaults; interp: T 4, no distortion)."""

    num_frames: int = 8
    num_views: int = 8
    num_input_views: int = 4
    input_size: int = 256
    output_size: int = 512
    fovy_deg: float = FOVY_DEG
    radius: float = RADIUS
    mode: str = "recon"
    shuffle_input: bool = True
    prob_grid_distortion: float = 0.5
    prob_cam_jitter: float = 0.0
    grid_strength: float = 0.5
    jitter_strength: float = 0.1
    prob_recolour: float = 0.0  # ours, not the reference's: see video2gs.data.augment
    random_start: bool = False  # recon mode: a random window of T frames instead of 0..T-1

    def __post_init__(self):
        if self.mode not in MODES:
            raise UserError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.num_views < self.num_input_views or self.num_input_views < 1 or self.num_frames < 1:
            raise UserError("need num_views >= num_input_views >= 1 and num_frames >= 1")
        if self.mode == "interp" and self.num_frames < 2:
            raise UserError("interp samples need at least 2 frames")

    @classmethod
    def interp(cls, **kw) -> "SampleOptions":
        """The reference's interpolation-model training data: 4 frames, no grid distortion."""
        return cls(**{"num_frames": 4, "mode": "interp", "prob_grid_distortion": 0.0, **kw})


def choose_views(store, opts: SampleOptions, rng: np.random.Generator, training: bool) -> list[int]:
    """View ids: num_input_views inputs, then extras, num_views in all (padded with the last)."""
    fixed, extra = list(store.fixed_ids), list(store.random_ids)
    k = opts.num_input_views
    if training and opts.shuffle_input:
        inputs = [fixed[i] for i in rng.permutation(len(fixed))[:k]]
        extra = [extra[i] for i in rng.permutation(len(extra))]
    else:
        step = max(1, len(fixed) // k)
        inputs = fixed[::step][:k]
    views = (inputs + extra)[: opts.num_views]
    if len(views) < opts.num_views:
        views = views + [views[-1]] * (opts.num_views - len(views))
    return views


def choose_frames(store, opts: SampleOptions, rng: np.random.Generator, training: bool = True) -> list[int]:
    """Frame indices: recon t = 0..T-1 (or a random window); interp T consecutive from a random start."""
    T = opts.num_frames
    if store.num_frames < T:
        raise UserError(f"{store.name}: {store.num_frames} frames, the sample needs {T}")
    if opts.mode == "recon":
        start = int(rng.integers(store.num_frames - T + 1)) if training and opts.random_start else 0
        return list(range(start, start + T))
    span = min(INTERP_MAX_FRAMES, store.num_frames) - T
    start = int(rng.integers(span)) if span > 0 else 0
    return list(range(start, start + T))


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x.clone()
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def build_sample(store, opts: SampleOptions, rng: np.random.Generator, training: bool = True) -> dict:
    """One training sample from ``store`` (see the module docstring for the dict)."""
    views = choose_views(store, opts, rng, training)
    frames = choose_frames(store, opts, rng, training)
    T, V, K = len(frames), len(views), opts.num_input_views
    images, masks, poses = [], [], []
    for t in frames:
        for v in views:
            rgb, mask, elevation, azimuth = store.read(v, t)
            images.append(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1))
            masks.append(torch.from_numpy(np.ascontiguousarray(mask)))
            poses.append(torch.from_numpy(user_orbit(elevation, azimuth, opts.radius)))
    sizes = {tuple(im.shape[-2:]) for im in images}
    if len(sizes) != 1:
        raise UserError(f"{store.name}: views have different image sizes {sorted(sizes)}")
    images = torch.stack(images)  # [N, 3, H, W]
    colour_map = torch.eye(3)
    if training and opts.prob_recolour > 0 and rng.random() < opts.prob_recolour:
        colour_map = recolour_matrix(rng)
        images = recolour(images, colour_map)
    masks = torch.stack(masks)[:, None]  # [N, 1, H, W]
    c2w = torch.stack(poses)  # [N, 4, 4]
    normalise = front_normalisation(c2w[0], opts.radius)
    c2w = normalise @ c2w  # input view 0 of frame 0 -> the front camera

    inputs = _resize(images.reshape(T, V, *images.shape[1:])[:, :K].reshape(T * K, *images.shape[1:]), opts.input_size)
    inputs = inputs.reshape(T, K, 3, opts.input_size, opts.input_size)
    c2w_in = c2w.reshape(T, V, 4, 4)[:, :K].clone()  # [T, K, 4, 4]
    if training:
        gen = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
        if rng.random() < opts.prob_grid_distortion:
            for t in range(T):
                inputs[t, 1:] = grid_distortion(inputs[t, 1:], rng, opts.grid_strength)
        if rng.random() < opts.prob_cam_jitter:
            for t in range(T):
                c2w_in[t, 1:] = orbit_jitter(c2w_in[t, 1:], opts.jitter_strength, gen)
    if opts.mode == "recon":
        inputs[1:, 1:] = inputs[0:1, 1:]  # frames >= 1 see frame 0's views 1..3
    else:
        for t in range(1, T - 1):
            inputs[t] = torch.lerp(inputs[0], inputs[-1], t / (T - 1))
    c2w_in[1:, 1:] = c2w_in[0:1, 1:]  # and their poses (both modes, as the reference)

    rays = torch.stack([plucker_rays(c2w_in[t], opts.input_size, opts.input_size, opts.fovy_deg) for t in range(T)])
    net_in = network_input(inputs, rays)[0]  # [T·K, 9, in, in]
    cam_view, cam_view_proj, cam_pos = dgr_matrices(c2w, opts.fovy_deg)
    return {
        "input": net_in,
        "images_output": _resize(images, opts.output_size),
        "masks_output": _resize(masks, opts.output_size),
        "c2w": c2w,
        "c2w_input": c2w_in.reshape(T * K, 4, 4),
        "normalisation": normalise,
        "colour_map": colour_map,
        "cam_view": cam_view,
        "cam_view_proj": cam_view_proj,
        "cam_pos": cam_pos,
        "view_ids": torch.tensor(views, dtype=torch.int64),
        "frame_ids": torch.tensor(frames, dtype=torch.int64),
    }


class L4GMDataset(torch.utils.data.Dataset):
    """Samples of many stores for ``torch.utils.data.DataLoader`` (picklable; any number of workers).

    Sample i of epoch e is drawn from ``numpy.random.default_rng([seed, e, i])``: the same on any
    worker, in any order, and different per epoch (call :meth:`set_epoch`). Use
    :meth:`from_dataset` for ``data make`` folders and :meth:`from_reference` for the reference's tars.
    """

    def __init__(self, stores: list, options: SampleOptions | None = None, training: bool = True, seed: int = 0):
        if not stores:
            raise UserError("the dataset has no clips")
        self.stores = list(stores)
        self.options = options or SampleOptions()
        self.training = training
        self.seed = int(seed)
        self.epoch = 0

    @classmethod
    def from_dataset(cls, root, split: str | None = "train", **kw) -> "L4GMDataset":
        """The complete clips of a ``data make`` folder (one split, or all with ``split=None``)."""
        from video2gs.data.layout import list_clips
        from video2gs.data.stores import ClipStore

        clips = list_clips(root, split)
        if not clips:
            raise UserError(f"{root}: no complete clips" + (f" in split {split!r}" if split else ""))
        return cls([ClipStore(c) for c in clips], **kw)

    @classmethod
    def from_reference(cls, data_home, uids, interp: bool = False, **kw) -> "L4GMDataset":
        """The reference's tars under ``data_home`` for each uid (a datalist's lines)."""
        from video2gs.data.stores import TarStore

        return cls([TarStore.from_reference(Path(data_home), u, interp=interp) for u in uids], **kw)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.stores)

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        sample = build_sample(self.stores[index], self.options, rng, self.training)
        sample["index"] = torch.tensor(int(index))
        return sample


def worker_init_fn(worker_id: int) -> None:
    """Seed torch's and numpy's global generators per worker (for code that uses them)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
