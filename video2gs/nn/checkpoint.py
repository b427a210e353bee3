"""Loading and saving L4GM / LGM weights (safetensors only; nothing is unpickled).

* :func:`load_model` -- build the network for a weights file (config given or inferred from the
  file) and load it strictly; fp32/fp16/bf16 files all load, cast to the requested dtype.
* :func:`init_from_lgm` -- start an L4GM from LGM weights: every shape-matching tensor is copied,
  the temporal layers stay freshly initialised.
* :func:`save_checkpoint` -- write the official layout (``unet.*``, ``conv.*``), readable by the
  reference code; the config is added as safetensors metadata so tiny checkpoints load back
  without being told their input size.

Any problem a user can fix (missing/corrupt file, pickle file, wrong architecture) raises one
:class:`~video2gs.errors.UserError` line.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from video2gs.compute import resolve_dtype
from video2gs.errors import UserError
from video2gs.fileio import atomic_path
from video2gs.nn.configs import CONFIGS, L4GMConfig, describe, resolve_config
from video2gs.nn.l4gm import L4GM

CONFIG_METADATA_KEY = "video2gs_config"
# What input views 1..3 were in training: "reference" (real or generated side views, the released
# models), "blank" (white, as `reconstruct --views none`) or "mirror" (every frame's view 0 and its
# mirror image: video2gs.reconstructor.mirror_side_views); `reconstruct` feeds a model what it saw.
SIDE_VIEWS_METADATA_KEY = "video2gs_side_views"
SIDE_VIEWS = ("reference", "blank", "mirror")
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")
# Old LGM releases trained with the rotation-normalisation bug (docs/l4gm.md §7).
LEGACY_ROT_FILES = ("model.safetensors", "model_fp16.safetensors")
IGNORED_PREFIXES = ("lpips_loss.",)  # never part of the network; older training dumps may hold them
_LIST_FIRST = 3


def _check_weights_path(path: Path) -> Path:
    path = Path(path).expanduser()
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UserError(
            f"{path.name} is a pickle checkpoint; video2gs only loads .safetensors weights (nothing is unpickled)",
            hint="convert it once with safetensors.torch.save_file(torch.load(f, weights_only=True), 'model.safetensors')",
        )
    if not path.exists():
        raise UserError(f"weights file not found: {path}")
    if path.is_dir():
        raise UserError(f"expected a .safetensors weights file, got the folder {path}")
    return path


def _open(path: Path):
    from safetensors import safe_open

    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except Exception as exc:  # SafetensorError (corrupt/truncated), OSError
        raise UserError(f"cannot read weights {path.name}: not a valid safetensors file ({exc})") from exc


def read_header(path: "str | Path") -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Key -> shape map and metadata of a safetensors file, without reading the tensors."""
    path = _check_weights_path(Path(path))
    with _open(path) as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        meta = dict(f.metadata() or {})
    return shapes, meta


