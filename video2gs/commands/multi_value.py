"""Options that take several values after one flag: ``--objects a b c`` means
``--objects a --objects b --objects c`` (what a shell glob expands to)."""

from __future__ import annotations

from typer.core import TyperCommand


def multi_value_command(*flags: str) -> type[TyperCommand]:
    """A Typer command class whose ``flags`` collect every following non-flag argument."""

    class MultiValueCommand(TyperCommand):
        def parse_args(self, ctx, args):
            out, current = [], None
            for arg in args:
                if arg in flags:
                    current = arg
                    continue
                if arg.startswith("-"):
                    current = None
                    out.append(arg)
                    continue
                out.extend([current, arg] if current is not None else [arg])
            return super().parse_args(ctx, out)

    return MultiValueCommand
