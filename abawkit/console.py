"""Shared rich console, progress bars and tables (one look for every stage)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

console = Console(stderr=False, highlight=False)


def progress(transient: bool = False) -> Progress:
    """A progress bar with count, elapsed and remaining time."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=transient,
    )


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], floatfmt: str = "{:.4f}") -> Table:
    """Build a rich table; floats are formatted with ``floatfmt``."""
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(str(c), overflow="fold")  # long paths wrap instead of being cut
    for row in rows:
        t.add_row(*[floatfmt.format(v) if isinstance(v, float) else str(v) for v in row])
    return t
