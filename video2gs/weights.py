"""Model registry: model cards, where weight files are found, downloads with their licence shown.

A *model card* (``models/<name>.json``, installed as the package ``video2gs.model_cards``) is data:
the Hugging Face repo and pinned revision, the files with sizes and sha256 where known, the licence
and the architecture config. See ``models/README.md`` for the schema.

Resolution order of :func:`resolve` (the first hit wins):

1. an explicit path (a ``Path``, or a string that is not a model name) -> returned as is;
2. the environment variable ``VIDEO2GS_MODEL_<NAME>`` (upper case, ``-`` -> ``_``);
3. the ``[models]`` table of the config file (``$VIDEO2GS_CONFIG``, else
   ``$XDG_CONFIG_HOME/video2gs/config.toml``, else ``~/.config/video2gs/config.toml``);
4. a bundled card (``"bundled": true``, e.g. ``demo``): the file next to the card in the package;
5. the local Hugging Face cache (``HF_HUB_CACHE`` / ``HF_HOME`` respected), at the card's pinned
   revision, then at whatever ``main`` points to in the cache;
6. a download with ``huggingface_hub`` (progress bars, licence printed first), unless offline
   (``HF_HUB_OFFLINE=1``) or ``download=False`` -> :class:`~video2gs.errors.ModelNotFoundError`.

A path configured in 2 or 3 that does not exist is an error, not a reason to look further: the user
asked for that file. No remote code is ever fetched; loading the weights (safetensors only) is
``video2gs.nn.checkpoint``'s job.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from video2gs import __version__
from video2gs.errors import ModelNotFoundError, UserError

if TYPE_CHECKING:
    from rich.console import Console

CARDS_PACKAGE = "video2gs.model_cards"
ENV_PREFIX = "VIDEO2GS_MODEL_"
KINDS = ("l4gm", "lgm", "imagedream", "lpips")
_KIND_ORDER = {kind: i for i, kind in enumerate(("l4gm", "imagedream", "lpips", "lgm"))}
_TRUE = {"1", "on", "yes", "true"}


# --------------------------------------------------------------------------------------------
# Cards


@dataclass(frozen=True)
class FileSpec:
    """One file of a model, relative to the repository root."""

    path: str
    size: int  # bytes; approximate when size_exact is False
    size_exact: bool
    sha256: str | None


@dataclass(frozen=True)
class Licence:
    id: str
    name: str
    url: str
    non_commercial: bool
    notice: str

    @property
    def short(self) -> str:
        """``"CC-BY-NC-SA-4.0 (NC)"``: the id, marked when use is non-commercial only."""
        return f"{self.id} (NC)" if self.non_commercial else self.id


@dataclass(frozen=True)
class ModelCard:
    name: str
    kind: str  # "l4gm" | "lgm" | "imagedream" | "lpips"
    description: str
    repo_id: str
    revision: str
    files: tuple[FileSpec, ...]
    licence: Licence
    config: Mapping[str, Any]
    dtype: str
    legacy: bool = False
    hub: bool = True  # False: not hosted on the hub (no cache lookup, no download; env/config only)
    bundled: bool = False  # True: the file ships in the package, next to this card (implies hub False)
    revision_note: str = ""
    size_note: str = ""
    source: Path | None = field(default=None, compare=False)

    @property
    def is_folder(self) -> bool:
        """True when the model is a folder of files (diffusers layout) rather than one file."""
        return self.kind == "imagedream"

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def size_exact(self) -> bool:
        return all(f.size_exact for f in self.files)

    @property
    def env_var(self) -> str:
        return env_var_for(self.name)

    @property
    def bundled_path(self) -> Path | None:
        """Where a bundled model's file lies in the installed package (None for other models)."""
        if not self.bundled or self.source is None:
            return None
        return Path(self.source).parent / self.files[0].path

    @property
    def fetch_command(self) -> str:
        return f"video2gs download {self.name}"

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}"


def env_var_for(name: str) -> str:
    """``l4gm-recon`` -> ``VIDEO2GS_MODEL_L4GM_RECON``."""
    return ENV_PREFIX + name.upper().replace("-", "_")


def _card_files() -> list:
    """The card JSON files (Traversables): the installed ``video2gs.model_cards`` package, else the
    repo's models/ folder (editable installs map only the ``video2gs`` package)."""
    try:
        from importlib.resources import files

        # A folder without __init__.py is a namespace package: iterate, do not assume one path.
        found = [f for f in files(CARDS_PACKAGE).iterdir() if f.name.endswith(".json")]
        if found:
            return found
    except (ModuleNotFoundError, TypeError, ValueError, OSError):
        pass
    return list((Path(__file__).resolve().parents[1] / "models").glob("*.json"))


