"""Training and validation data: folders -> stores -> samples (:mod:`video2gs.data.samples`) -> batches.

* :func:`open_stores` -- ``--data DIR...``: ``data make`` folders (``dataset.json``; split by
  ``data.train_split`` / ``data.val_split``), single clip folders (``clip.json``: training) and the
  reference's ``DATA_HOME`` (``fixed_16_clip/`` + ``random_clip/`` tars, or their flattened
  ``fixed_16_clip-<uid>`` names; the last ``data.val_clips`` uids validate).
* :class:`TrainSamples` -- a Dataset indexed by ``(epoch, index)``: the sample is a pure function of
  the seed, epoch and index (any worker, any order, so ``--resume`` sees the same data). A corrupt
  sample comes back as ``{"error": msg}`` (skipped and counted by the trainer) unless ``strict``.
  ``side_views = "blank"`` replaces input views 1..3 of every frame by white images with the default
  input cameras (azimuth 90/180/270), which is what ``reconstruct --views none`` feeds the network;
  ``"mirror"`` replaces them, in every frame, by :func:`~video2gs.reconstructor.mirror_side_views` of
  that frame's view 0, with the same default cameras (what ``reconstruct`` feeds such a model).
  ``point_grid = S > 0`` adds the pixel-aligned surface targets of :mod:`video2gs.data.point_targets`
  for the S x S Gaussian grid of every input view (``points_target`` [T·K, S, S, 3], ``points_rgb``
  [T·K, S, S, 3] through the sample's ``colour_map``, ``points_valid`` [T·K, S, S]; a clip without
  ``gt/`` gets ``points_known`` 0 and no loss), seen from the cameras the network was given.
* :class:`StepBatches` -- the batch sampler: micro-step m of process r of w takes positions
  ``(m·w + r)·B ... + B`` of one endless stream, epoch e being a seeded permutation of the samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from video2gs.camera import INPUT_AZIMUTHS, input_view_rays, orbit_cameras
from video2gs.data.samples import L4GMDataset, SampleOptions
from video2gs.data.stores import REFERENCE_FIXED, REFERENCE_FIXED_INTERP, REFERENCE_RANDOM, ClipStore, TarStore
from video2gs.errors import UserError
from video2gs.reconstructor import mirror_side_views, network_input

SAMPLE_ERRORS = (UserError, OSError, ValueError, KeyError, RuntimeError)


@dataclass
class Stores:
    train: list = field(default_factory=list)
    val: list = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name: why" of clips that could not be opened
    notes: list[str] = field(default_factory=list)


def _reference_uids(root: Path, interp: bool) -> list[str]:
    fixed = REFERENCE_FIXED_INTERP if interp else REFERENCE_FIXED
    uids = set()
    if (root / fixed).is_dir():
        uids |= {p.name[:-4] if p.name.endswith(".tar") else p.name for p in (root / fixed).iterdir() if p.is_file()}
    for p in root.glob(f"{fixed}-*"):
        name = p.name[len(fixed) + 1:]
        uids.add(name[:-4] if name.endswith(".tar") else name)
    return sorted(uids)


def _open(make, what: str, strict: bool, out: Stores):
    try:
        return make()
    except SAMPLE_ERRORS as exc:
        if strict:
            raise UserError(f"{what}: {exc}") from exc
        out.skipped.append(f"{what}: {exc}")
        return None


def open_stores(dirs, *, train_split: str = "train", val_split: str = "val", val_clips: int = 1,
                interp: bool = False, strict: bool = False) -> Stores:
    """Stores of every ``--data`` folder (see the module docstring); UserError when none has a clip."""
    from video2gs.data.layout import list_clips, read_dataset_index

    if not dirs:
        raise UserError("no training data: pass --data DIR (a `video2gs data make` folder, a clip, or the reference's DATA_HOME)")
    out = Stores()
    for d in map(Path, dirs):
        if not d.is_dir():
            raise UserError(f"data folder not found: {d}")
        if (d / "dataset.json").is_file():
            read_dataset_index(d)  # a corrupt index is an error, not a skip
            for split, dest in ((train_split, out.train), (val_split, out.val)):
                for c in list_clips(d, split):
                    s = _open(lambda c=c: ClipStore(c), str(c), strict, out)
                    if s is not None:
                        dest.append(s)
        elif (d / "clip.json").is_file():
            s = _open(lambda d=d: ClipStore(d), str(d), strict, out)
            if s is not None:
                out.train.append(s)
        elif uids := _reference_uids(d, interp):
            n_val = min(max(0, val_clips), len(uids) - 1)
            for i, uid in enumerate(uids):
                s = _open(lambda uid=uid: TarStore.from_reference(d, uid, interp=interp), f"{d}:{uid}", strict, out)
                if s is not None:
                    (out.val if i >= len(uids) - n_val else out.train).append(s)
        elif not any(d.iterdir()):
            raise UserError(f"data folder {d} is empty")
        else:
            raise UserError(
                f"{d} is not training data: expected dataset.json (video2gs data make), clip.json (one clip) "
                f"or the reference's {REFERENCE_FIXED}/ and {REFERENCE_RANDOM}/ tars"
            )
    if not out.train:
        raise UserError(f"no complete training clips in {', '.join(map(str, dirs))} (split {train_split!r})")
    if not out.val:
        out.notes.append(f"no clips in split {val_split!r}: validating on the training clips")
        out.val = list(out.train)
    return out


def sample_options(cfg, input_size: int) -> SampleOptions:
    """The samples' options from the config's ``data`` section and the network's input size."""
    d = cfg.section("data")
    return SampleOptions(
        num_frames=d["num_frames"], num_views=d["num_views"], num_input_views=d["num_input_views"],
        input_size=input_size, output_size=d["output_size"], mode=d["mode"], shuffle_input=d["shuffle_input"],
        prob_grid_distortion=d["prob_grid_distortion"], prob_cam_jitter=d["prob_cam_jitter"],
        prob_recolour=d["prob_recolour"], random_start=d["random_start"],
    )


