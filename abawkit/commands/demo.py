"""``abaw demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from abawkit.commands._options import DEFAULT_RECIPE, Force, Recipe, Seed, Sets, friendly


@friendly
def demo(
    workdir: Annotated[Path, typer.Option("--workdir", "-w", help="Demo workspace.")] = Path("abaw-demo"),
    recipe: Recipe = DEFAULT_RECIPE,
    sets: Sets = None,
    seed: Seed = None,
    force: Force = False,
) -> None:
    """Run the whole pipeline on the synthetic release and print the ablation table.

    synth -> prep -> pretrain -> finetune -> extract -> TMF -> ensemble -> smooth-search -> submit ->
    validate -> score against the synthetic test ground truth. Finished stages are skipped on re-run.
    """
    from abawkit.config import load_config
    from abawkit.stages.demo import DemoConfig, run

    run(workdir, load_config(DemoConfig, "demo", recipe, sets, seed=seed), recipe, force=force)


def register(app: typer.Typer) -> None:
    app.command()(demo)
