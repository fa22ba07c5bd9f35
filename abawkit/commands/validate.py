"""``abaw validate FILE --track T``: every format problem as file:line; exit 1 if any."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from abawkit.commands._options import DEFAULT_WORKDIR, Workdir, friendly


@friendly
def validate(
    path: Annotated[Path, typer.Argument(help="Submission file (abaw5) or folder of <video>.txt (abaw3).")],
    track: Annotated[str, typer.Option("--track", "-t", help="au | expr | va.")],
    workdir: Workdir = DEFAULT_WORKDIR,
    template: Annotated[Optional[Path], typer.Option(help="Organisers' example file (else test frames from prep).")] = None,
    edition: Annotated[str, typer.Option(help="Format edition: abaw5 | abaw3.")] = "abaw5",
) -> None:
    """Check a submission: header, videos, every frame once and in order, columns, value ranges, encoding."""
    from abawkit.stages.validate import run

    if run(path, track, workdir, template=template, edition=edition):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
