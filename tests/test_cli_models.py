"""`video2gs models` and `video2gs download` through cli.main (error handling, exit codes),
against a fake Hugging Face cache in tmp. Never touches the network."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from conftest import cli_with

from video2gs import cli, weights
from video2gs.commands import download as download_cmd
from video2gs.commands import models as models_cmd

from test_weights import EXPECTED, forbid_network, go_online, install_bundled_card, put_in_cache, tiny_card


@pytest.fixture
def env(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COLUMNS", "400")  # wide enough that no path wraps
    monkeypatch.delenv("VIDEO2GS_CONFIG", raising=False)
    for name in EXPECTED:
        monkeypatch.delenv(weights.env_var_for(name), raising=False)
    return cache


@pytest.fixture
def run(monkeypatch, capsys):
    """cli.main with only these two commands registered."""

    def register(app):
        app.command("models")(models_cmd.models)
        app.command("download")(download_cmd.download)

    return cli_with(monkeypatch, capsys, register)


def row(out: str, name: str) -> str:
    (line,) = [ln for ln in out.splitlines() if re.match(rf"\s*{re.escape(name)}\s", ln)]
    return line


def test_real_registration():
    cli._register_commands()  # every command module must import: an ImportError here is a bug
    names = {c.name for c in cli.app.registered_commands}
    assert {"models", "download"} <= names


def test_models_table_tells_the_truth(env, run):
    card = weights.get_card("l4gm-recon")
    snap = put_in_cache(env, card.repo_id, card.revision, {"recon.safetensors": b"w"})
    code, out, err = run("models")
    assert code == 0, err
    line = row(out, "l4gm-recon")
    assert "present" in line and str(snap / "recon.safetensors") in line and "(NC)" in line and "1.87 GB" in line
    for name in EXPECTED - {"l4gm-recon", "demo"}:
        assert "absent" in row(out, name), name
    assert "present (bundled)" in row(out, "demo")  # ships in the package
    assert "(NC)" in row(out, "l4gm-interp") and "(NC)" not in row(out, "lgm-fixrot")
    assert "830 MB" in row(out, "lgm-fp16-fixrot") and "openrail" in row(out, "imagedream")
    assert "non-commercial" in out and "HF_HUB_OFFLINE" in out
    assert str(env) in out


def test_models_shows_configured_but_missing(env, run, monkeypatch, tmp_path):
    monkeypatch.setenv("VIDEO2GS_MODEL_LGM", str(tmp_path / "nowhere.safetensors"))
    code, out, err = run("models")
    assert code == 0, err
    assert "missing" in row(out, "lgm") and "nowhere.safetensors" in row(out, "lgm")


def test_download_offline_is_a_clear_error(env, run):
    code, out, err = run("download", "l4gm-recon", "--yes")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "offline" in lines[0] and "video2gs download l4gm-recon" in lines[0]


def test_download_unknown_name(env, run):
    code, out, err = run("download", "l4gm")
    assert code == 1 and "unknown model 'l4gm'" in err and "l4gm-recon" in err


def test_download_present_model_needs_no_network(env, run, monkeypatch):
    forbid_network(monkeypatch)
    card = weights.get_card("lgm-fp16")
    snap = put_in_cache(env, card.repo_id, card.revision, {"model_fp16.safetensors": card.files[0].size})
    code, out, err = run("download", "lgm-fp16")
    assert code == 0, err
    assert "present" in out and str(snap / "model_fp16.safetensors") in out


def test_download_without_terminal_needs_yes(env, run, monkeypatch):
    go_online(monkeypatch)
    forbid_network(monkeypatch)
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a tty: nobody to ask
    code, out, err = run("download", "l4gm-recon")
    assert code == 1
    assert "--yes" in err.strip().splitlines()[-1]
    assert "NON-COMMERCIAL" in err and "CC-BY-NC-SA-4.0" in err  # the licence was shown first
    assert err.index("NON-COMMERCIAL") < err.index("--yes")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _fake_fetch(calls: list, cache: Path):
    def fetch(card, *, quiet=False, force=False, show_licence=True, check_hash=True):
        calls.append((card.name, force, show_licence))
        return put_in_cache(cache, card.repo_id, card.revision, {card.files[0].path: b"w"}) / card.files[0].path

    return fetch


def test_download_confirmed_on_terminal(env, run, monkeypatch):
    go_online(monkeypatch)
    calls: list = []
    monkeypatch.setattr(weights, "fetch", _fake_fetch(calls, env))
    monkeypatch.setattr("sys.stdin", _Tty("y\n"))
    code, out, err = run("download", "l4gm-interp", "lgm-fixrot", "l4gm-interp")
    assert code == 0, err
    assert calls == [("l4gm-interp", False, False), ("lgm-fixrot", False, False)]  # licences shown once, up front
    assert "CC-BY-NC-SA-4.0" in err and "MIT" in err and "non-commercial use only" in err
    assert "downloaded to" in out


def test_download_declined_on_terminal(env, run, monkeypatch):
    go_online(monkeypatch)
    calls: list = []
    monkeypatch.setattr(weights, "fetch", _fake_fetch(calls, env))
    monkeypatch.setattr("sys.stdin", _Tty("n\n"))
    code, out, err = run("download", "imagedream")
    assert code == 1 and calls == [] and "cancelled" in err


def test_download_yes_and_force(env, run, monkeypatch):
    go_online(monkeypatch)
    calls: list = []
    monkeypatch.setattr(weights, "fetch", _fake_fetch(calls, env))
    card = weights.get_card("l4gm-recon")
    put_in_cache(env, card.repo_id, card.revision, {"recon.safetensors": b"old"})
    code, out, err = run("download", "l4gm-recon", "--yes")
    assert code == 0 and calls == [] and "present" in out
    code, out, err = run("download", "l4gm-recon", "--yes", "--force", "--quiet")
    assert code == 0, err
    assert calls == [("l4gm-recon", True, False)]


def test_download_verify_catches_a_corrupt_file(env, run, monkeypatch):
    card = tiny_card(b"the real weights")
    monkeypatch.setattr(weights, "_registry", lambda: {"tiny": card})
    put_in_cache(env, card.repo_id, card.revision, {"w.safetensors": b"the real weightz"})  # right size, wrong bytes
    code, out, err = run("download", "tiny", "--verify")
    assert code == 1 and "sha256" in err and "--force" in err
    put_in_cache(env, card.repo_id, card.revision, {"w.safetensors": b"the real weights"})
    code, out, err = run("download", "tiny", "--verify")
    assert code == 0 and "(verified)" in out


def test_a_bundled_model_is_listed_as_present(env, run, monkeypatch, tmp_path):
    from video2gs.testing import write_random_l4gm

    install_bundled_card(monkeypatch, tmp_path / "pkg", write_random_l4gm(tmp_path / "m.safetensors"))
    code, out, err = run("models")
    assert code == 0, err
    assert "present (bundled)" in row(out, "demo") and "(NC)" not in row(out, "demo")
