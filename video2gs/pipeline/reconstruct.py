"""Chunked, autoregressive 4D reconstruction and x3 interpolation over an output folder.

Both loops hold one chunk (or one pair) in memory, write each output frame as soon as it
exists, and persist the little state the next unit needs, so an interrupted run resumes at
the last complete unit and gives the same result as an uninterrupted one.

Images are float32 [3,H,W] in [0,1] on white; views are ordered azimuth 0/90/180/270 with the
video frame as view 0.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from video2gs.fileio import atomic_path
from video2gs.gaussians import Gaussians
from video2gs.pipeline.chunks import Chunk, Pair, plan_chunks, plan_pairs
from video2gs.pipeline.multiview import render_views

# (frames [T,4,3,H,W]) -> Gaussians [T,N,14]
NetworkFn = Callable[[torch.Tensor], torch.Tensor]
# (output index, one frame's Gaussians) -> None
WriteFn = Callable[[int, Gaussians], None]

SIDE_AZIMUTHS = (90, 180, 270)


def _side_views(gaussians: Gaussians, size: int, backend: str, device) -> torch.Tensor:
    """Renders of one frame at azimuth 90/180/270 -> [3,3,size,size] (views, channels, H, W)."""
    views = render_views(gaussians, SIDE_AZIMUTHS, size, backend=backend, device=device)  # [3,S,S,3]
    return torch.from_numpy(views).permute(0, 3, 1, 2).contiguous()


def _save_state(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))


def reconstruct_chunks(
    num_frames: int,
    load_frame: Callable[[int], torch.Tensor],
    first_views: torch.Tensor,
    network: NetworkFn,
    write: WriteFn,
    *,
    chunk_size: int = 16,
    state_dir: Path,
    start_chunk: int = 0,
    on_chunk_done: Callable[[Chunk], None] | None = None,
    backend: str = "auto",
    device=None,
) -> list[Chunk]:
    """Run every chunk from ``start_chunk`` on.

    load_frame(i) -> [3,H,W] video frame i (what the model sees as view 0).
    first_views: [3,3,H,W] views 1..3 of frame 0 (azimuth 90/180/270) for chunk 0.
    Later chunks' views 1..3 are renders of the previous chunk's last written frame; they are
    kept exactly (float32) in ``state_dir/handoff_<chunk>.safetensors`` after each chunk, before
    ``on_chunk_done`` records the chunk as complete, so a resumed run continues bit for bit.
    """
    chunks = plan_chunks(num_frames, chunk_size)
    if start_chunk > 0:
        side = load_file(str(handoff_path(state_dir, start_chunk - 1)))["side_views"]
    else:
        side = first_views.float()
    for chunk in chunks[start_chunk:]:
        frames = torch.stack([load_frame(i) for i in sorted(set(chunk.frames))])  # [U,3,H,W]
        lookup = {f: k for k, f in enumerate(sorted(set(chunk.frames)))}
        view0 = frames[[lookup[f] for f in chunk.frames]]  # [T,3,H,W]
        x = torch.cat([view0[:, None], side[None].expand(len(chunk.frames), -1, -1, -1, -1)], dim=1)  # [T,4,3,H,W]
        out = Gaussians(network(x).float().cpu())  # [T,N,14]
        for local in chunk.keep:
            write(chunk.frames[local], out.frame(local))
        side = _side_views(out.frame(chunk.keep[-1]), x.shape[-1], backend, device)
        _save_state(handoff_path(state_dir, chunk.index), {"side_views": side})
        if on_chunk_done is not None:
            on_chunk_done(chunk)
        handoff_path(state_dir, chunk.index - 1).unlink(missing_ok=True)
    return chunks


def handoff_path(state_dir: Path, chunk_index: int) -> Path:
    return Path(state_dir) / f"handoff_{chunk_index:04d}.safetensors"


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
            cache[k] = _side_views(load_key(k), size, backend, device)
        return cache[k]

    for pair in pairs[start_pair:]:
        x = interpolation_input(load_frame(pair.a), side(pair.a), load_frame(pair.b), side(pair.b))
        out = Gaussians(network(x).float().cpu())  # [4,N,14]
        for pos in pair.keep:
            write(3 * pair.a + pos, out.frame(pos))
        if on_pair_done is not None:
            on_pair_done(pair)
    return pairs

