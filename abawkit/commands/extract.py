"""``abaw extract vision``, ``abaw extract audio`` and ``abaw extract text``: per-frame feature stores."""

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

extract_app = typer.Typer(help="Extract per-frame features (vision encoder, audio models, speech text) into the feature store.",
                          no_args_is_help=True)


@extract_app.command("vision")
@friendly
def vision(
    workdir: Workdir = DEFAULT_WORKDIR,
    recipe: Recipe = DEFAULT_RECIPE,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Encoder checkpoint file or downloaded folder: MAE, DINOv2, CLIP/OpenCLIP, timm (else the finetune stage's best.pt).")] = None,
    task: Annotated[Optional[str], typer.Option(help="Use finetune/<task>/fold<N>/best.pt (au, expr, va).")] = None,
    fold: Annotated[Optional[int], typer.Option(help="Fold of the finetune stage to use.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Extractor name (default mae-<task> or mae).")] = None,
    pool: Annotated[Optional[str], typer.Option(help="Embedding: cls token, mean of patch tokens, or cls+mean (both).")] = None,
    sets: Sets = None,
    seed: Seed = None,
    force: Force = False,
    trust_checkpoint: Trust = False,
) -> None:
    """Encode every face crop with a (fine-tuned) ViT; frames without a face take their fill frame's feature."""
    from abawkit.config import load_config
    from abawkit.stages.extract import ExtractConfig, run_vision

    over = {"checkpoint": str(checkpoint) if checkpoint else None, "task": task, "fold": fold, "name": name, "pool": pool}
    sets = list(sets or []) + [f"vision.{k}={_toml(v)}" for k, v in over.items() if v is not None]
    cfg = load_config(ExtractConfig, "extract", recipe, sets, seed=seed)
    with checkpoint_trust(trust_checkpoint):
        run_vision(workdir, cfg, force=force)


@extract_app.command("audio")
@friendly
def audio(
    workdir: Workdir = DEFAULT_WORKDIR,
    recipe: Recipe = DEFAULT_RECIPE,
    model: Annotated[Optional[str], typer.Option(help="fbank | hubert | wav2vec2 | wavlm | whisper | vggish.")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="transformers folder (hubert/wav2vec2/wavlm/whisper) or VGGish .pt.")] = None,
    layer: Annotated[Optional[int], typer.Option(help="Hidden layer of hubert/wav2vec2/wavlm/whisper (-1 = last).")] = None,
    sets: Sets = None,
    seed: Seed = None,
    force: Force = False,
    trust_checkpoint: Trust = False,
) -> None:
    """Audio features resampled to the video frame times (frame i at (i-1)/fps), plus an audio-present flag."""
    from abawkit.config import load_config
    from abawkit.stages.extract import ExtractConfig, run_audio

    over = {"model": model, "checkpoint": str(checkpoint) if checkpoint else None, "layer": layer}
    sets = list(sets or []) + [f"audio.{k}={_toml(v)}" for k, v in over.items() if v is not None]
    cfg = load_config(ExtractConfig, "extract", recipe, sets, seed=seed)
    with checkpoint_trust(trust_checkpoint):
        run_audio(workdir, cfg, force=force)


@extract_app.command("text")
@friendly
def text(
    workdir: Workdir = DEFAULT_WORKDIR,
    recipe: Recipe = DEFAULT_RECIPE,
    asr: Annotated[Optional[str], typer.Option(help="Speech recogniser: a local Whisper folder, or 'pocketsphinx' (its wheel ships an en-us model).")] = None,
    encoder: Annotated[Optional[Path], typer.Option(help="Local transformers text encoder folder (AutoModel + AutoTokenizer), or 'hashing': word hashing, no weights.")] = None,
    transcripts: Annotated[Optional[Path], typer.Option(help="Instead of --asr: a folder of <video>.json transcripts (segments with start, end, text).")] = None,
    name: Annotated[Optional[str], typer.Option(help="Store name: features/<name> (default text).")] = None,
    language: Annotated[Optional[str], typer.Option(help="Whisper language, e.g. en (default: the checkpoint's own).")] = None,
    sets: Sets = None,
    seed: Seed = None,
    force: Force = False,
    trust_checkpoint: Trust = False,
) -> None:
    """Transcribe each video's audio with timestamps, embed each segment, and put it on the frames it spans
    (frame i at (i-1)/fps), plus a speech flag; transcripts are saved as JSON in the store."""
    from abawkit.config import load_config
    from abawkit.stages.extract import ExtractConfig, run_text

    over = {"asr": asr, "encoder": str(encoder) if encoder else None,
            "transcripts": str(transcripts) if transcripts else None, "name": name, "language": language}
    sets = list(sets or []) + [f"text.{k}={_toml(v)}" for k, v in over.items() if v is not None]
    cfg = load_config(ExtractConfig, "extract", recipe, sets, seed=seed)
    with checkpoint_trust(trust_checkpoint):
        run_text(workdir, cfg, force=force)


def _toml(value: object) -> str:
    """A CLI value as a TOML literal for ``--set``."""
    import json

    return json.dumps(value)


def register(app: typer.Typer) -> None:
    app.add_typer(extract_app, name="extract")
