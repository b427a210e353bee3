"""The training loop: one code path from one CPU to many GPUs (Hugging Face accelerate).

    run = Run(cfg, out_dir)          # builds model, data, optimiser; --init / --freeze / --resume
    summary = run.train(reporter)    # steps until cfg["train.steps"]; checkpoints, logs, validation

Per optimizer step: ``train.grad_accum`` micro-steps of ``train.batch_size`` clips per process
(gradients are synchronised only on the last one), forward under the :class:`Precision` autocast
(bf16 on CUDA and AMX CPUs with ``precision = "auto"``; fp32 master weights), the loss of
:mod:`video2gs.train.loss`, grad-norm clip, AdamW, OneCycle (stepped once per optimizer step:
``optim.warmup_steps`` counts optimizer steps). ``accelerate launch -m video2gs train ...`` runs one
process per device; each process draws its own part of the sample stream (:class:`StepBatches`), so
the effective batch is ``batch_size · grad_accum · processes`` clips.

Determinism: the samples are a pure function of (seed, epoch, index), the model's fresh init of
``train.seed``, and a checkpoint stores the optimiser, scheduler and RNG states; ``--resume`` thus
repeats exactly what an uninterrupted run does (on CPU; on CUDA with ``train.deterministic``).
"""

from __future__ import annotations

import contextlib
import fnmatch
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from video2gs import __version__, compute
from video2gs.errors import UserError
from video2gs.nn.precision import Precision
from video2gs.train import logs, state
from video2gs.train.config import TrainConfig, to_toml
from video2gs.train.data import StepBatches, TrainSamples, loader, open_stores, sample_options
from video2gs.train.loss import Criterion

TEMPORAL_MARK = ".t_attns."  # state-dict names of the temporal attention layers (docs/l4gm.md §3)


def network_config(cfg: TrainConfig):
    """The L4GM config the run trains: ``model`` (a named size or ``micro``) with ``temporal``."""
    from video2gs.nn.configs import get_config
    from video2gs.testing import micro_l4gm_config

    base = micro_l4gm_config() if cfg["model"] == "micro" else get_config(cfg["model"])
    size = cfg["input_size"] or base.input_size
    mult = 2 ** (len(base.down_channels) - 1)  # every down block but the last halves the image
    if size <= 0 or size % mult:
        raise UserError(f"input_size of {base.name} must be a positive multiple of {mult}, got {size}")
    splat = base.splat_size * size // base.input_size  # the U-Net's output/input ratio is fixed by its blocks
    return base.replace(use_temp_attn=bool(cfg["temporal"]), input_size=size, splat_size=splat)


def freeze(model: torch.nn.Module, patterns: list[str]) -> list[str]:
    """Set ``requires_grad=False`` on parameters matching a pattern (fnmatch on state-dict names; a
    pattern starting with ``!`` exempts what it matches). Returns the frozen names."""
    if not patterns:
        return []
    take = [p for p in patterns if not p.startswith("!")]
    keep = [p[1:] for p in patterns if p.startswith("!")]
    names = [n for n, _ in model.named_parameters()]
    for p in take + keep:
        if not any(fnmatch.fnmatchcase(n, p) for n in names):
            raise UserError(f"--freeze pattern {p!r} matches no parameter (names look like {names[0]}, {names[-1]})")
    frozen = []
    for n, param in model.named_parameters():
        if any(fnmatch.fnmatchcase(n, p) for p in take) and not any(fnmatch.fnmatchcase(n, p) for p in keep):
            param.requires_grad_(False)
            frozen.append(n)
    if len(frozen) == len(names):
        raise UserError("--freeze froze every parameter: nothing left to train")
    return frozen


