"""``abaw smooth-search --task T --pred VAL...``: pick the smoothing/threshold policy on validation."""

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
def smooth_search(
    task: Annotated[str, typer.Option("--task", "-t", help="au | expr | va.")],
    pred: Annotated[list[Path], typer.Option("--pred", help="Validation prediction file (repeatable: one per fold).")],
    workdir: Workdir = DEFAULT_WORKDIR,
    recipe: Recipe = DEFAULT_RECIPE,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", help="Parallel workers over grid settings.")] = None,
    sets: Sets = None,
    seed: Seed = None,
    force: Force = False,
) -> None:
    """Try median / mean / Gaussian filters (and per-AU thresholds) on validation predictions; save the best policy."""
    from abawkit.config import load_config
    from abawkit.stages.smooth import SmoothConfig, run

    cfg = load_config(SmoothConfig, "smooth", recipe, sets, seed=seed, jobs=jobs)
    run(workdir, cfg, task, pred, force=force)


def register(app: typer.Typer) -> None:
    app.command("smooth-search")(smooth_search)
