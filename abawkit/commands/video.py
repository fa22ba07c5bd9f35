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
    checkpoint_trust,
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
    from abawkit.config import load_config
    from abawkit.console import console, table
    from abawkit.data.tables import N_FOLDS
    from abawkit.errors import AbawError
    from abawkit.labels import task as task_spec
    from abawkit.stages.video import VideoConfig, run
    from abawkit.workspace.stage import StageDone

    spec = task_spec(task)
    if spec.level != "video":
        raise AbawError(f"--task {spec.name} is predicted per frame: use `abaw train tmf`; video-level tracks: ah, emi")
    if fold == "all":
        folds = list(range(N_FOLDS + 1))
    elif fold.isdigit():
        folds = [int(fold)]
    else:
        raise AbawError(f"--fold must be 0..{N_FOLDS} or all, got {fold!r}")
    sets = list(sets or [])
    if features is not None:
        names = [f.strip() for f in features.split(",") if f.strip()]
        sets.append(f"features.{spec.name}={names!r}".replace("'", '"'))
    rows = []
    with checkpoint_trust(trust_checkpoint):  # only resume checkpoints are read
        for f in folds:
            cfg = load_config(VideoConfig, "video", recipe, sets, seed=seed, task=spec.name, fold=f)
            try:
                metrics = run(workdir, cfg, force=force, resume=resume)
            except StageDone as done:
                console.print(f"[yellow]skip:[/] {done}")
                continue
            rows.append([str(f), f"{metrics['val_score']:.4f}", str(metrics["best_epoch"])])
    if rows:
        console.print(table(f"video-level {spec.name} ({spec.metric})", ["fold", "val", "best epoch"], rows))