def _require(d: Mapping[str, Any], key: str, typ: type | tuple[type, ...], where: str):
    if key not in d:
        raise ValueError(f"model card {where}: missing field {key!r}")
    value = d[key]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ValueError(f"model card {where}: field {key!r} has type {type(value).__name__}")
    return value


def card_from_dict(d: Mapping[str, Any], source: Path | None = None) -> ModelCard:
    """Build and validate a :class:`ModelCard` from its JSON object (ValueError if malformed)."""
    where = str(source) if source else str(d.get("name", "?"))
    name = _require(d, "name", str, where)
    kind = _require(d, "kind", str, where)
    if kind not in KINDS:
        raise ValueError(f"model card {where}: kind {kind!r} is not one of {KINDS}")
    files = []
    for f in _require(d, "files", list, where):
        sha = f.get("sha256")
        if sha is not None and (not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
            raise ValueError(f"model card {where}: bad sha256 for {f.get('path')!r}")
        size = _require(f, "size", int, where)
        if size <= 0:
            raise ValueError(f"model card {where}: size of {f.get('path')!r} must be positive")
        files.append(FileSpec(path=_require(f, "path", str, where), size=size,
                              size_exact=bool(f.get("size_exact", True)), sha256=sha))
    if not files:
        raise ValueError(f"model card {where}: no files")
    if kind != "imagedream" and len(files) != 1:
        raise ValueError(f"model card {where}: a {kind} model is exactly one file")
    lic = _require(d, "licence", dict, where)
    licence = Licence(
        id=_require(lic, "id", str, where), name=_require(lic, "name", str, where),
        url=_require(lic, "url", str, where), non_commercial=_require(lic, "non_commercial", bool, where),
        notice=_require(lic, "notice", str, where),
    )
    return ModelCard(
        name=name, kind=kind, description=_require(d, "description", str, where),
        repo_id=_require(d, "repo_id", str, where), revision=_require(d, "revision", str, where),
        files=tuple(files), licence=licence, config=dict(_require(d, "config", dict, where)),
        dtype=_require(d, "dtype", str, where), legacy=bool(d.get("legacy", False)),
        revision_note=str(d.get("revision_note", "")), size_note=str(d.get("size_note", "")),
        hub=bool(d.get("hub", True)) and not bool(d.get("bundled", False)), bundled=bool(d.get("bundled", False)),
        source=source,
    )


@lru_cache(maxsize=1)
def _registry() -> dict[str, ModelCard]:
    cards: dict[str, ModelCard] = {}
    for entry in sorted(_card_files(), key=lambda f: f.name):
        source = Path(str(entry))
        card = card_from_dict(json.loads(entry.read_text(encoding="utf-8")), source=source)
        if card.name != entry.name[: -len(".json")]:
            raise ValueError(f"model card {source}: name {card.name!r} differs from the file name")
        cards[card.name] = card
    if not cards:
        raise RuntimeError(f"no model cards found in {CARDS_PACKAGE} or the source tree (broken installation)")
    return dict(sorted(cards.items(), key=lambda kv: (_KIND_ORDER[kv[1].kind], kv[1].legacy, kv[0])))


def list_cards() -> list[ModelCard]:
    """All model cards: L4GM first, then ImageDream, then LGM (legacy ones last)."""
    return list(_registry().values())


def model_names() -> list[str]:
    return list(_registry())


def get_card(name: str) -> ModelCard:
    """The card called ``name``; :class:`UserError` listing the known names otherwise."""
    cards = _registry()
    if name not in cards:
        raise UserError(f"unknown model {name!r}; known models: {', '.join(cards)}")
    return cards[name]


# --------------------------------------------------------------------------------------------
# Environment: offline flag, HF cache, config file


def is_offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE, as huggingface_hub reads it) is set."""
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _expand(p: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(p)))


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (not at import time)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return _expand(os.environ[var])
    if os.environ.get("HF_HOME"):
        return _expand(os.environ["HF_HOME"]) / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = _expand(xdg) if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def repo_cache_dir(card: ModelCard) -> Path:
    """``<cache>/models--<org>--<name>``, the layout huggingface_hub uses."""
    return hf_cache_dir() / ("models--" + card.repo_id.replace("/", "--"))


def config_file() -> Path:
    if os.environ.get("VIDEO2GS_CONFIG"):
        return _expand(os.environ["VIDEO2GS_CONFIG"])
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = _expand(xdg) if xdg else Path.home() / ".config"
    return base / "video2gs" / "config.toml"


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise UserError(
                f"reading {path} needs Python 3.11+ or the 'tomli' package",
                hint="pip install tomli, or use the VIDEO2GS_MODEL_<NAME> environment variables",
            ) from None
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"cannot parse {path}: {exc}") from exc
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from exc


def configured_paths() -> dict[str, Path]:
    """``{model name: path}`` from the config file's ``[models]`` table (relative paths are
    relative to the config file). Empty when there is no config file."""
    path = config_file()
    if not path.is_file():
        if os.environ.get("VIDEO2GS_CONFIG"):
            raise UserError(f"VIDEO2GS_CONFIG points to {path}, which is not a file")
        return {}
    table = _load_toml(path).get("models", {})
    if not isinstance(table, dict):
        raise UserError(f"{path}: [models] must be a table of name = \"path\" entries")
    known = _registry()
    out: dict[str, Path] = {}
    for name, value in table.items():
        if name not in known:
            raise UserError(f"{path}: [models] names unknown model {name!r}; known models: {', '.join(known)}")
        if not isinstance(value, str) or not value:
            raise UserError(f"{path}: [models] {name} must be a path string")
        p = _expand(value)
        out[name] = p if p.is_absolute() else (path.parent / p)
    return out


# --------------------------------------------------------------------------------------------
# Finding files locally


@dataclass(frozen=True)
class Location:
    """Where a model was found: ``path`` (a file, or a folder for imagedream) and how."""

    path: Path
    source: str  # "env" | "config" | "cache" | "bundled"
    detail: str  # the env var, the config file, or the revision found in the cache


def _configured(card: ModelCard) -> Location | None:
    value = os.environ.get(card.env_var)
    if value:
        return Location(_expand(value), "env", card.env_var)
    paths = configured_paths()
    if card.name in paths:
        return Location(paths[card.name], "config", str(config_file()))
    return None


def _check_configured(card: ModelCard, loc: Location) -> None:
    what = f"${loc.detail}" if loc.source == "env" else f"{loc.detail} [models] {card.name}"
    if not loc.path.exists():
        raise ModelNotFoundError(f"{what} points to {loc.path}, which does not exist")
    if card.is_folder:
        if not (loc.path / "model_index.json").is_file():
            raise UserError(f"{what} points to {loc.path}, which is not a diffusers folder (no model_index.json)")
    elif not loc.path.is_file():
        raise UserError(f"{what} points to {loc.path}, which is not a file")


def _size_ok(path: Path, spec: FileSpec) -> bool:
    # Exact sizes must match to the byte (catches truncated or other-version files); approximate
    # ones are only displayed.
    try:
        size = path.stat().st_size
    except OSError:
        return False
    return size == spec.size if spec.size_exact else True


def _cache_revisions(card: ModelCard) -> list[str]:
    revs = [card.revision]
    if card.revision != "main":
        revs.append("main")
    return revs


def _find_in_cache(card: ModelCard) -> Location | None:
    """The card's files in the HF cache, all from one snapshot (pinned revision first)."""
    if not card.hub:
        return None
    from huggingface_hub import try_to_load_from_cache

    cache = hf_cache_dir()
    for rev in _cache_revisions(card):
        found: list[Path] = []
        for spec in card.files:
            hit = try_to_load_from_cache(card.repo_id, spec.path, cache_dir=str(cache), revision=rev)
            if not isinstance(hit, str) or not _size_ok(Path(hit), spec):
                break
            found.append(Path(hit))
        else:
            if card.is_folder:  # snapshots/<sha>/<sub>/<file> -> snapshots/<sha>
                return Location(found[0].parents[len(Path(card.files[0].path).parts) - 1], "cache", rev)
            return Location(found[0], "cache", rev)
    return None


