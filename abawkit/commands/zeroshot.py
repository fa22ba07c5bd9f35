"""``abaw zeroshot``: a track's predictions from a model of another task and a rule (CE from EXPR)."""

from __future__ import annotations

from pathlib import Path
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


@friendly
def zeroshot(
    expr_model: Annotated[Optional[Path], typer.Option("--expr-model", help="A fine-tuned EXPR frame model (finetune/expr/fold<N>/best.pt of any workspace).")] = None,
    task: Annotated[str, typer.Option(help="The track to predict (ce).")] = "ce",
    workdir: Workdir = DEFAULT_WORKDIR,
    recipe: Recipe = DEFAULT_RECIPE,
    sets: Sets = None,
    seed: Seed = None,
    force: Force = False,
) -> None:
    """Compound-expression scores for every CE frame from an EXPR model's probabilities (no CE training labels)."""
    from abawkit.config import load_config
    from abawkit.stages.zeroshot import ZeroShotConfig, run

    path = str(expr_model.resolve()) if expr_model else None
    run(workdir, load_config(ZeroShotConfig, "zeroshot", recipe, sets, seed=seed, task=task, expr_model=path), force=force)


def register(app: typer.Typer) -> None:
    app.command("zeroshot")(zeroshot)
