"""Every option of ``reconstruct`` and ``interpolate``, declared once: default, help, panel, check.

An option is a dataclass field made with :func:`option`; its metadata carries the help text (with
units), the ``--help`` panel, the flag names, whether a change of it changes the results (so
``--resume`` refuses it) and a check. :func:`typer_signature` builds the command's Typer
signature from the dataclass, so the command line, the manifest's ``options`` record and the
validation cannot drift apart.

Library code raises :class:`OptionError` naming the *field*; :func:`flag` turns a field name into
the flag a user typed, and the command layer words the one-line error with it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from video2gs.errors import UserError
from video2gs.gaussians import PRUNE_OPACITY

_IN = "Input"
_SEG = "Background removal and crop"
_VIEWS = "Views of the first frame"
_MODEL = "Models and compute"
_OUT = "Output"

Check = Callable[[typing.Any], "str | None"]  # value -> error text (without the flag) or None


class OptionError(UserError):
    """An invalid option value; ``name`` is the dataclass field (see :func:`flag`)."""

    def __init__(self, name: str, message: str):
        self.name = name
        super().__init__(f"{flag(name)} {message}")


def option(default=dataclasses.MISSING, *, help: str, panel: str = _OUT, flags: tuple[str, ...] = (),
           check: Check | None = None, result: bool = False, argument: bool = False, metavar: str | None = None):
    """A dataclass field that is also a command-line option (see the module docstring)."""
    meta = {"help": help, "panel": panel, "flags": flags, "check": check, "result": result,
            "argument": argument, "metavar": metavar}
    return field(default=default, metadata=meta)


def flag(name: str) -> str:
    """``max_frames`` -> ``--max-frames`` (or the field's first long flag)."""
    for cls in (ReconstructOptions, InterpolateOptions):
        f = {f.name: f for f in dataclasses.fields(cls)}.get(name)
        if f is not None and f.metadata.get("argument"):
            return f.metadata.get("metavar") or name.upper()
        if f is not None and f.metadata.get("flags"):
            return next(x.split("/")[0] for x in f.metadata["flags"] if x.startswith("--"))
    return "--" + name.replace("_", "-")


@contextlib.contextmanager
def about(name: str):
    """Word any :class:`UserError` raised inside as being about option ``name``: ``--views: …``."""
    try:
        yield
    except OptionError:
        raise
    except UserError as exc:
        err = UserError(f"{flag(name)}: {exc}")
        err.exit_code = exc.exit_code
        raise err from exc


# -- checks ------------------------------------------------------------------------------------------
def positive(v) -> str | None:
    return None if v is None or v > 0 else f"must be positive, got {v}"


def non_negative(v) -> str | None:
    return None if v is None or v >= 0 else f"must be zero or more, got {v}"


def at_least(n: int) -> Check:
    return lambda v: None if v is None or v >= n else f"must be at least {n}, got {v}"


def one_of(*choices: str, path_ok: bool = False) -> Check:
    def check(v):
        if v in choices or (path_ok and v is not None and (Path(v).suffix or "/" in str(v))):
            return None
        return f"must be one of {' | '.join(choices)}{' or a path' if path_ok else ''}, got {v!r}"

    return check


def in_range(lo: float, hi: float, *, hi_open: bool = False) -> Check:
    def check(v):
        ok = lo <= v < hi if hi_open else lo <= v <= hi
        return None if ok else f"must lie in [{lo}, {hi}{')' if hi_open else ']'}, got {v}"

    return check


# -- shared option declarations (one place; used by both commands) --------------------------------
def _device():
    return option("auto", help="Where the network runs: auto (CUDA when available) | cpu | cuda | cuda:N.", panel=_MODEL)


def _dtype():
    return option("auto", panel=_MODEL, check=one_of("auto", "fp32", "fp16", "bf16"), result=True,
                  help="Network precision: auto | fp32 | fp16 | bf16 (auto: bf16 on CUDA and on CPUs with AMX-BF16 or "
                       "AVX512-BF16, fp32 elsewhere). "
                       "The manifest records what ran.")


def _backend():
    return option("auto", panel=_OUT, check=one_of("auto", "numba", "torch", "gsplat", "dgr"),
                  help="Renderer for the views and videos: auto | numba | torch | gsplat | dgr.")


def _render():
    return option(True, flags=("--render/--no-render",), panel=_OUT, help="Write the turntable videos into OUT/videos/.")


def _render_size():
    return option(512, panel=_OUT, check=in_range(16, 4096), help="Side of each video view, pixels.")


def _overwrite():
    return option(False, flags=("--overwrite",), panel=_OUT,
                  help="Replace what OUT holds. The old results stay untouched until the new run has finished.")


def _resume():
    return option(False, flags=("--resume",), panel=_OUT,
                  help="Continue an interrupted run in OUT from its last complete step (same options).")


class _Options:
    """What both verbs' option sets do the same way."""

    def _validate_common(self) -> None:
        check_fields(self)
        if self.overwrite and self.resume:
            raise OptionError("overwrite", "and --resume exclude each other")

    def result_options(self) -> dict:
        """The options whose change alters the results (``--resume`` refuses to mix them)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("result")}


@dataclass
class ReconstructOptions(_Options):
    """Every option of ``video2gs reconstruct`` (recorded verbatim in the manifest)."""

    input: str = option(argument=True, metavar="INPUT",
                        help="A video (mp4, mov, webm, avi, gif...), a folder of images (natural order), or one image.")
    # input
    fps: float = option(15.0, panel=_IN, check=positive, result=True,
                        help="Target rate, frames/s. Constant-rate video keeps every k-th frame with k = floor(source fps / "
                             "FPS) (L4GM's rule: 30 -> 15, 25 -> 25, 26.8 -> 26.8, 60 -> 15), so the output can be faster "
                             "than FPS; --cap-fps uses k = ceil(...) so it never is. Variable-rate video is resampled "
                             "by timestamps to FPS.")
    cap_fps: bool = option(False, flags=("--cap-fps",), panel=_IN, result=True,
                           help="Never exceed --fps: stride k = ceil(source fps / FPS) (26.8 fps -> 13.4 at --fps 15).")
    start: float | None = option(None, panel=_IN, check=non_negative, result=True, help="Start time, seconds.")
    end: float | None = option(None, panel=_IN, check=positive, result=True, help="End time, seconds.")
    max_frames: int | None = option(None, panel=_IN, check=at_least(1), result=True, help="At most this many output frames.")
    # background removal and crop
    segment: str = option("auto", panel=_SEG, result=True, check=one_of("auto", "rembg", "alpha", "key", "none"),
                          help="Background removal: auto | rembg | alpha | key | none. auto = the input's alpha if any, "
                               "else rembg when its model is on disk, else border keying.")
    segment_model: str | None = option(None, panel=_SEG, result=True,
                                       help="rembg model: u2net | u2netp | isnet-general-use | PATH.onnx (default u2net).")
    border_ratio: float = option(0.2, panel=_SEG, result=True, check=in_range(0.0, 1.0, hi_open=True),
                                 help="Empty margin around the object: its longest side fills (1 - ratio) of the square crop.")
    # views of frame 0
    views: str = option("auto", panel=_VIEWS, result=True,
                        help="imagedream | none | DIR with 090.png, 180.png, 270.png. auto = imagedream when its weights "
                             "are on disk, else none.")
    prompt: str = option("", panel=_VIEWS, result=True, help="ImageDream text prompt (optional).")
    negative_prompt: str = option("", panel=_VIEWS, result=True, help="ImageDream negative prompt.")
    guidance: float = option(5.0, panel=_VIEWS, result=True, help="ImageDream classifier-free guidance scale (<= 1 disables it).")
    steps: int = option(30, panel=_VIEWS, result=True, check=at_least(1), help="ImageDream denoising steps.")
    elevation: float = option(0.0, panel=_VIEWS, result=True, check=in_range(-89.9, 89.9),
                              help="Camera elevation of the input video, degrees; positive = looking down on the object.")
    align_step: float = option(1.0, panel=_VIEWS, result=True, check=positive,
                               help="Azimuth search step, degrees over -180..180, when aligning generated views.")
    # models and compute
    chunk: int = option(16, panel=_MODEL, result=True, check=at_least(2),
                        help="Frames per network call; chunks overlap by one frame. Lower it to save memory.")
    model: str = option("auto", panel=_MODEL, result=True,
                        help="Reconstruction model: a registry name (see `video2gs models`) or a .safetensors path; "
                             "auto = l4gm-recon when its weights are on disk, else a bundled model (demo) if the package has one.")
    refine: int = option(0, panel=_MODEL, result=True, check=non_negative, metavar="STEPS",
                         help="Test-time refinement: fit every output frame's opacities and colours to its own input "
                              "frame (colour and silhouette seen from the input camera) for this many Adam steps; "
                              "0 = off. The geometry stays the network's. Bundled demo, 50 steps, held-out clips: input view "
                              "+0.5 dB with pixel detail (+4.5 dB without), novel views -0.2 dB; 1-4 s a frame on 2 "
                              "CPU cores.")
    detail: bool | None = option(None, flags=("--detail/--no-detail",), panel=_MODEL, result=True,
                                 help="Pixel detail: swap the network's input-view Gaussians for one per input pixel "
                                      "(256² crop) at the network's depth, and move back or drop the other Gaussians "
                                      "that view contradicts. Default: on for models trained with mirror side views "
                                      "(bundled demo, held-out clips: input view +1.8 to +4.8 dB, novel-view LPIPS -0.04), off for L4GM.")
    interp_model: str = option("l4gm-interp", panel=_MODEL, help="Interpolation model: registry name or .safetensors path.")
    imagedream_model: str = option("imagedream", panel=_MODEL,
                                   help="ImageDream model: registry name or a folder in the released layout.")
    interpolate: bool | None = option(None, flags=("--interpolate/--no-interpolate",), panel=_MODEL,
                                      help="x3 temporal interpolation (default: on when the interpolation model is on disk).")
    device: str = _device()
    dtype: str = _dtype()
    seed: int = option(0, panel=_MODEL, result=True, help="Random seed (ImageDream sampling).")
    # output
    output: str = option(..., flags=("-o", "--output"), metavar="OUT",
                         help="Output folder (gaussians/*.ply, input/, views/, videos/, manifest.json).")
    up: str = option("-y", panel=_OUT, result=True, check=one_of("-y", "y"),
                     help="Frame of the written PLYs: -y = OpenCV/COLMAP (upright in SuperSplat, gsplat.js), "
                          "y = L4GM's +Y-up world.")
    min_opacity: float = option(PRUNE_OPACITY, panel=_OUT, result=True, check=in_range(0.0, 1.0),
                                help="Drop Gaussians below this opacity when writing PLYs (LGM's rule; 0 keeps all).")
    render: bool = _render()
    render_size: int = _render_size()
    backend: str = _backend()
    overwrite: bool = _overwrite()
    resume: bool = _resume()

    def validate(self) -> "ReconstructOptions":
        self._validate_common()
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise OptionError("end", f"({self.end}) must be after --start ({self.start})")
        return self


@dataclass
class InterpolateOptions(_Options):
    """Every option of ``video2gs interpolate``."""

    output: str = option(argument=True, metavar="OUT", help="A folder written by `video2gs reconstruct`.")
    factor: int = option(3, panel=_MODEL, help="Temporal upsampling factor; the released model supports exactly 3 "
                                               "((N-1)*3+1 frames).")
    model: str = option("l4gm-interp", panel=_MODEL, result=True, help="Interpolation model: registry name or .safetensors path.")
    device: str = _device()
    dtype: str = _dtype()
    render: bool = _render()
    render_size: int = _render_size()
    backend: str = _backend()
    overwrite: bool = _overwrite()
    resume: bool = _resume()

    def validate(self) -> "InterpolateOptions":
        from video2gs.pipeline.chunks import INTERP_FACTOR

        self._validate_common()
        if self.factor != INTERP_FACTOR:
            raise OptionError("factor", f"{self.factor}: the interpolation model inserts exactly 2 frames between keys; "
                                        f"only --factor {INTERP_FACTOR} is supported")
        return self


def check_fields(opts) -> None:
    for f in dataclasses.fields(opts):
        check = f.metadata.get("check")
        if check is not None:
            problem = check(getattr(opts, f.name))
            if problem:
                raise OptionError(f.name, problem)


# -- the Typer signature -----------------------------------------------------------------------------
def typer_signature(cls, extra: list[inspect.Parameter] = ()) -> inspect.Signature:
    """Typer parameters for every field of ``cls`` (plus ``extra``, e.g. ``--quiet``)."""
    import typer

    hints = typing.get_type_hints(cls)
    params = []
    for f in dataclasses.fields(cls):
        m = f.metadata
        required = f.default is dataclasses.MISSING or f.default is ...
        default = ... if required else f.default
        if m["argument"]:
            info = typer.Argument(default, help=m["help"], metavar=m["metavar"], show_default=False)
        else:
            flags = m["flags"] or ("--" + f.name.replace("_", "-"),)
            show_default = not required and f.default is not None and not isinstance(f.default, bool)
            info = typer.Option(default, *flags, help=m["help"], rich_help_panel=m["panel"], metavar=m["metavar"],
                                show_default=show_default)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=hints[f.name]))
    return inspect.Signature([*params, *extra])


def quiet_parameter() -> inspect.Parameter:
    import typer

    info = typer.Option(False, "-q", "--quiet", help="No progress display or summary (warnings and errors still show).",
                        rich_help_panel=_OUT)
    return inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=info, annotation=bool)


def command_from(cls, run: Callable, doc: str) -> Callable:
    """A Typer command function whose options are ``cls``'s fields; calls ``run(options, quiet)``."""

    def command(**kwargs):
        quiet = kwargs.pop("quiet")
        opts = cls(**{k: (str(v) if isinstance(v, Path) else v) for k, v in kwargs.items()})
        return run(opts, quiet)

    command.__signature__ = typer_signature(cls, [quiet_parameter()])
    command.__annotations__ = {p.name: p.annotation for p in command.__signature__.parameters.values()}
    command.__doc__ = doc
    return command
