"""Model registry: cards agree with the reference manifests, resolution order, offline errors,
fake Hugging Face caches laid out exactly as huggingface_hub writes them. Never touches the network."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import pytest
import torch

from video2gs import weights
from video2gs.errors import ModelNotFoundError, UserError

EXPECTED = {"l4gm-recon", "l4gm-interp", "lgm-fixrot", "lgm-fp16-fixrot", "imagedream", "lgm", "lgm-fp16",
            "lpips-vgg", "lpips-alex", "demo"}


# ---------------------------------------------------------------------------------------------
# helpers


def put_in_cache(cache: Path, repo_id: str, rev: str, files: dict[str, bytes | int], ref: str | None = "main") -> Path:
    """Reproduce huggingface_hub's cache layout: blobs/<etag>, snapshots/<rev>/<path> -> relative
    symlink to the blob, refs/<ref> holding the commit sha. An int content makes a sparse file of
    that many bytes (exact sizes of multi-GB files without using disk). Returns the snapshot dir."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / rev
    for rel, content in files.items():
        if isinstance(content, int):
            etag = hashlib.sha256(f"{rel}:{content}".encode()).hexdigest()
        else:
            etag = hashlib.sha256(content).hexdigest()
        blob = repo / "blobs" / etag
        blob.parent.mkdir(parents=True, exist_ok=True)
        with open(blob, "wb") as fh:
            if isinstance(content, int):
                fh.truncate(content)
            else:
                fh.write(content)
        link = snap / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, link.parent))
    if ref:
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(rev)
    return snap


def safetensors_size(shapes: dict[str, list[int]], dtype: str, nbytes: int, metadata: dict | None) -> int:
    """Byte size of a safetensors file: 8-byte length + JSON header padded to 8 + data,
    tensors laid out in name order (all one dtype)."""
    header: dict = {"__metadata__": metadata} if metadata is not None else {}
    offset = 0
    for key in sorted(shapes):
        n = math.prod(shapes[key]) * nbytes
        header[key] = {"dtype": dtype, "shape": shapes[key], "data_offsets": [offset, offset + n]}
        offset += n
    length = len(json.dumps(header, separators=(",", ":")))
    return 8 + (length + 7) // 8 * 8 + offset


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Empty HF cache and config home under tmp; offline; no model overrides."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("VIDEO2GS_CONFIG", raising=False)
    for name in EXPECTED:
        monkeypatch.delenv(weights.env_var_for(name), raising=False)
    return cache


def go_online(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)


def forbid_network(monkeypatch):
    import huggingface_hub

    def boom(*args, **kwargs):
        raise AssertionError("the network must not be used here")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", boom)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", boom)


def tiny_card(content: bytes, *, sha: bool = True) -> weights.ModelCard:
    return weights.card_from_dict({
        "name": "tiny", "kind": "lgm", "description": "test", "repo_id": "someone/tiny", "revision": "a" * 40,
        "files": [{"path": "w.safetensors", "size": len(content), "size_exact": True,
                   "sha256": hashlib.sha256(content).hexdigest() if sha else None}],
        "licence": {"id": "CC-BY-NC-SA-4.0", "name": "NC licence", "url": "https://example.org/l",
                    "non_commercial": True, "notice": "TINY-NOTICE non-commercial [models] text"},
        "config": {"arch": "big"}, "dtype": "float32",
    })


# ---------------------------------------------------------------------------------------------
# cards


def test_cards_load_and_cover_the_released_models():
    cards = weights.list_cards()
    assert {c.name for c in cards} == EXPECTED
    for card in cards:
        assert card.source is not None and card.source.stem == card.name
        assert card.kind in weights.KINDS
        if card.hub:
            assert len(card.revision) == 40 and all(c in "0123456789abcdef" for c in card.revision), card.name
        assert all(not f.path.endswith(".py") for f in card.files), "remote code is never fetched"
        assert card.env_var == "VIDEO2GS_MODEL_" + card.name.upper().replace("-", "_")
    # L4GM first (the default models), legacy LGM last
    assert [c.kind for c in cards][:2] == ["l4gm", "l4gm"]
    assert [c.legacy for c in cards][-2:] == [True, True]


