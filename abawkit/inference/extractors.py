"""The extractor that made a feature store (``features/<name>``), re-run on one clip's crops or audio.

Reads the store's ``store.json`` (settings, precision) and ``manifest.json`` (the checkpoint it was
extracted from: recorded workspace-relative or absolute, ``workspace.identity.input_path``), and that checkpoint.
``load_vision_encoder`` is also the extract stage's loader. Writes nothing.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from abawkit.errors import AbawError
from abawkit.features.audio import extract_frames
from abawkit.features.registry import TextSettings, settings_from_store
from abawkit.features.store import INFO, extraction_precision
from abawkit.features.vision import check_pooling
from abawkit.frames import nearest
from abawkit.inference.clip import Clip
from abawkit.inference.models import Models, stage_dir
from abawkit.io import read_json
from abawkit.models.backbone_files import open_encoder
from abawkit.workspace import layout
from abawkit.workspace.identity import input_path
from abawkit.workspace.stage import MANIFEST


def load_vision_encoder(path: Path, arch_name: str = "", img_size: int = 0):
    """Encoder module (pooled through ``models.backbones.embed``), its arch and its own pooling (or None).

    Any format ``models.backbone_files.open_encoder`` reads: ours (pre-trained or fine-tuned), MAE / timm /
    HF ViTMAE, DINOv2, CLIP / OpenCLIP, timm names (EVA-02, ConvNeXt) via ``arch_name``.
    """
    encoder, arch, _, own_pool = open_encoder(path, arch_name, img_size)
    return encoder.eval(), arch, own_pool


def read_store(workdir: Path, store_name: str) -> tuple[Path, dict, dict]:
    """(folder, store.json, manifest.json) of the finished store ``features/<store_name>``."""
    d = stage_dir(workdir, layout.features(store_name))
    return d, read_json(d / INFO), read_json(d / MANIFEST)


def store_checkpoint(workdir: Path, manifest: dict) -> Path | None:
    """The checkpoint a store was extracted from (a file or a folder), resolved; None when it had none."""
    rec = (manifest.get("inputs") or {}).get("checkpoint") or {}
    return input_path(workdir, rec) if rec.get("path") else None


def store_kind(workdir: Path, store_name: str) -> str:
    """"vision", "audio" or "text": the kind of extractor that made ``features/<store_name>``."""
    d, info, _ = read_store(workdir, store_name)
    return settings_from_store(info, d / INFO)[0].kind


def vision_part(models: Models, store_name: str, crops: list[str]) -> np.ndarray:
    """Re-run the vision extractor that made ``features/<store_name>`` (its recorded typed settings) on the
    face crops: [P, dim]."""
    d, info, manifest = read_store(models.workdir, store_name)
    entry, s = settings_from_store(info, d / INFO)
    ckpt = store_checkpoint(models.workdir, manifest)
    if ckpt is None or not ckpt.exists():  # a file, or a downloaded folder (transformers, timm hub)
        raise AbawError(f"{d}/{MANIFEST}: no encoder checkpoint recorded; re-run `abaw extract vision --force`")
    s = dataclasses.replace(s, precision=extraction_precision(info, d / INFO))  # older stores: fp32
    ext = models.cached(("enc", str(ckpt), s), lambda: entry.build(s, ckpt, models.device))
    check_pooling(ext.encoder, s, d / INFO)
    t0 = time.perf_counter()
    out = ext.encode(crops, models.cfg.batch_size, workers=0)
    models.clock["encode"] = models.clock.get("encode", 0.0) + time.perf_counter() - t0
    return out


def audio_part(models: Models, store_name: str, clip: Clip) -> np.ndarray:
    """Re-run the audio extractor that made ``features/<store_name>`` (its recorded settings, ``chunk_s``
    included) at the clip's frame times: [n, dim + 1]."""
    d, info, manifest = read_store(models.workdir, store_name)
    entry, s = settings_from_store(info, d / INFO)
    ckpt = store_checkpoint(models.workdir, manifest)
    extraction_precision(info, d / INFO, supported=("fp32",))  # audio extractors run in fp32
    ext = models.cached(("audio", store_name), lambda: entry.build(s, ckpt, models.device))
    return extract_frames(ext, clip.wav, clip.n_frames, clip.fps, clip.times).astype(np.float32)


