"""``abaw train video``: train a video-level model (A/H, EMI) on extracted features (registered in ``commands/train.py``)."""

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


@friendly
def video(
    task: Annotated[str, typer.Option(help="ah | emi (the video-level tracks).")],
    fold: Annotated[str, typer.Option(help="0 = official split, 1..5 = CV folds, all = 0..5 in turn.")] = "0",
    features: Annotated[Optional[str], typer.Option(help="Comma-separated feature stores, e.g. mae,fbank,text.")] = None,
    workdir: Workdir = DEFAULT_WORKDIR,
    recipe: Recipe = DEFAULT_RECIPE,
    sets: Sets = None,
    seed: Seed = None,
    resume: Resume = True,
    force: Force = False,
    trust_checkpoint: Trust = False,
) -> None:
    """A video's sampled frames (vision, audio, text features) -> Transformer encoder -> one prediction per video."""
    from abawkit.errors import AbawError
    from abawkit.labels import task as task_spec
    from abawkit.stages.video import VideoConfig, run

    spec = task_spec(task)
    if spec.level != "video":
        raise AbawError(f"--task {spec.name} is predicted per frame: use `abaw train tmf`; video-level tracks: ah, emi")
    train_folds(VideoConfig, "video", run, spec, fold, features, workdir, recipe, sets, seed, resume, force,
                trust_checkpoint, "video-level")