def test_licences():
    for card in weights.list_cards():
        if card.kind == "l4gm" and card.bundled:  # trained by video2gs on openly licensed data
            assert not card.licence.non_commercial and card.licence.id == "CC-BY-4.0"
        elif card.kind == "l4gm":
            assert card.licence.non_commercial and card.licence.id == "CC-BY-NC-SA-4.0"
            assert card.licence.short.endswith("(NC)")
        else:
            assert not card.licence.non_commercial
    assert weights.get_card("imagedream").licence.id == "openrail"
    assert weights.get_card("lgm-fixrot").licence.id == "MIT"


def test_the_bundled_model_is_what_its_card_says():
    """The shipped demo: the file next to its card, its size and sha256, under 20 MB, the demo
    network with the parameter count on the card, trained with the side views the card names."""
    from video2gs.nn.checkpoint import load_model, trained_side_views

    card = weights.get_card("demo")
    assert card.bundled and not card.hub and card.bundled_path.is_file()
    weights.verify(card, card.bundled_path)
    assert card.bundled_path.stat().st_size <= 20 * 10**6
    model = load_model(card.bundled_path)
    assert model.config.name == "demo" == card.config["arch"]
    assert sum(p.numel() for p in model.parameters()) == card.config["params"]
    assert trained_side_views(card.bundled_path) == card.config["side_views"] == "mirror"


def test_architecture_config():
    for name in ("l4gm-recon", "l4gm-interp"):
        cfg = weights.get_card(name).config
        assert cfg["arch"] == "big" and cfg["use_temp_attn"] is True and cfg["rot_norm"] == "quat"
    assert weights.get_card("l4gm-interp").config["num_frames"] == 4
    assert weights.get_card("lgm-fixrot").config["rot_norm"] == "quat"
    assert weights.get_card("lgm").config["rot_norm"] == "gaussians"
    assert weights.get_card("lgm-fp16").config["rot_norm"] == "gaussians"
    assert weights.get_card("lgm-fp16-fixrot").dtype == "float16"


def test_get_card_unknown_lists_names():
    with pytest.raises(UserError) as exc:
        weights.get_card("l4gm")
    assert "l4gm-recon" in str(exc.value) and "imagedream" in str(exc.value)


def test_malformed_card_is_rejected():
    good = json.loads(weights.get_card("lgm").source.read_text())
    weights.card_from_dict(good)
    for mutate in (
        lambda d: d.pop("licence"),
        lambda d: d.update(kind="sd"),
        lambda d: d["files"][0].update(sha256="xyz"),
        lambda d: d["files"][0].update(size=0),
        lambda d: d["files"].append(dict(d["files"][0])),  # a single-file model with two files
        lambda d: d["licence"].update(non_commercial="no"),
    ):
        bad = json.loads(json.dumps(good))
        mutate(bad)
        with pytest.raises(ValueError):
            weights.card_from_dict(bad)


def test_size_formula_matches_safetensors():
    from safetensors.torch import save

    shapes = {"b.w": [3, 5], "a": [7], "c.x": [2, 2, 3]}
    tensors = {k: torch.zeros(v) for k, v in shapes.items()}
    for meta in (None, {"format": "pt"}):
        assert len(save(tensors, metadata=meta)) == safetensors_size(shapes, "F32", 4, meta)
    half = {k: v.half() for k, v in tensors.items()}
    assert len(save(half)) == safetensors_size(shapes, "F16", 2, None)