def locate(card: ModelCard) -> Location | None:
    """Find ``card`` on this machine without any network access (env, config, cache).

    A configured path that does not exist raises :class:`ModelNotFoundError`.
    """
    loc = _configured(card)
    if loc is not None:
        _check_configured(card, loc)
        return loc
    if card.bundled:
        path = card.bundled_path
        return Location(path, "bundled", "the video2gs package") if path is not None and path.is_file() else None
    return _find_in_cache(card)


def status(card: ModelCard) -> dict[str, Any]:
    """One plain row for tables and scripts: name, kind, licence, size, present, path, source.

    ``source`` is "env", "config", "cache", "bundled" (shipped in the package), "missing" (a
    configured path that does not exist) or None (absent). Never touches the network.
    """
    try:
        loc = locate(card)
        present, path, source = (loc is not None), (loc.path if loc else None), (loc.source if loc else None)
    except UserError:
        configured = _configured(card)
        present, path, source = False, (configured.path if configured else None), "missing"
    return {
        "name": card.name, "kind": card.kind, "licence": card.licence.short,
        "non_commercial": card.licence.non_commercial, "size": card.total_size, "size_exact": card.size_exact,
        "present": present, "path": str(path) if path else None, "source": source, "legacy": card.legacy,
    }


def presence(card: ModelCard) -> tuple[bool, Path | None]:
    """``(present, path)`` without network access. A configured path that does not exist gives
    ``(False, that path)`` instead of raising, so the ``models`` table can show it."""
    row = status(card)
    return row["present"], (Path(row["path"]) if row["path"] else None)


