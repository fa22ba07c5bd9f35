"""``abaw prep``: index a release (synthetic or the real Aff-Wild2) into the workspace."""

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


def prep(
    release: Annotated[Path, typer.Option("--release", help="Release root as unpacked; its parts are found up to 4 levels deep.")],
    annotations: Annotated[Optional[Path], typer.Option(help="Folder holding the challenge folders (skips their discovery).")] = None,
    crops: Annotated[Optional[list[Path]], typer.Option(help="Crop root: a folder of per-video crop folders (repeatable).")] = None,
    videos: Annotated[Optional[list[Path]], typer.Option(help="Folder holding raw videos, searched recursively (repeatable).")] = None,
    compound: Annotated[Optional[list[Path]], typer.Option(
        help="CE training faces: a compound list (image,class rows or RAF-DB's list_patition_label.txt) or a folder holding one (repeatable).")] = None,
    workdir: Workdir = DEFAULT_WORKDIR,
    size: Annotated[Optional[int], typer.Option(help="Side of face crops made from raw videos.")] = None,
    detector: Annotated[Optional[str], typer.Option(help="Face detector for raw videos: mtcnn (Haar fallback) | haar.")] = None,
    align: Annotated[Optional[str], typer.Option(help="Crops from raw videos: 5pt (MTCNN's five landmarks onto a 112 px template) | none.")] = None,
    seed: Seed = None,
    recipe: Recipe = DEFAULT_RECIPE,
    set_: Sets = None,
    force: Force = False,
) -> None:
    """Read a release into <workdir>/prep/: frames.parquet, videos.parquet, splits.parquet, audio, crops.

    Annotation folders, crop roots, raw videos, test lists and templates are found wherever the
    archives unpacked them; prep prints what it found and stops if a video has no faces to use.
    """
    from abawkit.config import load_config
    from abawkit.stages import prep as stage

    cfg = load_config(stage.PrepConfig, "prep", recipe, set_, release=str(release.resolve()), size=size, detector=detector, align=align, seed=seed,
                      annotations=str(annotations.resolve()) if annotations else None,
                      crops=[str(p.resolve()) for p in crops] if crops else None,
                      videos=[str(p.resolve()) for p in videos] if videos else None,
                      compound=[str(p.resolve()) for p in compound] if compound else None)
    stage.run(cfg, workdir, force=force)


def register(app: typer.Typer) -> None:
    app.command()(friendly(prep))
