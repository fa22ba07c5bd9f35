"""``abaw predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from abawkit.commands._options import (
    DEFAULT_RECIPE, DEFAULT_WORKDIR, Force, Recipe, Seed, Sets, Trust, Workdir, checkpoint_trust, friendly,
)


@friendly
def predict(
    video: Annotated[Path, typer.Argument(help="Any video file (mp4, avi, ...).")],
    workdir: Workdir = DEFAULT_WORKDIR,
    recipe: Recipe = DEFAULT_RECIPE,
    model: Annotated[Optional[str], typer.Option(help="tmf (with audio) or frame (fine-tuned encoder).")] = None,
    detector: Annotated[Optional[str], typer.Option(help="Face detector: mtcnn (Haar fallback) | haar.")] = None,
    sets: Sets = None,
    seed: Seed = None,
    force: Force = False,
    trust_checkpoint: Trust = False,
) -> None:
    """Per-frame AUs, expression and valence/arousal for a video, with a workspace's trained models.

    Writes <workdir>/predict/<video>/predictions.csv (one row per frame) and timeline.png.
    """
    from abawkit.config import load_config
    from abawkit.stages.predict import PredictConfig, run

    cfg = load_config(PredictConfig, "predict", recipe, sets, seed=seed, model=model, detector=detector)
    with checkpoint_trust(trust_checkpoint):
        run(video, workdir, cfg, force=force)


def register(app: typer.Typer) -> None:
    app.command()(predict)