def _with_side_views(sample: dict, num_input_views: int, rgb) -> dict:
    """Input views 1..K-1 of every frame -> RGB ``rgb(view0)`` (normalised [T, 3, in, in] ->
    [T, K-1, 3, in, in]) seen from the default input cameras (az 90/180/270, elevation 0): their
    rays in ``input``, their poses in ``c2w_input``."""
    x = sample["input"]  # [T·K, 9, in, in]
    K, size = num_input_views, x.shape[-1]
    T = x.shape[0] // K
    x = x.reshape(T, K, *x.shape[1:]).clone()
    x[:, 1:, :3] = rgb(x[:, 0, :3])
    x[:, 1:, 3:] = input_view_rays(size)[1:K]  # view 0 = the canonical front camera
    sample["input"] = x.reshape(T * K, *x.shape[2:])
    cams = sample["c2w_input"].reshape(T, K, 4, 4).clone()
    cams[:, 1:] = orbit_cameras(INPUT_AZIMUTHS[1:K])
    sample["c2w_input"] = cams.reshape(T * K, 4, 4)
    return sample


def blank_side_views(sample: dict, num_input_views: int) -> dict:
    """Input views 1..K-1 of every frame -> white images seen from the default input cameras
    (az 90/180/270, elevation 0): the network input of ``reconstruct --views none``."""
    K = num_input_views

    def white(front: torch.Tensor) -> torch.Tensor:
        ones = torch.ones(1, K - 1, 3, *front.shape[-2:])
        return network_input(ones, torch.zeros(K - 1, 6, *front.shape[-2:]))[0][:, :3]  # normalised white

    return _with_side_views(sample, K, white)


def mirrored_side_views(sample: dict, num_input_views: int) -> dict:
    """Input views 1..3 of every frame -> :func:`mirror_side_views` of the frame's view 0 (on the
    normalised RGB, which mirroring commutes with), seen from the default input cameras."""
    if num_input_views != 4:
        raise UserError(f"side_views = mirror needs 4 input views, got {num_input_views}")
    return _with_side_views(sample, num_input_views, mirror_side_views)


