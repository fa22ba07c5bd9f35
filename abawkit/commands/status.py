"""``abaw status -w W``: where a run stands (any time, also while it is going)."""

from __future__ import annotations

import typer

from abawkit.commands._options import DEFAULT_WORKDIR, Workdir, friendly


@friendly
def status(workdir: Workdir = DEFAULT_WORKDIR) -> None:
    """Print every job of the workspace's plan: stage, state (done / stale / running / pending / failed), metric, wall time, device."""
    from abawkit.run.launch import status as show

    show(workdir)


def register(app: typer.Typer) -> None:
    app.command("status")(status)
