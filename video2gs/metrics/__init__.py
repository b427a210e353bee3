"""Metrics and evaluation: image metrics (PSNR, SSIM, LPIPS, mask IoU), geometry (opacity-weighted
Chamfer, temporal stability), CLIP image similarity, baselines and ``video2gs evaluate``.

Image tensors here are [N,3,H,W] in [0,1] unless a docstring says otherwise.
"""

from video2gs.metrics.image import mask_iou, psnr, ssim
from video2gs.metrics.lpips import LPIPS, load_lpips

__all__ = ["LPIPS", "load_lpips", "mask_iou", "psnr", "ssim"]
