"""Stage 3, reconstruct: chunked, autoregressive 4D reconstruction.

The loop holds one chunk in memory, writes each output frame as soon as it exists, and persists
the little state the next chunk needs, so an interrupted run resumes at the last complete chunk
and gives the same result as an uninterrupted one.

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
from video2gs.pipeline.chunks import Chunk, plan_chunks
from video2gs.pipeline.views import SIDE_AZIMUTHS, render_views

# (frames [T,4,3,H,W]) -> Gaussians [T,N,14]
NetworkFn = Callable[[torch.Tensor], torch.Tensor]
# (output index, one frame's Gaussians) -> None
WriteFn = Callable[[int, Gaussians], None]

def side_views(gaussians: Gaussians, size: int, backend: str, device) -> torch.Tensor:
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
    handoff: bool = True,
    per_frame: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> list[Chunk]:
    """Run every chunk from ``start_chunk`` on.

    load_frame(i) -> [3,H,W] video frame i (what the model sees as view 0).
    first_views: [3,3,H,W] views 1..3 of frame 0 (azimuth 90/180/270) for chunk 0.
    Later chunks' views 1..3 are renders of the previous chunk's last written frame; they are
    kept exactly (float32) in ``state_dir/handoff_<chunk>.safetensors`` after each chunk, before
    ``on_chunk_done`` records the chunk as complete, so a resumed run continues bit for bit.
    ``handoff=False`` (a model trained with blank side views): every chunk takes ``first_views``.
    ``per_frame`` (a model trained with side views made from each frame, e.g.
    :func:`~video2gs.reconstructor.mirror_side_views`): view0 [T,3,H,W] -> views 1..3 [T,3,3,H,W]
    of every frame; ``first_views`` and the handoff are then unused.
    """
    chunks = plan_chunks(num_frames, chunk_size)
    handoff = handoff and per_frame is None
    if start_chunk > 0 and handoff:
        side = load_file(str(handoff_path(state_dir, start_chunk - 1)))["side_views"]
    else:
        side = first_views.float()
    for chunk in chunks[start_chunk:]:
        frames = torch.stack([load_frame(i) for i in sorted(set(chunk.frames))])  # [U,3,H,W]
        lookup = {f: k for k, f in enumerate(sorted(set(chunk.frames)))}
        view0 = frames[[lookup[f] for f in chunk.frames]]  # [T,3,H,W]
        sides = per_frame(view0) if per_frame is not None else side[None].expand(len(chunk.frames), -1, -1, -1, -1)
        x = torch.cat([view0[:, None], sides], dim=1)  # [T,4,3,H,W]
        out = Gaussians(network(x).float().cpu())  # [T,N,14]
        for local in chunk.keep:
            write(chunk.frames[local], out.frame(local))
        if handoff:
            side = side_views(out.frame(chunk.keep[-1]), x.shape[-1], backend, device)
            _save_state(handoff_path(state_dir, chunk.index), {"side_views": side})
        if on_chunk_done is not None:
            on_chunk_done(chunk)
        handoff_path(state_dir, chunk.index - 1).unlink(missing_ok=True)
    return chunks


def handoff_path(state_dir: Path, chunk_index: int) -> Path:
    return Path(state_dir) / f"handoff_{chunk_index:04d}.safetensors"


def reconstruct_stage(run, recon, rep, *, num_frames: int, chunk: int, up: str, min_opacity: float, backend: str,
                      refine: int = 0, detail: bool = False) -> None:
    """Chunks from the last complete one on, into ``gaussians/`` of the run's staging folder. Before
    a frame is written: with ``refine`` > 0 it is fitted to its input frame (:mod:`video2gs.refine`),
    then with ``detail`` its view-0 Gaussians become one per input pixel (:mod:`video2gs.detail`)."""
    from video2gs.detail import pixel_layer
    from video2gs.images import on_white, read_rgba, resize_area, to_chw, to_float
    from video2gs.pipeline.run_folder import VIEWS_DIR
    from video2gs.reconstructor import mirror_side_views
    from video2gs.refine import refine_frame
    from video2gs.sequence import GAUSSIANS_DIR, write_frame

    size = recon.config.input_size
    sides = torch.stack([to_chw(on_white(read_rgba(run.staging / VIEWS_DIR / f"view_{int(az):03d}.png")), size)
                         for az in SIDE_AZIMUTHS])  # [3,3,S,S]
    chunks = plan_chunks(num_frames, chunk)
    start = int(run.progress.get("chunks_done", 0))
    with rep.stage("reconstruct", num_frames) as st:
        st.advance(sum(len(c.keep) for c in chunks[:start]))

        def write(index: int, g: Gaussians) -> None:
            if refine > 0 or detail:
                rgba = to_float(read_rgba(run.input_png(index)))  # [256,256,4]
            if refine > 0:
                g = refine_frame(g, torch.from_numpy(resize_area(rgba, size)), refine)  # fitted at the network's size
            if detail:
                g = pixel_layer(g, torch.from_numpy(rgba), recon.config.splat_size)  # one Gaussian per input pixel
            write_frame(run.staging, index, g, up=up, min_opacity=min_opacity, subdir=GAUSSIANS_DIR)
            st.advance()

        reconstruct_chunks(
            num_frames, frame_loader(run, size), sides, recon, write, chunk_size=chunk, state_dir=run.work,
            start_chunk=start, on_chunk_done=lambda c: run.mark(chunks_done=c.index + 1), backend=backend,
            handoff=recon.side_views != "blank",
            per_frame=mirror_side_views if recon.side_views == "mirror" else None,
        )


def frame_loader(run, size: int) -> Callable[[int], torch.Tensor]:
    """i -> the model's view 0 of frame i, [3,size,size], from ``input/``."""
    from video2gs.images import read_rgba, to_chw, to_float

    return lambda i: to_chw(to_float(read_rgba(run.input_png(i))[..., :3]), size)
