"""Training configs are data: TOML presets (``presets/*.toml``) plus command-line overrides.

The preset ``l4gm-recon`` is the schema: every key a config may hold, with its type taken from the
preset's value. A config is a preset name or a TOML file (optionally ``preset = "NAME"`` to start
from another preset than ``l4gm-recon``), then ``--set KEY=VALUE`` overrides in order
(``optim.lr=1e-4``, ``model=micro``, ``data.dirs=["a", "b"]``; values are TOML, bare words are
strings). An unknown key is a :class:`UserError` naming it (and the nearest known key).

    cfg = load_config("l4gm-recon", ["optim.lr=1e-4", "train.steps=500"])
    cfg["optim.lr"], cfg.section("optim")["betas"]
"""

from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path
from typing import Any

from video2gs.errors import UserError
from video2gs.nn.checkpoint import SIDE_VIEWS  # the one list of what input views 1..3 can be in training

PRESET_DIR = Path(__file__).with_name("presets")
SCHEMA_PRESET = "l4gm-recon"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def _toml_file(path: Path) -> dict[str, Any]:
    from video2gs.weights import _load_toml  # one TOML reader for the project (tomli on Python 3.10)

    return _load_toml(path)


def _toml_value(text: str) -> Any:
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word: a string


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _type_ok(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


class TrainConfig:
    """A validated flat view of a training config: ``cfg["optim.lr"]``, ``cfg.section("optim")``."""

    def __init__(self, values: dict[str, Any], source: str):
        self.values = values
        self.source = source
        self._check()

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def section(self, name: str) -> dict[str, Any]:
        p = name + "."
        return {k[len(p):]: v for k, v in self.values.items() if k.startswith(p)}

    def to_dict(self) -> dict[str, Any]:
        """Nested form (as in the TOML files), for metadata.json."""
        out: dict[str, Any] = {}
        for k, v in self.values.items():
            node = out
            *parents, leaf = k.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = copy.deepcopy(v)
        return out

    def set(self, key: str, value: Any) -> None:
        apply_overrides(self.values, {key: value})
        self._check()

    def _check(self) -> None:
        v = self.values
        if v["data.side_views"] not in SIDE_VIEWS:
            raise UserError(f"data.side_views must be one of {', '.join(SIDE_VIEWS)}, got {v['data.side_views']!r}")
        for key in ("train.steps", "train.batch_size", "train.grad_accum", "data.num_frames", "data.output_size"):
            if v[key] < 1:
                raise UserError(f"{key} must be at least 1, got {v[key]}")
        if len(v["optim.betas"]) != 2:
            raise UserError(f"optim.betas needs two numbers, got {v['optim.betas']}")


def _schema() -> dict[str, Any]:
    return _flatten(_toml_file(PRESET_DIR / f"{SCHEMA_PRESET}.toml"))


def apply_overrides(values: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Set flat keys in ``values`` (in place), checking names and types against the schema."""
    schema = _schema()
    for key, value in overrides.items():
        if key not in schema:
            near = difflib.get_close_matches(key, list(schema), n=1)
            raise UserError(f"unknown config key {key!r}" + (f" (did you mean {near[0]!r}?)" if near else ""),
                            hint="see `video2gs train --show-config PRESET` for every key")
        default = schema[key]
        if not _type_ok(default, value):
            raise UserError(f"config key {key}: expected {type(default).__name__} like {json.dumps(default)}, got {json.dumps(value)}")
        values[key] = float(value) if isinstance(default, float) else value


def parse_set(items: list[str]) -> dict[str, Any]:
    """``["optim.lr=1e-4", ...]`` -> ``{"optim.lr": 0.0001}`` (TOML values; bare words are strings)."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set takes KEY=VALUE (e.g. optim.lr=1e-4), got {item!r}")
        out[key.strip()] = _toml_value(text.strip())
    return out


def load_config(config: str | Path, overrides: list[str] | dict[str, Any] | None = None) -> TrainConfig:
    """A preset name or a TOML file, then overrides (``KEY=VALUE`` strings or a flat dict)."""
    values = _schema()
    name = str(config)
    if name in preset_names():
        apply_overrides(values, _flatten(_toml_file(PRESET_DIR / f"{name}.toml")))
    else:
        path = Path(config)
        if not path.is_file():
            raise UserError(f"no preset or config file {name!r}; presets: {', '.join(preset_names())}")
        data = _flatten(_toml_file(path))
        parent = data.pop("preset", SCHEMA_PRESET)
        if parent not in preset_names():
            raise UserError(f"{path}: unknown preset {parent!r}; presets: {', '.join(preset_names())}")
        apply_overrides(values, _flatten(_toml_file(PRESET_DIR / f"{parent}.toml")))
        apply_overrides(values, data)
    if overrides:
        apply_overrides(values, parse_set(overrides) if isinstance(overrides, list) else dict(overrides))
    return TrainConfig(values, name)


def to_toml(cfg: TrainConfig) -> str:
    """The config as TOML text (``--show-config``; top-level keys first, then one table per section)."""
    nested = cfg.to_dict()
    lines = [f"{k} = {json.dumps(v)}" for k, v in nested.items() if not isinstance(v, dict)]
    for sec, table in nested.items():
        if isinstance(table, dict):
            lines += ["", f"[{sec}]"] + [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"
