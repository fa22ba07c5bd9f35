"""``abaw pretrain``: MAE pre-training on face crops (a folder of images or the prep crops)."""

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


def pretrain(
    images: Annotated[Optional[Path], typer.Option(help="Folder of face images (default: the crops of <workdir>/prep).")] = None,
    workdir: Workdir = DEFAULT_WORKDIR,
    recipe: Recipe = DEFAULT_RECIPE,
    sets: Sets = None,
    seed: Seed = None,
    resume: Resume = True,
    force: Force = False,
    trust_checkpoint: Trust = False,
) -> None:
    """Masked-autoencoder pre-training of a ViT on faces -> <workdir>/pretrain/checkpoint.pt.

    Multi-GPU / multi-node: torchrun --nproc_per_node N -m abawkit.cli pretrain ...
    """
    from abawkit.config import load_config
    from abawkit.console import console, table
    from abawkit.stages import pretrain as stage

    sets = list(sets or []) + ([f'data.images="{images.resolve()}"'] if images else [])
    cfg = load_config(stage.PretrainConfig, "pretrain", recipe, sets, seed=seed)
    with checkpoint_trust(trust_checkpoint):  # only the resume checkpoint is read (one from an older abawkit)
        m = stage.run(workdir, cfg, force=force, resume=resume)
    console.print(table("MAE pre-training", ["images", "steps", "first loss", "final loss"],
                        [[m["images"], m["steps"], m["first_loss"], m["final_loss"]]]))
    console.print(f"wrote {Path(workdir) / stage.STAGE}")


def register(app: typer.Typer) -> None:
    app.command()(friendly(pretrain))
