"""``abaw prep``: index a release (synthetic or the real Aff-Wild2) into the workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from abawkit.commands._options import DEFAULT_RECIPE, DEFAULT_WORKDIR, Force, Recipe, Seed, Sets, Workdir, friendly


def prep(
    release: Annotated[Path, typer.Option("--release", help="Release root (annotation folders, cropped_aligned/, videos/).")],
    workdir: Workdir = DEFAULT_WORKDIR,
    size: Annotated[Optional[int], typer.Option(help="Side of face crops made from raw videos.")] = None,
    detector: Annotated[Optional[str], typer.Option(help="Face detector for raw videos: mtcnn (Haar fallback) | haar.")] = None,
    seed: Seed = None,
    recipe: Recipe = DEFAULT_RECIPE,
    set_: Sets = None,
    force: Force = False,
) -> None:
    """Read a release into <workdir>/prep/: frames.parquet, videos.parquet, splits.parquet, audio, crops."""
    from abawkit.config import load_config
    from abawkit.stages import prep as stage

    cfg = load_config(stage.PrepConfig, "prep", recipe, set_, release=str(release.resolve()), size=size,
                      detector=detector, seed=seed)
    stage.run(cfg, workdir, force=force)


def register(app: typer.Typer) -> None:
    app.command()(friendly(prep))