def test_card_sizes_agree_with_reference_manifests(shared_dir):
    ref = shared_dir / "reference"
    lgm = json.loads((ref / "lgm_big_state_dict_manifest.json").read_text())
    l4gm = json.loads((ref / "l4gm_state_dict_manifest.json").read_text())
    unet = json.loads((ref / "imagedream_unet_state_dict_manifest.json").read_text())
    size = {n: weights.get_card(n).files[0].size for n in EXPECTED - {"imagedream"}}
    # exact hub sizes are reproduced from the manifest: fixrot files carry no header metadata,
    # the original fp32 file carries accelerate's {"format": "pt"}
    assert size["lgm-fixrot"] == safetensors_size(lgm, "F32", 4, None)
    assert size["lgm-fp16-fixrot"] == safetensors_size(lgm, "F16", 2, None)
    assert size["lgm-fp16"] == safetensors_size(lgm, "F16", 2, None)
    assert size["lgm"] == safetensors_size(lgm, "F32", 4, {"format": "pt"})
    # L4GM sizes are computed, not published: marked approximate
    for name in ("l4gm-recon", "l4gm-interp"):
        card = weights.get_card(name)
        assert card.files[0].size == safetensors_size(l4gm, "F32", 4, {"format": "pt"})
        assert not card.files[0].size_exact
        assert card.config["params"] == sum(math.prod(s) for s in l4gm.values())
        assert card.config["tensors"] == len(l4gm)
        assert abs(card.files[0].size - 1.87e9) < 0.005e9  # the hub's "1.87 GB"
    assert weights.get_card("lgm").config["params"] == sum(math.prod(s) for s in lgm.values())
    spec = {f.path: f for f in weights.get_card("imagedream").files}
    assert spec["unet/diffusion_pytorch_model.safetensors"].size == safetensors_size(unet, "F16", 2, {"format": "pt"})


def test_imagedream_card_matches_repo_file_list(shared_dir):
    listed = json.loads((shared_dir / "reference" / "imagedream_pipeline_configs.json").read_text())["repo_files"]
    card = weights.get_card("imagedream")
    paths = {f.path: f for f in card.files}
    for path, text in listed.items():
        if path.endswith(".py"):
            assert path not in paths
        elif path.endswith("/"):  # a folder entry (tokenizer/)
            assert any(p.startswith(path) for p in paths)
        else:
            assert path in paths, path
            if text.endswith(" B") and text.split()[0].isdigit():
                assert paths[path].size == int(text.split()[0]) and paths[path].size_exact
    # every component folder of model_index.json is in the layout
    model_index = json.loads((shared_dir / "reference" / "imagedream_pipeline_configs.json").read_text())["model_index.json"]
    components = {k for k, v in model_index.items() if isinstance(v, list)}
    assert components <= set(card.config["layout"])


# ---------------------------------------------------------------------------------------------
# environment


def test_offline_flag_and_cache_dir(monkeypatch, tmp_path):
    for value, expected in (("1", True), ("true", True), ("ON", True), ("0", False), ("", False)):
        monkeypatch.setenv("HF_HUB_OFFLINE", value)
        monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
        assert weights.is_offline() is expected
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert weights.hf_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "c"))
    assert weights.hf_cache_dir() == tmp_path / "c"


# ---------------------------------------------------------------------------------------------
# resolution


def test_absent_everywhere_offline_gives_one_clear_line(env):
    card = weights.get_card("l4gm-recon")
    assert weights.presence(card) == (False, None)
    with pytest.raises(ModelNotFoundError) as exc:
        weights.resolve("l4gm-recon")
    msg = str(exc.value)
    assert "\n" not in msg
    for needle in ("recon.safetensors", "HF_HUB_OFFLINE=1", str(env / "models--jiawei011--L4GM"),
                   "`video2gs download l4gm-recon`", "VIDEO2GS_MODEL_L4GM_RECON", "config.toml"):
        assert needle in msg, needle


def test_download_false_never_reaches_network(env, monkeypatch):
    go_online(monkeypatch)
    forbid_network(monkeypatch)
    with pytest.raises(ModelNotFoundError, match="only downloaded on request"):
        weights.resolve("lgm-fixrot", download=False)


def test_cache_hit_at_main_when_pinned_revision_absent(env):
    # a user who fetched the branch head (not our pinned commit) is still served from the cache
    head = "9e771ee" + "0" * 33
    snap = put_in_cache(env, "jiawei011/L4GM", head, {"recon.safetensors": b"not really weights"})
    card = weights.get_card("l4gm-recon")
    present, path = weights.presence(card)
    assert present and path == snap / "recon.safetensors"
    assert weights.resolve("l4gm-recon") == path
    assert weights.locate(card).source == "cache"
    # huggingface_hub itself accepts the fake layout
    from huggingface_hub import scan_cache_dir

    info = scan_cache_dir(env)
    assert not info.warnings
    (repo,) = info.repos
    assert repo.repo_id == "jiawei011/L4GM" and {r.commit_hash for r in repo.revisions} == {head}
    assert weights.presence(weights.get_card("l4gm-interp")) == (False, None)


