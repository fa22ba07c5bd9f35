"""``abaw synth``: write a synthetic Aff-Wild2-style release."""

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


def synth(
    out: Annotated[Path, typer.Argument(help="Folder to create (the release root).")],
    videos: Annotated[Optional[int], typer.Option(help="Number of annotation names (videos).")] = None,
    frames: Annotated[Optional[int], typer.Option(help="Frames per video.")] = None,
    size: Annotated[Optional[int], typer.Option(help="Face crop size in pixels.")] = None,
    faces: Annotated[Optional[int], typer.Option(help="Unlabelled faces for MAE pre-training (pretrain_faces/).")] = None,
    layout: Annotated[Optional[str], typer.Option(help="tidy (official layout) | shipped (as the archives unpack).")] = None,
    track: Annotated[Optional[str], typer.Option(
        help="classic (Aff-Wild2) | mtl (s-Aff-Wild2) | ce (C-EXPR-DB: unlabelled videos, frame list, held-out truth, "
             "compound faces; defaults 8 videos x 150 frames, 96 px, --faces 40 per class) | ah or ah_frames (BAH: video- and "
             "frame-level labels) | emi (Hume-Vidmimic2).")] = None,
    seed: Seed = None,
    recipe: Recipe = DEFAULT_RECIPE,
    set_: Sets = None,
    force: Force = False,
) -> None:
    """Write a synthetic release in the official layout of a track: Aff-Wild2 (faces, labels, mp4 with audio),
    or with --track: s-Aff-Wild2 (mtl), C-EXPR-DB (ce), BAH (ah, ah_frames), Hume-Vidmimic2 (emi)."""
    from abawkit.config import load_config
    from abawkit.stages import synth as stage

    if track == "ce":  # C-EXPR-DB's own small defaults, unless given
        from abawkit.release.synth.ce import CeSynth

        videos, frames, size, faces = videos or CeSynth.videos, frames or CeSynth.frames, size or CeSynth.size, faces or CeSynth.faces
    cfg = load_config(stage.SynthConfig, "synth", recipe, set_, videos=videos, frames=frames, size=size, faces=faces, layout=layout,
                      track=track, seed=seed)
    stage.run(cfg, out, force=force)


def register(app: typer.Typer) -> None:
    app.command()(friendly(synth))
