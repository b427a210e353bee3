"""Test-time refinement (``reconstruct --refine STEPS``): fit each output frame to its own input frame.

A feed-forward model reproduces the view it was given only as well as its Gaussians allow: the
bundled ``demo`` gives 17-23 dB on its input view because its 4 x 32² Gaussians are 4 px wide at
128². Refinement keeps the network's Gaussians -- the same count, order and geometry -- and runs a
few Adam steps on their opacities and colours so that a render from the input camera matches the
input frame (colour on white + silhouette). Positions, scales and rotations stay the network's:
fitting them to the one view too made the novel views of the held-out teapot and penguin 0.2-0.9
dB worse (measured with ``benchmarks/eval_heldout.py``; the likely cause: Gaussians shrunk to
sharpen the front leave gaps seen from elsewhere).

The input camera is the network's view 0: azimuth 0, elevation 0, :data:`~video2gs.camera.RADIUS`,
:data:`~video2gs.camera.FOVY_DEG`, in the internal +Y-up frame (``docs/conventions.md``). Images here are
float32 in [0, 1].
"""

from __future__ import annotations

import torch

from video2gs.camera import INPUT_AZIMUTHS, Cameras
from video2gs.gaussians import OPACITY, RGB, Gaussians

# Adam step sizes of the two fitted groups, both logits: 50 steps of 0.05 can move an opacity or a
# colour channel across most of its range.
LR = {"opacity": 5e-2, "rgb": 5e-2}
# Clamps before the logit, so that saturated values start at a finite logit. The opacity's sits far
# below PRUNE_OPACITY (0.005), so the clamp alone revives no Gaussian the network switched off.
_OPACITY_EPS, _RGB_EPS = 1e-4, 1e-3


def input_camera() -> Cameras:
    """The camera the network's view 0 is seen from (one view)."""
    return Cameras.orbit([INPUT_AZIMUTHS[0]], 0.0)


def refine_frame(gaussians: Gaussians, target: torch.Tensor, steps: int, *, backend: str = "torch") -> Gaussians:
    """Fit one frame of Gaussians to the input image it was reconstructed from.

    gaussians: [N,14] activated (xyz, opacity, linear scale, quaternion wxyz, rgb), internal frame.
    target: [S,S,4] in [0,1] -- RGB: the input frame as the network saw it (view 0, the object
        composited on white, as ``input/*.png``); A: its segmentation mask. The fit renders at S x S.
    steps: Adam steps (0 returns a copy).
    Returns Gaussians [N,14] in the same order, with new opacities and colours and the same
    positions, scales and rotations. Loss: MSE of the colour (renders on white) + MSE of the
    alpha, both at the input camera.

    Example::

        g = refine_frame(g, torch.from_numpy(rgba), 50)  # rgba [128,128,4]
    """
    from video2gs.render import render

    data = gaussians.data.detach().float()  # [N,14]: Gaussians checked the channel count
    if data.ndim != 2:
        raise ValueError(f"refine_frame takes one frame [N,14], got {tuple(data.shape)}")
    if target.ndim != 3 or target.shape[-1] != 4 or target.shape[0] != target.shape[1]:
        raise ValueError(f"target must be a square RGBA image [S,S,4], got {tuple(target.shape)}")
    if steps <= 0:
        return Gaussians(data.clone())
    size = int(target.shape[0])
    target = target.float().to(data.device)
    rgb, alpha = target[..., :3], target[..., 3:4]  # [S,S,3] on white (as the renders), [S,S,1]
    cams = input_camera()

    params = {  # logits of the two fitted fields; every other column is the network's, kept
        "opacity": torch.logit(data[:, OPACITY].clamp(_OPACITY_EPS, 1 - _OPACITY_EPS)),  # [N,1]
        "rgb": torch.logit(data[:, RGB].clamp(_RGB_EPS, 1 - _RGB_EPS)),  # [N,3]
    }
    for p in params.values():
        p.requires_grad_(True)
    opt = torch.optim.Adam([{"params": [p], "lr": LR[k]} for k, p in params.items()])

    def assemble() -> torch.Tensor:  # -> [N,14] activated
        out = data.clone()
        out[:, OPACITY] = torch.sigmoid(params["opacity"])
        out[:, RGB] = torch.sigmoid(params["rgb"])
        return out

    with torch.enable_grad():
        for _ in range(steps):
            out = render(assemble(), cams, size, size, backend=backend)
            loss = torch.mean((out.rgb[0] - rgb) ** 2) + torch.mean((out.alpha[0] - alpha) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        return Gaussians(assemble().detach())