def test_cache_hit_at_pinned_revision_without_refs(env):
    card = weights.get_card("l4gm-interp")
    snap = put_in_cache(env, card.repo_id, card.revision, {"interp.safetensors": b"x"}, ref=None)
    assert weights.resolve("l4gm-interp") == snap / "interp.safetensors"


def test_exact_size_is_checked(env):
    card = weights.get_card("lgm-fixrot")
    put_in_cache(env, card.repo_id, card.revision, {"model_fixrot.safetensors": b"truncated"})
    assert weights.presence(card) == (False, None)
    with pytest.raises(ModelNotFoundError):
        weights.resolve("lgm-fixrot")
    rev2 = "b" * 40
    snap = put_in_cache(env, card.repo_id, rev2, {"model_fixrot.safetensors": card.files[0].size})  # sparse
    assert weights.presence(card) == (True, snap / "model_fixrot.safetensors")


def test_imagedream_folder_needs_every_file(env):
    card = weights.get_card("imagedream")
    files = {f.path: (f.size if f.size_exact else b"{}") for f in card.files}
    missing = dict(files)
    missing.pop("vae/diffusion_pytorch_model.safetensors")
    put_in_cache(env, card.repo_id, "c" * 40, missing)
    assert weights.presence(card) == (False, None)
    snap = put_in_cache(env, card.repo_id, card.revision, files, ref=None)
    assert weights.resolve("imagedream") == snap
    assert (snap / "model_index.json").is_file() and (snap / "unet" / "config.json").is_file()


def test_env_var_wins_over_cache(env, monkeypatch, tmp_path):
    card = weights.get_card("l4gm-recon")
    put_in_cache(env, card.repo_id, card.revision, {"recon.safetensors": b"cached"})
    mine = tmp_path / "my_recon.safetensors"
    mine.write_bytes(b"mine")
    monkeypatch.setenv("VIDEO2GS_MODEL_L4GM_RECON", str(mine))
    assert weights.resolve("l4gm-recon") == mine
    assert weights.locate(card).source == "env"
    monkeypatch.setenv("VIDEO2GS_MODEL_L4GM_RECON", str(tmp_path / "gone.safetensors"))
    with pytest.raises(ModelNotFoundError, match="VIDEO2GS_MODEL_L4GM_RECON"):
        weights.resolve("l4gm-recon")
    # the table does not crash on it: absent, showing the configured path
    assert weights.presence(card) == (False, tmp_path / "gone.safetensors")
    assert weights.status(card)["source"] == "missing"


