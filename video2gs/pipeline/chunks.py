"""Chunk and pair planning: which frames each network call sees and which outputs it keeps.

Pure bookkeeping (no tensors), so the schedule can be tested exhaustively and resumed exactly.

Reconstruction (``l4gm.md`` §5.3, with the reference's padding bug fixed): chunks of ``T`` frames
overlapping by one; chunk 0 keeps all its real frames, every later chunk drops its first
frame (the previous chunk's last one) and any padding. Each of the ``K`` frames is written
exactly once.

Interpolation (§5.4, with the boundary bug fixed): one call per consecutive key pair
``(k, k+1)`` over frames ``(k, k+1/3, k+2/3, k+1)``; the first pair keeps all four outputs,
later pairs drop their first (it duplicates the previous pair's last). Output: ``3(K-1)+1``
frames, each key once, none skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

INTERP_FACTOR = 3  # the released interpolation model inserts two frames between keys


@dataclass(frozen=True)
class Chunk:
    """One reconstruction call.

    index: chunk number. frames: the T source-frame indices fed to the network (the last one
    repeated as padding when the clip is short). keep: chunk-local positions whose outputs are
    written, in order; ``frames[keep[i]]`` is the output frame index.
    """

    index: int
    frames: tuple[int, ...]
    keep: tuple[int, ...]

    @property
    def outputs(self) -> tuple[int, ...]:
        return tuple(self.frames[i] for i in self.keep)

    @property
    def last_output(self) -> int:
        return self.outputs[-1]


def plan_chunks(num_frames: int, chunk_size: int = 16) -> list[Chunk]:
    """Chunks covering ``num_frames`` frames with one frame of overlap between neighbours."""
    if num_frames < 1:
        raise ValueError("need at least one frame")
    if chunk_size < 2:
        raise ValueError("chunk size must be at least 2 (one frame overlaps the previous chunk)")
    chunks: list[Chunk] = []
    start = 0
    while True:
        real = list(range(start, min(start + chunk_size, num_frames)))
        frames = tuple(real + [real[-1]] * (chunk_size - len(real)))
        keep = tuple(range(len(real))) if start == 0 else tuple(range(1, len(real)))
        chunks.append(Chunk(len(chunks), frames, keep))
        if start + chunk_size >= num_frames:
            return chunks
        start += chunk_size - 1


@dataclass(frozen=True)
class Pair:
    """One interpolation call between key frames ``a`` and ``a + 1``.

    keep: positions of the 4 outputs (key a, a+1/3, a+2/3, key a+1) that are written;
    first_output: index of the first written frame in the x3 stream.
    """

    a: int
    keep: tuple[int, ...]

    @property
    def b(self) -> int:
        return self.a + 1

    @property
    def first_output(self) -> int:
        return INTERP_FACTOR * self.a + (0 if self.a == 0 else 1)


def plan_pairs(num_keys: int) -> list[Pair]:
    """Pairs for ``num_keys`` key frames; a single key frame needs no call (it is copied)."""
    if num_keys < 1:
        raise ValueError("need at least one key frame")
    return [Pair(a, (0, 1, 2, 3) if a == 0 else (1, 2, 3)) for a in range(num_keys - 1)]


def interpolated_count(num_keys: int, factor: int = INTERP_FACTOR) -> int:
    """Frames in the interpolated stream: ``factor(K-1)+1``."""
    return factor * (num_keys - 1) + 1
