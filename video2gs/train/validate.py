"""Validation during training: the metrics of ``video2gs evaluate`` on held-out clips.

Each validation clip gives one deterministic sample (inputs = the fixed views at azimuth 0/90/180/270,
the extra views in order; no augmentation), the network reconstructs it, every view is rendered
and compared with :mod:`video2gs.metrics` (PSNR, SSIM, LPIPS-VGG when its weights are loaded, mask
IoU), reported apart for the ``input`` views (the first ``num_input_views`` of each frame) and the
``novel`` views (the extra supervision views), as ``evaluate`` separates input and novel views.
"""

from __future__ import annotations

import torch

from video2gs.metrics.image import mask_iou, psnr, ssim
from video2gs.train.data import collate
from video2gs.train.loss import render_views


@torch.no_grad()
def validate(model, samples, *, device, precision, lpips=None, backend: str = "auto", views: int, input_views: int) -> dict:
    """Mean metrics over every sample of ``samples`` (a :class:`~video2gs.train.data.TrainSamples`)."""
    was_training = model.training
    model.eval()
    sums: dict[str, dict[str, float]] = {"input": {}, "novel": {}}
    counts = {"input": 0, "novel": 0}
    try:
        for i in range(len(samples)):
            batch = collate([samples[(0, i)]])
            if "input" not in batch:  # a corrupt clip
                continue
            with precision.autocast():
                gaussians = model(batch["input"].to(device))
            pred = render_views(gaussians.float(), batch["c2w"].to(device), batch["images_output"].shape[-1], backend)
            gt_rgb = batch["images_output"].flatten(0, 1).to(device)
            gt_mask = batch["masks_output"].flatten(0, 1).to(device)
            is_input = (torch.arange(gt_rgb.shape[0]) % views) < input_views
            rgb = pred.rgb.clamp(0, 1)
            per = {"psnr": psnr(rgb, gt_rgb), "ssim": ssim(rgb, gt_rgb), "iou": mask_iou(pred.alpha, gt_mask)}
            if lpips is not None:
                per["lpips"] = lpips(rgb, gt_rgb).flatten()
            for group, sel in (("input", is_input), ("novel", ~is_input)):
                if not sel.any():
                    continue
                for k, v in per.items():
                    sums[group][k] = sums[group].get(k, 0.0) + float(v[sel.to(v.device)].sum())
                counts[group] += int(sel.sum())
    finally:
        model.train(was_training)
    return {g: {k: v / counts[g] for k, v in sums[g].items()} for g in sums if counts[g]}