def initialise(model, init: str) -> dict:
    """``init``: "none", a registry name or a .safetensors path. From a file without temporal
    layers (LGM) those stay fresh; any other mismatch is another architecture: a UserError."""
    if init in ("", "none"):
        return {"init": "none"}
    from video2gs import weights
    from video2gs.nn.checkpoint import describe_keys, init_from_state, read_header
    from video2gs.nn.configs import describe

    path = weights.resolve(init, download=False)
    shapes, _ = read_header(path)
    report = init_from_state(model, path)
    from_lgm = not any(TEMPORAL_MARK in k for k in shapes)
    bad = [k for k in report.fresh if not (from_lgm and TEMPORAL_MARK in k)]
    if bad:
        raise UserError(
            f"--init {init}: {path.name} is {describe_keys(shapes)}, the run trains {describe(model.config)}; "
            f"{len(bad)} of {len(report.fresh) + len(report.copied)} tensors do not match (first: {bad[0]})",
            hint="pick the matching --set model=... or another --init",
        )
    return {"init": str(init), "path": str(path), "copied": len(report.copied), "fresh": len(report.fresh)}


def _lpips(cfg: TrainConfig, device):
    if cfg["loss.lpips"] <= 0 or cfg["loss.render"] <= 0:
        return None
    from video2gs.metrics.lpips import load_lpips

    return load_lpips("vgg", cfg["loss.lpips_weights"], device=device)


def _schedule(optimizer, cfg: TrainConfig):
    steps, warmup = cfg["train.steps"], cfg["optim.warmup_steps"]
    if not 2 <= warmup < steps:  # OneCycle needs two steps of warm-up (its first phase ends at warmup - 1)
        raise UserError(f"optim.warmup_steps ({warmup}) must be at least 2 and below train.steps ({steps})",
                        hint=f"e.g. --set optim.warmup_steps={max(2, steps // 10)}")
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg["optim.lr"], total_steps=steps, pct_start=warmup / steps)


@dataclass
class Summary:
    run: Path
    step: int
    steps: int
    seconds: float
    last: dict = field(default_factory=dict)
    val: dict = field(default_factory=dict)
    skipped: int = 0
    interrupted: bool = False
    checkpoint: Path | None = None


