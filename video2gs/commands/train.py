"""``video2gs train CONFIG --data DIR... -o RUN``: train or fine-tune L4GM / LGM / the interpolation
model (the library is :mod:`video2gs.train`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from video2gs.commands.multi_value import multi_value_command

from video2gs.errors import UserError

_EPILOG = (
    "[bold]Config[/]: a preset (l4gm-recon, l4gm-interp, lgm, demo) or a TOML file (`preset = \"NAME\"` picks the "
    "base); `--show-config` prints every key. `--set KEY=VALUE` overrides any key (TOML values, bare words are "
    "strings); an unknown key is an error.\n\n"
    "[bold]Output[/]: RUN/checkpoint/ (model.safetensors in the official layout, training_state.pt, "
    "metadata.json; the one before in RUN/backup/), RUN/metrics.jsonl, RUN/grids/*.png, RUN/config.toml, "
    "RUN/tensorboard/ when tensorboard is installed.\n\n"
    "[bold]Examples[/]:\n\n"
    "video2gs train l4gm-recon --data ds/ -o runs/micro --set model=micro --set data.output_size=128 "
    "--set train.steps=300 --set optim.warmup_steps=30\n\n"
    "video2gs train l4gm-recon --data ds/ -o runs/ft --init lgm-fixrot --freeze '*' '!*.t_attns.*'\n\n"
    "accelerate launch --num_processes 8 -m video2gs train l4gm-recon --data /data/objaverse4d -o runs/big"
)


# --data a b, --freeze p q, --set k=v k2=v2: several values after one flag
_MultiValueCommand = multi_value_command("--data", "--freeze", "--set")


def train(
    config: str = typer.Argument(..., help="Preset (l4gm-recon, l4gm-interp, lgm, demo) or a TOML config file."),
    data: list[Path] = typer.Option([], "--data", help="Data folders: `video2gs data make` datasets, clip folders, the reference's DATA_HOME with tars (several after one flag)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Run folder (checkpoints, metrics.jsonl, grids)."),
    set_: list[str] = typer.Option([], "--set", help="Override config keys: --set optim.lr=1e-4 train.steps=500 (TOML values)."),
    init: Optional[str] = typer.Option(None, "--init", help="Start from weights: lgm-fixrot | l4gm-recon | l4gm-interp | PATH.safetensors | none (from LGM the temporal layers stay fresh)."),
    freeze: list[str] = typer.Option([], "--freeze", help="Keep parameters matching these patterns fixed (fnmatch on names; '!PAT' exempts): --freeze '*' '!*.t_attns.*' trains only temporal attention."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in OUTPUT from its last checkpoint (exactly)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start again in an OUTPUT that holds a run (its checkpoints and logs are replaced)."),
    strict: bool = typer.Option(False, "--strict", help="A corrupt sample is an error (default: skipped with a warning and counted)."),
    show_config: bool = typer.Option(False, "--show-config", help="Print the resolved config as TOML and exit."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress display or summary."),
):
    """Train L4GM, LGM or the interpolation model on multi-view 4D data (the reference's recipe).

    Runs on one CPU or GPU as is, and on several GPUs or nodes under `accelerate launch -m video2gs train ...`.
    """
    from video2gs.train.config import load_config, to_toml

    extra: dict = {}
    if data:
        extra["data.dirs"] = [str(d) for d in data]
    if init is not None:
        extra["init"] = init
    if freeze:
        extra["freeze"] = list(freeze)
    if strict:
        extra["data.strict"] = True
    cfg = load_config(config, list(set_))
    for k, v in extra.items():
        cfg.set(k, v)
    if show_config:
        typer.echo(to_toml(cfg), nl=False)
        return
    if output is None:
        raise UserError("missing --output RUN (the run folder)")

    from video2gs.progress import Reporter, console
    from video2gs.train.trainer import Run

    with Reporter(quiet) as rep:
        run = Run(cfg, output, resume=resume, overwrite=overwrite)
        if not run.accel.is_main_process:
            rep.quiet = True
        summary = run.train(rep)
    if not run.accel.is_main_process:
        return
    if summary.interrupted:
        console.print(f"[yellow]interrupted[/] at step {summary.step}/{summary.steps}: checkpoint {summary.checkpoint}; "
                      f"continue with --resume")
        raise typer.Exit(130)
    if not quiet:
        last = summary.last
        val = summary.val.get("novel", {})
        console.print(
            f"[bold green]done[/] {summary.step} steps in {summary.seconds:.0f}s: loss {last.get('loss', float('nan')):.4f}, "
            f"psnr {last.get('psnr', float('nan')):.2f} dB"
            + (f"; val novel views psnr {val['psnr']:.2f} dB" if "psnr" in val else "")
            + (f"; {summary.skipped} corrupt samples skipped" if summary.skipped else "")
            + f" -> {summary.checkpoint}/model.safetensors"
        )
