"""``abaw split``: redo the cross-validation folds of a prepared workspace."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from abawkit.commands._options import (
    DEFAULT_RECIPE,
    DEFAULT_WORKDIR,
    Force,
    Recipe,
    Seed,
    Sets,
    Workdir,
    friendly,
)


def split(
    workdir: Workdir = DEFAULT_WORKDIR,
    method: Annotated[Optional[str], typer.Option(help="stratified (balanced rare labels) or random.")] = None,
    seed: Seed = None,
    recipe: Recipe = DEFAULT_RECIPE,
    set_: Sets = None,
    force: Force = False,
) -> None:
    """Recompute the 5 folds per task (by video, _left/_right together) into prep/splits.parquet."""
    from abawkit.config import load_config
    from abawkit.stages import split as stage

    cfg = load_config(stage.SplitConfig, "split", recipe, set_, seed=seed, method=method)
    stage.run(cfg, workdir, force=force)


def register(app: typer.Typer) -> None:
    app.command()(friendly(split))
