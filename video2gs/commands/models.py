"""`video2gs models`: every known model, its licence and size, and whether it is on this machine.

Works offline: it only looks at the environment, the config file and the Hugging Face cache.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from video2gs import weights


def models() -> None:
    """List the models: name, kind, licence (NC = non-commercial), size, present/absent, path."""
    console = Console(highlight=False)
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for col in ("name", "kind", "licence", "size", "status"):
        table.add_column(col, no_wrap=True)
    table.add_column("path", overflow="fold")
    any_nc = False
    for card in weights.list_cards():
        row = weights.status(card)
        any_nc |= card.licence.non_commercial
        licence = f"[yellow]{escape(row['licence'])}[/]" if row["non_commercial"] else escape(row["licence"])
        if row["present"]:
            state = "[green]present[/]" + (" [dim](bundled)[/]" if row["source"] == "bundled" else "")
        elif row["source"] == "missing":
            state = "[red]missing[/]"  # configured, but the path does not exist
        else:
            state = "[dim]absent[/]"
        name = escape(card.name) + (" [dim](legacy)[/]" if card.legacy else "")
        table.add_row(name, card.kind, licence, weights.human_size(row["size"], row["size_exact"]), state,
                      escape(row["path"] or "-"))
    console.print(table)
    if any_nc:
        console.print("[yellow]NC[/] = non-commercial licence (the L4GM weights are CC BY-NC-SA 4.0).")
    offline = " Offline (HF_HUB_OFFLINE=1): downloads are off." if weights.is_offline() else ""
    console.print(
        f"Fetch a model: video2gs download NAME. Cache: {escape(str(weights.hf_cache_dir()))}. "
        f"Own files: VIDEO2GS_MODEL_<NAME>=path, or {escape(str(weights.config_file()))} \\[models].{offline}",
        soft_wrap=True,
    )