def add_point_targets(sample: dict, store, grid: int) -> dict:
    """``points_target`` / ``points_valid`` of the sample's input cameras (module docstring)."""
    from video2gs.data.point_targets import surface_targets

    cams = sample["c2w_input"]  # [T·K, 4, 4], sample frame
    frames = sample["frame_ids"].tolist()
    K = cams.shape[0] // len(frames)
    target = torch.zeros(cams.shape[0], grid, grid, 3)
    colour = torch.zeros(cams.shape[0], grid, grid, 3)
    valid = torch.zeros(cams.shape[0], grid, grid)
    clip = getattr(store, "clip", None)
    known = clip is not None and clip.has_gt
    if known:
        M, C = sample["normalisation"], sample["colour_map"]
        for i, t in enumerate(frames):
            gt = clip.load_gt(t)
            xyz = gt.xyz @ M[:3, :3].T + M[:3, 3]
            rgb = (gt.rgb @ C.T).clamp(0.0, 1.0)  # as the images were recoloured
            tg, ok, col = surface_targets(xyz, gt.opacity, cams[i * K:(i + 1) * K], grid, rgb=rgb)
            target[i * K:(i + 1) * K], valid[i * K:(i + 1) * K], colour[i * K:(i + 1) * K] = tg, ok.float(), col
    sample["points_known"] = torch.tensor(float(known))
    sample["points_rgb"] = colour
    sample["points_target"], sample["points_valid"] = target, valid
    return sample


class TrainSamples(torch.utils.data.Dataset):
    """``L4GMDataset`` indexed by ``(epoch, index)`` with side-view handling and corrupt-sample capture."""

    def __init__(self, stores: list, options: SampleOptions, *, training: bool, seed: int,
                 side_views: str = "reference", strict: bool = False, point_grid: int = 0):
        self.inner = L4GMDataset(stores, options, training=training, seed=seed)
        self.side_views = side_views
        self.strict = strict
        self.point_grid = int(point_grid)

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, item) -> dict:
        epoch, index = item if isinstance(item, tuple) else (0, item)
        self.inner.set_epoch(epoch)
        try:
            sample = self.inner[index]
        except SAMPLE_ERRORS as exc:
            if self.strict:
                raise UserError(f"corrupt sample {self.inner.stores[index].name}: {exc}") from exc
            return {"error": f"{self.inner.stores[index].name}: {exc}"}
        if self.side_views == "blank":
            sample = blank_side_views(sample, self.inner.options.num_input_views)
        elif self.side_views == "mirror":
            sample = mirrored_side_views(sample, self.inner.options.num_input_views)
        if self.point_grid > 0:
            try:
                sample = add_point_targets(sample, self.inner.stores[index], self.point_grid)
            except SAMPLE_ERRORS as exc:
                if self.strict:
                    raise UserError(f"corrupt ground truth in {self.inner.stores[index].name}: {exc}") from exc
                return {"error": f"{self.inner.stores[index].name} (gt/): {exc}"}
        return sample


def collate(items: list[dict]) -> dict:
    """Stack good samples; ``errors`` lists the corrupt ones (a batch may end up empty)."""
    good = [s for s in items if "error" not in s]
    batch = {k: torch.stack([s[k] for s in good]) for k in good[0]} if good else {}
    batch["errors"] = [s["error"] for s in items if "error" in s]
    return batch


class StepBatches(torch.utils.data.Sampler):
    """Endless ``(epoch, index)`` batches of one process, starting at micro-step ``start`` (resume)."""

    def __init__(self, num_samples: int, batch_size: int, *, seed: int, world: int = 1, rank: int = 0, start: int = 0):
        self.n, self.b, self.seed, self.world, self.rank, self.start = num_samples, batch_size, seed, world, rank, start
        self._perms: dict[int, np.ndarray] = {}

    def _at(self, position: int) -> tuple[int, int]:
        epoch, offset = divmod(position, self.n)
        if epoch not in self._perms:
            self._perms = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n)}
        return epoch, int(self._perms[epoch][offset])

    def batch(self, micro_step: int) -> list[tuple[int, int]]:
        first = (micro_step * self.world + self.rank) * self.b
        return [self._at(p) for p in range(first, first + self.b)]

    def __iter__(self):
        m = self.start
        while True:
            yield self.batch(m)
            m += 1


def loader(samples: TrainSamples, sampler: StepBatches, num_workers: int) -> torch.utils.data.DataLoader:
    from video2gs.data.samples import worker_init_fn

    return torch.utils.data.DataLoader(
        samples, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers,
        worker_init_fn=worker_init_fn if num_workers else None, persistent_workers=False,
        prefetch_factor=2 if num_workers else None,
    )
