"""The extractor that made a feature store (``features/<name>``), re-run on one clip's crops or audio.

Reads the store's ``store.json`` (settings, precision) and ``manifest.json`` (the checkpoint it was
extracted from: recorded workspace-relative or absolute, ``workspace.layout.resolve``), and that checkpoint.
``load_vision_encoder`` is also the extract stage's loader. Writes nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from abawkit.errors import AbawError
from abawkit.features.audio import build_audio_extractor, extract_frames
from abawkit.features.store import INFO, extraction_precision
from abawkit.features.vision import VisionSettings, check_pooling, encode_crops
from abawkit.inference.clip import Clip
from abawkit.inference.models import Models, stage_dir
from abawkit.io import read_json
from abawkit.models.backbone_files import open_encoder
from abawkit.workspace import layout
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
    return layout.resolve(workdir, rec["path"]) if rec.get("path") else None


def is_audio_store(workdir: Path, store_name: str) -> bool:
    return "model" in read_store(workdir, store_name)[1]["settings"]


def vision_part(models: Models, store_name: str, crops: list[str]) -> np.ndarray:
    """Re-run the vision extractor that made ``features/<store_name>`` on the face crops: [P, dim]."""
    d, info, manifest = read_store(models.workdir, store_name)
    s = info["settings"]
    ckpt = store_checkpoint(models.workdir, manifest)
    if ckpt is None or not ckpt.exists():  # a file, or a downloaded folder (transformers, timm hub)
        raise AbawError(f"{d}/{MANIFEST}: no encoder checkpoint recorded; re-run `abaw extract vision --force`")
    arch_name, img_size = s.get("arch", ""), int(s["img_size"])
    encoder = models.cached(("enc", str(ckpt), arch_name, img_size),
                            lambda: load_vision_encoder(ckpt, arch_name, img_size)[0].to(models.device))
    check_pooling(encoder, s, d / INFO)
    vs = VisionSettings(img_size=img_size, pool=s["pool"], batch_size=models.cfg.batch_size, workers=0,
                        precision=extraction_precision(info, d / INFO))
    if not crops:
        return np.zeros((0, 0), np.float32)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = np.concatenate(list(encode_crops(encoder, crops, vs, models.device))).astype(np.float32)
    models.clock["encode"] = models.clock.get("encode", 0.0) + time.perf_counter() - t0
    return out


def audio_part(models: Models, store_name: str, clip: Clip) -> np.ndarray:
    """Re-run the audio extractor that made ``features/<store_name>`` at the clip's frame times: [n, dim + 1]."""
    d, info, manifest = read_store(models.workdir, store_name)
    s = info["settings"]
    ckpt = store_checkpoint(models.workdir, manifest)
    extraction_precision(info, d / INFO, supported=("fp32",))  # audio extractors run in fp32
    layer = -1 if s.get("layer") is None else int(s["layer"])  # 0 (the embeddings) is a layer too
    ext = models.cached(("audio", store_name), lambda: build_audio_extractor(
        s["model"], ckpt, layer, str(models.device),
        **{k: v for k, v in s.items() if k in ("n_mels", "hop_s", "chunk_s")}))
    return extract_frames(ext, clip.wav, clip.n_frames, clip.fps, clip.times).astype(np.float32)
