"""`video2gs train`: a micro L4GM overfits one clip, resume is exact, freezing holds, accelerate
launches it, and the checkpoint loads in `reconstruct`. All on CPU, seeded, on a clip rendered here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from video2gs import cli
from video2gs.errors import UserError
from video2gs.metrics.fixtures import random_object, spin, write_render_clip
from video2gs.nn.checkpoint import read_state_dict
from video2gs.progress import Reporter
from video2gs.train import state
from video2gs.train.config import load_config
from video2gs.train.trainer import Run

# A micro network at 32² (1,024 Gaussians per frame), supervision at 32², no LPIPS: about a second a step.
SMALL = {
    "model": "micro", "input_size": 32, "init": "none", "data.output_size": 32, "data.num_frames": 1,
    "data.num_views": 5, "data.num_workers": 0, "data.prob_grid_distortion": 0.0, "loss.lpips": 0.0,
    "optim.warmup_steps": 2, "log.every": 1, "log.val_every": 0, "log.grid_every": 0, "log.checkpoint_every": 0,
    "log.tensorboard": False,
}


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    g = random_object(1500, seed=1)
    views = [(0.0, 45.0 * k) for k in range(8)] + [(20.0, 30.0), (10.0, 160.0)]
    return write_render_clip(tmp_path_factory.mktemp("clip") / "blob", [g, spin(g, 20.0)], views=views, size=32,
                             write_gt=False, backend="torch")


def _cfg(clip: Path, **extra):
    return load_config("l4gm-recon", {**SMALL, "data.dirs": [str(clip)], **extra})


def _cli(capsys, *argv) -> tuple[int, str]:
    """``video2gs ARGV`` in-process: (exit code, stdout + stderr)."""
    try:
        cli.main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out + out.err


def _lines(run: Path, split: str = "train") -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["split"] == split]


def test_micro_model_overfits_one_clip(clip, tmp_path):
    run = Run(_cfg(clip, **{"train.steps": 30, "optim.lr": 3e-3, "data.shuffle_input": False}), tmp_path / "run")
    before = run.validate()
    summary = run.train(Reporter(quiet=True))
    losses = [r["loss"] for r in _lines(tmp_path / "run")]
    assert len(losses) == 30
    assert sum(losses[-3:]) / 3 <= 0.5 * losses[0], losses
    gain = summary.val["novel"]["psnr"] - before["novel"]["psnr"]
    assert gain >= 3.0, (before, summary.val)
    meta = state.read_metadata(summary.checkpoint)
    assert meta["step"] == 30 and meta["side_views"] == "reference" and meta["network"]["input_size"] == 32


def test_resume_gives_the_same_weights_as_one_run(clip, tmp_path):
    cfg = _cfg(clip, **{"train.steps": 4, "data.prob_grid_distortion": 0.5, "train.grad_accum": 2})
    Run(cfg, tmp_path / "whole").train(Reporter(quiet=True))

    part = tmp_path / "part"
    run = Run(cfg, part)
    calls = {"n": 0}
    step = run.optimizer.step  # Ctrl-C arrives during the third optimizer step

    def interrupting_step(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return step(*a, **k)

    run.optimizer.step = interrupting_step
    summary = run.train(Reporter(quiet=True))
    assert summary.interrupted and summary.step == 2
    assert state.read_metadata(state.latest(part))["step"] == 2
    with pytest.raises(UserError, match="already holds a training run"):
        Run(cfg, part)
    Run(cfg, part, resume=True).train(Reporter(quiet=True))

    a = read_state_dict(tmp_path / "whole" / "checkpoint" / "model.safetensors")
    b = read_state_dict(part / "checkpoint" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    assert [r["loss"] for r in _lines(tmp_path / "whole")] == [r["loss"] for r in _lines(part)]


def test_frozen_parameters_do_not_change(clip, tmp_path):
    cfg = _cfg(clip, **{"train.steps": 3, "freeze": ["*", "!*.t_attns.*"], "data.num_frames": 2})
    run = Run(cfg, tmp_path / "run")
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    run.train(Reporter(quiet=True))
    after = run.model.state_dict()
    frozen = [k for k in before if ".t_attns." not in k]
    temporal = [k for k in before if ".t_attns." in k and k.endswith("weight")]
    assert frozen and temporal
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in temporal)


def test_config_errors_name_the_key(clip):
    with pytest.raises(UserError, match="optim.lrr"):
        load_config("l4gm-recon", ["optim.lrr=1e-4"])
    with pytest.raises(UserError, match="optim.lr: expected float"):
        load_config("l4gm-recon", ["optim.lr=fast"])
    with pytest.raises(UserError, match="side_views"):
        load_config("l4gm-recon", ["data.side_views=grey"])
    cfg = load_config("l4gm-interp", ["optim.lr=1e-4", "data.dirs=['a', 'b']"])
    assert cfg["optim.lr"] == 1e-4 and cfg["data.num_frames"] == 4 and cfg["data.dirs"] == ["a", "b"]
    assert cfg["optim.betas"] == [0.9, 0.95] and cfg["optim.weight_decay"] == 0.05 and cfg["loss.lpips_size"] == 256


def test_bad_data_and_init_are_one_line_errors(clip, tmp_path, capsys):
    args = ["train", "l4gm-recon", "-o", str(tmp_path / "r"), "--set", "model=micro", "init=none"]
    empty = tmp_path / "empty"
    empty.mkdir()
    for data, msg in ((tmp_path / "missing", "not found"), (empty, "is empty")):
        code, out = _cli(capsys, *args, "--data", data)
        assert code == 1 and msg in out and "Traceback" not in out
    # an LGM-tiny-sized file is another architecture than the micro network
    from video2gs.testing import write_random_l4gm

    other = write_random_l4gm(tmp_path / "tiny.safetensors", "tiny")
    with pytest.raises(UserError, match="do not match"):
        Run(_cfg(clip, **{"train.steps": 3, "init": str(other)}), tmp_path / "r2")


def test_corrupt_sample_is_skipped_or_strict(clip, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(clip, bad)
    (bad / "000" / "img" / "000.png").write_bytes(b"not a png")
    cfg = _cfg(clip, **{"train.steps": 3, "data.shuffle_input": False, "data.dirs": [str(clip), str(bad)]})
    summary = Run(cfg, tmp_path / "run").train(Reporter(quiet=True))
    assert summary.step == 3 and summary.skipped >= 1
    assert state.read_metadata(summary.checkpoint)["skipped"] == summary.skipped
    cfg.set("data.strict", True)
    with pytest.raises(UserError, match="corrupt sample bad"):
        Run(cfg, tmp_path / "run2").train(Reporter(quiet=True))
    cfg = _cfg(bad, **{"train.steps": 3, "data.shuffle_input": False})
    with pytest.raises(UserError, match="no readable sample"):
        Run(cfg, tmp_path / "run3").train(Reporter(quiet=True))


def test_accelerate_launch_and_reconstruct_load_the_checkpoint(clip, tmp_path, capsys):
    pytest.importorskip("accelerate")
    run = tmp_path / "run"
    sets = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in SMALL.items()] + ["train.steps=3", "data.side_views=blank"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "video2gs", "train", "l4gm-recon",
           "--data", str(clip), "-o", str(run), "-q", "--set", *sets]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    meta = state.read_metadata(run / "checkpoint")
    assert meta["step"] == 3 and meta["side_views"] == "blank" and meta["processes"] == 1

    out = tmp_path / "recon"
    code, text = _cli(capsys, "reconstruct", clip / "000" / "img", "-o", out, "--views", "none", "--segment", "none", "--model",
                      run / "checkpoint" / "model.safetensors", "--no-interpolate", "--no-render", "--fps", "8", "-q")
    assert code == 0, text
    assert len(list((out / "gaussians").glob("*.ply"))) == 2
    # the weights file itself says what the side views were, and so does an fp16 export of it
    from video2gs.nn.checkpoint import load_model, trained_side_views
    from video2gs.train.export import export_weights

    assert trained_side_views(run / "checkpoint" / "model.safetensors") == "blank"
    info = export_weights(run, tmp_path / "small.safetensors", "fp16")
    assert info["side_views"] == "blank" and info["step"] == 3 and info["dtype"] == "fp16"
    assert trained_side_views(tmp_path / "small.safetensors") == "blank"
    a = load_model(run / "checkpoint" / "model.safetensors").state_dict()
    b = load_model(tmp_path / "small.safetensors").state_dict()
    assert all(torch.allclose(a[k], b[k], rtol=1e-3, atol=1e-4) for k in a)  # fp16 round trip
    assert (tmp_path / "small.safetensors").stat().st_size < (run / "checkpoint" / "model.safetensors").stat().st_size * 0.6


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(clip, tmp_path):
    run = Run(_cfg(clip, **{"train.steps": 3, "log.checkpoint_every": 1}), tmp_path / "run")
    real, calls = run.criterion.forward, {"n": 0}

    def poisoned(gaussians, batch):  # the second step's loss is NaN
        calls["n"] += 1
        loss, terms, pred = real(gaussians, batch)
        return (loss * float("nan") if calls["n"] == 2 else loss), terms, pred

    run.criterion.forward = poisoned
    with pytest.raises(UserError, match=r"NaN/inf at step 2.*\(step 1\)"):
        run.train(Reporter(quiet=True))
    assert state.read_metadata(state.latest(tmp_path / "run"))["step"] == 1


def test_lpips_on_a_subset_of_views_is_deterministic_per_batch():
    """loss.lpips_views = k: the LPIPS term sees k of the images, the same k for the same batch
    (so --resume repeats it), others for another batch."""
    from video2gs.train.loss import Criterion

    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, a, b):
            seen.append(a.shape[0])
            return (a - b).abs().mean(dim=(1, 2, 3))

    crit = Criterion(Recorder(), 1.0, 16, lpips_views=3)
    batch = {"index": torch.tensor([4]), "view_ids": torch.tensor([0, 5, 9, 2]), "frame_ids": torch.tensor([0, 1])}
    picks = [crit.lpips_subset(batch, 8).tolist() for _ in range(2)]
    assert picks[0] == picks[1] and len(picks[0]) == 3 and len(set(picks[0])) == 3
    other = crit.lpips_subset({**batch, "index": torch.tensor([5])}, 8).tolist()
    assert other != picks[0] or crit.lpips_subset({**batch, "index": torch.tensor([6])}, 8).tolist() != picks[0]
    assert Criterion(Recorder(), 1.0, 16, lpips_views=0).lpips_subset(batch, 8) is None
    assert Criterion(Recorder(), 1.0, 16, lpips_views=8).lpips_subset(batch, 8) is None


@pytest.fixture(scope="module")
def gt_clip(tmp_path_factory) -> Path:
    """A clip with gt/ of an off-centre, elongated object (a row or column flip would move it)."""
    g = random_object(3000, seed=3)
    xyz = g.xyz * torch.tensor([0.3, 0.5, 0.3]) + torch.tensor([0.3, 0.3, 0.2])
    g = type(g)(torch.cat([xyz, g.data[:, 3:4], g.data[:, 4:7] * 0.4, g.data[:, 7:]], dim=1))  # sizes shrink along
    views = [(0.0, 45.0 * k) for k in range(8)] + [(20.0, 30.0)]
    return write_render_clip(tmp_path_factory.mktemp("gtclip") / "bar", [g, spin(g, 30.0)], views=views, size=32,
                             write_gt=True, backend="torch")


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum() / (a | b).sum().clamp_min(1))


def test_point_targets_are_the_surface_seen_through_each_input_cell(gt_clip):
    """loss.points' targets: for every input camera the network is given (the real view 0, the blank
    views' default cameras), the cells with a target are where the object is seen (the gt rendered
    from that camera in the sample's frame), and each target lies in its own cell, in front."""
    from video2gs.camera import Cameras, project_to_grid
    from video2gs.data.samples import SampleOptions
    from video2gs.render import render
    from video2gs.train.data import TrainSamples, open_stores

    stores = open_stores([str(gt_clip)]).train
    S = 32  # cells of about 1/25 of the object's height: the silhouette's soft edge is a small part of it
    for shuffle, epoch in ((False, 0), (True, 1), (True, 2)):  # shuffled: another view becomes the front camera
        opts = SampleOptions(num_frames=2, num_views=5, input_size=32, output_size=32, prob_grid_distortion=0.0,
                             random_start=False, shuffle_input=shuffle)
        s = TrainSamples(stores, opts, training=True, seed=epoch, side_views="blank", point_grid=S)[(epoch, 0)]
        assert s["points_target"].shape == (8, S, S, 3) and s["points_valid"].shape == (8, S, S)
        M = s["normalisation"]
        for i, t in enumerate(s["frame_ids"].tolist()):
            gt = stores[0].clip.load_gt(t)
            moved = type(gt)(torch.cat([gt.xyz @ M[:3, :3].T + M[:3, 3], gt.data[:, 3:]], dim=1))
            cams = s["c2w_input"][i * 4:(i + 1) * 4]
            with torch.no_grad():
                alpha = render(moved, Cameras(cams), S, S, backend="torch").alpha[..., 0] > 0.5  # [4, S, S]
            valid = s["points_valid"][i * 4:(i + 1) * 4] > 0
            for k in range(4):
                assert _iou(valid[k], alpha[k]) >= 0.7, (epoch, t, k, _iou(valid[k], alpha[k]))
                if not shuffle and i == 0:  # views 0/90/180/270 see the unspun off-centre object off-centre: a flip misses it
                    assert _iou(valid[k].flip(0), alpha[k]) < 0.5 and _iou(valid[k].flip(1), alpha[k]) < 0.5, (t, k)
                pts = s["points_target"][i * 4 + k][valid[k]]
                row, col, depth = project_to_grid(pts, cams[k], S)
                rr, cc = torch.nonzero(valid[k], as_tuple=True)
                assert float(((row - rr).abs() <= 1).float().mean()) > 0.95 and float(((col - cc).abs() <= 1).float().mean()) > 0.95
                assert bool((depth > 0).all())


