"""Rich progress bars and run summaries (quiet when not attached to a terminal or disabled)."""

from __future__ import annotations

import contextlib

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

console = Console(stderr=True)


class _Bar:
    def __init__(self, progress: Progress | None, task):
        self.progress, self.task, self.rows = progress, task, 0

    def advance(self, rows: int) -> None:
        self.rows += rows
        if self.progress is not None:
            self.progress.update(self.task, advance=1, rows=f"{self.rows:,} rows")


@contextlib.contextmanager
def shard_progress(total: int, already_done: int, label: str, enabled: bool = True):
    if not enabled:
        yield _Bar(None, None)
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("shards"),
        TextColumn("{task.fields[rows]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with progress:
        task = progress.add_task(label, total=total, completed=already_done, rows="")
        yield _Bar(progress, task)


class StepProgress:
    """One line per reduce step (e.g. each connected-components round): a spinner while it
    runs, then its counts. ``StepProgress(None, label)`` shows nothing."""

    def __init__(self, progress: Progress | None, label: str):
        self.progress, self.label = progress, label

    @contextlib.contextmanager
    def step(self, name: str):
        info: dict = {"text": ""}
        if self.progress is None:
            yield info
            return
        task = self.progress.add_task(f"{self.label}: {name}", total=None, info="")
        try:
            yield info
        finally:
            self.progress.update(task, total=1, completed=1, info=info["text"])


@contextlib.contextmanager
def reduce_progress(label: str, enabled: bool = True):
    """Progress of a global stage's reduce, step by step (``.step(name)`` yields a dict whose
    ``text`` is shown when the step ends)."""
    if not enabled:
        yield StepProgress(None, label)
        return
    progress = Progress(
        SpinnerColumn(finished_text="[green]done"),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    with progress:
        yield StepProgress(progress, label)


def run_summary(result) -> Table:
    """Per-stage counters of a finished run as a rich table."""
    table = Table(title=f"run {result.run_id} -> {result.output_table} (snapshot {result.snapshot_id})")
    for col in ("stage", "rows in", "rows out", "errors", "seconds"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    if not any("rows_in" in st for st in result.stats.values()):
        table.add_row("(no stages)", f"{result.rows_out:,}", f"{result.rows_out:,}", "0", "")
    for name, st in result.stats.items():
        if "rows_in" not in st:
            continue
        table.add_row(name, f"{st['rows_in']:,}", f"{st['rows_out']:,}", f"{st['errors']:,}", f"{st['seconds']:.2f}")
    return table


class _RowBar:
    def __init__(self, progress: Progress | None, task):
        self.progress, self.task = progress, task

    def advance(self, rows: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, advance=rows)

    def note(self, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, info=text)


@contextlib.contextmanager
def row_progress(total: int | None, label: str, enabled: bool = True):
    """A bar counting rows (for work that is not split in shards: scoring, generation rounds)."""
    if not enabled:
        yield _RowBar(None, None)
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(), console=console,
    )
    with progress:
        yield _RowBar(progress, progress.add_task(label, total=total, info=""))
