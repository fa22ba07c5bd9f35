"""``abaw demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from abawkit.commands._options import (
    DEFAULT_RECIPE,
    Force,
    Recipe,
    Seed,
    Sets,
    friendly,
)


@friendly
def demo(
    workdir: Annotated[Path, typer.Option("--workdir", "-w", help="Demo workspace.")] = Path("abaw-demo"),
    recipe: Recipe = DEFAULT_RECIPE,
    sets: Sets = None,
    seed: Seed = None,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", help="Parallel jobs (default: run.toml's jobs).")] = None,
    gpus: Annotated[Optional[str], typer.Option(help="GPUs to use, e.g. 0,1: one job per GPU at a time.")] = None,
    track: Annotated[Optional[str], typer.Option(help="A later edition's track on its synthetic release: mtl, ce, ah, ah_frames or emi (recipe demo-<track>).")] = None,
    force: Force = False,
) -> None:
    """Run the whole pipeline on the synthetic release and print the ablation table.

    `abaw run` with the demo recipe plus the ablation's jobs: synth -> prep -> pretrain -> finetune -> extract
    -> TMF -> ensemble -> smooth-search -> submit -> validate -> score against the synthetic test ground
    truth. Finished jobs are skipped on re-run; `abaw status -w abaw-demo` shows where it stands.
    """
    from abawkit.commands.run import track_recipe
    from abawkit.config import load_config
    from abawkit.run.demo import DemoConfig, run

    recipe, _ = track_recipe(track, recipe, None)
    run(workdir, load_config(DemoConfig, "demo", recipe, sets, seed=seed), recipe, force=force, jobs=jobs, gpus=gpus)


def register(app: typer.Typer) -> None:
    app.command()(demo)