def test_point_loss_places_the_gaussians_on_the_surface(gt_clip, tmp_path, monkeypatch):
    """With loss.points the Gaussians move onto their targets within a few steps (position, colour
    and opacity terms fall); with loss.render = 0 no training step renders anything."""
    import video2gs.train.loss as loss_module
    import video2gs.train.validate  # noqa: F401  (binds the real render_views: validation still renders)

    def no_render(*a, **k):
        raise AssertionError("loss.render = 0 rendered in a training step")

    monkeypatch.setattr(loss_module, "render_views", no_render)
    cfg = _cfg(gt_clip, **{"train.steps": 20, "optim.lr": 3e-3, "loss.points": 1.0, "loss.render": 0.0,
                           "data.side_views": "mirror"})
    Run(cfg, tmp_path / "run").train(Reporter(quiet=True))
    rows = _lines(tmp_path / "run")
    assert len(rows) == 20 and "psnr" not in rows[0] and "mse_rgb" not in rows[0]
    for key, fall in (("points", 0.6), ("points_opacity", 0.75), ("points_rgb", 0.95)):
        values = [r[key] for r in rows]
        assert sum(values[-3:]) / 3 <= fall * values[0], (key, values)


def test_point_targets_take_the_samples_colour_map(gt_clip):
    """Recoloured samples: the colour targets go through the same map as the images (white fixed)."""
    from video2gs.data.samples import SampleOptions
    from video2gs.train.data import TrainSamples, open_stores

    stores = open_stores([str(gt_clip)]).train
    base = dict(num_frames=1, num_views=5, input_size=32, output_size=32, prob_grid_distortion=0.0, shuffle_input=False)
    plain = TrainSamples(stores, SampleOptions(**base), training=True, seed=0, point_grid=16)[(0, 0)]
    tinted = TrainSamples(stores, SampleOptions(**base, prob_recolour=1.0), training=True, seed=0, point_grid=16)[(0, 0)]
    C = tinted["colour_map"]
    assert not torch.allclose(C, torch.eye(3)) and torch.equal(plain["colour_map"], torch.eye(3))
    ok = plain["points_valid"] > 0
    assert torch.equal(ok, tinted["points_valid"] > 0) and int(ok.sum()) > 20
    expected = (plain["points_rgb"][ok] @ C.T).clamp(0, 1)  # the map is linear: mean of mapped = mapped mean
    assert torch.allclose(tinted["points_rgb"][ok], expected, atol=0.02)
    assert float(plain["points_known"]) == 1.0


def test_points_rgb_weights_only_the_colour_term():
    """loss.points_rgb scales the colour part of loss.points and nothing else: the loss moves by
    exactly (w - 1) · points_rgb, and the logged terms stay unweighted."""
    from video2gs.train.loss import Criterion

    gen = torch.Generator().manual_seed(0)
    S, K = 4, 4
    g = torch.rand(2, K * S * S, 14, generator=gen)
    batch = {"points_target": torch.rand(1, 2 * K, S, S, 3, generator=gen),
             "points_rgb": torch.rand(1, 2 * K, S, S, 3, generator=gen),
             "points_valid": (torch.rand(1, 2 * K, S, S, generator=gen) > 0.3).float(),
             "points_known": torch.ones(1)}
    one, t1, _ = Criterion(None, points_weight=2.0, render_weight=0.0)(g, batch)
    ten, t10, _ = Criterion(None, points_weight=2.0, render_weight=0.0, points_rgb_weight=10.0)(g, batch)
    assert float(t1["points_rgb"]) > 0 and t1["points_rgb"] == t10["points_rgb"] and t1["points"] == t10["points"]
    assert torch.allclose(ten - one, 2.0 * 9.0 * t1["points_rgb"], rtol=1e-5)
