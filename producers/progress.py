"""A live progress line for producer runs (rich), silent when not on a terminal."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bankguard.producers.publisher import PublishReport


class ProgressDisplay:
    def __init__(self, *, enabled: bool, total: int | None) -> None:
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("[bold]producing"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(),
            console=Console(stderr=True), disable=not enabled, transient=False,
        )
        self.task = self.progress.add_task("produce", total=total, failed=0)

    def update(self, report: PublishReport) -> None:
        if self.enabled:
            self.progress.update(self.task, completed=report.produced, failed=report.failed)

    def __enter__(self) -> ProgressDisplay:
        self.progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.stop()
