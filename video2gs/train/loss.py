"""The reference's training loss: render the predicted Gaussians at every supervision view and compare.

    loss = MSE(rgb, gt on white) + MSE(alpha, mask) + lpips · LPIPS-VGG(rgb↓, gt↓) [+ points · L_points]

over B·T frames × V views; ``↓`` = bilinear to ``lpips_size`` (256 in the reference), the LPIPS
module maps [0, 1] to [-1, 1]. ``lpips_views = k > 0`` (ours, for CPUs, where LPIPS-VGG is half of
a step) takes the LPIPS term over k of the B·N images only, a subset drawn from the batch's sample,
view and frame ids (so a resumed run draws the same): an unbiased estimate of the same mean.
``points > 0`` (ours, see :mod:`video2gs.data.point_targets`) adds ``L_points``: the mean Euclidean
distance of each input cell's Gaussian to its surface target and ``points_rgb`` times the MSE of
its colour to the target colour (over the cells that have one), plus the binary cross-entropy of
every cell's opacity against "has a target". ``render = 0`` drops the rendered terms (no rasterisation, no LPIPS: a fast
first phase on the surface targets alone). Rendering goes through :func:`video2gs.render.render` on a white
background: ``backend="auto"`` takes gsplat on CUDA and the differentiable torch backend on the CPU
(it sees that gradients are needed), so there is one code path for both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from video2gs.camera import Cameras
from video2gs.metrics.image import psnr
from video2gs.render import render


@dataclass
class Rendered:
    rgb: torch.Tensor  # [B·N, 3, H, W] in [0, 1]
    alpha: torch.Tensor  # [B·N, 1, H, W]


def render_views(gaussians: torch.Tensor, c2w: torch.Tensor, size: int, backend: str = "auto") -> Rendered:
    """gaussians [B·T, G, 14] (activated), c2w [B, T·V, 4, 4] frame-major -> renders of every view."""
    frames = gaussians.shape[0]
    views = c2w.shape[0] * c2w.shape[1] // frames
    cams = c2w.reshape(frames, views, 4, 4)
    rgb, alpha = [], []
    for f in range(frames):
        out = render(gaussians[f], Cameras(cams[f]), size, size, background=(1.0, 1.0, 1.0), backend=backend)
        rgb.append(out.rgb)
        alpha.append(out.alpha)
    return Rendered(torch.cat(rgb).permute(0, 3, 1, 2), torch.cat(alpha).permute(0, 3, 1, 2))


def point_loss(gaussians: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
    """gaussians [B·T, K·S², 14]; batch ``points_target``/``points_rgb`` [B, T·K, S, S, 3],
    ``points_valid`` [B, T·K, S, S], ``points_known`` [B] -> {"points", "points_rgb", "points_opacity"}.

    Gaussian ``k·S² + row·S + col`` of a frame belongs to cell (row, col) of input view k.
    """
    g = gaussians.float().reshape(-1, 14)  # (b, t, k, row, col) order, as the targets
    known = batch["points_known"].to(g).reshape(-1, 1).expand(-1, batch["points_valid"][0].numel()).reshape(-1)
    valid = batch["points_valid"].reshape(-1).to(g) * known
    n = valid.sum().clamp_min(1.0)
    dist = ((g[:, 0:3] - batch["points_target"].reshape(-1, 3).to(g)).square().sum(-1) + 1e-8).sqrt()
    rgb = (g[:, 11:14] - batch["points_rgb"].reshape(-1, 3).to(g)).square().mean(-1)
    opacity = F.binary_cross_entropy(g[:, 3].clamp(1e-4, 1 - 1e-4), valid, reduction="none")
    return {"points": (dist * valid).sum() / n, "points_rgb": (rgb * valid).sum() / n,
            "points_opacity": (opacity * known).sum() / known.sum().clamp_min(1.0)}


class Criterion(torch.nn.Module):
    """Loss and logged terms of one batch; ``lpips`` is a frozen :class:`video2gs.metrics.LPIPS` or None."""

    def __init__(self, lpips: torch.nn.Module | None, lpips_weight: float = 1.0, lpips_size: int = 256,
                 backend: str = "auto", lpips_views: int = 0, points_weight: float = 0.0,
                 render_weight: float = 1.0, points_rgb_weight: float = 1.0):
        super().__init__()
        self.points_weight = float(points_weight)
        self.points_rgb_weight = float(points_rgb_weight)
        self.render_weight = float(render_weight)
        self.lpips = lpips
        self.lpips_weight = float(lpips_weight) if lpips is not None else 0.0
        self.lpips_size = int(lpips_size)
        self.lpips_views = int(lpips_views)
        self.backend = backend

    def lpips_subset(self, batch: dict, count: int) -> torch.Tensor | None:
        """Indices of the images the LPIPS term sees (None = all)."""
        if not 0 < self.lpips_views < count:
            return None
        seed = 0
        for key in ("index", "view_ids", "frame_ids"):
            if key in batch:
                for v in batch[key].flatten().tolist():
                    seed = (seed * 1_000_003 + int(v) + 1) % (2**61 - 1)
        gen = torch.Generator().manual_seed(seed)
        return torch.randperm(count, generator=gen)[: self.lpips_views].sort().values

    def forward(self, gaussians: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict, Rendered | None]:
        """gaussians [B·T, G, 14], batch from :mod:`video2gs.train.data` -> (loss, terms, renders)."""
        loss = gaussians.new_zeros(())
        terms: dict[str, torch.Tensor] = {}
        pred = None
        if self.render_weight > 0:
            gt_rgb = batch["images_output"].flatten(0, 1).float()  # [B·N, 3, H, W]
            gt_mask = batch["masks_output"].flatten(0, 1).float()  # [B·N, 1, H, W]
            pred = render_views(gaussians.float(), batch["c2w"].float(), gt_rgb.shape[-1], self.backend)
            mse_rgb = F.mse_loss(pred.rgb, gt_rgb)
            mse_alpha = F.mse_loss(pred.alpha, gt_mask)
            rendered = mse_rgb + mse_alpha
            terms.update(mse_rgb=mse_rgb.detach(), mse_alpha=mse_alpha.detach())
            if self.lpips_weight > 0:
                size = (self.lpips_size, self.lpips_size)
                pick = self.lpips_subset(batch, gt_rgb.shape[0])
                p_rgb, g_rgb = (pred.rgb, gt_rgb) if pick is None else (pred.rgb[pick.to(pred.rgb.device)], gt_rgb[pick.to(gt_rgb.device)])
                lp = self.lpips(F.interpolate(p_rgb, size=size, mode="bilinear", align_corners=False),
                                F.interpolate(g_rgb, size=size, mode="bilinear", align_corners=False)).mean()
                rendered = rendered + self.lpips_weight * lp
                terms["lpips"] = lp.detach()
            loss = loss + self.render_weight * rendered
            terms["psnr"] = psnr(pred.rgb.detach().clamp(0, 1), gt_rgb).mean()
        if self.points_weight > 0 and "points_target" in batch:
            parts = point_loss(gaussians, batch)
            weighted = parts["points"] + self.points_rgb_weight * parts["points_rgb"] + parts["points_opacity"]
            loss = loss + self.points_weight * weighted
            terms.update({k: v.detach() for k, v in parts.items()})
        terms["loss"] = loss.detach()
        return loss, terms, pred
