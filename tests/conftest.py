"""Shared test setup: offline, deterministic, with paths to ../shared."""

import os
from pathlib import Path

import pytest
import torch

# Tests never reach the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDEO2GS_SHARED", REPO.parent / "shared")).resolve()
DATA = SHARED / "data"
FIXTURES = SHARED / "fixtures"
REFERENCE = SHARED / "reference"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared not found at {SHARED} (set VIDEO2GS_SHARED)")
    return SHARED


def cli_with(monkeypatch, capsys, register, prefix=()):
    """``run(*argv) -> (exit code, stdout, stderr)`` through the real ``cli.main``, with only the
    commands ``register(app)`` adds; ``prefix`` goes before every argv (e.g. the command's name)."""
    import typer

    from video2gs import cli

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _root():
        pass

    monkeypatch.setattr(cli, "app", app)
    monkeypatch.setattr(cli, "_register_commands", lambda: register(app))

    def run(*argv) -> tuple[int, str, str]:
        try:
            cli.main([*prefix, *(str(a) for a in argv)])
            code = 0
        except SystemExit as exc:
            code = exc.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
