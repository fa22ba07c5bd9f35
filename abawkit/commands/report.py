"""``abaw report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from abawkit.commands._options import DEFAULT_WORKDIR, Workdir, friendly


@friendly
def report(
    workdir: Workdir = DEFAULT_WORKDIR,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default <workdir>/report).")] = None,
) -> None:
    """Write an HTML + Markdown report: metrics per stage and fold, per-class bars, timelines."""
    from abawkit.stages.report import run

    run(workdir, out)


def register(app: typer.Typer) -> None:
    app.command()(report)