def test_config_file(env, monkeypatch, tmp_path):
    cfg = tmp_path / "cfg" / "video2gs.toml"
    cfg.parent.mkdir()
    (cfg.parent / "weights").mkdir()
    (cfg.parent / "weights" / "interp.safetensors").write_bytes(b"w")
    folder = tmp_path / "imagedream_dir"
    folder.mkdir()
    cfg.write_text(f'[models]\nl4gm-interp = "weights/interp.safetensors"\nimagedream = "{folder}"\n')
    monkeypatch.setenv("VIDEO2GS_CONFIG", str(cfg))
    assert weights.resolve("l4gm-interp") == cfg.parent / "weights" / "interp.safetensors"
    with pytest.raises(UserError, match="model_index.json"):  # a folder that is not a diffusers folder
        weights.resolve("imagedream")
    (folder / "model_index.json").write_text("{}")
    assert weights.resolve("imagedream") == folder
    # the env var beats the config file
    other = tmp_path / "other.safetensors"
    other.write_bytes(b"o")
    monkeypatch.setenv("VIDEO2GS_MODEL_L4GM_INTERP", str(other))
    assert weights.resolve("l4gm-interp") == other
    cfg.write_text('[models]\nl4gm-recn = "x"\n')
    with pytest.raises(UserError, match="l4gm-recn"):
        weights.resolve("l4gm-recon")
    cfg.write_text("[models\n")
    with pytest.raises(UserError, match="cannot parse"):
        weights.resolve("l4gm-recon")
    monkeypatch.setenv("VIDEO2GS_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(UserError, match="VIDEO2GS_CONFIG"):
        weights.resolve("l4gm-recon")


def test_default_config_location(env, tmp_path):
    cfg = tmp_path / "config" / "video2gs" / "config.toml"
    assert weights.config_file() == cfg
    cfg.parent.mkdir(parents=True)
    target = tmp_path / "r.safetensors"
    target.write_bytes(b"r")
    cfg.write_text(f'[models]\nl4gm-recon = "{target}"\n')
    assert weights.resolve("l4gm-recon") == target


def test_explicit_paths(env, tmp_path):
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"w")
    assert weights.resolve(f) == f
    assert weights.resolve(str(f)) == f
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        weights.resolve(tmp_path / "missing.safetensors")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        weights.resolve("missing.safetensors")
    with pytest.raises(UserError, match="known models"):
        weights.resolve("l4gm-recn")


# ---------------------------------------------------------------------------------------------
# downloads (huggingface_hub replaced by fakes that write into the tmp cache)


