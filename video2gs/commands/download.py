"""`video2gs download NAME…`: fetch models into the Hugging Face cache after showing their licences."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from video2gs import weights
from video2gs.errors import ModelNotFoundError, UserError


def download(
    names: list[str] = typer.Argument(..., metavar="NAME", help="Model names, as listed by `video2gs models`."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Accept the licences without asking (needed without a terminal)."),
    force: bool = typer.Option(False, "--force", help="Download again even if the files are present."),
    verify: bool = typer.Option(False, "--verify", help="Check the sha256 of models that are already present."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars (licences are still shown)."),
) -> None:
    """Download models after showing their licences (L4GM weights: CC BY-NC-SA 4.0, non-commercial)."""
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    cards = [weights.get_card(n) for n in dict.fromkeys(names)]  # unknown names fail before anything

    todo = []
    for card in cards:
        loc = None if force else weights.locate(card)
        if loc is None:
            todo.append(card)
            continue
        if verify:
            weights.verify(card, loc.path)
        out.print(f"{escape(card.name)}: present at {escape(str(loc.path))}" + (" (verified)" if verify else ""),
                  soft_wrap=True)
    if not todo:
        return

    if weights.is_offline():
        listed = ", ".join(c.name for c in todo)
        raise ModelNotFoundError(
            f"cannot download {listed}: offline (HF_HUB_OFFLINE=1); run `video2gs download {' '.join(c.name for c in todo)}` "
            f"on a connected machine and copy its Hugging Face cache, or unset HF_HUB_OFFLINE"
        )

    for card in todo:
        weights.print_licence(card, err)
    total = sum(c.total_size for c in todo)
    exact = all(c.size_exact for c in todo)
    if not yes:
        if not sys.stdin or not sys.stdin.isatty():
            raise UserError("the licences above were not accepted: no terminal to ask on; pass --yes to accept them")
        nc = any(c.licence.non_commercial for c in todo)
        question = (f"Accept {'these licences' if len(todo) > 1 else 'this licence'}"
                    f"{' (non-commercial use only)' if nc else ''} and download {weights.human_size(total, exact)}?")
        if not typer.confirm(question, default=False, err=True):
            raise UserError("download cancelled; nothing was downloaded")

    for card in todo:
        path = weights.fetch(card, quiet=quiet, force=force, show_licence=False)
        out.print(f"{escape(card.name)}: downloaded to {escape(str(path))}", soft_wrap=True)
