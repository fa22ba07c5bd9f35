"""``abaw submit --track T``: write, zip and validate the official submission file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from abawkit.commands._options import (
    DEFAULT_RECIPE,
    DEFAULT_WORKDIR,
    Recipe,
    Seed,
    Sets,
    Workdir,
    friendly,
)


@friendly
def submit(
    track: Annotated[str, typer.Option("--track", "-t", help="au | expr | va | mtl | ce.")],
    workdir: Workdir = DEFAULT_WORKDIR,
    recipe: Recipe = DEFAULT_RECIPE,
    pred: Annotated[Optional[Path], typer.Option(help="Test predictions (default: the ensemble/<track> stage).")] = None,
    policy: Annotated[Optional[Path], typer.Option(help="policy.json (default: the smooth/<track> stage, if any).")] = None,
    template: Annotated[Optional[Path], typer.Option(help="Organisers' example file listing the frames to predict.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Submission folder name.")] = None,
    edition: Annotated[Optional[str], typer.Option(help="Format edition: abaw5 | abaw3.")] = None,
    out: Annotated[Path, typer.Option(help="Folder holding the submission folders.")] = Path("submissions"),
    no_smooth: Annotated[bool, typer.Option("--no-smooth", help="Submit without any smoothing policy (e.g. predictions of another model than the one smooth-search tuned).")] = False,
    sets: Sets = None,
    seed: Seed = None,
) -> None:
    """Fill, smooth, threshold/argmax/clip the test predictions; write <out>/<name>/ + zip; validate."""
    from abawkit.config import load_config
    from abawkit.stages.submit import SubmitConfig, run

    cfg = load_config(SubmitConfig, "submit", recipe, sets, seed=seed, name=name, edition=edition)
    run(workdir, cfg, track, pred=pred, policy=policy, template=template, out=out, smooth=not no_smooth)


def register(app: typer.Typer) -> None:
    app.command("submit")(submit)
