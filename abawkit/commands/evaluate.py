"""``abaw evaluate PRED --task T``: official metric per class and overall for one file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from abawkit.commands._options import DEFAULT_WORKDIR, Workdir, friendly

Task = Annotated[str, typer.Option("--task", "-t", help="au | expr | va.")]


@friendly
def evaluate(
    pred: Annotated[Path, typer.Argument(help="Prediction file (.parquet), or a submission file with --truth.")],
    task: Task,
    workdir: Workdir = DEFAULT_WORKDIR,
    truth: Annotated[Optional[Path], typer.Option(help="Ground-truth folder of <video>.txt annotation files (scores a submission file).")] = None,
    edition: Annotated[str, typer.Option(help="Submission edition for --truth (abaw5 | abaw3).")] = "abaw5",
    out: Annotated[Optional[Path], typer.Option(help="JSON result path (default: <PRED>.eval.json beside PRED).")] = None,
) -> None:
    """Score predictions with the task's official metric (labels from prep, or --truth) and save JSON."""
    from abawkit.stages.evaluate import run

    run(pred, task, workdir, truth=truth, out=out, edition=edition)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