# --------------------------------------------------------------------------------------------
# Verification


def sha256_file(path: Path, chunk: int = 8 << 20) -> str:
    """Hex sha256 of a file, streamed in 8 MiB chunks (memory stays flat for multi-GB files)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_file(path: Path, spec: FileSpec, *, model: str, check_hash: bool = True) -> None:
    """Check ``path`` against the card: exact size where known, sha256 where known.

    Raises :class:`UserError` naming the file, what was expected and how to fetch it again.
    """
    path = Path(path)
    again = f"delete it and run `video2gs download {model} --force`"
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is missing ({again})")
    size = path.stat().st_size
    if spec.size_exact and size != spec.size:
        raise UserError(f"{path} has {size:,} bytes, expected {spec.size:,} for {model} ({again})")
    if check_hash and spec.sha256:
        digest = sha256_file(path)
        if digest != spec.sha256:
            raise UserError(f"{path} has sha256 {digest}, expected {spec.sha256} for {model} ({again})")


def verify(card: ModelCard, path: Path, *, check_hash: bool = True) -> None:
    """Verify a located model: the file itself, or every card file inside the folder."""
    path = Path(path)
    if card.is_folder:
        for spec in card.files:
            verify_file(path / spec.path, spec, model=card.name, check_hash=check_hash)
    else:
        verify_file(path, card.files[0], model=card.name, check_hash=check_hash)


# --------------------------------------------------------------------------------------------
# Licences and downloads


def human_size(n: int, exact: bool = True) -> str:
    """Decimal units as the hub shows them (``1.87 GB``, ``830 MB``); ``~`` marks an approximate size."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 999.5 or unit == "TB":
            break
        value /= 1000
    text = f"{n} B" if unit == "B" else f"{value:.3g} {unit}"
    return text if exact else "~" + text


def print_licence(card: ModelCard, console: Console | None = None, *, brief: bool = False) -> None:
    """Show the licence on stderr; non-commercial licences are highlighted. ``brief``: one line."""
    from rich.console import Console
    from rich.markup import escape

    console = console or Console(stderr=True, highlight=False)
    lic = card.licence
    if brief:
        tag = "[bold yellow]non-commercial[/] " if lic.non_commercial else ""
        console.print(f"{escape(card.name)}: {tag}licence {escape(lic.id)} <{escape(lic.url)}>", soft_wrap=True)
        return
    console.print(f"[bold]{escape(card.name)}[/]: {escape(card.repo_id)} "
                  f"({human_size(card.total_size, card.size_exact)})", soft_wrap=True)
    if lic.non_commercial:
        console.print(f"  [bold yellow]NON-COMMERCIAL LICENCE[/]: {escape(f'{lic.name} [{lic.id}]')}", soft_wrap=True)
    else:
        console.print(f"  Licence: {escape(f'{lic.name} [{lic.id}]')}", soft_wrap=True)
    console.print(f"  {escape(lic.notice)}", soft_wrap=True)
    console.print(f"  Full text: {escape(lic.url)}", soft_wrap=True)


def _where_looked(card: ModelCard) -> str:
    cfg = config_file()
    files = card.files[0].path if not card.is_folder else f"complete snapshot ({len(card.files)} files)"
    return (f"looked in ${card.env_var} (unset), {cfg} ({'no [models] entry' if cfg.is_file() else 'no file'}), "
            f"and the Hugging Face cache {repo_cache_dir(card)} (no {files} at revision "
            f"{card.revision[:12]} or main)")


def _missing_error(card: ModelCard, reason: str) -> ModelNotFoundError:
    what = f"{card.files[0].path}" if not card.is_folder else f"the {card.repo_id} files"
    return ModelNotFoundError(
        f"model {card.name} is missing ({what}) and {reason}: {_where_looked(card)}; "
        f"on a connected machine run `{card.fetch_command}` (it fills the Hugging Face cache, which can be copied), "
        f"or set {card.env_var}=/path/to/{card.files[0].path if not card.is_folder else card.repo_id.split('/')[-1]}"
    )


