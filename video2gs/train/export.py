"""A training checkpoint -> one weights file to ship (fp16 by default), with what ``reconstruct`` needs.

    python -m video2gs.train.export RUN/checkpoint models/demo.safetensors --dtype fp16

The output is official-layout safetensors (:func:`video2gs.nn.checkpoint.save_checkpoint`) whose
metadata carries the network config and the run's ``side_views`` (from ``metadata.json``), so
``reconstruct --model FILE`` feeds the model the side views it was trained with, plus the step and
the config's source for provenance. Prints the file's size, parameter count and sha256.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from video2gs.errors import UserError


def export_weights(checkpoint: Path, out: Path, dtype: str = "fp16") -> dict:
    """Write ``out`` from a ``RUN/checkpoint`` folder (or RUN); returns a summary dict."""
    from video2gs.nn.checkpoint import SIDE_VIEWS_METADATA_KEY, load_model, save_checkpoint
    from video2gs.train.state import MODEL_FILE, read_metadata
    from video2gs.weights import sha256_file

    folder = Path(checkpoint)
    if (folder / "checkpoint" / MODEL_FILE).is_file():
        folder = folder / "checkpoint"
    if not (folder / MODEL_FILE).is_file():
        raise UserError(f"{checkpoint}: not a training checkpoint (no {MODEL_FILE}); pass RUN or RUN/checkpoint")
    meta = read_metadata(folder)
    model = load_model(folder / MODEL_FILE)
    extra = {
        SIDE_VIEWS_METADATA_KEY: meta.get("side_views", "reference"),
        "video2gs_step": str(meta.get("step")),
        "video2gs_version": str(meta.get("video2gs", "")),
    }
    save_checkpoint(model, Path(out), dtype=dtype, metadata=extra)
    params = sum(p.numel() for p in model.parameters())
    return {"path": str(out), "bytes": Path(out).stat().st_size, "params": params, "step": meta.get("step"),
            "side_views": extra[SIDE_VIEWS_METADATA_KEY], "dtype": dtype, "sha256": sha256_file(Path(out))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m video2gs.train.export", description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path, help="RUN or RUN/checkpoint of `video2gs train`")
    ap.add_argument("out", type=Path, help="the .safetensors file to write")
    ap.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"], help="storage precision (default fp16)")
    args = ap.parse_args(argv)
    try:
        print(json.dumps(export_weights(args.checkpoint, args.out, args.dtype), indent=1))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
