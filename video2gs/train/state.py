"""Training checkpoints: ``RUN/checkpoint/`` (the latest) and ``RUN/backup/`` (the one before).

A checkpoint folder holds

* ``model.safetensors`` -- fp32 weights in the official key layout (:func:`save_checkpoint`), loadable
  by ``video2gs reconstruct --model`` and by the reference code;
* ``training_state.pt`` -- optimizer and scheduler state dicts and the torch RNG states: tensors,
  numbers and strings only, read back with ``torch.load(weights_only=True)`` (nothing is unpickled);
* ``metadata.json`` (written last: a folder without it is incomplete) -- step, the full config, the
  network config, ``side_views`` (what the input views 1..3 were in training, for ``reconstruct``),
  the init, counts of skipped samples, the last logged metrics.

Writes are atomic at folder level: the new checkpoint is built in ``RUN/.checkpoint-partial``, the
old ``checkpoint/`` becomes ``backup/``, then the new one is renamed into place; at every instant
one complete checkpoint exists.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from video2gs.errors import UserError
from video2gs.fileio import write_json_atomic
from video2gs.nn.checkpoint import SIDE_VIEWS_METADATA_KEY, read_state_dict, save_checkpoint

CHECKPOINT, BACKUP, PARTIAL = "checkpoint", "backup", ".checkpoint-partial"
MODEL_FILE, STATE_FILE, META_FILE = "model.safetensors", "training_state.pt", "metadata.json"
FORMAT = "video2gs-train/1"


def is_complete(folder: Path) -> bool:
    return (folder / META_FILE).is_file() and (folder / MODEL_FILE).is_file() and (folder / STATE_FILE).is_file()


def latest(run: Path) -> Path | None:
    """The newest complete checkpoint folder of a run (``checkpoint/``, else ``backup/``), or None."""
    for name in (CHECKPOINT, BACKUP):
        if is_complete(run / name):
            return run / name
    return None


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(run: Path, model, optimizer, scheduler, metadata: dict) -> Path:
    """Write a checkpoint of ``model`` (unwrapped L4GM) and the optimiser state; returns its folder."""
    run = Path(run)
    tmp = run / PARTIAL
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_checkpoint(model, tmp / MODEL_FILE, metadata={SIDE_VIEWS_METADATA_KEY: metadata.get("side_views", "reference")})
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()},
               tmp / STATE_FILE)
    write_json_atomic(tmp / META_FILE, {"format": FORMAT, **metadata})
    current, backup = run / CHECKPOINT, run / BACKUP
    if current.exists():
        shutil.rmtree(backup, ignore_errors=True)
        current.rename(backup)
    tmp.rename(current)
    return current


def read_metadata(folder: Path) -> dict:
    try:
        return json.loads((Path(folder) / META_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{folder}: cannot read {META_FILE} ({exc})") from exc


def load(folder: Path, model, optimizer, scheduler) -> dict:
    """Restore weights (strict), optimiser, scheduler and RNG from a checkpoint folder; returns its metadata."""
    folder = Path(folder)
    meta = read_metadata(folder)
    state = read_state_dict(folder / MODEL_FILE, device=model.device)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(f"{folder / MODEL_FILE} does not match the configured network "
                        f"({len(missing)} missing, {len(unexpected)} unexpected tensors); resume with the run's own config")
    try:
        training = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused or a corrupt file
        raise UserError(f"{folder / STATE_FILE}: cannot read the training state ({exc})") from exc
    optimizer.load_state_dict(training["optimizer"])
    scheduler.load_state_dict(training["scheduler"])
    set_rng_state(training["rng"])
    return meta
