"""``abaw finetune``: MAE encoder + linear head, fine-tuned frame-wise for one task and fold."""

from __future__ import annotations

from pathlib import Path
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


def finetune(
    task: Annotated[str, typer.Option(help="au | expr | va.")],
    fold: Annotated[int, typer.Option(help="0 = official split, 1..5 = cross-validation folds.")] = 0,
    init: Annotated[Optional[Path], typer.Option(help="Encoder checkpoint file or folder (ours, official MAE, timm or HF ViTMAE, DINOv2, CLIP/OpenCLIP, timm names via --set model.arch=...); default: <workdir>/pretrain.")] = None,
    scratch: Annotated[bool, typer.Option("--scratch", help="Random encoder init (the 'w/o MAE' ablation); output gets the tag 'scratch'.")] = False,
    workdir: Workdir = DEFAULT_WORKDIR,
    recipe: Recipe = DEFAULT_RECIPE,
    sets: Sets = None,
    seed: Seed = None,
    resume: Resume = True,
    force: Force = False,
    trust_checkpoint: Trust = False,
) -> None:
    """Fine-tune on the fold's train frames, keep the best validation epoch, predict val + test frames.

    Writes <workdir>/finetune/<task>/fold<N>/ (best.pt, pred_val.parquet, pred_test.parquet, metrics.json).
    """
    from abawkit.config import load_config
    from abawkit.console import console, table
    from abawkit.errors import AbawError
    from abawkit.labels import task as task_spec
    from abawkit.stages import finetune as stage

    spec = task_spec(task)
    if scratch and init:
        raise AbawError("--init and --scratch exclude each other")
    sets = list(sets or [])
    if scratch:
        sets += ['init="scratch"'] + ([] if any(s.startswith("tag=") for s in sets) else ['tag="scratch"'])
    elif init:
        sets.append(f'init="{init.resolve()}"')
    cfg = load_config(stage.FinetuneConfig, "finetune", recipe, sets, seed=seed, task=spec.name, fold=fold)
    with checkpoint_trust(trust_checkpoint):
        m = stage.run(workdir, cfg, force=force, resume=resume)
    console.print(table(f"fine-tune {spec.name} fold {fold} ({spec.metric})", ["init", "val score", "best epoch", "steps"],
                        [[cfg.init, m["val_score"], m["best_epoch"], m["steps"]]]))
    console.print(f"wrote {Path(workdir) / m['stage']}")


def register(app: typer.Typer) -> None:
    app.command()(friendly(finetune))
