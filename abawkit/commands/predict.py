"""``abaw predict``."""

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
    Trust,
    Workdir,
    checkpoint_trust,
    friendly,
)


@friendly
def predict(
    videos: Annotated[list[Path], typer.Argument(help="Video files (mp4, mov, avi, mkv, webm) and/or folders of them.")],
    workdir: Workdir = DEFAULT_WORKDIR,
    recipe: Recipe = DEFAULT_RECIPE,
    model: Annotated[Optional[str], typer.Option(help="tmf (with audio), frame (fine-tuned encoder) or video (the video-level tracks ah, emi).")] = None,
    detector: Annotated[Optional[str], typer.Option(help="Face detector: mtcnn (Haar fallback) | haar (no landmarks, so never aligned).")] = None,
    align: Annotated[Optional[str], typer.Option(help="5pt (MTCNN's five landmarks onto a 112 px template) | none.")] = None,
    faces: Annotated[Optional[str], typer.Option(help="largest (one row per frame) | all (one row per frame per tracked face, with face_id).")] = None,
    fill: Annotated[Optional[str], typer.Option(help="Frames without a face: none (empty cells) | nearest (nearest face frame's prediction, the ABAW convention).")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto | cpu | cuda.")] = None,
    fold: Annotated[Optional[str], typer.Option(help="all (average every trained fold) | a fold number.")] = None,
    sets: Sets = None,
    seed: Seed = None,
    force: Force = False,
    strict: Annotated[bool, typer.Option("--strict", help="A video cut short or damaged is an error (exit 1); "
                                         "without it predict keeps the frames before the break and warns.")] = False,
    trust_checkpoint: Trust = False,
    transcripts: Annotated[Optional[Path], typer.Option(help="A TMF that fuses text: folder of <video stem>.json "
                                                        "transcripts (else the text store's own recogniser runs).")] = None,
) -> None:
    """Per-frame AUs, expression and valence/arousal for videos, with a workspace's trained models.

    Writes <workdir>/predict/<video>-<sha256[:8]>/predictions.csv (one row per frame, empty cells where there
    is no face) and timeline.png for each video (video-level tracks, --model video: one row per video and
    summary.png); a video already done with the same models is skipped
    (--force redoes it), one done with a model retrained since is redone.
    """
    from abawkit.config import load_config
    from abawkit.stages.predict import PredictConfig, run

    cfg = load_config(PredictConfig, "predict", recipe, sets, seed=seed, model=model, detector=detector, align=align,
                      faces=faces, fill=fill, device=device, fold=fold,
                      transcripts=str(transcripts.resolve()) if transcripts else None)
    with checkpoint_trust(trust_checkpoint):
        run(videos, workdir, cfg, force=force, strict=strict)


def register(app: typer.Typer) -> None:
    app.command()(predict)
