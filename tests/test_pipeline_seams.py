"""The seams of the chunk and pair loops, driven by a fake network whose Gaussians encode what it saw.

Frame i of the video is a flat image of value v(i); the fake network turns each input frame into
a small opaque blob whose colour is the mean of its view 0 and whose size encodes the mean of
views 1..3, so renders of its output tell which frame (and which conditioning) produced it."""

from __future__ import annotations

import pytest
import torch

from video2gs.gaussians import Gaussians
from video2gs.pipeline.chunks import plan_chunks, plan_pairs
from video2gs.pipeline.interpolate import interpolate_pairs, interpolation_input
from video2gs.pipeline.reconstruct import reconstruct_chunks, side_views

SIZE = 16


def value(i: int) -> float:
    return 0.05 + 0.9 * (i % 17) / 16


def load_frame(i: int) -> torch.Tensor:
    return torch.full((3, SIZE, SIZE), value(i))


class FakeNetwork:
    """[T,4,3,H,W] -> [T,N,14]; records every input it was given."""

    def __init__(self):
        self.inputs: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.clone())
        t = x.shape[0]
        n = 64
        g = torch.Generator().manual_seed(0)
        xyz = (torch.rand(n, 3, generator=g) - 0.5) * 0.4
        out = torch.zeros(t, n, 14)
        for k in range(t):
            out[k, :, 0:3] = xyz
            out[k, :, 3] = 0.9
            out[k, :, 4:7] = 0.02 + 0.05 * x[k, 1:].mean()
            out[k, :, 7] = 1.0
            out[k, :, 11:14] = x[k, 0].mean()
        return out


def run_chunks(n: int, chunk: int, state_dir, start_chunk: int = 0, stop_after: int | None = None, net=None):
    net = net or FakeNetwork()
    written: dict[int, torch.Tensor] = {}
    first = torch.ones(3, 3, SIZE, SIZE)

    def done(c):
        if stop_after is not None and c.index == stop_after:
            raise KeyboardInterrupt  # the process dies right after recording chunk c

    try:
        reconstruct_chunks(n, load_frame, first, net, lambda i, g: written.__setitem__(i, g.data.clone()),
                           chunk_size=chunk, state_dir=state_dir, start_chunk=start_chunk, on_chunk_done=done,
                           backend="torch")
    except KeyboardInterrupt:
        pass
    return written, net


def test_chunk_views_are_renders_of_the_previous_chunks_last_frame(tmp_path):
    n, t = 11, 4
    written, net = run_chunks(n, t, tmp_path)
    chunks = plan_chunks(n, t)
    assert sorted(written) == list(range(n)) and len(net.inputs) == len(chunks)
    for k, (chunk, x) in enumerate(zip(chunks, net.inputs)):
        # view 0 holds the chunk's frames, in order
        assert [round(float(v), 5) for v in x[:, 0].mean(dim=(1, 2, 3))] == [round(value(f), 5) for f in chunk.frames]
        if k == 0:
            assert torch.equal(x[:, 1:], torch.ones_like(x[:, 1:]))  # chunk 0: the given views of frame 0
            continue
        last = chunks[k - 1].last_output
        want = side_views(Gaussians(written[last]), SIZE, "torch", None)  # [3,3,H,W]
        for frame_views in x[:, 1:]:
            assert torch.equal(frame_views, want)
        # and they are not the renders of any other frame
        other = side_views(Gaussians(written[(last + 1) % n]), SIZE, "torch", None)
        assert not torch.equal(other, want)


@pytest.mark.parametrize("stop_after", [0, 1, 2])
def test_resume_from_any_chunk_is_bit_exact(tmp_path, stop_after):
    n, t = 11, 4
    ref, _ = run_chunks(n, t, tmp_path / "ref")
    part, _ = run_chunks(n, t, tmp_path / "run", stop_after=stop_after)
    rest, _ = run_chunks(n, t, tmp_path / "run", start_chunk=stop_after + 1)
    assert sorted({**part, **rest}) == list(range(n))
    for i in range(n):
        assert torch.equal({**part, **rest}[i], ref[i]), f"frame {i} differs after resuming at chunk {stop_after + 1}"


def _keys(n: int) -> dict[int, Gaussians]:
    net = FakeNetwork()
    return {i: Gaussians(net(torch.stack([torch.stack([load_frame(i)] * 4)]))[0]) for i in range(n)}


def run_pairs(n: int, keys, start_pair: int = 0, stop_after: int | None = None):
    net = FakeNetwork()
    written: dict[int, torch.Tensor] = {}

    def done(p):
        if stop_after is not None and p.a == stop_after:
            raise KeyboardInterrupt

    try:
        interpolate_pairs(n, load_frame, keys.__getitem__, net, lambda i, g: written.__setitem__(i, g.data.clone()),
                          size=SIZE, start_pair=start_pair, on_pair_done=done, backend="torch")
    except KeyboardInterrupt:
        pass
    return written, net


def test_in_betweens_sit_at_3a_plus_1_and_2_with_the_reference_inputs():
    n = 4
    keys = _keys(n)
    written, net = run_pairs(n, keys)
    assert sorted(written) == list(range(3 * (n - 1) + 1))
    for pair, x in zip(plan_pairs(n), net.inputs):
        a, b = pair.a, pair.b
        sa, sb = (side_views(keys[k], SIZE, "torch", None) for k in (a, b))
        assert torch.equal(x, interpolation_input(load_frame(a), sa, load_frame(b), sb))
        assert torch.allclose(x[1], x[0] + (x[3] - x[0]) / 3, atol=1e-6)  # cross-fades of all four views
        assert torch.allclose(x[2], x[0] + 2 * (x[3] - x[0]) / 3, atol=1e-6)
        # the network's output j lands at 3a + j: its colour is the mean of that input's view 0
        for j in pair.keep:
            assert float(written[3 * a + j][0, 11]) == pytest.approx(float(x[j, 0].mean()), abs=1e-6)


@pytest.mark.parametrize("stop_after", [0, 1])
def test_resume_from_any_pair_is_bit_exact(stop_after):
    n = 4
    keys = _keys(n)
    ref, _ = run_pairs(n, keys)
    part, _ = run_pairs(n, keys, stop_after=stop_after)
    rest, _ = run_pairs(n, keys, start_pair=stop_after + 1)
    merged = {**part, **rest}
    assert sorted(merged) == sorted(ref)
    assert all(torch.equal(merged[i], ref[i]) for i in ref)