class Run:
    """One training run in folder ``out`` (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, out: Path, *, resume: bool = False, overwrite: bool = False):
        from accelerate import Accelerator

        self.cfg, self.out = cfg, Path(out)
        t = cfg.section("train")
        if t["device"].startswith("cuda") and not torch.cuda.is_available():
            raise UserError("train.device is cuda but CUDA is not available on this machine")
        self.accel = Accelerator(cpu=t["device"] == "cpu", mixed_precision="no")
        self.device = self.accel.device
        if t["deterministic"]:
            torch.use_deterministic_algorithms(True, warn_only=True)
        name = t["precision"]
        if name == "auto" and self.device.type == "cpu" and not compute.cpu_bf16().amx_bf16:
            # Measured (benchmarks/bench_train.py): without AMX, bf16 autocast did not speed a step up
            # (LPIPS and the renderer run in fp32 and take most of it), so fp32 is the CPU default there.
            name = "fp32"
        self.precision = Precision.resolve(name, self.device)

        existing = state.latest(self.out)
        if resume and existing is None:
            raise UserError(f"--resume: {self.out} has no complete checkpoint to continue from")
        if existing is not None and not resume and not overwrite:
            raise UserError(f"{self.out} already holds a training run", hint="--resume to continue it, --overwrite to start again")
        if self.accel.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            if overwrite and not resume:
                import shutil

                for name in (state.CHECKPOINT, state.BACKUP, logs.METRICS_FILE, logs.GRID_DIR, logs.TB_DIR):
                    p = self.out / name
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        self.accel.wait_for_everyone()

        torch.manual_seed(t["seed"])
        from video2gs.nn.l4gm import L4GM

        self.model = L4GM(network_config(cfg)).to(self.device)
        self.init = initialise(self.model, cfg["init"]) if existing is None or not resume else {"init": "resumed"}
        self.frozen = freeze(self.model, list(cfg["freeze"]))
        self.model.set_memory_format(self.precision.memory_format).train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        o = cfg.section("optim")
        self.optimizer = torch.optim.AdamW(params, lr=o["lr"], weight_decay=o["weight_decay"], betas=tuple(o["betas"]))
        self.scheduler = _schedule(self.optimizer, cfg)
        self.step = 0
        self.skipped = 0
        if resume:
            meta = state.load(existing, self.model, self.optimizer, self.scheduler)
            self.step, self.skipped = int(meta["step"]), int(meta.get("skipped", 0))
            self.init = meta.get("init", self.init)

        d = cfg.section("data")
        self.stores = open_stores(d["dirs"], train_split=d["train_split"], val_split=d["val_split"],
                                  val_clips=d["val_clips"], interp=d["mode"] == "interp", strict=d["strict"])
        self.skipped_clips = list(self.stores.skipped)
        opts = sample_options(cfg, self.model.config.input_size)
        kw = dict(seed=t["seed"], side_views=d["side_views"], strict=d["strict"])
        grid = self.model.config.splat_size if cfg["loss.points"] > 0 else 0
        self.train_samples = TrainSamples(self.stores.train, opts, training=True, point_grid=grid, **kw)
        self.val_samples = TrainSamples(self.stores.val, opts, training=False, **kw)
        self.lpips = _lpips(cfg, self.device)
        self.criterion = Criterion(self.lpips, cfg["loss.lpips"], cfg["loss.lpips_size"], t["backend"], cfg["loss.lpips_views"],
                                   cfg["loss.points"], cfg["loss.render"], cfg["loss.points_rgb"])
        self.wrapped, self.optimizer = self.accel.prepare(self.model, self.optimizer)

    # -- bookkeeping ---------------------------------------------------------------------------
    def metadata(self, last: dict, val: dict) -> dict:
        return {
            "step": self.step, "steps": self.cfg["train.steps"], "video2gs": __version__,
            "network": self.model.config.to_dict(), "side_views": self.cfg["data.side_views"],
            "mode": self.cfg["data.mode"], "init": self.init, "frozen": len(self.frozen),
            "skipped": self.skipped, "processes": self.accel.num_processes, "precision": self.precision.name,
            "device": str(self.device), "last": last, "val": val, "config": self.cfg.to_dict(),
        }

    def save(self, last: dict, val: dict) -> Path | None:
        path = None
        if self.accel.is_main_process:
            path = state.save(self.out, self.accel.unwrap_model(self.wrapped), self.optimizer, self.scheduler, self.metadata(last, val))
        self.accel.wait_for_everyone()
        return path

    def validate(self) -> dict:
        from video2gs.train.validate import validate

        res = {}
        if self.accel.is_main_process:
            res = validate(self.accel.unwrap_model(self.wrapped), self.val_samples, device=self.device,
                           precision=self.precision, lpips=self.lpips, views=self.cfg["data.num_views"],
                           input_views=self.cfg["data.num_input_views"])
        self.accel.wait_for_everyone()
        return res

    # -- the loop ------------------------------------------------------------------------------
    def _micro_step(self, batch: dict, sync: bool):
        batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        if self.frozen:
            # With the first layers frozen, torch 2.13's CPU backward crashed (segfault) once the input of
            # the first trainable layer needed no gradient; an input that asks for one avoids that path.
            batch["input"].requires_grad_(True)
        ctx = contextlib.nullcontext() if sync else self.accel.no_sync(self.wrapped)
        with ctx:
            with self.precision.autocast():
                gaussians = self.wrapped(batch["input"])
            loss, terms, pred = self.criterion(gaussians, batch)
            self.accel.backward(loss / self.cfg["train.grad_accum"])
        return loss, terms, pred, batch

    def train(self, rep) -> Summary:
        cfg, L = self.cfg, self.cfg.section("log")
        steps, accum = cfg["train.steps"], cfg["train.grad_accum"]
        main = self.accel.is_main_process
        run_log = logs.RunLog(self.out, L["tensorboard"]) if main else None
        if main:
            logs.truncate_after(self.out / logs.METRICS_FILE, self.step)
            (self.out / "config.toml").write_text(to_toml(cfg))
            for note in self.stores.notes:
                rep.info(note)
            for why in self.skipped_clips:
                rep.warn(f"skipped clip {why}")
        sampler = StepBatches(len(self.train_samples), cfg["train.batch_size"], seed=cfg["train.seed"],
                              world=self.accel.num_processes, rank=self.accel.process_index, start=self.step * accum)
        batches = iter(loader(self.train_samples, sampler, cfg["data.num_workers"]))
        params = [p for p in self.model.parameters() if p.requires_grad]
        window: dict[str, float] = {}
        n_window, t_window, t0 = 0, time.perf_counter(), time.perf_counter()
        last, val, interrupted, ckpt = {}, {}, False, state.latest(self.out)
        start_step = self.step
        max_empty = 2 * len(self.train_samples) + 8  # more empty batches in a row than that: nothing is readable
        with rep.stage("train", total=steps) as bar:
            bar.update(completed=self.step)
            if self.step == 0 and L["val_every"] > 0:  # the starting point of the validation curve
                start = self.validate()
                if main:
                    run_log.write({"step": 0, "split": "val", **start})
            try:
                while self.step < steps:
                    for micro in range(accum):
                        for _ in range(max_empty):
                            batch = next(batches)
                            for why in batch.pop("errors"):
                                self.skipped += 1
                                rep.warn(f"skipped a corrupt sample ({why}); {self.skipped} so far")
                            if "input" in batch:
                                break
                        else:
                            raise UserError(f"no readable sample in {max_empty} batches in a row: the data is corrupt "
                                            f"({self.skipped} samples skipped)")
                        loss, terms, pred, batch = self._micro_step(batch, sync=micro == accum - 1)
                    finite = torch.isfinite(self.accel.reduce(loss.detach().float(), "sum"))
                    if not bool(finite):
                        good = f"{ckpt} (step {state.read_metadata(ckpt)['step']})" if ckpt else "none (no checkpoint was written yet)"
                        raise UserError(f"the loss became NaN/inf at step {self.step + 1}; training stopped, the last good checkpoint is {good}",
                                        hint="lower optim.lr or check the data")
                    if cfg["optim.grad_clip"] > 0:
                        self.accel.clip_grad_norm_(params, cfg["optim.grad_clip"])
                    self.optimizer.step()
                    self.scheduler.step()
                    self.optimizer.zero_grad(set_to_none=True)
                    self.step += 1

                    terms = {k: float(self.accel.reduce(v.float(), "mean")) for k, v in terms.items()}
                    for k, v in terms.items():
                        window[k] = window.get(k, 0.0) + v
                    n_window += 1
                    sps = (self.step - start_step) / max(time.perf_counter() - t0, 1e-9)
                    psnr = f" psnr {terms['psnr']:.2f}" if "psnr" in terms else ""
                    bar.update(completed=self.step, description=f"train loss {terms['loss']:.4f}{psnr} {sps:.2f} it/s")
                    due = lambda every: every > 0 and self.step % every == 0  # noqa: E731
                    if due(L["every"]) or self.step == steps:
                        now = time.perf_counter()
                        last = {k: v / n_window for k, v in window.items()}
                        rec = {"step": self.step, "split": "train", **last, "lr": self.scheduler.get_last_lr()[0],
                               "steps_per_s": n_window / max(now - t_window, 1e-9), "skipped": self.skipped,
                               "time": round(now - t0, 3)}
                        if main:
                            run_log.write(rec)
                        window, n_window, t_window = {}, 0, now
                    if main and due(L["grid_every"]) and pred is not None:
                        logs.write_grid(self.out / logs.GRID_DIR / f"step-{self.step:06d}.png", pred.rgb,
                                        batch["images_output"].flatten(0, 1), cfg["data.num_views"])
                    if due(L["val_every"]) or self.step == steps:
                        val = self.validate()
                        if main:
                            run_log.write({"step": self.step, "split": "val", **val})
                            rep.info(f"step {self.step}: val " + "; ".join(
                                f"{g} " + " ".join(f"{k} {v:.3f}" for k, v in m.items()) for g, m in val.items()))
                    if due(L["checkpoint_every"]) or self.step == steps:
                        ckpt = self.save(last, val)
            except KeyboardInterrupt:
                interrupted = True
                ckpt = self.save(last, val) if self.step > 0 else ckpt
            except torch.OutOfMemoryError as exc:
                raise UserError(
                    f"out of {self.device.type.upper()} memory at step {self.step + 1}",
                    hint="try a smaller --set train.batch_size, data.num_frames or data.output_size "
                         "(train.grad_accum keeps the effective batch)",
                ) from exc
            finally:
                if run_log is not None:
                    run_log.close()
        return Summary(self.out, self.step, steps, time.perf_counter() - t0, last, val, self.skipped, interrupted, ckpt)