def read_state_dict(
    path: "str | Path", device: "str | torch.device" = "cpu", dtype: "torch.dtype | None" = None, keys=None
) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file (only ``keys`` if given), floats cast to ``dtype``, on ``device``."""
    path = _check_weights_path(Path(path))
    out = {}
    with _open(path) as f:
        for k in f.keys() if keys is None else keys:
            try:
                t = f.get_tensor(k)
            except Exception as exc:
                raise UserError(f"cannot read tensor {k} from {path.name}: the file is damaged ({exc})") from exc
            if dtype is not None and t.is_floating_point():
                t = t.to(device=device, dtype=dtype)
            else:
                t = t.to(device=device)
            out[k] = t
    return out


# -- recognising files ------------------------------------------------------------------------------
def _architecture(cfg: L4GMConfig) -> tuple:
    return (cfg.down_channels, cfg.down_attention, cfg.mid_attention, cfg.up_channels, cfg.up_attention, cfg.layers_per_block)


def _indices(keys, pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := rx.match(k))})


def infer_config(
    shapes: Mapping[str, tuple[int, ...]], metadata: Mapping[str, str] | None = None, input_size: int = 256
) -> L4GMConfig:
    """The config of an official-layout state dict.

    A ``video2gs_config`` metadata entry (written by :func:`save_checkpoint`) wins. Otherwise channels,
    attention placement, layers per block and temporal attention are read from key names and shapes;
    input size (default 256), views (4) and heads (16) cannot be seen in the weights and take the
    reference values. The result is named after the matching built-in config (``big``…) if any.
    """
    if metadata and CONFIG_METADATA_KEY in metadata:
        try:
            return L4GMConfig.from_dict(json.loads(metadata[CONFIG_METADATA_KEY]))
        except (ValueError, TypeError) as exc:
            raise UserError(f"the weights' {CONFIG_METADATA_KEY} metadata is not a valid config ({exc})") from exc
    keys = list(shapes)
    if "unet.conv_in.weight" not in shapes:
        raise UserError(f"cannot infer an L4GM config: the weights look like {describe_keys(keys)}")
    down = _indices(keys, r"unet\.down_blocks\.(\d+)\.")
    up = _indices(keys, r"unet\.up_blocks\.(\d+)\.")
    if not down or not up or down != list(range(len(down))) or up != list(range(len(up))):
        raise UserError("cannot infer an L4GM config: the down/up block numbering in the weights is incomplete")
    try:
        down_channels = [shapes[f"unet.down_blocks.{i}.nets.0.conv1.weight"][0] for i in down]
        up_channels = [shapes[f"unet.up_blocks.{i}.nets.0.conv1.weight"][0] for i in up]
    except KeyError as exc:
        raise UserError(f"cannot infer an L4GM config: {exc.args[0]} is missing from the weights") from None
    cfg = L4GMConfig(
        input_size=input_size,
        down_channels=down_channels,
        down_attention=[f"unet.down_blocks.{i}.attns.0.norm.weight" in shapes for i in down],
        mid_attention="unet.mid_block.attns.0.norm.weight" in shapes,
        up_channels=up_channels,
        up_attention=[f"unet.up_blocks.{i}.attns.0.norm.weight" in shapes for i in up],
        splat_size=input_size // 2 ** (len(down) - 1) * 2 ** (len(up) - 1),
        layers_per_block=len(_indices(keys, r"unet\.down_blocks\.0\.nets\.(\d+)\.")),
        use_temp_attn=any(".t_attns." in k for k in keys),
    )
    for name, known in CONFIGS.items():
        if _architecture(known) == _architecture(cfg):
            return cfg.replace(name=name)
    return cfg


def describe_keys(shapes: "Mapping[str, tuple[int, ...]] | list[str]") -> str:
    """A short guess at what a state dict is: L4GM/LGM (and which size), an ImageDream/LDM UNet, …

    ``shapes``: key -> shape map (sizes are recognised) or just the keys (kind only).
    """
    keys = list(shapes)
    if not keys:
        return "an empty weights file"
    if any(k.startswith("module.") for k in keys):
        return "a checkpoint wrapped by DataParallel/DDP (keys start with 'module.')"
    if any(k.startswith(("input_blocks.", "model.diffusion_model.")) or ".input_blocks." in k for k in keys):
        return "an ImageDream/LDM diffusion UNet (input_blocks.* names), not a reconstruction model"
    if any(".resnets." in k for k in keys) and any("down_blocks." in k for k in keys):
        return "a diffusers UNet (down_blocks.*.resnets.* names), not a reconstruction model"
    if any(k.startswith("unet.down_blocks.") for k in keys):
        temporal = any(".t_attns." in k for k in keys)
        kind = "L4GM" if temporal else "LGM"
        size = ""
        if isinstance(shapes, Mapping):
            try:
                cfg = infer_config(shapes)
                size = f" {cfg.name}" if cfg.name != "custom" else f" custom (down {list(cfg.down_channels)}, up {list(cfg.up_channels)})"
                if cfg.name == "small":
                    size = " small/lrm"
            except UserError:
                size = " of unknown size"
        return f"{kind}{size}" + ("" if temporal else " (no temporal layers)")
    if any(k.startswith("down_blocks.") and ".nets." in k for k in keys):
        return "an L4GM/LGM U-Net saved without the 'unet.' prefix"
    return f"something else (first keys: {', '.join(keys[:_LIST_FIRST])})"


# -- key checking -----------------------------------------------------------------------------------
@dataclass
class KeyDiff:
    """How a file's tensors differ from a model's: names and (file, model) shapes."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    wrong_shape: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.wrong_shape)

    def summary(self) -> str:
        def first(items) -> str:
            items = list(items)
            more = f", … {len(items) - _LIST_FIRST} more" if len(items) > _LIST_FIRST else ""
            return ", ".join(items[:_LIST_FIRST]) + more

        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing ({first(self.missing)})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected ({first(self.unexpected)})")
        if self.wrong_shape:
            shown = (f"{k} file {list(a)} vs model {list(b)}" for k, (a, b) in self.wrong_shape.items())
            parts.append(f"{len(self.wrong_shape)} with the wrong shape ({first(shown)})")
        return "; ".join(parts)


