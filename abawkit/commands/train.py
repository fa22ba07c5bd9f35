"""``abaw train tmf``: train the temporal multi-modal fusion transformer on extracted features."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from abawkit.commands._options import (
    DEFAULT_RECIPE,
    DEFAULT_WORKDIR,
    Force,
    Recipe,
    Resume,
    Seed,
    Sets,
    Trust,
    Workdir,
    train_folds,
    friendly,
)
from abawkit.commands.video import video

train_app = typer.Typer(help="Train models on extracted features.", no_args_is_help=True)


@train_app.command("tmf")
@friendly
def tmf(
    task: Annotated[str, typer.Option(help="au | expr | va.")],
    fold: Annotated[str, typer.Option(help="0 = official split, 1..5 = CV folds, all = 0..5 in turn.")] = "0",
    features: Annotated[Optional[str], typer.Option(help="Comma-separated feature stores, e.g. mae,hubert,vggish.")] = None,
    workdir: Workdir = DEFAULT_WORKDIR,
    recipe: Recipe = DEFAULT_RECIPE,
    sets: Sets = None,
    seed: Seed = None,
    resume: Resume = True,
    force: Force = False,
    trust_checkpoint: Trust = False,
) -> None:
    """Clips of K frames over concatenated features -> Transformer encoder -> per-frame predictions."""
    from abawkit.labels import task as task_spec
    from abawkit.stages.tmf import TMFConfig, run

    spec = task_spec(task)
    train_folds(TMFConfig, "tmf", run, spec, fold, features, workdir, recipe, sets, seed, resume, force,
                trust_checkpoint, "TMF")


train_app.command("video")(video)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