def clip_transcript(models: Models, store_name: str, s: TextSettings, manifest: dict, clip: Clip) -> list:
    """What was said in the clip: ``<transcripts>/<video stem>.json`` when predict was given a folder, else
    the store's own recogniser (``s``: its settings; the Whisper folder its ``manifest`` recorded, or
    PocketSphinx) on the clip's audio."""
    from abawkit.features.asr import build_asr
    from abawkit.features.text import read_transcript, transcribe

    given = getattr(models.cfg, "transcripts", "")
    if given:
        path = Path(given) / f"{clip.path.stem}.json"
        if not path.is_file():
            raise AbawError(f"{path}: no transcript for {clip.path.name} (--transcripts holds <video stem>.json per video)")
        return read_transcript(path)
    if s.asr == "transcripts":
        raise AbawError(f"{layout.features(store_name)} was made from transcript files: pass --transcripts DIR "
                        f"holding {clip.path.stem}.json (segments with start, end, text)")
    if s.asr == "whisper":
        rec = (manifest.get("inputs") or {}).get("asr") or {}
        folder = input_path(models.workdir, rec) if rec.get("path") else None
        if folder is None or not folder.is_dir():
            raise AbawError(f"{layout.features(store_name)} was transcribed with {rec.get('path')}, which is missing now; "
                            "pass --transcripts DIR instead")
        asr = models.cached(("asr", str(folder)), lambda: build_asr(str(folder), str(models.device), s.language,
                                                                     s.max_new_tokens))
    else:
        asr = models.cached(("asr", "pocketsphinx"), lambda: build_asr("pocketsphinx"))
    return transcribe(asr, clip.wav)[0]


def text_part(models: Models, store_name: str, clip: Clip) -> np.ndarray:
    """Re-run the text extractor that made ``features/<store_name>`` (its encoder: word hashing or the
    transformers folder it recorded) on the clip's words, placed on its frame times: [n, dim + 1]."""
    from abawkit.features.text import segment_features

    d, info, manifest = read_store(models.workdir, store_name)
    entry, s = settings_from_store(info, d / INFO)
    ckpt = None if s.weight_free else store_checkpoint(models.workdir, manifest)
    if not s.weight_free and (ckpt is None or not ckpt.is_dir()):
        raise AbawError(f"{d}/{MANIFEST}: its text encoder folder is missing; re-run `abaw extract text --force`")
    encoder = models.cached(("text", store_name), lambda: entry.build(s, ckpt, models.device))
    return segment_features(encoder, clip_transcript(models, store_name, s, manifest, clip), clip.times)


def clip_parts(models: Models, stores: list[str], clip: Clip, face: int, frames: np.ndarray,
               crops: list[str]) -> list[np.ndarray]:
    """Every store's features re-extracted for one face of the clip, in ``stores``' order: [n, D_i] each.

    Vision features of frames without this face take the nearest face frame's (as ``abaw extract``); audio and
    text (``--transcripts`` or the store's recogniser) are the clip's own. Kept per video (``Models.per_video``)."""
    near = nearest(frames, np.arange(clip.n_frames))  # [n] position in frames of each frame's nearest face frame
    parts = []
    for store in stores:
        kind = store_kind(models.workdir, store)
        if kind == "audio":
            parts.append(models.cached(("a", store), lambda: audio_part(models, store, clip), video=True))
        elif kind == "text":
            parts.append(models.cached(("t", store), lambda: text_part(models, store, clip), video=True))
        else:
            feats = models.cached(("v", store, face), lambda: vision_part(models, store, crops), video=True)
            parts.append(feats[near])
    return parts