def _network_keys(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v) for k, v in shapes.items() if not k.startswith(IGNORED_PREFIXES)}


def diff_keys(model: torch.nn.Module, shapes: Mapping[str, tuple[int, ...]]) -> KeyDiff:
    """Compare a file's key -> shape map with ``model.state_dict()`` (works on the meta device)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    shapes = _network_keys(shapes)
    return KeyDiff(
        missing=[k for k in expected if k not in shapes],
        unexpected=[k for k in shapes if k not in expected],
        wrong_shape={k: (shapes[k], expected[k]) for k in expected if k in shapes and shapes[k] != expected[k]},
    )


def _mismatch_error(path: Path, cfg: L4GMConfig, shapes, diff: KeyDiff) -> UserError:
    looks = describe_keys(shapes)
    hint = None
    if cfg.use_temp_attn and looks.startswith("LGM") and not diff.unexpected and not diff.wrong_shape:
        hint = "LGM weights have no temporal layers: start an L4GM from them with init_from_lgm()"
    return UserError(f"weights {path.name} do not fit {describe(cfg)}: {diff.summary()}; the file looks like {looks}", hint=hint)


# -- the public entry points ------------------------------------------------------------------------
def load_model(
    path: "str | Path",
    config: "None | str | dict | L4GMConfig" = None,
    device: "str | torch.device" = "cpu",
    dtype: "str | torch.dtype" = "fp32",
    strict: bool = True,
    rot_norm: str | None = None,
) -> L4GM:
    """Build an :class:`L4GM` for the safetensors file ``path`` and load its weights (eval mode).

    config: ``None`` infers it (metadata written by :func:`save_checkpoint`, else from key names and
    shapes: L4GM if ``t_attns`` keys exist, LGM otherwise; ``big``/``small``/``tiny`` or custom
    channels), or a name / dict / :class:`L4GMConfig`.
    dtype: ``"fp32"`` (default), ``"fp16"``, ``"bf16"`` or ``"auto"`` (the hardware policy of
    :func:`video2gs.compute.resolve_dtype`); the file's own dtype does not matter.
    strict: any missing, unexpected or wrongly shaped tensor is a :class:`UserError`. With
    ``strict=False`` matching tensors are copied, the rest stay freshly initialised (warning).
    rot_norm: ``"quat"`` or ``"gaussians"`` (legacy LGM); ``None`` keeps the config's value, except
    that an LGM (no temporal layers) file named ``model.safetensors`` / ``model_fp16.safetensors``
    with an inferred config -- the old releases trained with the bug -- gets ``"gaussians"``.
    """
    path = _check_weights_path(Path(path))
    shapes, meta = read_header(path)
    if config is None:
        cfg = infer_config(_network_keys(shapes), meta)
        if rot_norm is None and not cfg.use_temp_attn and path.name in LEGACY_ROT_FILES:
            rot_norm = "gaussians"
    else:
        cfg = resolve_config(config)
    if rot_norm is not None:
        cfg = cfg.replace(rot_norm=rot_norm)
    device = torch.device(device)
    dt = resolve_dtype(dtype, device)

    if strict:
        with torch.device("meta"):
            model = L4GM(cfg)  # no allocation: every parameter comes from the file
        diff = diff_keys(model, shapes)
        if diff:
            raise _mismatch_error(path, cfg, shapes, diff)
        state = read_state_dict(path, device, dt, keys=list(model.state_dict()))
        _check_float(state, path)
        model.load_state_dict(state, strict=True, assign=True)
    else:
        model = L4GM(cfg).to(device=device, dtype=dt)
        report = init_from_state(model, path)
        if report.fresh or report.skipped:
            warnings.warn(f"loading {path.name} non-strictly: {report.summary()}", stacklevel=2)
    return model.eval()


def _check_float(state: Mapping[str, torch.Tensor], path: Path) -> None:
    bad = [k for k, t in state.items() if not t.is_floating_point()]
    if bad:
        raise UserError(f"weights {path.name}: tensor {bad[0]} has dtype {state[bad[0]].dtype}, expected floating point")


@dataclass
class InitReport:
    """What :func:`init_from_lgm` did: ``copied`` and ``fresh`` are model keys, ``skipped`` source keys."""

    copied: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.copied)} tensors copied, {len(self.fresh)} freshly initialised, {len(self.skipped)} skipped"


def init_from_state(model: torch.nn.Module, source: "str | Path | Mapping[str, torch.Tensor]") -> InitReport:
    """Copy every tensor of ``source`` whose name and shape match into ``model`` (cast to its dtype and
    device); everything else in the model keeps its current (fresh) values."""
    if isinstance(source, (str, Path)):
        path = _check_weights_path(Path(source))
        shapes, _ = read_header(path)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        wanted = [k for k, s in shapes.items() if expected.get(k) == tuple(s)]
        source_keys = list(shapes)
        source = read_state_dict(path, keys=wanted)
        _check_float(source, path)
    else:
        source_keys = list(source)
    report = InitReport()
    own = model.state_dict()
    with torch.no_grad():
        for k, t in own.items():
            src = source.get(k)
            if src is not None and tuple(src.shape) == tuple(t.shape):
                t.copy_(src)
                report.copied.append(k)
            else:
                report.fresh.append(k)
    copied = set(report.copied)
    report.skipped = [k for k in source_keys if k not in copied]
    return report


def init_from_lgm(model: L4GM, lgm_state: "str | Path | Mapping[str, torch.Tensor]") -> InitReport:
    """Initialise an L4GM from LGM weights (a safetensors path or a state dict).

    Every tensor whose name and shape match is copied; the temporal layers (and anything else the
    file lacks) keep their fresh PyTorch-default initialisation, as in the reference training script.
    Returns the report (copied / fresh / skipped).
    """
    return init_from_state(model, lgm_state)


def save_checkpoint(model: L4GM, path: "str | Path", dtype: "str | torch.dtype | None" = None,
                    metadata: "Mapping[str, str] | None" = None) -> Path:
    """Write ``model``'s weights as official-layout safetensors (atomically), in ``dtype`` if given.

    The file loads in the reference code unchanged; its metadata also carries the config
    (``video2gs_config``) so :func:`load_model` can rebuild non-standard sizes, plus ``metadata``
    (string values, e.g. ``{SIDE_VIEWS_METADATA_KEY: "blank"}``).
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise UserError(f"checkpoint name must end in .safetensors, got {path.name}")
    from safetensors.torch import save_file

    dt = None if dtype is None else resolve_dtype(dtype, "cpu")
    state = {k: v.detach().to(device="cpu", dtype=dt or v.dtype).contiguous() for k, v in model.state_dict().items()}
    extra = {str(k): str(v) for k, v in (metadata or {}).items()}
    if extra.get(SIDE_VIEWS_METADATA_KEY, "reference") not in SIDE_VIEWS:
        raise ValueError(f"{SIDE_VIEWS_METADATA_KEY} must be one of {SIDE_VIEWS}, got {extra[SIDE_VIEWS_METADATA_KEY]!r}")
    meta = {**extra, "format": "pt", CONFIG_METADATA_KEY: json.dumps(model.config.to_dict())}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return path


def trained_side_views(path: "str | Path") -> str:
    """What a weights file's model saw as input views 1..3 in training: "reference" (the released
    checkpoints and files without the metadata) or "blank"."""
    _, meta = read_header(_check_weights_path(Path(path)))
    value = meta.get(SIDE_VIEWS_METADATA_KEY, "reference")
    if value not in SIDE_VIEWS:
        raise UserError(f"{Path(path).name}: metadata {SIDE_VIEWS_METADATA_KEY}={value!r} is not one of {', '.join(SIDE_VIEWS)}")
    return value
