"""What a viewer shows for a path: the sequences in it and the input frames beside them.

Accepts what ``video2gs render`` accepts (:meth:`video2gs.sequence.Sequence.open`): an output folder
(``manifest.json``, ``gaussians/``, optionally ``gaussians_x3/`` and ``input/*.png``), a plain folder
of PLYs, or one ``.ply``/``.splat`` file. Nothing is loaded here; frames are read on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from video2gs.sequence import GAUSSIANS_DIR, Sequence, natural_key

X3_DIR = "gaussians_x3"  # the interpolated sequence of an output folder
INPUT_DIR = "input"  # what the model saw, one PNG per frame of gaussians/


@dataclass
class Source:
    """sequences: name -> Sequence, the key frames first ('gaussians' for a file or plain folder too);
    inputs: the input frames (empty when there are none); fps: the key frames' rate."""

    path: Path
    sequences: dict[str, Sequence]
    inputs: list[Path]

    @classmethod
    def open(cls, path: str | Path, *, fps: float | None = None, x3: bool = True) -> "Source":
        """Open ``path`` (UserError with one line when there is nothing to show). ``fps`` overrides
        the key frames' rate (the x3 sequence plays at three times it); ``x3=False`` ignores gaussians_x3/."""
        path = Path(path)
        main = Sequence.open(path, fps=fps)
        sequences = {GAUSSIANS_DIR: main}
        inputs: list[Path] = []
        if main.kind == "output":
            if x3 and (path / X3_DIR).is_dir() and any((path / X3_DIR).iterdir()):
                recorded = (main.manifest or {}).get("x3", {}).get("fps") if fps is None else None
                sequences[X3_DIR] = Sequence.open(path, subdir=X3_DIR, fps=float(recorded or 3 * main.fps))
            folder = path / INPUT_DIR
            if folder.is_dir():
                inputs = sorted((p for p in folder.glob("*.png") if not p.name.startswith(".")), key=lambda p: natural_key(p.name))
        return cls(path, sequences, inputs)

    @property
    def fps(self) -> float:
        return self.sequences[GAUSSIANS_DIR].fps

    def input_index(self, name: str, index: int) -> int | None:
        """Index of the input frame shown at frame ``index`` of sequence ``name`` (same time), or None."""
        if not self.inputs:
            return None
        t = index / self.sequences[name].fps
        return min(int(round(t * self.fps + 1e-9)), len(self.inputs) - 1)
