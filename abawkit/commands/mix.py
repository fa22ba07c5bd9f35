"""``abaw mix``: synthetic compound faces (CE track) from a classic workspace's EXPR-labelled crops."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from abawkit.commands._options import DEFAULT_RECIPE, DEFAULT_WORKDIR, Force, Recipe, Seed, Sets, friendly


def mix(
    out: Annotated[Path, typer.Argument(help="Folder to create: images/ and compound_list.txt (for abaw prep --compound).")],
    from_: Annotated[Path, typer.Option("--from", help="Workspace whose prep holds EXPR-labelled crops (a classic Aff-Wild2 prep).")] = DEFAULT_WORKDIR,
    per_class: Annotated[Optional[int], typer.Option(help="Faces per compound in train (val: a quarter).")] = None,
    mode: Annotated[Optional[str], typer.Option(help="cutmix (upper and lower face halves) | mixup (a blend) | both.")] = None,
    size: Annotated[Optional[int], typer.Option(help="Side of the written faces; 0 = the crops' own.")] = None,
    seed: Seed = None,
    recipe: Recipe = DEFAULT_RECIPE,
    set_: Sets = None,
    force: Force = False,
) -> None:
    """Mix compound faces (Fearfully_Surprised = a Fear face + a Surprise face, ...) from basic-labelled crops.

    Train and val crops mix apart. The folder is a compound list that `abaw prep --compound OUT` reads
    as CE train/val rows.
    """
    from abawkit.config import load_config
    from abawkit.stages import mix as stage

    cfg = load_config(stage.MixConfig, "mix", recipe, set_, per_class=per_class, mode=mode, size=size, seed=seed)
    stage.run(cfg, from_, out, force=force)


def register(app: typer.Typer) -> None:
    app.command()(friendly(mix))