def _not_on_hub_error(card: ModelCard) -> ModelNotFoundError:
    cfg = config_file()
    if card.bundled:
        return ModelNotFoundError(
            f"model {card.name} should ship in the video2gs package but {card.bundled_path} is missing (a broken "
            f"installation?): reinstall video2gs, or set {card.env_var}=/path/to/{card.files[0].path}"
        )
    return ModelNotFoundError(
        f"model {card.name} ({card.files[0].path}) is not on this machine and cannot be downloaded (it is not on the "
        f"Hugging Face hub): set {card.env_var}=/path/to/{card.files[0].path} or add it to the models table of the config file {cfg}; "
        f"its source is described in {card.source or card.name + '.json'}"
    )


def _hub_call(fn, card: ModelCard, **kwargs):
    """Run a huggingface_hub download, turning its many failure types into one-line errors."""
    import huggingface_hub.utils as hfu

    quiet = kwargs.pop("quiet")
    was_disabled = hfu.are_progress_bars_disabled()
    if quiet:
        hfu.disable_progress_bars()
    try:
        return fn(card.repo_id, revision=card.revision, cache_dir=str(hf_cache_dir()),
                  library_name="video2gs", library_version=__version__, **kwargs)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - network, HTTP, disk: all reported as one line
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelNotFoundError(
            f"could not download {card.name} from {card.repo_id}@{card.revision[:12]}: "
            f"{type(exc).__name__}{': ' + msg if msg else ''}; check the network and free disk space in "
            f"{hf_cache_dir()}, or run `{card.fetch_command}` on a connected machine and copy the cache"
        ) from exc
    finally:
        if quiet and not was_disabled:
            hfu.enable_progress_bars()


def fetch(card: ModelCard, *, quiet: bool = False, force: bool = False, check_hash: bool = True,
          show_licence: bool = True) -> Path:
    """Download ``card`` into the HF cache (licence shown first), verify it, return its path.

    Raises :class:`ModelNotFoundError` when offline or when the download fails.
    """
    if not card.hub:
        raise _not_on_hub_error(card)
    if is_offline():
        raise _missing_error(card, "downloads are off (HF_HUB_OFFLINE=1)")
    from rich.console import Console

    err = Console(stderr=True, highlight=False)
    if show_licence:
        print_licence(card, err, brief=quiet)
    if card.is_folder:
        from huggingface_hub import snapshot_download

        # Only the card's files: the repo's remote code (*.py) is never fetched.
        path = Path(_hub_call(snapshot_download, card, allow_patterns=[f.path for f in card.files],
                              force_download=force, quiet=quiet))
    else:
        from huggingface_hub import hf_hub_download

        path = Path(_hub_call(hf_hub_download, card, filename=card.files[0].path, force_download=force, quiet=quiet))
    if check_hash and any(f.sha256 for f in card.files) and not quiet:
        err.print(f"verifying {card.name} (sha256)…")
    verify(card, path, check_hash=check_hash)
    return path


def resolve(name_or_path: str | os.PathLike, *, download: bool | None = None, quiet: bool = False) -> Path:
    """The local path of a model: a ``.safetensors`` file, or the folder for ``imagedream``.

    ``name_or_path``: a model name (see :func:`list_cards`) or a path. A ``Path`` is always a path;
    a string is a model name when it is one (write ``./imagedream`` for a folder of that name).
    ``download``: None or True = download when missing unless offline; False = never download.
    Order and errors: see the module docstring.
    """
    if isinstance(name_or_path, os.PathLike) or str(name_or_path) not in _registry():
        path = _expand(os.fspath(name_or_path))
        if path.exists():
            return path
        text = os.fspath(name_or_path)
        if isinstance(name_or_path, os.PathLike) or os.sep in text or "/" in text or Path(text).suffix:
            raise ModelNotFoundError(f"model path {path.absolute()} does not exist")
        raise UserError(f"unknown model {text!r}; known models: {', '.join(_registry())} (or give a path to a file)")
    card = get_card(str(name_or_path))
    loc = locate(card)
    if loc is not None:
        return loc.path
    if not card.hub:
        raise _not_on_hub_error(card)
    if download is False:
        raise _missing_error(card, "is only downloaded on request (`video2gs download`, which shows its licence first)")
    if is_offline():
        raise _missing_error(card, "downloads are off (HF_HUB_OFFLINE=1)")
    return fetch(card, quiet=quiet)
