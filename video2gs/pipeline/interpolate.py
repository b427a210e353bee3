"""Stage 4, interpolate: the x3 model between consecutive reconstructed frames.

One T = 4 call per key pair (a, a+1): the inputs are both keys' video frames with renders of the
reconstructed keys at 90/180/270, and two RGB cross-fades between them. Output index ``3a + j`` is
written for each kept position j, as soon as it exists; resuming starts at the first pair not
recorded as done, so the result equals an uninterrupted run's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from video2gs.gaussians import Gaussians
from video2gs.pipeline.chunks import Pair, interpolated_count, plan_pairs
from video2gs.pipeline.reconstruct import NetworkFn, WriteFn, frame_loader, side_views


def interpolation_input(
    frame_a: torch.Tensor, side_a: torch.Tensor, frame_b: torch.Tensor, side_b: torch.Tensor
) -> torch.Tensor:
    """The interpolation model's input [4,4,3,H,W] for keys a, b.

    frame_*: [3,H,W] video frames (view 0); side_*: [3,3,H,W] renders of the reconstructed keys
    at 90/180/270. The two middle frames are RGB cross-fades (1/3, 2/3) of all four views.
    """
    key_a = torch.cat([frame_a[None], side_a])  # [4,3,H,W]
    key_b = torch.cat([frame_b[None], side_b])
    return torch.stack([key_a, torch.lerp(key_a, key_b, 1 / 3), torch.lerp(key_a, key_b, 2 / 3), key_b])


def interpolate_pairs(
    num_keys: int,
    load_frame: Callable[[int], torch.Tensor],
    load_key: Callable[[int], Gaussians],
    network: NetworkFn,
    write: WriteFn,
    *,
    size: int,
    start_pair: int = 0,
    on_pair_done: Callable[[Pair], None] | None = None,
    backend: str = "auto",
    device=None,
) -> list[Pair]:
    """x3 interpolation: for each consecutive key pair one T = 4 call of the interpolation model.

    Output index ``3a + j`` is written for each kept position j of pair (a, a+1); keys in the
    x3 stream are the interpolation model's re-predictions, as in the reference. A single key
    frame has no pair: it is passed through ``write(0, key)``.
    """
    pairs = plan_pairs(num_keys)
    if num_keys == 1:
        write(0, load_key(0))
        return pairs
    cache: dict[int, torch.Tensor] = {}

    def side(k: int) -> torch.Tensor:
        if k not in cache:
            for old in [j for j in cache if j < k - 1]:
                del cache[old]
            cache[k] = side_views(load_key(k), size, backend, device)
        return cache[k]

    for pair in pairs[start_pair:]:
        x = interpolation_input(load_frame(pair.a), side(pair.a), load_frame(pair.b), side(pair.b))
        out = Gaussians(network(x).float().cpu())  # [4,N,14]
        for pos in pair.keep:
            write(3 * pair.a + pos, out.frame(pos))
        if on_pair_done is not None:
            on_pair_done(pair)
    return pairs


def interpolate_stage(run, interp, rep, *, up: str, min_opacity: float, backend: str) -> int:
    """x3 of the run's ``gaussians/`` (read from ``run.source``) into ``gaussians_x3/`` of its staging
    folder, from the first pair not yet done; returns the frame count."""
    from video2gs.sequence import X3_DIR, Sequence, write_frame

    keys = Sequence.open(run.source)
    n = len(keys)
    total = interpolated_count(n)
    start = int(run.progress.get("pairs_done", 0))
    pairs = plan_pairs(n)
    with rep.stage("interpolate", total) as st:
        st.advance(sum(len(p.keep) for p in pairs[:start]))

        def write(index: int, g: Gaussians) -> None:
            write_frame(run.staging, index, g, up=up, min_opacity=min_opacity, subdir=X3_DIR)
            st.advance()

        interpolate_pairs(
            n, frame_loader(run, interp.config.input_size), keys.load, interp, write, size=interp.config.input_size,
            start_pair=start, on_pair_done=lambda p: run.mark(pairs_done=p.a + 1), backend=backend,
        )
    return total
