"""One rich progress display shared by every stage of a command (silent with ``--quiet``)."""

from __future__ import annotations

import contextlib
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True, highlight=False)


class Stage:
    """A running stage: ``advance(n)``, ``update(total=..)``; records its wall time."""

    def __init__(self, owner: "Reporter", name: str, total: int | None):
        self.owner, self.name, self.total = owner, name, total
        self.start = time.perf_counter()
        self.seconds = 0.0
        self._task = owner._progress.add_task(name, total=total) if owner._progress is not None else None

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self.owner._progress.advance(self._task, n)

    def update(self, **kwargs) -> None:
        if self._task is not None:
            self.owner._progress.update(self._task, **kwargs)

    def finish(self) -> None:
        self.seconds = time.perf_counter() - self.start
        if self._task is not None:
            task = self.owner._progress.tasks[self._task]
            if task.total is None:
                self.owner._progress.update(self._task, total=task.completed or 1, completed=task.completed or 1)


class Reporter:
    """Progress bars plus messages. ``with Reporter(quiet) as rep: with rep.stage("decode", n) as s: ...``"""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._progress: Progress | None = None
        self.timings: dict[str, float] = {}

    def __enter__(self) -> "Reporter":
        if not self.quiet:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description:<14}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    @contextlib.contextmanager
    def stage(self, name: str, total: int | None = None):
        s = Stage(self, name, total)
        try:
            yield s
        finally:
            s.finish()
            self.timings[name] = self.timings.get(name, 0.0) + s.seconds

    def info(self, message: str) -> None:
        """A line above the bars (suppressed by --quiet)."""
        if not self.quiet:
            (self._progress.console if self._progress is not None else console).print(message)

    def warn(self, message: str) -> None:
        """Warnings are shown even with --quiet."""
        (self._progress.console if self._progress is not None else console).print(f"[yellow]warning:[/] {message}")
