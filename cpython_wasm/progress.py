"""What a long build shows while it works: phase names with timings, download bars.

Everything goes to standard error, so that commands whose output is data
(`invoke render`) keep standard output clean. On a terminal, running phases
show a spinner with the elapsed time; in CI logs, each phase prints one line
when it starts and one when it ends.
"""

import time
from contextlib import contextmanager, nullcontext

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn


class Reporter:
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        # Wall time of every phase this reporter has timed, by phase name.
        self.timings: dict[str, float] = {}

    def info(self, message: str) -> None:
        self.console.print(message)

    def warn(self, message: str) -> None:
        self.console.print(f"[bold yellow]warning:[/] {message}")

    def error(self, message: str) -> None:
        """A failure the user can act on, as one paragraph; `message` is plain text (no markup is read in it)."""
        self.console.print(f"[bold red]error:[/] {escape(message)}")

    @contextmanager
    def phase(self, name: str, detail: str = ""):
        """Time one phase; print its outcome and duration.

        Yields a Phase whose `outcome` the caller may set ("reused", a path...)
        to be shown with the duration.
        """
        phase = Phase(name, detail)
        if not self.console.is_terminal:
            self.console.print(f"▶ {phase.label}")
        start = time.monotonic()
        try:
            with self.console.status(phase.label) if self.console.is_terminal else nullcontext():
                yield phase
        except BaseException:
            elapsed = self.timings[name] = time.monotonic() - start
            self.console.print(f"[bold red]✗[/] {phase.label} failed after {elapsed:.1f} s")
            raise
        elapsed = self.timings[name] = time.monotonic() - start
        outcome = f": {phase.outcome}" if phase.outcome else ""
        self.console.print(f"[bold green]✓[/] {phase.label}{outcome} ({elapsed:.1f} s)")

    @contextmanager
    def download(self, description: str, total: int | None):
        """A progress bar for one download; yields a function to report bytes received."""
        columns = [TextColumn("  {task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
        with Progress(*columns, console=self.console, transient=True, disable=not self.console.is_terminal) as bar:
            task = bar.add_task(description, total=total)
            yield lambda received: bar.advance(task, received)


class Phase:
    def __init__(self, name: str, detail: str):
        self.label = f"[bold]{name}[/]" + (f" {detail}" if detail else "")
        self.outcome = ""
