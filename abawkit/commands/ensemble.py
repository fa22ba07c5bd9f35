"""``abaw ensemble PRED...``: average fold predictions (optionally weighted by validation scores)."""

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
def ensemble(
    preds: Annotated[list[Path], typer.Argument(help="Prediction files of the folds (same task, same frames).")],
    workdir: Workdir = DEFAULT_WORKDIR,
    recipe: Recipe = DEFAULT_RECIPE,
    out: Annotated[Optional[Path], typer.Option(help="Write here instead of the ensemble/<task> stage.")] = None,
    weights: Annotated[Optional[str], typer.Option(help="Comma-separated weight per file, e.g. 0.55,0.52.")] = None,
    val: Annotated[Optional[list[Path]], typer.Option("--val", help="Validation file per input (repeatable): weight = its score on prep labels.")] = None,
    sets: Sets = None,
    seed: Seed = None,
    force: Force = False,
) -> None:
    """Average the folds' predictions; refuses files that cover different frames."""
    from abawkit.config import load_config
    from abawkit.errors import AbawError
    from abawkit.stages.ensemble import EnsembleConfig, run

    try:
        w = [float(x) for x in weights.split(",")] if weights else None
    except ValueError:
        raise AbawError(f"--weights {weights!r}: expected comma-separated numbers") from None
    cfg = load_config(EnsembleConfig, "ensemble", recipe, sets, seed=seed, weights=w)
    run(workdir, cfg, preds, out=out, val_preds=val or (), force=force)


def register(app: typer.Typer) -> None:
    app.command("ensemble")(ensemble)