def test_fetch_shows_licence_first_then_verifies(env, monkeypatch, capsys):
    import huggingface_hub

    go_online(monkeypatch)
    content = b"tiny weights"
    card = tiny_card(content)
    seen = {}

    def fake_download(repo_id, filename, *, revision, cache_dir, **kwargs):
        seen["stderr_before"] = capsys.readouterr().err
        seen.update(repo_id=repo_id, filename=filename, revision=revision, cache_dir=cache_dir)
        snap = put_in_cache(Path(cache_dir), repo_id, revision, {filename: content})
        return str(snap / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    path = weights.fetch(card)
    assert path.read_bytes() == content
    assert seen["repo_id"] == "someone/tiny" and seen["revision"] == "a" * 40 and seen["cache_dir"] == str(env)
    assert "NON-COMMERCIAL" in seen["stderr_before"] and "TINY-NOTICE" in seen["stderr_before"]
    assert "[models]" in seen["stderr_before"]  # notice text is printed literally, not as markup


def test_fetch_rejects_wrong_hash(env, monkeypatch):
    import huggingface_hub

    go_online(monkeypatch)
    card = tiny_card(b"expected bytes")

    def fake_download(repo_id, filename, *, revision, cache_dir, **kwargs):
        snap = put_in_cache(Path(cache_dir), repo_id, revision, {filename: b"expected bytez"})
        return str(snap / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    with pytest.raises(UserError, match="sha256"):
        weights.fetch(card, quiet=True)


def test_fetch_failure_is_one_line(env, monkeypatch):
    import huggingface_hub

    go_online(monkeypatch)

    def fake_download(*args, **kwargs):
        raise ConnectionError("Connection refused\nmore details")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    with pytest.raises(ModelNotFoundError) as exc:
        weights.fetch(tiny_card(b"x"), quiet=True)
    msg = str(exc.value)
    assert "\n" not in msg and "ConnectionError: Connection refused" in msg and "video2gs download tiny" in msg


def test_resolve_downloads_when_online(env, monkeypatch):
    import huggingface_hub

    go_online(monkeypatch)
    card = weights.get_card("l4gm-interp")
    calls = []

    def fake_download(repo_id, filename, *, revision, cache_dir, **kwargs):
        calls.append((repo_id, filename, revision))
        snap = put_in_cache(Path(cache_dir), repo_id, revision, {filename: b"interp"})
        return str(snap / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    path = weights.resolve("l4gm-interp", quiet=True)
    assert calls == [("jiawei011/L4GM", "interp.safetensors", card.revision)]
    assert weights.resolve("l4gm-interp") == path  # second time: from the cache, no call
    assert len(calls) == 1


def test_fetch_imagedream_uses_allow_patterns(env, monkeypatch):
    import huggingface_hub

    go_online(monkeypatch)
    card = weights.get_card("imagedream")
    seen = {}

    def fake_snapshot(repo_id, *, revision, cache_dir, allow_patterns, **kwargs):
        seen["allow"] = allow_patterns
        files = {f.path: (f.size if f.size_exact else b"{}") for f in card.files}
        return str(put_in_cache(Path(cache_dir), repo_id, revision, files))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    folder = weights.fetch(card, quiet=True, check_hash=False)  # the fake UNet cannot match the real hash
    assert set(seen["allow"]) == {f.path for f in card.files}
    assert not any(p.endswith(".py") for p in seen["allow"])
    assert (folder / "model_index.json").is_file()


# ---------------------------------------------------------------------------------------------
# verification


def test_sha256_and_verify(tmp_path):
    data = os.urandom(3 * 1024 + 7)
    f = tmp_path / "f.bin"
    f.write_bytes(data)
    assert weights.sha256_file(f, chunk=1000) == hashlib.sha256(data).hexdigest()
    good = weights.FileSpec("f.bin", len(data), True, hashlib.sha256(data).hexdigest())
    weights.verify_file(f, good, model="m")
    with pytest.raises(UserError, match="bytes, expected"):
        weights.verify_file(f, weights.FileSpec("f.bin", len(data) + 1, True, None), model="m")
    weights.verify_file(f, weights.FileSpec("f.bin", len(data) + 1, False, None), model="m")  # approximate size
    with pytest.raises(UserError, match="sha256"):
        weights.verify_file(f, weights.FileSpec("f.bin", len(data), True, "0" * 64), model="m")
    with pytest.raises(ModelNotFoundError):
        weights.verify_file(tmp_path / "nope", good, model="m")


def test_human_size():
    assert weights.human_size(548) == "548 B"
    assert weights.human_size(1_660_212_248) == "1.66 GB"
    assert weights.human_size(830_126_160) == "830 MB"
    assert weights.human_size(1_865_908_216, exact=False) == "~1.87 GB"


def install_bundled_card(monkeypatch, folder: Path, model: Path, name: str = "demo"):
    """Register a bundled card ``name`` whose file is ``model``, copied into ``folder`` beside the
    card, as a package that ships a model would have it."""
    import hashlib
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.safetensors"
    shutil.copyfile(model, target)
    data = target.read_bytes()
    d = {
        "schema_version": 1, "name": name, "kind": "l4gm", "bundled": True, "repo_id": "", "revision": "",
        "description": "a bundled test model",
        "files": [{"path": target.name, "size": len(data), "size_exact": True, "sha256": hashlib.sha256(data).hexdigest()}],
        "licence": {"id": "CC-BY-4.0", "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/",
                    "non_commercial": False, "notice": "test"},
        "config": {"arch": "micro"}, "dtype": "float32",
    }
    (folder / f"{name}.json").write_text(json.dumps(d))
    card = weights.card_from_dict(d, source=folder / f"{name}.json")
    registry = dict(weights._registry())
    monkeypatch.setattr(weights, "_registry", lambda: {**registry, name: card})
    return card


def test_a_bundled_card_resolves_to_the_file_beside_it(env, monkeypatch, tmp_path):
    """A bundled model is found with no env, config or cache, offline, never downloaded; a missing
    file (a broken installation) is one line; the environment variable still overrides it."""
    from video2gs.testing import write_random_l4gm

    model = write_random_l4gm(tmp_path / "m.safetensors", side_views="blank")
    card = install_bundled_card(monkeypatch, tmp_path / "pkg", model)
    assert card.bundled and not card.hub
    path = weights.resolve("demo", download=False)
    assert path == card.bundled_path == tmp_path / "pkg" / "demo.safetensors"
    row = weights.status(card)
    assert row["present"] and row["source"] == "bundled"
    weights.verify(card, path)
    monkeypatch.setenv(card.env_var, str(model))
    assert weights.resolve("demo", download=False) == model
    monkeypatch.delenv(card.env_var)
    path.unlink()
    with pytest.raises(ModelNotFoundError, match="broken installation"):
        weights.resolve("demo")
