"""Per-image metrics: PSNR, SSIM (pytorch-msssim), mask IoU. Inputs [N,3,H,W] float in [0,1].

All three are differentiable in the prediction except the IoU (a thresholded count); SSIM is the
standard Wang et al. (2004) index with an 11-tap Gaussian window (sigma 1.5), K = (0.01, 0.03),
data range 1, computed by ``pytorch_msssim.ssim`` (valid convolution, mean over pixels and
channels), the form most 3D/4D papers report.
"""

from __future__ import annotations

import torch

MAX_PSNR = 100.0  # dB reported for identical images (MSE clamped at 1e-10)


def _check(pred: torch.Tensor, target: torch.Tensor, what: str) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"{what}: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if pred.ndim != 4:
        raise ValueError(f"{what} takes images [N,C,H,W], got {tuple(pred.shape)}")


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio [N] in dB for images in [0,1] (peak 1): -10 log10(MSE)."""
    _check(pred, target, "psnr")
    mse = ((pred.float() - target.float()) ** 2).mean(dim=(1, 2, 3))
    return -10.0 * torch.log10(mse.clamp_min(10 ** (-MAX_PSNR / 10)))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Structural similarity [N] (1 = identical) of images [N,3,H,W] in [0,1]; H, W >= 11."""
    from pytorch_msssim import ssim as _ssim

    _check(pred, target, "ssim")
    if min(pred.shape[-2:]) < 11:
        raise ValueError(f"ssim needs images of at least 11x11 pixels, got {tuple(pred.shape[-2:])}")
    return _ssim(pred.float(), target.float(), data_range=1.0, size_average=False)


def mask_iou(pred_alpha: torch.Tensor, target_mask: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Intersection over union [N] of two silhouettes [N,H,W] (or [N,1,H,W]) thresholded at
    ``threshold``; 1 when both are empty."""
    if pred_alpha.shape != target_mask.shape:
        raise ValueError(f"mask_iou: shapes {tuple(pred_alpha.shape)} and {tuple(target_mask.shape)} differ")
    a = (pred_alpha > threshold).flatten(1)
    b = (target_mask > threshold).flatten(1)
    inter = (a & b).sum(1).float()
    union = (a | b).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
