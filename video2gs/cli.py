"""The ``video2gs`` command line: one Typer app, one verb per module under ``video2gs/commands``.

Errors: a :class:`~video2gs.errors.UserError` prints one red line and exits 1; anything else
prints one line naming it as an internal error and exits 3; Ctrl-C prints one line and exits
130 (SIGTERM: 143). ``--debug`` (anywhere on the command line) shows the traceback instead.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import typer
from rich.console import Console
from rich.markup import escape

from video2gs import __version__
from video2gs.errors import Interrupted, UserError

app = typer.Typer(
    name="video2gs",
    help="Turn a monocular video of an object into a 4D sequence of 3D Gaussian splats (L4GM).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

err_console = Console(stderr=True, highlight=False)
_DEBUG = False


def _version(value: bool):
    if value:
        typer.echo(f"video2gs {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors (also accepted after the command)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
):
    """video2gs: video -> 4D Gaussians. Run `video2gs COMMAND --help` for each command."""


def _register_commands() -> None:
    # Each command module owns one verb; importing it registers nothing by side effect.
    from video2gs.commands import interpolate as interpolate_cmd
    from video2gs.commands import reconstruct as reconstruct_cmd
    from video2gs.commands import render as render_cmd

    app.command("reconstruct")(reconstruct_cmd.reconstruct)
    app.command("interpolate")(interpolate_cmd.interpolate)
    app.command("render")(render_cmd.render)

    from video2gs.commands import example as example_cmd

    app.command("example")(example_cmd.example)

    from video2gs.commands import download as download_cmd
    from video2gs.commands import models as models_cmd

    app.command("models")(models_cmd.models)
    app.command("download")(download_cmd.download)

    from video2gs.commands import data as data_cmd

    app.add_typer(data_cmd.app, name="data")

    from video2gs.commands import evaluate as evaluate_cmd

    app.command("evaluate", epilog=evaluate_cmd._EPILOG)(evaluate_cmd.evaluate)

    from video2gs.commands import export as export_cmd
    from video2gs.commands import view as view_cmd

    app.command("view")(view_cmd.view)
    app.command("export")(export_cmd.export)


    from video2gs.commands import train as train_cmd

    app.command("train", cls=train_cmd._MultiValueCommand, epilog=train_cmd._EPILOG)(train_cmd.train)

class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so cleanup runs as for Ctrl-C."""


def _on_sigterm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise _Terminated()


def _plain_help() -> None:
    """Two habits of typer's help that mislead: a type column for flags (``--orbit <bool>``, but flags
    take no value) and required arguments in braces in the usage line (``{input}``). Show flags bare
    and arguments as click does (``INPUT``, optional ones ``[NAME]``)."""
    from typer.core import TyperArgument, TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "_video2gs", False):
        return

    def display_type_rich(self, ctx):
        return None if (self.is_flag or self.count) else shown(self, ctx)

    def usage_name(self) -> str:
        name = self.display_name_raw.upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    display_type_rich._video2gs = True
    TyperOption.display_type_rich = display_type_rich
    TyperArgument._usage_display_name = usage_name


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. Exit codes: 0 ok, 1 user error, 2 usage, 3 internal error,
    130 interrupted (Ctrl-C), 143 terminated (SIGTERM)."""
    global _DEBUG
    argv = list(sys.argv[1:] if argv is None else argv)
    # --debug may appear after the sub-command; strip it so every command accepts it.
    _DEBUG = "--debug" in argv or os.environ.get("VIDEO2GS_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    # transformers / diffusers notices would break through the progress display and --quiet.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    previous_term = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    if previous_term is not None:
        signal.signal(signal.SIGTERM, _on_sigterm)
    _plain_help()
    _register_commands()
    try:
        code = app(args=argv, prog_name="video2gs", standalone_mode=False)
    except Interrupted as exc:
        if _DEBUG:
            raise
        err_console.print(f"[bold yellow]{escape(str(exc))}[/]", soft_wrap=True)
        sys.exit(143 if isinstance(exc.__cause__, _Terminated) else exc.exit_code)
    except UserError as exc:
        if _DEBUG:
            raise
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        if _DEBUG:
            raise
        err_console.print("[bold yellow]interrupted[/] (files being written were discarded; nothing finished was changed)")
        sys.exit(143 if isinstance(exc, _Terminated) else 130)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - last line of defence, see module docstring
        # Usage errors (bad option values...). typer may vendor its own click, so match by shape.
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(exc.exit_code)
        if type(exc).__name__ == "Abort":
            err_console.print("[bold red]aborted[/]")
            sys.exit(1)
        if _DEBUG:
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} (re-run with --debug for the traceback and report it)",
            soft_wrap=True,
        )
        sys.exit(3)
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    if code == 130:
        # typer turns a Ctrl-C outside our own handling into a return value of 130.
        err_console.print("[bold yellow]interrupted[/] (files being written were discarded; nothing finished was changed)")
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)


def entry() -> None:
    """The process entry point (the console script and ``python -m video2gs``): :func:`main`, and
    an interrupted run (exit 130 or 143) leaves through ``os._exit`` after flushing its output.

    A run interrupted in its first seconds was seen to end killed by SIGINT (returncode -2) instead
    of 130, although main had handled the Ctrl-C and printed its one line: something in the
    interpreter's shutdown overrides the exit status. Skipping that shutdown keeps the documented
    codes; everything main owns (the run folder, child processes) is already closed by then."""
    try:
        main()
    except SystemExit as exc:
        if exc.code in (130, 143):
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:  # noqa: BLE001 - a closed pipe must not change the exit code
                    pass
            os._exit(exc.code)
        raise


if __name__ == "__main__":
    entry()
