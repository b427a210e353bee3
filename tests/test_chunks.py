import pytest

from video2gs.pipeline.chunks import interpolated_count, plan_chunks, plan_pairs


@pytest.mark.parametrize("n", [1, 2, 5, 15, 16, 17, 31, 46, 150, 151])
@pytest.mark.parametrize("t", [2, 3, 4, 16])
def test_every_frame_written_once_in_order(n, t):
    chunks = plan_chunks(n, t)
    outputs = [f for c in chunks for f in c.outputs]
    assert outputs == list(range(n))
    for prev, cur in zip(chunks, chunks[1:]):
        # a later chunk starts on the previous chunk's last written frame (the overlap)
        assert cur.frames[0] == prev.last_output
        assert cur.keep[0] == 1
    for c in chunks:
        assert len(c.frames) == t
        # padding repeats the last real frame and is never written
        real = sorted(set(c.frames))
        assert c.frames == tuple(real + [real[-1]] * (t - len(real)))
        assert len(set(c.outputs)) == len(c.outputs)


def test_reference_worked_example():
    # l4gm.md §5.3: 150 frames, T=16 -> 10 runs keeping 16 + 8*15 + 14
    chunks = plan_chunks(150, 16)
    assert len(chunks) == 10
    assert [len(c.keep) for c in chunks] == [16] + [15] * 8 + [14]


def test_bad_chunk_arguments():
    with pytest.raises(ValueError):
        plan_chunks(10, 1)
    with pytest.raises(ValueError):
        plan_chunks(0, 16)


@pytest.mark.parametrize("k", [1, 2, 3, 16, 150])
def test_pairs_cover_the_x3_stream_exactly(k):
    pairs = plan_pairs(k)
    indices = []
    for p in pairs:
        indices += [3 * p.a + pos for pos in p.keep]
        assert p.first_output == 3 * p.a + p.keep[0]
    expected = interpolated_count(k) if k > 1 else 0
    assert indices == list(range(expected))
    assert interpolated_count(150) == 448
